//! QuickBooks Online (Accounting API v3, as Intuit's reference documents it; Intuit publishes no
//! OpenAPI) and Xero Accounting (request bodies held against its published OpenAPI spec).
//! Both keep the answer of each idempotency key — QuickBooks' `requestid`, Xero's
//! `Idempotency-Key` — and answer a repeat with it instead of writing twice.

use serde_json::{Map, Value, json};

use super::{
    Connector, Incoming, Inner, QUICKBOOKS_REALM, Reply, XERO_TENANT, remember, replay,
    vendor_error,
};

const QBO_CUSTOMER_FIELDS: [&str; 11] = [
    "Id",
    "SyncToken",
    "sparse",
    "DisplayName",
    "GivenName",
    "FamilyName",
    "CompanyName",
    "Title",
    "PrimaryEmailAddr",
    "PrimaryPhone",
    "BillAddr",
];
const QBO_DOCUMENT_FIELDS: [&str; 8] = [
    "Id",
    "SyncToken",
    "sparse",
    "CustomerRef",
    "Line",
    "DocNumber",
    "TxnDate",
    "DueDate",
];

fn qbo_fault(status: u16, code: &str, message: &str, detail: &str) -> Reply {
    Reply::new(
        status,
        json!({"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": "ValidationFault"},
               "time": "2026-01-05T02:00:00.000-08:00"}),
    )
}

/// `POST /v3/company/{realmId}/{customer,invoice,salesreceipt}?requestid=…&minorversion=75` and
/// `GET /v3/company/{realmId}/{entity}/{id}`.
pub(super) fn quickbooks(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Quickbooks;
    let segments: Vec<&str> = req
        .path
        .trim_start_matches("/v3/company/")
        .split('/')
        .collect();
    let (realm, entity, id) = match segments.as_slice() {
        [realm, entity] => (*realm, *entity, None),
        [realm, entity, id] => (*realm, *entity, Some(*id)),
        _ => {
            inner.problem(c, format!("unexpected path {}", req.path));
            return vendor_error(c, 404, "not found");
        }
    };
    if entity == "query" && id.is_none() {
        return qbo_query(inner, realm, req);
    }
    let kind = match entity {
        "customer" => "Customer",
        "invoice" => "Invoice",
        "salesreceipt" => "SalesReceipt",
        "payment" => "Payment",
        other => {
            inner.problem(c, format!("unexpected entity {other}"));
            return vendor_error(c, 404, "not found");
        }
    };
    let mut problems = Vec::new();
    if realm != QUICKBOOKS_REALM {
        problems.push(format!("realm {realm} is not the company's"));
    }
    if req.query.get("minorversion").map(String::as_str) != Some("75") {
        problems.push(format!(
            "minorversion {:?}, expected 75",
            req.query.get("minorversion")
        ));
    }
    if req.header("accept") != Some("application/json") {
        problems.push("accept must be application/json (the API answers XML otherwise)".to_owned());
    }
    if let Some(id) = id {
        if req.method != "GET" {
            problems.push(format!("{} of a single {kind}", req.method));
        }
        for p in &problems {
            inner.problem(c, p.clone());
        }
        return match inner.table(c, kind).get(id) {
            Some(record) => Reply::new(
                200,
                json!({ kind: record, "time": "2026-01-05T02:00:00.000-08:00" }),
            ),
            None => qbo_fault(
                400,
                "610",
                "Object Not Found",
                &format!(
                    "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. {kind} {id}"
                ),
            ),
        };
    }
    let request_id = req.query.get("requestid").cloned().unwrap_or_default();
    if request_id.is_empty() || request_id.len() > 50 {
        problems.push(format!(
            "requestid {request_id:?}: every write needs one of at most 50 characters"
        ));
    }
    if req.method != "POST" || req.header("content-type") != Some("application/json") {
        problems.push("writes are POSTs of application/json".to_owned());
    }
    let Some(body) = req.body.as_object() else {
        problems.push("body is not a JSON object".to_owned());
        for p in &problems {
            inner.problem(c, p.clone());
        }
        return qbo_fault(
            400,
            "2010",
            "Request has invalid or unsupported property",
            "no body",
        );
    };
    let allowed: &[&str] = match kind {
        "Customer" => &QBO_CUSTOMER_FIELDS,
        "Payment" => &["CustomerRef", "TotalAmt", "Line", "TxnDate"],
        _ => &QBO_DOCUMENT_FIELDS,
    };
    for name in body.keys() {
        if !allowed.contains(&name.as_str()) {
            problems.push(format!(
                "{kind}.{name} is not a property the connector should send"
            ));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            inner.problem(c, p.clone());
        }
        return qbo_fault(
            400,
            "2010",
            "Request has invalid or unsupported property",
            &problems.join("; "),
        );
    }
    if let Some(reply) = replay(inner, c, &request_id, &req.body) {
        return reply;
    }
    let reply = match kind {
        "Customer" => qbo_customer(inner, body),
        "Payment" => qbo_payment(inner, body),
        _ => qbo_document(inner, kind, body),
    };
    remember(inner, c, &request_id, &req.body, &reply);
    reply
}

/// `GET /v3/company/{realm}/query?query=…` (Intuit's query language), for the one statement
/// shape the connector sends: `select * from Customer where <PrimaryEmailAddr|DisplayName> =
/// '<value>' and Active = true`, quotes escaped with a backslash. Answered in a `QueryResponse`
/// as Intuit documents it (the entity's array left out when nothing matches). Emails match
/// ignoring case; display names exactly.
fn qbo_query(inner: &mut Inner, realm: &str, req: &Incoming) -> Reply {
    let c = Connector::Quickbooks;
    let mut problems = Vec::new();
    if realm != QUICKBOOKS_REALM {
        problems.push(format!("realm {realm} is not the company's"));
    }
    if req.method != "GET" {
        problems.push(format!("{} of a query", req.method));
    }
    if req.query.get("minorversion").map(String::as_str) != Some("75") {
        problems.push("a query without minorversion 75".to_owned());
    }
    let statement = req.query.get("query").cloned().unwrap_or_default();
    let parsed = statement
        .strip_prefix("select * from Customer where ")
        .and_then(|rest| rest.strip_suffix(" and Active = true"))
        .and_then(|rest| rest.split_once(" = '"))
        .and_then(|(field, value)| Some((field, value.strip_suffix('\'')?)));
    let Some((field, literal)) =
        parsed.filter(|(f, _)| matches!(*f, "PrimaryEmailAddr" | "DisplayName"))
    else {
        problems.push(format!("unexpected query {statement:?}"));
        for p in &problems {
            inner.problem(c, p.clone());
        }
        return qbo_fault(400, "4000", "Error parsing query", &statement);
    };
    for p in &problems {
        inner.problem(c, p.clone());
    }
    let value = literal.replace("\\'", "'").replace("\\\\", "\\");
    let found: Vec<Value> = inner
        .table(c, "Customer")
        .values()
        .filter(|r| r["Active"] != false)
        .filter(|r| match field {
            "PrimaryEmailAddr" => r["PrimaryEmailAddr"]["Address"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(&value)),
            _ => r["DisplayName"].as_str() == Some(value.as_str()),
        })
        .cloned()
        .collect();
    let mut response = json!({"startPosition": 1, "maxResults": found.len()});
    if !found.is_empty() {
        response["Customer"] = json!(found);
    }
    Reply::new(
        200,
        json!({"QueryResponse": response, "time": "2026-01-05T02:00:00.000-08:00"}),
    )
}

fn qbo_customer(inner: &mut Inner, body: &Map<String, Value>) -> Reply {
    let c = Connector::Quickbooks;
    let display = body
        .get("DisplayName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let next = inner.id();
    let table = inner.table(c, "Customer");
    if let Some(display) = &display
        && table.values().any(|r| {
            r["DisplayName"] == json!(display)
                && r["Id"] != body.get("Id").cloned().unwrap_or_default()
        })
    {
        return qbo_fault(
            400,
            "6240",
            "Duplicate Name Exists Error",
            &format!("The name supplied already exists. : {display}"),
        );
    }
    let record = match body.get("Id").and_then(Value::as_str) {
        Some(id) => {
            let Some(record) = table.get_mut(id) else {
                return qbo_fault(400, "610", "Object Not Found", id);
            };
            if body.get("SyncToken") != Some(&record["SyncToken"]) {
                return qbo_fault(
                    400,
                    "5010",
                    "Stale Object Error",
                    "You and another user were working on the same thing.",
                );
            }
            for (name, value) in body {
                if !matches!(name.as_str(), "Id" | "SyncToken" | "sparse") {
                    record[name] = value.clone();
                }
            }
            let sync: u64 = record["SyncToken"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            record["SyncToken"] = json!((sync + 1).to_string());
            record.clone()
        }
        None => {
            if display.is_none()
                && !body.contains_key("GivenName")
                && !body.contains_key("FamilyName")
            {
                return qbo_fault(
                    400,
                    "6000",
                    "A business validation error has occurred",
                    "DisplayName or a name part is required",
                );
            }
            let id = next.to_string();
            let mut record = body.clone();
            record.insert("Id".to_owned(), json!(id));
            record.insert("SyncToken".to_owned(), json!("0"));
            record.insert("Active".to_owned(), json!(true));
            table.insert(id, Value::Object(record.clone()));
            Value::Object(record)
        }
    };
    Reply::new(
        200,
        json!({"Customer": record, "time": "2026-01-05T02:00:00.000-08:00"}),
    )
}

/// The customer id a QuickBooks transaction names (`CustomerRef.value`).
fn customer_ref(body: &Map<String, Value>) -> String {
    body.get("CustomerRef")
        .and_then(|r| r["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn qbo_document(inner: &mut Inner, kind: &str, body: &Map<String, Value>) -> Reply {
    let c = Connector::Quickbooks;
    let customer = customer_ref(body);
    if !inner.table(c, "Customer").contains_key(&customer) {
        return qbo_fault(
            400,
            "2500",
            "Invalid Reference Id",
            &format!("Invalid Reference Id : Customer {customer} does not exist"),
        );
    }
    let mut total = 0.0;
    for line in body
        .get("Line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let amount = line["Amount"].as_f64().unwrap_or(f64::NAN);
        let detail = &line["SalesItemLineDetail"];
        let mismatch = match (detail["Qty"].as_f64(), detail["UnitPrice"].as_f64()) {
            (Some(qty), Some(price)) => (qty * price - amount).abs() > 0.005,
            _ => false,
        };
        if line["DetailType"] != "SalesItemLineDetail"
            || detail["ItemRef"]["value"].as_str().is_none()
            // A line's tax code is a reference like the item: `{"value": "TAX"}`.
            || detail
                .get("TaxCodeRef")
                .is_some_and(|t| t["value"].as_str().is_none())
            || amount.is_nan()
            || mismatch
        {
            inner.problem(c, format!("{kind} line not as documented: {line}"));
            return qbo_fault(
                400,
                "6070",
                "Line amount mismatch or missing item",
                &line.to_string(),
            );
        }
        total += amount;
    }
    if total == 0.0 {
        return qbo_fault(
            400,
            "6000",
            "A business validation error has occurred",
            "a transaction needs at least one line",
        );
    }
    let next = inner.id();
    let table = inner.table(c, kind);
    let record = match body.get("Id").and_then(Value::as_str) {
        Some(id) => {
            let Some(record) = table.get_mut(id) else {
                return qbo_fault(400, "610", "Object Not Found", id);
            };
            if body.get("SyncToken") != Some(&record["SyncToken"]) {
                return qbo_fault(
                    400,
                    "5010",
                    "Stale Object Error",
                    "You and another user were working on the same thing.",
                );
            }
            for (name, value) in body {
                if !matches!(name.as_str(), "Id" | "SyncToken" | "sparse") {
                    record[name] = value.clone();
                }
            }
            let sync: u64 = record["SyncToken"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            record["SyncToken"] = json!((sync + 1).to_string());
            record["TotalAmt"] = json!(total);
            record.clone()
        }
        None => {
            let id = (next + 100).to_string();
            let mut record = body.clone();
            record.insert("Id".to_owned(), json!(id));
            record.insert("SyncToken".to_owned(), json!("0"));
            record.insert("TotalAmt".to_owned(), json!(total));
            table.insert(id, Value::Object(record.clone()));
            Value::Object(record)
        }
    };
    Reply::new(
        200,
        json!({ kind: record, "time": "2026-01-05T02:00:00.000-08:00" }),
    )
}

/// `POST …/payment`: a customer payment applied to invoices (`Line[].LinkedTxn` of `TxnType`
/// `Invoice`), as Intuit's Payment reference documents it. Each linked invoice must exist, belong
/// to the payment's customer and still owe the line's amount; its `Balance` goes down by it.
fn qbo_payment(inner: &mut Inner, body: &Map<String, Value>) -> Reply {
    let c = Connector::Quickbooks;
    let customer = customer_ref(body);
    let total = body
        .get("TotalAmt")
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN);
    let lines = body
        .get("Line")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut applied = 0.0;
    for line in &lines {
        let amount = line["Amount"].as_f64().unwrap_or(f64::NAN);
        for linked in line["LinkedTxn"].as_array().into_iter().flatten() {
            let id = linked["TxnId"].as_str().unwrap_or_default();
            let invoice = inner.table(c, "Invoice").get_mut(id);
            let refused = match invoice {
                _ if linked["TxnType"] != "Invoice" => Some("a payment links invoices".to_owned()),
                None => Some(format!("Invoice {id} does not exist")),
                Some(invoice) => {
                    let owed = invoice["Balance"]
                        .as_f64()
                        .or_else(|| invoice["TotalAmt"].as_f64())
                        .unwrap_or(0.0);
                    if invoice["CustomerRef"]["value"] != json!(customer) {
                        Some(format!("Invoice {id} belongs to another customer"))
                    } else if amount.is_nan() || amount > owed + 0.005 {
                        Some(format!("Invoice {id} owes {owed}, less than {amount}"))
                    } else {
                        invoice["Balance"] = json!(((owed - amount) * 100.0).round() / 100.0);
                        None
                    }
                }
            };
            if let Some(detail) = refused {
                inner.problem(c, format!("payment: {detail}"));
                return qbo_fault(
                    400,
                    "6000",
                    "A business validation error has occurred",
                    &detail,
                );
            }
            applied += amount;
        }
    }
    if lines.is_empty() || (applied - total).abs() > 0.005 {
        inner.problem(c, format!("payment of {total} applies {applied}"));
        return qbo_fault(
            400,
            "6000",
            "A business validation error has occurred",
            "TotalAmt does not match the lines",
        );
    }
    let id = (inner.id() + 500).to_string();
    let mut record = body.clone();
    record.insert("Id".to_owned(), json!(id));
    record.insert("SyncToken".to_owned(), json!("0"));
    inner
        .table(c, "Payment")
        .insert(id, Value::Object(record.clone()));
    Reply::new(
        200,
        json!({ "Payment": record, "time": "2026-01-05T02:00:00.000-08:00" }),
    )
}

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// `POST /api.xro/2.0/Contacts` and `POST /api.xro/2.0/Invoices` (`updateOrCreate…`), and
/// `GET /api.xro/2.0/Contacts` filtered by email (`getContacts`).
pub(super) fn xero(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Xero;
    let collection = req.path.trim_start_matches("/api.xro/2.0/");
    let specs = inner.specs();
    let spec = &specs.xero;
    if req.method == "GET" && collection == "Contacts" {
        return xero_find_contacts(inner, req);
    }
    // `updateOrCreate…` are POSTs; payments are created with `PUT /Payments` (`createPayments`).
    let method = if collection == "Payments" {
        "put"
    } else {
        "post"
    };
    let operation = format!("/paths/~1{collection}/{method}");
    if spec.at(&operation).is_null() || !req.method.as_str().eq_ignore_ascii_case(method) {
        inner.problem(
            c,
            format!(
                "{} {} is not an operation of the spec",
                req.method, req.path
            ),
        );
        return vendor_error(c, 404, "not found");
    }
    let mut problems = Vec::new();
    // `requiredHeader` of the spec, and its `idempotencyKey` parameter ("128 character max").
    if req.header("xero-tenant-id") != Some(XERO_TENANT) {
        problems.push(format!(
            "xero-tenant-id {:?} is not the organisation's",
            req.header("xero-tenant-id")
        ));
    }
    let key = req.header("idempotency-key").unwrap_or_default().to_owned();
    if key.is_empty() || key.len() > 128 {
        problems.push(format!(
            "Idempotency-Key {key:?}: every write needs one of at most 128 characters"
        ));
    }
    if req.header("content-type") != Some("application/json") {
        problems.push("body without content-type application/json".to_owned());
    }
    let schema = spec.at(&format!(
        "{operation}/requestBody/content/application~1json/schema"
    ));
    problems.extend(spec.check(schema, &req.body, "body"));
    if !problems.is_empty() {
        for p in &problems {
            inner.problem(c, format!("{collection}: {p}"));
        }
        return vendor_error(c, 400, &problems.join("; "));
    }
    if let Some(reply) = replay(inner, c, &key, &req.body) {
        return reply;
    }
    let items = req.body[collection].as_array().cloned().unwrap_or_default();
    let mut written = Vec::new();
    for item in items {
        let result = match collection {
            "Contacts" => xero_contact(inner, &item),
            "Payments" => xero_payment(inner, &item),
            _ => xero_invoice(inner, &item),
        };
        match result {
            Ok(record) => written.push(record),
            Err(message) => return vendor_error(c, 400, &message),
        }
    }
    let reply = Reply::new(
        200,
        json!({"Id": "e997d6d7-6dad-4458-beb8-d9c1bf7f2edf", "Status": "OK", "ProviderName": "Switchyard tests",
               "DateTimeUTC": "/Date(1767607200000)/", collection: written}),
    );
    remember(inner, c, &key, &req.body, &reply);
    reply
}

/// `GET /api.xro/2.0/Contacts?where=EmailAddress=="…"` (`getContacts`): the one filter the
/// connector uses, one of the spec's optimised ones. As Xero documents them, the match ignores
/// case and archived contacts are left out unless `includeArchived=true`.
fn xero_find_contacts(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Xero;
    if inner.specs().xero.at("/paths/~1Contacts/get").is_null() {
        inner.problem(c, "getContacts is not in the spec".to_owned());
        return vendor_error(c, 404, "not found");
    }
    if req.header("xero-tenant-id") != Some(XERO_TENANT) {
        inner.problem(
            c,
            "a look-up without the organisation's xero-tenant-id".to_owned(),
        );
        return vendor_error(c, 403, "AuthenticationUnsuccessful");
    }
    let filter = req.query.get("where").cloned().unwrap_or_default();
    let Some(email) = filter
        .strip_prefix("EmailAddress==\"")
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        inner.problem(c, format!("unexpected where filter {filter:?}"));
        return vendor_error(c, 400, "unsupported filter");
    };
    let archived = req.query.get("includeArchived").map(String::as_str) == Some("true");
    let found: Vec<Value> = inner
        .table(c, "Contacts")
        .values()
        .filter(|r| {
            r["EmailAddress"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
                && (archived || r["ContactStatus"] == "ACTIVE")
        })
        .cloned()
        .collect();
    Reply::new(
        200,
        json!({"Id": "0d4a5f3e-5b0c-4e1a-9d58-4bd1d2d4a001", "Status": "OK", "ProviderName": "Switchyard tests",
               "DateTimeUTC": "/Date(1767607200000)/", "Contacts": found}),
    )
}

fn xero_contact(inner: &mut Inner, item: &Value) -> Result<Value, String> {
    let c = Connector::Xero;
    let next = inner.id();
    let table = inner.table(c, "Contacts");
    let id = item["ContactID"].as_str().map(str::to_owned);
    if let Some(name) = item["Name"].as_str()
        && table.values().any(|r| {
            r["Name"] == json!(name)
                && Some(r["ContactID"].as_str().unwrap_or_default()) != id.as_deref()
        })
    {
        return Err(format!(
            "The contact name {name} is already assigned to another contact. The contact name must be unique across all active contacts."
        ));
    }
    let record = match id {
        Some(id) => {
            let record = table
                .get_mut(&id)
                .ok_or_else(|| format!("Contact {id} does not exist"))?;
            merge(record, item);
            record.clone()
        }
        None => {
            if item["Name"].as_str().is_none_or(str::is_empty) {
                return Err("The contact name must be specified.".to_owned());
            }
            let id = uuid(next);
            let mut record = item.clone();
            record["ContactID"] = json!(id);
            record["ContactStatus"] = json!("ACTIVE");
            table.insert(id, record.clone());
            record
        }
    };
    Ok(record)
}

/// A payment against a sales invoice, as `createPayments` documents it: the invoice must exist
/// and be `AUTHORISED`, the account is given by its code, and the amount may not exceed what the
/// invoice still owes; a fully paid invoice becomes `PAID`.
fn xero_payment(inner: &mut Inner, item: &Value) -> Result<Value, String> {
    let c = Connector::Xero;
    let invoice_id = item["Invoice"]["InvoiceID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if item["Account"]["Code"].as_str().is_none_or(str::is_empty) {
        return Err("Account code must be specified for a payment".to_owned());
    }
    if item["Date"].as_str().is_none_or(str::is_empty) {
        return Err("Payment date must be specified".to_owned());
    }
    let amount = item["Amount"]
        .as_f64()
        .ok_or("Payment amount must be specified")?;
    let next = inner.id();
    let invoice = inner
        .table(c, "Invoices")
        .get_mut(&invoice_id)
        .ok_or_else(|| format!("Invoice {invoice_id} does not exist"))?;
    if invoice["Status"] != "AUTHORISED" {
        return Err(format!(
            "Payments can only be made against Authorised documents: {}",
            invoice["Status"]
        ));
    }
    let due = invoice["AmountDue"]
        .as_f64()
        .or_else(|| invoice["Total"].as_f64())
        .unwrap_or(0.0);
    if amount > due + 0.005 {
        return Err(format!(
            "Payment amount {amount} exceeds the amount due {due}"
        ));
    }
    let left = ((due - amount) * 100.0).round() / 100.0;
    invoice["AmountDue"] = json!(left);
    if left == 0.0 {
        invoice["Status"] = json!("PAID");
    }
    let mut record = item.clone();
    record["PaymentID"] = json!(uuid(next + 9000));
    record["Status"] = json!("AUTHORISED");
    inner
        .table(c, "Payments")
        .insert(uuid(next + 9000), record.clone());
    Ok(record)
}

fn xero_invoice(inner: &mut Inner, item: &Value) -> Result<Value, String> {
    let c = Connector::Xero;
    if item["Type"] != "ACCREC" {
        return Err("Type must be ACCREC for a sales invoice".to_owned());
    }
    let lines = item["LineItems"].as_array().cloned().unwrap_or_default();
    if lines.is_empty() {
        return Err("At least one line item is required".to_owned());
    }
    if item["Status"] == "AUTHORISED" && lines.iter().any(|l| l["AccountCode"].as_str().is_none()) {
        return Err("Account code must be specified for an AUTHORISED invoice".to_owned());
    }
    // The contact: by ContactID, else by Name (the existing one, or a new one).
    let contact = &item["Contact"];
    let contact = match contact["ContactID"].as_str() {
        Some(id) => inner
            .table(c, "Contacts")
            .get(id)
            .cloned()
            .ok_or_else(|| format!("Contact {id} does not exist"))?,
        None => {
            let name = contact["Name"]
                .as_str()
                .ok_or("The contact must be specified")?;
            let existing = inner
                .table(c, "Contacts")
                .values()
                .find(|r| r["Name"] == json!(name))
                .cloned();
            match existing {
                Some(record) => record,
                None => xero_contact(inner, &json!({ "Name": name }))?,
            }
        }
    };
    let total: f64 = lines
        .iter()
        .map(|l| l["Quantity"].as_f64().unwrap_or(1.0) * l["UnitAmount"].as_f64().unwrap_or(0.0))
        .sum();
    let next = inner.id();
    let table = inner.table(c, "Invoices");
    let existing = item["InvoiceID"].as_str().map(str::to_owned).or_else(|| {
        let number = item["InvoiceNumber"].as_str()?;
        table
            .values()
            .find(|r| r["InvoiceNumber"] == json!(number))
            .and_then(|r| r["InvoiceID"].as_str().map(str::to_owned))
    });
    let summary = json!({"ContactID": contact["ContactID"], "Name": contact["Name"]});
    let record = match existing {
        Some(id) => {
            let record = table
                .get_mut(&id)
                .ok_or_else(|| format!("Invoice {id} does not exist"))?;
            if record["Status"] == "PAID" {
                return Err("Invoice not of valid status for modification".to_owned());
            }
            merge(record, item);
            record["Contact"] = summary;
            record["Total"] = json!(total);
            record.clone()
        }
        None => {
            let id = uuid(next);
            let mut record = item.clone();
            record["InvoiceID"] = json!(id);
            record["Contact"] = summary;
            record["Total"] = json!(total);
            table.insert(id, record.clone());
            record
        }
    };
    Ok(record)
}

fn merge(target: &mut Value, changes: &Value) {
    if let (Some(target), Some(changes)) = (target.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            target.insert(key.clone(), value.clone());
        }
    }
}
