//! QuickBooks Online and Xero: customers/contacts, invoices and sales receipts as each API
//! documents them, each write with its own stable idempotency key (`requestid`,
//! `Idempotency-Key`); a document whose customer the destination does not know creates it first;
//! later changes update the records written before instead of adding more.

use std::collections::HashSet;

use serde_json::{Value, json};
use switchyard_integration_tests::Pipeline;
use switchyard_integration_tests::vendor_apis::{
    Connector, Fault, QUICKBOOKS_REALM, Request, VendorApis, XERO_TENANT,
};

use super::{
    assert_no_problems, contact, destination, event, flow, lines, money, send, start, write_key,
};

fn invoice(
    id: &str,
    number: &str,
    customer: &str,
    status: &str,
    second: u32,
    lines: Value,
) -> Value {
    event(
        "invoice",
        second,
        json!({"id": id, "invoice_number": number, "status": status, "customer_id": customer,
            "issued_at": "2026-01-05", "due_at": "2026-02-04", "total": money(2500), "line_items": lines}),
    )
}

fn widgets() -> Value {
    json!([{"sku": "SKU-1", "description": "Widget", "quantity": 2, "unit_price": money(1250)}])
}

fn jane(last_name: &str) -> Value {
    json!({"first_name": "Jane", "last_name": last_name, "phone": "+44 20 7946 0958", "country": "gb"})
}

/// A pipeline with contacts and invoices flows (`<prefix>-contacts`, `<prefix>-invoices`) to the
/// accounting destination `name` (with `extra` keys), after Jane (`crm-1`) and her open invoice `INV-1001` went
/// through it.
async fn books_with_janes_invoice(
    apis: &VendorApis,
    c: Connector,
    name: &str,
    prefix: &str,
    extra: &str,
) -> Pipeline {
    let pipeline = start(
        &[destination(apis, c, name, extra)],
        &[
            flow(&format!("{prefix}-contacts"), "contact", name, ""),
            flow(&format!("{prefix}-invoices"), "invoice", name, ""),
        ],
    )
    .await;
    send(
        &pipeline,
        "c1",
        &contact("crm-1", "jane@example.com", 1, jane("Doe")),
    )
    .await;
    send(
        &pipeline,
        "i1",
        &invoice("inv-1", "INV-1001", "crm-1", "open", 2, widgets()),
    )
    .await;
    pipeline
}

/// Jane's invoice `INV-1001` paid, then changed again while paid.
async fn pay_janes_invoice_twice(pipeline: &Pipeline) {
    send(
        pipeline,
        "i2",
        &invoice("inv-1", "INV-1001", "crm-1", "paid", 3, widgets()),
    )
    .await;
    let mut later = invoice("inv-1", "INV-1001", "crm-1", "paid", 4, widgets());
    later["data"]["due_at"] = json!("2026-02-10");
    send(pipeline, "i3", &later).await;
}

/// Every write used a key of its own.
fn assert_distinct_keys(c: Connector, writes: &[&Request]) {
    let keys: HashSet<String> = writes.iter().map(|r| write_key(c, r)).collect();
    assert_eq!(keys.len(), writes.len(), "one key per write: {keys:?}");
}

#[tokio::test]
async fn quickbooks_writes_customers_invoices_and_sales_receipts_once_each() {
    let c = Connector::Quickbooks;
    let apis = VendorApis::start().await;
    let pipeline = start(
        &[destination(&apis, c, "books", "")],
        &[
            flow("qb-customers", "contact", "books", ""),
            flow("qb-invoices", "invoice", "books", ""),
            flow("qb-receipts", "order", "books", ""),
            flow("qb-deals", "deal", "books", ""),
        ],
    )
    .await;
    let company = format!("/v3/company/{QUICKBOOKS_REALM}");
    send(
        &pipeline,
        "c1",
        &contact("crm-1", "jane@example.com", 1, jane("Doe")),
    )
    .await;
    send(
        &pipeline,
        "i1",
        &invoice("inv-1", "INV-1001", "crm-1", "open", 2, widgets()),
    )
    .await;
    // A customer QuickBooks does not have yet: created first, then invoiced.
    send(
        &pipeline,
        "i2",
        &invoice("inv-2", "INV-1002", "crm-9", "open", 3, json!([])),
    )
    .await;
    let order = event(
        "order",
        4,
        json!({"id": "ord-1", "order_number": "1001", "status": "paid", "customer_id": "crm-1",
            "placed_at": "2026-01-05T09:30:00Z", "total": money(4200),
            "line_items": [{"sku": "SKU-2", "description": "Gadget", "quantity": 1, "unit_price": money(4200)}]}),
    );
    send(&pipeline, "o1", &order).await;
    let deal = |stage: &str, second| {
        event(
            "deal",
            second,
            json!({"id": "deal-1", "name": "Jane's renewal", "stage": stage, "amount": money(150_000), "contact_id": "crm-1"}),
        )
    };
    send(&pipeline, "d1", &deal("qualified", 5)).await;
    let before_won = apis.requests(c).len();
    send(&pipeline, "d2", &deal("won", 6)).await;

    let seen = apis.requests(c);
    for request in &seen {
        assert_eq!(request.bearer(), Some(c.first_access_token().as_str()));
        assert_eq!(request.header("accept"), Some("application/json"));
        assert_eq!(
            request.query.get("minorversion").map(String::as_str),
            Some("75")
        );
        assert!((200..300).contains(&request.status), "{}", request.line());
    }
    let posts: Vec<&Request> = seen.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(
        lines(&seen),
        [
            // Jane looked up by email, then by display name, before she is created.
            format!("GET {company}/query"),
            format!("GET {company}/query"),
            format!("POST {company}/customer"),
            format!("POST {company}/invoice"),
            format!("POST {company}/customer"),
            format!("POST {company}/invoice"),
            format!("POST {company}/salesreceipt"),
            format!("POST {company}/invoice"),
        ],
        "the qualified deal writes nothing"
    );
    assert_eq!(before_won, 7, "nothing for the qualified deal");
    let queries: Vec<&str> = seen[..2]
        .iter()
        .map(|r| r.query["query"].as_str())
        .collect();
    assert_eq!(
        queries,
        [
            "select * from Customer where PrimaryEmailAddr = 'jane@example.com' and Active = true",
            "select * from Customer where DisplayName = 'Jane Doe' and Active = true",
        ]
    );
    assert_distinct_keys(c, &posts);
    let customers = apis.records(c, "Customer");
    let jane_id = customers
        .iter()
        .find(|(_, r)| r["DisplayName"] == "Jane Doe")
        .map(|(id, _)| id.clone())
        .expect("Jane");
    assert_eq!(
        posts[0].body,
        json!({"DisplayName": "Jane Doe", "GivenName": "Jane", "FamilyName": "Doe",
            "PrimaryEmailAddr": {"Address": "jane@example.com"}, "PrimaryPhone": {"FreeFormNumber": "+442079460958"},
            "BillAddr": {"Country": "GB"}})
    );
    assert_eq!(
        posts[1].body,
        json!({"CustomerRef": {"value": jane_id}, "DocNumber": "INV-1001", "TxnDate": "2026-01-05", "DueDate": "2026-02-04",
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 25.0, "Description": "Widget",
                      "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 12.5}}]})
    );
    assert_eq!(posts[2].body, json!({"DisplayName": "demo customer crm-9"}));
    let placeholder = customers
        .iter()
        .find(|(_, r)| r["DisplayName"] == "demo customer crm-9")
        .map(|(id, _)| id.clone())
        .expect("the customer created for the invoice");
    assert_eq!(posts[3].body["CustomerRef"]["value"], json!(placeholder));
    assert_eq!(
        posts[3].body["Line"],
        json!([{"DetailType": "SalesItemLineDetail", "Amount": 25.0, "Description": "INV-1002",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]),
        "no lines: one line of the total"
    );
    assert_eq!(posts[4].body["CustomerRef"]["value"], json!(jane_id));
    assert_eq!(posts[4].body["Line"][0]["Amount"], json!(42.0));
    assert_eq!(posts[5].body["CustomerRef"]["value"], json!(jane_id));
    assert_eq!(posts[5].body["Line"][0]["Amount"], json!(1500.0));

    // Later changes: sparse updates of the same entities, each with the SyncToken read first.
    let before = seen.len();
    send(
        &pipeline,
        "c2",
        &contact("crm-1", "jane@example.com", 7, jane("Smith")),
    )
    .await;
    send(
        &pipeline,
        "i3",
        &invoice("inv-1", "INV-1001", "crm-1", "paid", 8, widgets()),
    )
    .await;
    let later = apis.requests(c)[before..].to_vec();
    let invoice_id = apis
        .records(c, "Invoice")
        .iter()
        .find(|(_, r)| r["DocNumber"] == "INV-1001")
        .map(|(id, _)| id.clone())
        .expect("INV-1001");
    assert_eq!(
        lines(&later),
        [
            format!("GET {company}/customer/{jane_id}"),
            format!("POST {company}/customer"),
            format!("GET {company}/invoice/{invoice_id}"),
            format!("POST {company}/invoice"),
            // Paid: its payment, linked to it (quickbooks_records_a_paid_invoices_payment_once).
            format!("POST {company}/payment"),
        ]
    );
    assert_eq!(later[1].body["Id"], json!(jane_id));
    assert_eq!(later[1].body["SyncToken"], "0");
    assert_eq!(later[1].body["sparse"], true);
    assert_eq!(later[1].body["FamilyName"], "Smith");
    assert_eq!(later[3].body["Id"], json!(invoice_id));
    assert_eq!(later[3].body["sparse"], true);
    assert_eq!(apis.records(c, "Customer").len(), 2);
    assert_eq!(apis.records(c, "Invoice").len(), 3);
    assert_eq!(apis.records(c, "SalesReceipt").len(), 1);
    assert_no_problems(&apis);
    pipeline.finish().await;
}

#[tokio::test]
async fn xero_writes_contacts_and_sales_invoices_with_idempotency_keys() {
    let c = Connector::Xero;
    let apis = VendorApis::start().await;
    let pipeline = books_with_janes_invoice(&apis, c, "ledger", "xero", "").await;
    // A customer Xero does not have: named, Xero creates the contact; its id is used after.
    send(
        &pipeline,
        "i2",
        &invoice("inv-2", "INV-1002", "crm-9", "draft", 3, widgets()),
    )
    .await;
    send(
        &pipeline,
        "i3",
        &invoice("inv-3", "INV-1003", "crm-9", "open", 4, widgets()),
    )
    .await;

    let all = apis.requests(c);
    for request in &all {
        assert_eq!(request.bearer(), Some(c.first_access_token().as_str()));
        assert_eq!(request.header("xero-tenant-id"), Some(XERO_TENANT));
        assert_eq!(request.header("accept"), Some("application/json"));
        assert_eq!(request.status, 200, "{}", request.line());
    }
    assert_eq!(
        lines(&all),
        [
            "GET /api.xro/2.0/Contacts",
            "POST /api.xro/2.0/Contacts",
            "POST /api.xro/2.0/Invoices",
            "POST /api.xro/2.0/Invoices",
            "POST /api.xro/2.0/Invoices",
        ],
        "Jane looked up by email before she is created"
    );
    assert_eq!(
        all[0].query.get("where").map(String::as_str),
        Some("EmailAddress==\"jane@example.com\"")
    );
    let seen: Vec<Request> = all.into_iter().filter(|r| r.method == "POST").collect();
    let all: Vec<&Request> = seen.iter().collect();
    assert_distinct_keys(c, &all);
    let sent = &seen[0].body["Contacts"][0];
    let golden = sent["ContactNumber"].as_str().expect("ContactNumber");
    assert_eq!(golden.len(), 36, "the golden id");
    assert_eq!(
        seen[0].body,
        json!({"Contacts": [{"ContactNumber": golden, "Name": "Jane Doe", "FirstName": "Jane", "LastName": "Doe",
            "EmailAddress": "jane@example.com",
            "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "+442079460958"}],
            "Addresses": [{"AddressType": "STREET", "Country": "GB"}]}]})
    );
    let contacts = apis.records(c, "Contacts");
    let jane_id = contacts
        .iter()
        .find(|(_, r)| r["Name"] == "Jane Doe")
        .map(|(id, _)| id.clone())
        .expect("Jane");
    assert_eq!(
        seen[1].body,
        json!({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": jane_id}, "InvoiceNumber": "INV-1001",
            "Reference": "INV-1001", "Date": "2026-01-05", "DueDate": "2026-02-04", "LineAmountTypes": "Exclusive",
            "CurrencyCode": "USD", "Status": "AUTHORISED",
            "LineItems": [{"Description": "Widget", "Quantity": 2, "UnitAmount": 12.5, "AccountCode": "200"}]}]})
    );
    assert_eq!(
        seen[2].body["Invoices"][0]["Contact"],
        json!({"Name": "demo customer crm-9"})
    );
    assert_eq!(seen[2].body["Invoices"][0]["Status"], "DRAFT");
    let contacts = apis.records(c, "Contacts");
    assert_eq!(contacts.len(), 2, "Jane and the customer Xero created");
    let crm9 = contacts
        .iter()
        .find(|(_, r)| r["Name"] == "demo customer crm-9")
        .map(|(id, _)| id.clone())
        .expect("crm-9");
    assert_eq!(
        seen[3].body["Invoices"][0]["Contact"],
        json!({"ContactID": crm9})
    );

    // Later changes update the records written before.
    let before = apis.requests(c).len();
    send(
        &pipeline,
        "c2",
        &contact("crm-1", "jane@example.com", 5, jane("Smith")),
    )
    .await;
    send(
        &pipeline,
        "i4",
        &invoice("inv-1", "INV-1001", "crm-1", "paid", 6, widgets()),
    )
    .await;
    let later = apis.requests(c)[before..].to_vec();
    let invoice_id = apis
        .records(c, "Invoices")
        .iter()
        .find(|(_, r)| r["InvoiceNumber"] == "INV-1001")
        .map(|(id, _)| id.clone())
        .expect("INV-1001");
    assert_eq!(later[0].body["Contacts"][0]["ContactID"], json!(jane_id));
    assert_eq!(later[0].body["Contacts"][0]["Name"], "Jane Smith");
    assert_eq!(later[1].body["Invoices"][0]["InvoiceID"], json!(invoice_id));
    assert_eq!(apis.records(c, "Contacts").len(), 2);
    assert_eq!(apis.records(c, "Invoices").len(), 3);
    assert_no_problems(&apis);
    pipeline.finish().await;
}

#[tokio::test]
async fn accounting_lines_carry_the_configured_products_and_tax_codes() {
    let apis = VendorApis::start().await;
    let pipeline = start(
        &[
            destination(
                &apis,
                Connector::Quickbooks,
                "books",
                ", items: { SKU-1: \"7\" }, tax_codes: { 0: NON, 2000: TAX }",
            ),
            destination(
                &apis,
                Connector::Xero,
                "ledger",
                ", items: { SKU-1: WIDGET }, tax_codes: { 0: NONE, 2000: OUTPUT2 }",
            ),
        ],
        &[
            flow("qb-invoices", "invoice", "books", ""),
            flow("xero-invoices", "invoice", "ledger", ""),
        ],
    )
    .await;
    let taxed = json!([
        {"sku": "SKU-1", "description": "Widget", "quantity": 2, "unit_price": money(1250), "tax_rate_bp": 2000},
        {"sku": "SKU-2", "description": "Gadget", "quantity": 1, "unit_price": money(500), "tax_rate_bp": 0},
    ]);
    send(
        &pipeline,
        "i1",
        &invoice("inv-1", "INV-1001", "crm-1", "open", 1, taxed),
    )
    .await;

    let qb_invoices: Vec<Request> = apis
        .requests(Connector::Quickbooks)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/invoice"))
        .collect();
    assert_eq!(qb_invoices.len(), 1, "one QuickBooks invoice");
    let line = |i: usize| qb_invoices[0].body["Line"][i]["SalesItemLineDetail"].clone();
    assert_eq!(
        line(0),
        json!({"ItemRef": {"value": "7"}, "Qty": 2, "UnitPrice": 12.5, "TaxCodeRef": {"value": "TAX"}}),
        "the SKU's item and the 20 % code"
    );
    assert_eq!(
        line(1),
        json!({"ItemRef": {"value": "1"}, "Qty": 1, "UnitPrice": 5.0, "TaxCodeRef": {"value": "NON"}}),
        "an unlisted SKU books to item_id; 0 % has its own code"
    );
    let xero: Vec<Request> = apis
        .requests(Connector::Xero)
        .into_iter()
        .filter(|r| r.path.ends_with("/Invoices"))
        .collect();
    assert_eq!(xero.len(), 1, "one Xero invoice");
    assert_eq!(
        xero[0].body["Invoices"][0]["LineItems"],
        json!([
            {"Description": "Widget", "Quantity": 2, "UnitAmount": 12.5, "AccountCode": "200", "ItemCode": "WIDGET", "TaxType": "OUTPUT2"},
            {"Description": "Gadget", "Quantity": 1, "UnitAmount": 5.0, "AccountCode": "200", "TaxType": "NONE"},
        ])
    );

    // A rate neither table knows: no invoice is written with a guessed code; both changes wait
    // in the dead letters, naming the rate.
    let odd = json!([{"sku": "SKU-1", "description": "Widget", "quantity": 1, "unit_price": money(1000), "tax_rate_bp": 750}]);
    send(
        &pipeline,
        "i2",
        &invoice("inv-2", "INV-1002", "crm-1", "open", 2, odd),
    )
    .await;
    for flow in ["qb-invoices", "xero-invoices"] {
        let letters = pipeline.flow_dead_letters(flow).await;
        assert_eq!(letters.len(), 1, "{flow}: one dead letter");
        assert!(
            letters[0].1.reason.contains("7.5 %") && letters[0].1.reason.contains("tax_codes"),
            "{flow}: {}",
            letters[0].1.reason
        );
    }
    let invoices_after = apis
        .requests(Connector::Quickbooks)
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/invoice"))
        .count()
        + apis
            .requests(Connector::Xero)
            .iter()
            .filter(|r| r.path.ends_with("/Invoices"))
            .count();
    assert_eq!(invoices_after, 2, "nothing written for the unknown rate");
    assert_no_problems(&apis);
    pipeline.finish().await;
}

#[tokio::test]
async fn two_flows_creating_one_customer_at_once_create_it_once() {
    let c = Connector::Quickbooks;
    let apis = VendorApis::start().await;
    let pipeline = start(
        &[destination(&apis, c, "books", "")],
        &[
            flow("qb-customers", "contact", "books", ""),
            flow("qb-invoices", "invoice", "books", ""),
        ],
    )
    .await;
    // The first write QuickBooks sees — whichever flow's customer create it is — answers
    // slowly, so the other flow's write arrives while it is still unanswered and its id not yet
    // kept: without a claim on creating the record, both would create a customer.
    apis.fail_next(c, Fault::Slow(std::time::Duration::from_millis(1500)));
    let contact = contact("crm-1", "jane@example.com", 1, jane("Doe"));
    let invoice = invoice("inv-1", "INV-1001", "crm-1", "open", 2, widgets());
    let (a, b) = tokio::join!(pipeline.send("c1", &contact), pipeline.send("i1", &invoice));
    assert_eq!((a.0, b.0), (200, 200), "ingest accepts both");
    apis.wait_for("the invoice", |apis| apis.records(c, "Invoice").len() == 1)
        .await;
    pipeline.wait_drained(super::WAIT).await;
    let customers = apis.records(c, "Customer");
    assert_eq!(
        customers.len(),
        1,
        "one customer for crm-1, not one per flow: {customers:?}"
    );
    let (id, _) = customers.iter().next().expect("the customer");
    let invoices = apis.records(c, "Invoice");
    assert_eq!(
        invoices
            .values()
            .next()
            .map(|r| r["CustomerRef"]["value"].clone()),
        Some(json!(id)),
        "the invoice names that customer"
    );
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// Contacts a person keyed into Xero before Switchyard (Xero's ids are UUIDs).
const HELD_JANE: &str = "00000000-0000-4000-8000-000000000901";
const OLD_JANE: &str = "00000000-0000-4000-8000-000000000902";
const BOB_1: &str = "00000000-0000-4000-8000-000000000903";
const BOB_2: &str = "00000000-0000-4000-8000-000000000904";

/// A contact keyed into Xero by hand, with Jane's email in other letters: found, adopted (linked
/// in the crosswalk, updated by its `ContactID`), never created; an archived one is passed over.
/// Two active ones with her email: nothing written, and the dead letter names both.
#[tokio::test]
async fn xero_adopts_the_contact_it_already_holds_and_leaves_two_to_a_person() {
    let c = Connector::Xero;
    let apis = VendorApis::start().await;
    let held = |id: &str, email: &str, status: &str| json!({"ContactID": id, "Name": format!("Held {id}"), "EmailAddress": email, "ContactStatus": status});
    apis.seed(
        c,
        "Contacts",
        HELD_JANE,
        held(HELD_JANE, "Jane@Example.com", "ACTIVE"),
    );
    apis.seed(
        c,
        "Contacts",
        OLD_JANE,
        held(OLD_JANE, "jane@example.com", "ARCHIVED"),
    );
    for id in [BOB_1, BOB_2] {
        apis.seed(c, "Contacts", id, held(id, "bob@example.com", "ACTIVE"));
    }
    let pipeline = start(
        &[destination(&apis, c, "ledger", "")],
        &[flow("xero-contacts", "contact", "ledger", "")],
    )
    .await;
    send(
        &pipeline,
        "c1",
        &contact("crm-1", "jane@example.com", 1, jane("Doe")),
    )
    .await;
    send(
        &pipeline,
        "c2",
        &contact("crm-1", "jane@example.com", 2, jane("Smith")),
    )
    .await;
    send(
        &pipeline,
        "b1",
        &contact("crm-2", "bob@example.com", 3, json!({"first_name": "Bob"})),
    )
    .await;

    let seen = apis.requests(c);
    assert_eq!(
        lines(&seen),
        [
            "GET /api.xro/2.0/Contacts",
            "POST /api.xro/2.0/Contacts",
            "POST /api.xro/2.0/Contacts",
            "GET /api.xro/2.0/Contacts",
        ],
        "Jane looked up once and updated twice; Bob looked up and not written"
    );
    for write in [&seen[1], &seen[2]] {
        assert_eq!(write.body["Contacts"][0]["ContactID"], HELD_JANE);
    }
    let contacts = apis.records(c, "Contacts");
    assert_eq!(contacts.len(), 4, "nothing created: {contacts:?}");
    assert_eq!(
        contacts[HELD_JANE]["LastName"],
        "Smith",
        "{contacts:#?} {:#?}",
        seen.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>()
    );
    assert!(
        super::linked(&pipeline, "ledger", HELD_JANE, "crm-1").await,
        "the adopted contact leads to Jane's golden record"
    );
    let letters = pipeline.flow_dead_letters("xero-contacts").await;
    assert_eq!(letters.len(), 1, "Bob's change only");
    let reason = &letters[0].1.reason;
    assert!(reason.contains(BOB_1) && reason.contains(BOB_2), "{reason}");
    assert!(
        !reason.contains("bob@example.com"),
        "no email in a reason: {reason}"
    );
    let conflicts = super::destination_conflicts(&pipeline).await;
    assert_eq!(conflicts.len(), 1, "Bob's, for a person: {conflicts:?}");
    assert!(
        conflicts[0].1.contains(BOB_1) && conflicts[0].1.contains(BOB_2),
        "{conflicts:?}"
    );
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// QuickBooks customers keyed in by hand before Switchyard: Jane's by her email (in other
/// letters), Ann's by her display name (no email on it); both adopted and updated, none created.
/// Two active customers with Bob's email, or Carl's name on a customer with another email:
/// nothing written, and the dead letter names the customers.
#[tokio::test]
async fn quickbooks_adopts_the_customer_it_already_holds_and_leaves_doubts_to_a_person() {
    let c = Connector::Quickbooks;
    let apis = VendorApis::start().await;
    let held = |id: &str, name: &str, email: &str| {
        let mut customer = json!({"Id": id, "SyncToken": "0", "Active": true, "DisplayName": name});
        if !email.is_empty() {
            customer["PrimaryEmailAddr"] = json!({"Address": email});
        }
        apis.seed(c, "Customer", id, customer);
    };
    held("901", "J. Doe (shop)", "Jane@Example.com");
    held("902", "Ann Lee", "");
    held("903", "Bob One", "bob@example.com");
    held("904", "Bob Two", "bob@example.com");
    held("905", "Carl Fox", "carl@elsewhere.example");
    let pipeline = start(
        &[destination(&apis, c, "books", "")],
        &[flow("qb-customers", "contact", "books", "")],
    )
    .await;
    let person = |id: &str, email: &str, first: &str, last: &str, second| {
        contact(
            id,
            email,
            second,
            json!({"first_name": first, "last_name": last}),
        )
    };
    send(
        &pipeline,
        "j1",
        &person("crm-1", "jane@example.com", "Jane", "Doe", 1),
    )
    .await;
    send(
        &pipeline,
        "a1",
        &person("crm-2", "ann@example.com", "Ann", "Lee", 2),
    )
    .await;
    send(
        &pipeline,
        "b1",
        &person("crm-3", "bob@example.com", "Bob", "Moss", 3),
    )
    .await;
    send(
        &pipeline,
        "c1",
        &person("crm-4", "carl@example.com", "Carl", "Fox", 4),
    )
    .await;

    let seen = apis.requests(c);
    let writes: Vec<&Request> = seen.iter().filter(|r| r.method == "POST").collect();
    let updated: Vec<&str> = writes
        .iter()
        .map(|r| r.body["Id"].as_str().unwrap_or("created"))
        .collect();
    assert_eq!(
        updated,
        ["901", "902"],
        "Jane and Ann updated, nothing created"
    );
    let customers = apis.records(c, "Customer");
    assert_eq!(customers.len(), 5);
    assert_eq!(customers["901"]["DisplayName"], "Jane Doe");
    assert_eq!(
        customers["902"]["PrimaryEmailAddr"]["Address"],
        "ann@example.com"
    );
    for (id, source) in [("901", "crm-1"), ("902", "crm-2")] {
        assert!(
            super::linked(&pipeline, "books", id, source).await,
            "customer {id} leads to {source}'s golden record"
        );
    }
    let letters = pipeline.flow_dead_letters("qb-customers").await;
    let reasons: Vec<&str> = letters.iter().map(|(_, l)| l.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("903") && reasons[0].contains("904"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].contains("905"), "{}", reasons[1]);
    assert!(
        reasons.iter().all(|r| !r.contains('@')),
        "no email in a reason: {reasons:?}"
    );
    // Two customers with Bob's email are a conflict for a person; Carl's name on another
    // person's customer is not (no record of his exists there).
    let conflicts = super::destination_conflicts(&pipeline).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(
        conflicts[0].1.contains("903") && conflicts[0].1.contains("904"),
        "{conflicts:?}"
    );
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// A paid invoice gets its payment in QuickBooks, linked to the invoice booked for it, once: the
/// open invoice pays nothing, the paid one records a payment of its total (the invoice's balance
/// goes to 0), and a later change of the paid invoice — or the same change replayed — records no
/// second payment.
#[tokio::test]
async fn quickbooks_records_a_paid_invoices_payment_once() {
    let c = Connector::Quickbooks;
    let apis = VendorApis::start().await;
    let pipeline = books_with_janes_invoice(&apis, c, "books", "qb", "").await;
    assert!(
        apis.records(c, "Payment").is_empty(),
        "an open invoice pays nothing"
    );
    pay_janes_invoice_twice(&pipeline).await;

    let invoices = apis.records(c, "Invoice");
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    let (invoice_id, booked) = invoices.iter().next().expect("the invoice");
    let payments = apis.records(c, "Payment");
    assert_eq!(payments.len(), 1, "one payment: {payments:?}");
    let payment = payments.values().next().expect("the payment");
    assert_eq!(payment["TotalAmt"], json!(25.0));
    assert_eq!(
        payment["Line"][0]["LinkedTxn"],
        json!([{"TxnId": invoice_id, "TxnType": "Invoice"}])
    );
    assert_eq!(payment["CustomerRef"], booked["CustomerRef"]);
    assert_eq!(booked["Balance"], json!(0.0), "the invoice is settled");
    let posts = apis
        .requests(c)
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/payment"))
        .count();
    assert_eq!(posts, 1, "the later change asks for no second payment");
    assert!(pipeline.flow_dead_letters("qb-invoices").await.is_empty());
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// A paid invoice gets its payment in Xero (`PUT /Payments` to the configured bank account),
/// linked to the invoice, once; the invoice becomes PAID, and a later change of it writes nothing
/// (Xero refuses to edit a paid invoice). Without `payment_account_code` payments are left to
/// the organisation.
#[tokio::test]
async fn xero_records_a_paid_invoices_payment_once() {
    let c = Connector::Xero;
    let apis = VendorApis::start().await;
    let pipeline = books_with_janes_invoice(
        &apis,
        c,
        "ledger",
        "xero",
        ", payment_account_code: \"090\"",
    )
    .await;
    assert!(
        apis.records(c, "Payments").is_empty(),
        "an open invoice pays nothing"
    );
    pay_janes_invoice_twice(&pipeline).await;

    let invoices = apis.records(c, "Invoices");
    assert_eq!(invoices.len(), 1);
    let (invoice_id, booked) = invoices.iter().next().expect("the invoice");
    assert_eq!(booked["Status"], "PAID");
    let payments = apis.records(c, "Payments");
    assert_eq!(payments.len(), 1, "one payment: {payments:?}");
    let payment = payments.values().next().expect("the payment");
    assert_eq!(payment["Invoice"]["InvoiceID"], json!(invoice_id));
    assert_eq!(payment["Account"], json!({"Code": "090"}));
    assert_eq!(payment["Amount"], json!(25.0));
    let puts = apis
        .requests(c)
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 1, "the later change asks for no second payment");
    assert!(pipeline.flow_dead_letters("xero-invoices").await.is_empty());
    assert_no_problems(&apis);
    pipeline.finish().await;

    // No bank account configured: the invoice is booked and its payment left to the
    // organisation's bank reconciliation; nothing is dead-lettered.
    let apis = VendorApis::start().await;
    let pipeline = books_with_janes_invoice(&apis, c, "ledger", "xero", "").await;
    send(
        &pipeline,
        "i2",
        &invoice("inv-1", "INV-1001", "crm-1", "paid", 3, widgets()),
    )
    .await;
    assert!(apis.records(c, "Payments").is_empty());
    let invoices = apis.records(c, "Invoices");
    assert_eq!(
        invoices.values().next().expect("booked")["Status"],
        "AUTHORISED"
    );
    assert!(pipeline.flow_dead_letters("xero-invoices").await.is_empty());
    pipeline.finish().await;
}
