//! The words vendors use: synonyms for the contract's field names, full-name keys, generic
//! tokens, envelope keys and the other names of each contract object.

/// Vendor names for canonical fields — lower case, separators removed — and how sure each is.
pub(super) const SYNONYMS: &[(&str, &[&str], f64)] = &[
    (
        "email",
        &[
            "emailaddress",
            "mail",
            "primaryemail",
            "contactemail",
            "workemail",
            "useremail",
            "emailid",
        ],
        0.9,
    ),
    (
        "phone",
        &[
            "phonenumber",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "tel",
            "telephone",
            "telephonenumber",
            "cell",
            "cellphone",
            "primaryphone",
            "workphone",
            "contactphone",
            "phone1",
        ],
        0.9,
    ),
    ("phone", &["homephone", "businessphone", "phone2"], 0.8),
    (
        "first_name",
        &["firstname", "givenname", "fname", "forename"],
        0.9,
    ),
    ("first_name", &["first", "given"], 0.75),
    (
        "last_name",
        &["lastname", "familyname", "surname", "lname"],
        0.9,
    ),
    ("last_name", &["last", "family"], 0.75),
    (
        "company_name",
        &[
            "company",
            "organization",
            "organisation",
            "organizationname",
            "organisationname",
            "orgname",
            "accountname",
            "businessname",
            "employer",
        ],
        0.9,
    ),
    ("company_name", &["org", "account", "business"], 0.75),
    (
        "job_title",
        &["title", "jobrole", "position", "role", "jobposition"],
        0.8,
    ),
    (
        "country",
        &[
            "countrycode",
            "countryiso",
            "countryalpha2",
            "countryiso2",
            "iso2country",
        ],
        0.9,
    ),
    (
        "marketing_consent",
        &[
            "acceptsmarketing",
            "acceptsemailmarketing",
            "optin",
            "optedin",
            "emailoptin",
            "marketingoptin",
            "newsletter",
            "subscribed",
            "consent",
        ],
        0.9,
    ),
    (
        "consent_source",
        &["optinsource", "signupsource", "consentorigin"],
        0.9,
    ),
    ("lifecycle_stage", &["lifecycle"], 0.9),
    ("lifecycle_stage", &["stage"], 0.75),
    (
        "lead_source",
        &["source", "leadorigin", "origin", "utmsource", "channel"],
        0.8,
    ),
    ("status", &["state", "leadstatus", "orderstatus"], 0.8),
    (
        "name",
        &[
            "companyname",
            "organizationname",
            "organisationname",
            "accountname",
            "businessname",
            "legalname",
            "productname",
            "title",
            "dealname",
            "opportunityname",
        ],
        0.9,
    ),
    (
        "domain",
        &[
            "website",
            "websiteurl",
            "url",
            "homepage",
            "companydomain",
            "domainname",
        ],
        0.85,
    ),
    (
        "tax_id",
        &[
            "taxnumber",
            "vatnumber",
            "vatid",
            "taxregistrationnumber",
            "ein",
            "abn",
            "vat",
        ],
        0.9,
    ),
    ("industry", &["sector", "vertical"], 0.85),
    (
        "sku",
        &[
            "itemcode",
            "productcode",
            "partnumber",
            "itemnumber",
            "articlenumber",
            "stockcode",
        ],
        0.9,
    ),
    ("sku", &["code"], 0.7),
    (
        "description",
        &["desc", "details", "bodyhtml", "summary", "longdescription"],
        0.85,
    ),
    (
        "unit_price",
        &["price", "unitamount", "listprice", "saleprice", "rate"],
        0.85,
    ),
    (
        "active",
        &["isactive", "enabled", "available", "published"],
        0.85,
    ),
    ("tax_rate_bp", &["taxrate", "vatrate"], 0.8),
    (
        "stage",
        &["dealstage", "pipelinestage", "stagename", "status"],
        0.85,
    ),
    (
        "amount",
        &["value", "dealvalue", "dealamount", "total"],
        0.8,
    ),
    (
        "close_date",
        &["expectedclosedate", "closeat", "closedat", "expectedclose"],
        0.9,
    ),
    (
        "order_number",
        &[
            "orderno",
            "ordernum",
            "ordername",
            "orderreference",
            "orderid",
        ],
        0.9,
    ),
    ("order_number", &["number", "reference", "name"], 0.7),
    (
        "total",
        &[
            "amounttotal",
            "grandtotal",
            "totalprice",
            "totalamount",
            "ordertotal",
        ],
        0.9,
    ),
    ("total", &["amount"], 0.75),
    (
        "subtotal",
        &["subtotalprice", "amountsubtotal", "nettotal", "totalnet"],
        0.9,
    ),
    (
        "tax",
        &[
            "totaltax",
            "taxamount",
            "amounttax",
            "taxtotal",
            "vat",
            "totalvat",
        ],
        0.9,
    ),
    (
        "placed_at",
        &[
            "createdat",
            "orderdate",
            "processedat",
            "created",
            "dateplaced",
            "orderedat",
        ],
        0.8,
    ),
    (
        "line_items",
        &["items", "lines", "orderlines", "lineitem", "products"],
        0.85,
    ),
    (
        "invoice_number",
        &[
            "invoiceno",
            "invoicenum",
            "invoiceid",
            "invoiceref",
            "reference",
        ],
        0.85,
    ),
    ("invoice_number", &["number"], 0.75),
    (
        "amount_paid",
        &["paid", "paidamount", "totalpaid", "amountreceived"],
        0.9,
    ),
    (
        "issued_at",
        &["issuedate", "invoicedate", "dateissued", "issuedon"],
        0.85,
    ),
    (
        "issued_at",
        &["date", "created", "createdat", "effectiveat", "finalizedat"],
        0.7,
    ),
    ("due_at", &["duedate", "due", "paymentdue", "datedue"], 0.9),
];

/// Keys that usually hold a person's whole name: split for first_name / last_name.
pub(super) const FULL_NAMES: &[&str] = &[
    "name",
    "fullname",
    "displayname",
    "contactname",
    "customername",
    "personname",
    "billingname",
];
pub(super) const FULL_NAME_SCORE: f64 = 0.7;
/// Shared words count for at most this much of an exact match.
pub(super) const OVERLAP_FACTOR: f64 = 0.7;

/// Tokens that say little on their own (`id`, `name`, `code`…): they count for less.
pub(super) const GENERIC_TOKENS: &[&str] = &[
    "id", "name", "number", "no", "num", "code", "at", "on", "date", "time", "utc", "value",
    "address", "is", "has", "type", "info", "data", "the", "of",
];

/// Envelope keys the record is usually wrapped in (`data.object` for Stripe).
pub(super) const WRAPPERS: &[&str] = &[
    "data", "object", "resource", "record", "payload", "body", "entity",
];

/// Other names vendors give each contract object (for the record's envelope and its id).
pub(super) fn object_names(object: &str) -> &'static [&'static str] {
    match object {
        "contact" => &[
            "contact",
            "customer",
            "person",
            "subscriber",
            "member",
            "user",
            "profile",
        ],
        "lead" => &["lead", "prospect"],
        "company" => &["company", "account", "organization", "organisation"],
        "product" => &["product", "item", "variant"],
        "deal" => &["deal", "opportunity"],
        "order" => &["order"],
        "invoice" => &["invoice", "bill"],
        _ => &[],
    }
}
