//! HubSpot CRM v3 and Salesforce REST as their documentation describes them (neither publishes
//! an openly licensed spec): HubSpot's batch upsert by a unique property, deal create and patch;
//! Salesforce's upsert by external id (201 created, 200 updated) with its required fields.

use serde_json::{Map, Value, json};

use super::{Connector, Incoming, Inner, Reply, vendor_error};

const HUBSPOT_CONTACT_PROPERTIES: [&str; 7] = [
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "jobtitle",
    "lifecyclestage",
];
/// `tax_id`: the test portal's custom company property (`tax_id_property`).
const HUBSPOT_COMPANY_PROPERTIES: [&str; 5] = ["name", "domain", "country", "industry", "tax_id"];
/// `switchyard_id` is the test portal's unique-value deal property (`deal_id_property`).
const HUBSPOT_DEAL_PROPERTIES: [&str; 6] = [
    "dealname",
    "dealstage",
    "amount",
    "closedate",
    "pipeline",
    "switchyard_id",
];
/// The stages of HubSpot's default sales pipeline.
const HUBSPOT_STAGES: [&str; 7] = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];
const NOW: &str = "2026-01-05T10:00:00.000Z";

/// `POST /crm/v3/objects/{contacts,companies}/batch/upsert`, `POST /crm/v3/objects/deals`,
/// `PATCH /crm/v3/objects/deals/{dealId}`.
pub(super) fn hubspot(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Hubspot;
    if req.header("content-type") != Some("application/json") {
        inner.problem(
            c,
            format!("{} without content-type application/json", req.path),
        );
    }
    let segments: Vec<&str> = req
        .path
        .trim_start_matches("/crm/v3/objects/")
        .split('/')
        .collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("POST", [objects @ ("contacts" | "companies"), "batch", "upsert"]) => {
            let (id_property, allowed): (&str, &[&str]) = if *objects == "contacts" {
                ("email", &HUBSPOT_CONTACT_PROPERTIES)
            } else {
                ("domain", &HUBSPOT_COMPANY_PROPERTIES)
            };
            let Some(inputs) = req.body["inputs"].as_array().filter(|i| !i.is_empty()) else {
                inner.problem(c, "batch upsert without inputs".to_owned());
                return vendor_error(c, 400, "inputs: must not be empty");
            };
            let mut results = Vec::new();
            for input in inputs {
                let problems = check_properties(&input["properties"], allowed);
                let key = input["id"].as_str().unwrap_or_default().to_lowercase();
                let mut problems = problems;
                if input["idProperty"] != json!(id_property) {
                    problems.push(format!("idProperty must be {id_property}"));
                }
                if key.is_empty() {
                    problems.push("id (the idProperty value) missing".to_owned());
                }
                if !problems.is_empty() {
                    for p in &problems {
                        inner.problem(c, format!("{objects} upsert: {p}"));
                    }
                    return vendor_error(c, 400, &problems.join("; "));
                }
                let next = inner.id();
                let table = inner.table(c, objects);
                let new = !table.contains_key(&key);
                let record = table
                    .entry(key.clone())
                    .or_insert_with(|| json!({"id": next.to_string(), "properties": {}}));
                merge(&mut record["properties"], &input["properties"]);
                results.push(json!({
                    "id": record["id"], "properties": record["properties"], "createdAt": NOW,
                    "updatedAt": NOW, "archived": false, "new": new,
                }));
            }
            Reply::new(
                200,
                json!({"status": "COMPLETE", "results": results, "startedAt": NOW, "completedAt": NOW}),
            )
        }
        // Deals upserted by the portal's unique `switchyard_id` property.
        ("POST", ["deals", "batch", "upsert"]) => {
            let Some([input]) = req.body["inputs"].as_array().map(Vec::as_slice) else {
                inner.problem(c, "deal upsert: one input expected".to_owned());
                return vendor_error(c, 400, "inputs: one input expected");
            };
            let key = input["id"].as_str().unwrap_or_default().to_owned();
            let mut problems = check_properties(&input["properties"], &HUBSPOT_DEAL_PROPERTIES);
            problems.extend(check_deal(&input["properties"]));
            if input["idProperty"] != "switchyard_id" {
                problems.push("idProperty must be a unique property: switchyard_id".to_owned());
            }
            if key.is_empty() || input["properties"]["switchyard_id"] != json!(key) {
                problems.push("id must be the switchyard_id value".to_owned());
            }
            if !problems.is_empty() {
                for p in &problems {
                    inner.problem(c, format!("deal upsert: {p}"));
                }
                return vendor_error(c, 400, &problems.join("; "));
            }
            let next = (inner.id() + 10_000).to_string();
            let table = inner.table(c, "deals");
            let existing = table
                .iter()
                .find(|(_, r)| r["properties"]["switchyard_id"] == json!(key))
                .map(|(id, _)| id.clone());
            let new = existing.is_none();
            let id = existing.unwrap_or(next);
            let record = table
                .entry(id.clone())
                .or_insert_with(|| json!({"id": id, "properties": {}, "createdAt": NOW, "updatedAt": NOW, "archived": false}));
            merge(&mut record["properties"], &input["properties"]);
            let mut result = record.clone();
            result["new"] = json!(new);
            Reply::new(
                200,
                json!({"status": "COMPLETE", "results": [result], "startedAt": NOW, "completedAt": NOW}),
            )
        }
        ("POST", ["deals"]) => {
            let mut problems = check_properties(&req.body["properties"], &HUBSPOT_DEAL_PROPERTIES);
            problems.extend(check_deal(&req.body["properties"]));
            if req.body["properties"]["dealname"].as_str().is_none() {
                problems.push("dealname is required to create a deal".to_owned());
            }
            if !problems.is_empty() {
                for p in &problems {
                    inner.problem(c, format!("deal create: {p}"));
                }
                return vendor_error(c, 400, &problems.join("; "));
            }
            let id = (inner.id() + 10_000).to_string();
            let record = json!({"id": id, "properties": req.body["properties"], "createdAt": NOW, "updatedAt": NOW, "archived": false});
            inner.table(c, "deals").insert(id, record.clone());
            Reply::new(201, record)
        }
        ("PATCH", ["deals", id]) => {
            let mut problems = check_properties(&req.body["properties"], &HUBSPOT_DEAL_PROPERTIES);
            problems.extend(check_deal(&req.body["properties"]));
            if !problems.is_empty() {
                for p in &problems {
                    inner.problem(c, format!("deal update: {p}"));
                }
                return vendor_error(c, 400, &problems.join("; "));
            }
            let Some(record) = inner.table(c, "deals").get_mut(*id) else {
                return vendor_error(c, 404, &format!("Object not found. objectId: {id}"));
            };
            merge(&mut record["properties"], &req.body["properties"]);
            Reply::new(200, record.clone())
        }
        _ => {
            inner.problem(c, format!("unexpected {} {}", req.method, req.path));
            vendor_error(c, 404, "unknown path")
        }
    }
}

/// Property values are text, and only properties HubSpot has (for this test portal).
fn check_properties(properties: &Value, allowed: &[&str]) -> Vec<String> {
    let Some(properties) = properties.as_object() else {
        return vec!["properties must be an object".to_owned()];
    };
    let mut problems = Vec::new();
    for (name, value) in properties {
        if !allowed.contains(&name.as_str()) {
            problems.push(format!("Property \"{name}\" does not exist"));
        }
        if !value.is_string() {
            problems.push(format!("{name}: property values are text, got {value}"));
        }
    }
    problems
}

fn check_deal(properties: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(stage) = properties["dealstage"].as_str()
        && !HUBSPOT_STAGES.contains(&stage)
    {
        problems.push(format!("{stage} is not a stage of the default pipeline"));
    }
    if let Some(amount) = properties["amount"].as_str()
        && amount.parse::<f64>().is_err()
    {
        problems.push(format!("amount {amount:?} is not a number"));
    }
    problems
}

fn merge(target: &mut Value, changes: &Value) {
    if let (Some(target), Some(changes)) = (target.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// Fields each sObject takes from the connector, and those a new record must have.
fn salesforce_fields(sobject: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    match sobject {
        "Contact" => Some((
            &[
                "FirstName",
                "LastName",
                "Email",
                "Phone",
                "Title",
                "MailingCountry",
            ],
            &["LastName"],
        )),
        "Account" => Some((
            &["Name", "Website", "Industry", "BillingCountry"],
            &["Name"],
        )),
        "Opportunity" => Some((
            &["Name", "StageName", "Amount", "CloseDate"],
            &["Name", "StageName", "CloseDate"],
        )),
        _ => None,
    }
}

/// `PATCH /services/data/v61.0/sobjects/{sObject}/{externalIdField}/{value}` (upsert) and
/// `PATCH /services/data/v61.0/sobjects/{sObject}/{id}` (update by record id).
pub(super) fn salesforce(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Salesforce;
    let segments: Vec<&str> = req
        .path
        .trim_start_matches("/services/data/")
        .split('/')
        .collect();
    if let ["v61.0", "sobjects", sobject, id] = segments.as_slice() {
        return salesforce_update(inner, req, sobject, id);
    }
    let ["v61.0", "sobjects", sobject, field, value] = segments.as_slice() else {
        inner.problem(c, format!("unexpected path {}", req.path));
        return vendor_error(c, 404, "The requested resource does not exist");
    };
    if req.method != "PATCH" {
        inner.problem(
            c,
            format!("upsert by external id is a PATCH, got {}", req.method),
        );
    }
    if req.header("content-type") != Some("application/json") {
        inner.problem(c, "body without content-type application/json".to_owned());
    }
    let Some((allowed, required)) = salesforce_fields(sobject) else {
        inner.problem(c, format!("unexpected sObject {sobject}"));
        return vendor_error(
            c,
            404,
            &format!("The requested resource does not exist: {sobject}"),
        );
    };
    if !field.ends_with("__c") {
        inner.problem(c, format!("{field} is not a custom external-id field"));
    }
    let Some(fields) = req.body.as_object() else {
        inner.problem(c, "body is not a JSON object".to_owned());
        return vendor_error(c, 400, "JSON body expected");
    };
    let mut problems = Vec::new();
    for name in fields.keys() {
        if name == field || name == "Id" {
            problems.push(format!(
                "{name} must not be in the body of an upsert by {field}"
            ));
        } else if !allowed.contains(&name.as_str()) {
            problems.push(format!(
                "No such column '{name}' on sobject of type {sobject}"
            ));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            inner.problem(c, p.clone());
        }
        return vendor_error(c, 400, &problems.join("; "));
    }
    let next = inner.id();
    let table = inner.table(c, sobject);
    match table.get_mut(*value) {
        Some(record) => {
            merge(record, &Value::Object(fields.clone()));
            let id = record["Id"].clone();
            Reply::new(
                200,
                json!({"id": id, "success": true, "errors": [], "created": false}),
            )
        }
        None => {
            let missing: Vec<&str> = required
                .iter()
                .copied()
                .filter(|r| !fields.contains_key(*r))
                .collect();
            if !missing.is_empty() {
                // A real refusal, not a connector bug: the record lacks what Salesforce needs.
                return Reply::new(
                    400,
                    json!([{ "message": format!("Required fields are missing: [{}]", missing.join(", ")),
                             "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing }]),
                );
            }
            let id = format!("{}{next:012}", &sobject_prefix(sobject));
            let mut record: Map<String, Value> = fields.clone();
            record.insert("Id".to_owned(), json!(id));
            record.insert((*field).to_owned(), json!(value));
            table.insert((*value).to_owned(), Value::Object(record));
            Reply::new(
                201,
                json!({"id": id, "success": true, "errors": [], "created": true}),
            )
        }
    }
}

fn sobject_prefix(sobject: &str) -> &'static str {
    match sobject {
        "Contact" => "003",
        "Account" => "001",
        _ => "006",
    }
}

/// `PATCH /services/data/v61.0/sobjects/{sObject}/{id}`: updates the record with that id and
/// answers 204 with no body, as the REST API documents; an unknown id is 404 `NOT_FOUND`. The
/// body may set the external-id field (the records are kept by its value, so they move).
fn salesforce_update(inner: &mut Inner, req: &Incoming, sobject: &str, id: &str) -> Reply {
    let c = Connector::Salesforce;
    if req.method != "PATCH" {
        inner.problem(c, format!("an update by id is a PATCH, got {}", req.method));
    }
    let Some((allowed, _)) = salesforce_fields(sobject) else {
        inner.problem(c, format!("unexpected sObject {sobject}"));
        return vendor_error(c, 404, "The requested resource does not exist");
    };
    let Some(fields) = req.body.as_object() else {
        inner.problem(c, "body is not a JSON object".to_owned());
        return vendor_error(c, 400, "JSON body expected");
    };
    for name in fields.keys() {
        if !allowed.contains(&name.as_str()) && !name.ends_with("__c") {
            inner.problem(
                c,
                format!("No such column '{name}' on sobject of type {sobject}"),
            );
        }
    }
    let table = inner.table(c, sobject);
    let Some(key) = table
        .iter()
        .find(|(_, r)| r["Id"] == id)
        .map(|(key, _)| key.clone())
    else {
        return Reply::new(
            404,
            json!([{ "message": "The requested resource does not exist", "errorCode": "NOT_FOUND" }]),
        );
    };
    let mut record = table.remove(&key).unwrap_or_default();
    merge(&mut record, &Value::Object(fields.clone()));
    let new_key = fields
        .iter()
        .find(|(name, _)| name.ends_with("__c"))
        .and_then(|(_, v)| v.as_str())
        .map_or(key, str::to_owned);
    table.insert(new_key, record);
    Reply::new(204, Value::Null)
}
