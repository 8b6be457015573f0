//! Which API read a thin event points at, built from the ids in the event and never from a URL in
//! it (Xero's `resourceUrl` is not followed: a forged event could aim it anywhere).

use serde_json::Value;
use switchyard_chassis::config::SourceKind;

use super::HydrateError;

/// The properties read per HubSpot object: what the built-in mappings use, plus the modification
/// date the survivorship rules need.
const HUBSPOT_CONTACT: &str = "email,firstname,lastname,phone,company,jobtitle,lifecyclestage,hs_email_optout,hs_lastmodifieddate";
const HUBSPOT_COMPANY: &str = "name,domain,industry,country,tax_id,vat_number,hs_lastmodifieddate";
const HUBSPOT_DEAL: &str =
    "dealname,dealstage,amount,deal_currency_code,closedate,hs_lastmodifieddate";

/// QuickBooks' minor version: pins the response shape.
const QUICKBOOKS_MINOR_VERSION: &str = "75";

/// Where the record sits in the vendor's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwrap {
    /// The answer is the record (HubSpot).
    Whole,
    /// `{"Customer": {...}, "time": ...}` (QuickBooks).
    Key(&'static str),
    /// `{"Contacts": [{...}]}` (Xero).
    FirstOf(&'static str),
}

/// One API read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `hubspot contact 1246965`, for reasons and logs (ids only, never personal data).
    pub describe: String,
    /// Path segments under the base URL, each percent-encoded on its own.
    pub segments: Vec<String>,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub unwrap: Unwrap,
}

impl Target {
    /// The read a thin event of `kind` points at.
    pub fn of(kind: SourceKind, event_type: &str, event: &Value) -> Result<Self, HydrateError> {
        match kind {
            SourceKind::Hubspot => hubspot(event_type, event),
            SourceKind::Quickbooks => quickbooks(event),
            SourceKind::Xero => xero(event),
            other => Err(HydrateError::Permanent(format!(
                "hydrate {}: not a source with thin events",
                other.as_str()
            ))),
        }
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An id that is safe as one path segment (encoding takes care of the rest).
fn id(value: Option<String>, what: &str, describe: &str) -> Result<String, HydrateError> {
    match value {
        Some(id) if id != "." && id != ".." && id.len() <= 200 => Ok(id),
        _ => Err(HydrateError::Permanent(format!(
            "hydrate {describe}: the event has no usable {what}"
        ))),
    }
}

/// `GET /crm/v3/objects/{contacts|companies|deals}/{objectId}?properties=…`; the object type is
/// the event type's first part (`contact.propertychange`).
fn hubspot(event_type: &str, event: &Value) -> Result<Target, HydrateError> {
    let object = event_type.split('.').next().unwrap_or_default();
    let object_id = text(event.get("objectId"));
    let describe = format!(
        "hubspot {object} {}",
        object_id.as_deref().unwrap_or("(no objectId)")
    );
    let (collection, properties) = match object {
        "contact" => ("contacts", HUBSPOT_CONTACT),
        "company" => ("companies", HUBSPOT_COMPANY),
        "deal" => ("deals", HUBSPOT_DEAL),
        _ => {
            return Err(HydrateError::Permanent(format!(
                "hydrate {describe}: HubSpot {object} records are not read"
            )));
        }
    };
    let object_id = id(object_id, "objectId", &describe)?;
    Ok(Target {
        segments: ["crm", "v3", "objects", collection]
            .map(str::to_owned)
            .into_iter()
            .chain([object_id])
            .collect(),
        query: vec![("properties", properties.to_owned())],
        headers: vec![("accept", "application/json".to_owned())],
        unwrap: Unwrap::Whole,
        describe,
    })
}

/// `GET /v3/company/{realmId}/{entity}/{id}?minorversion=75`, from the classic form
/// (`{"realmId", "entity": {"name", "id"}}`) or a CloudEvent (`intuitaccountid`,
/// `intuitentityid`, `type` = `qbo.<entity>.<operation>.v1`).
fn quickbooks(event: &Value) -> Result<Target, HydrateError> {
    let (realm, entity, entity_id) = match event.get("entity") {
        Some(entity) => (
            text(event.get("realmId")),
            text(entity.get("name")).unwrap_or_default(),
            text(entity.get("id")),
        ),
        None => (
            text(event.get("intuitaccountid")),
            text(event.get("type"))
                .and_then(|t| t.split('.').nth(1).map(str::to_owned))
                .unwrap_or_default(),
            text(event.get("intuitentityid")),
        ),
    };
    let entity = entity.to_ascii_lowercase();
    let describe = format!(
        "quickbooks {entity} {}",
        entity_id.as_deref().unwrap_or("(no id)")
    );
    let key = match entity.as_str() {
        "customer" => "Customer",
        "item" => "Item",
        "invoice" => "Invoice",
        "salesreceipt" => "SalesReceipt",
        _ => {
            return Err(HydrateError::Permanent(format!(
                "hydrate {describe}: QuickBooks {entity} records are not read"
            )));
        }
    };
    let realm = id(realm, "realm id", &describe)?;
    let entity_id = id(entity_id, "entity id", &describe)?;
    Ok(Target {
        segments: vec![
            "v3".to_owned(),
            "company".to_owned(),
            realm,
            entity,
            entity_id,
        ],
        query: vec![("minorversion", QUICKBOOKS_MINOR_VERSION.to_owned())],
        headers: vec![("accept", "application/json".to_owned())],
        unwrap: Unwrap::Key(key),
        describe,
    })
}

/// `GET /api.xro/2.0/{Contacts|Invoices|CreditNotes}/{resourceId}` with `xero-tenant-id`.
fn xero(event: &Value) -> Result<Target, HydrateError> {
    let category = text(event.get("eventCategory"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let resource_id = text(event.get("resourceId"));
    let describe = format!(
        "xero {category} {}",
        resource_id.as_deref().unwrap_or("(no resourceId)")
    );
    let collection = match category.as_str() {
        "contact" => "Contacts",
        "invoice" => "Invoices",
        "creditnote" => "CreditNotes",
        _ => {
            return Err(HydrateError::Permanent(format!(
                "hydrate {describe}: Xero {category} records are not read"
            )));
        }
    };
    let resource_id = id(resource_id, "resourceId", &describe)?;
    let tenant = id(text(event.get("tenantId")), "tenantId", &describe)?;
    Ok(Target {
        segments: vec![
            "api.xro".to_owned(),
            "2.0".to_owned(),
            collection.to_owned(),
            resource_id,
        ],
        query: Vec::new(),
        headers: vec![
            ("accept", "application/json".to_owned()),
            ("xero-tenant-id", tenant),
        ],
        unwrap: Unwrap::FirstOf(collection),
        describe,
    })
}

/// The record inside the vendor's answer.
pub fn unwrap(target: &Target, body: Value) -> Result<Value, HydrateError> {
    let record = match target.unwrap {
        Unwrap::Whole => Some(body),
        Unwrap::Key(key) => body.get(key).cloned(),
        Unwrap::FirstOf(key) => body.get(key).and_then(|l| l.get(0)).cloned(),
    };
    record.filter(Value::is_object).ok_or_else(|| {
        HydrateError::Permanent(format!(
            "hydrate {}: the vendor API answered without the record",
            target.describe
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_vendor_read_is_built_from_the_ids_in_the_event() {
        let hubspot = Target::of(
            SourceKind::Hubspot,
            "contact.propertychange",
            &json!({"objectId": 1246965, "eventType": "contact.propertyChange"}),
        )
        .expect("hubspot");
        assert_eq!(
            hubspot.segments,
            ["crm", "v3", "objects", "contacts", "1246965"]
        );
        assert_eq!(hubspot.describe, "hubspot contact 1246965");

        let classic = json!({"realmId": "1185883450", "entity": {"name": "Customer", "id": "1", "operation": "Create"}});
        let books = Target::of(SourceKind::Quickbooks, "customer.create", &classic).expect("qbo");
        assert_eq!(
            books.segments,
            ["v3", "company", "1185883450", "customer", "1"]
        );
        assert_eq!(books.unwrap, Unwrap::Key("Customer"));
        let cloud = json!({"type": "qbo.customer.merged.v1", "intuitaccountid": "9341", "intuitentityid": "123"});
        let merged =
            Target::of(SourceKind::Quickbooks, "qbo.customer.merged.v1", &cloud).expect("qbo");
        assert_eq!(
            merged.segments,
            ["v3", "company", "9341", "customer", "123"]
        );

        // The resource URL points elsewhere; the read goes to the configured API all the same.
        let xero = json!({"resourceUrl": "https://attacker.example/steal", "resourceId": "717f2bfc",
            "eventCategory": "CONTACT", "eventType": "UPDATE", "tenantId": "c2cc9b6e"});
        let xero = Target::of(SourceKind::Xero, "contact.update", &xero).expect("xero");
        assert_eq!(xero.segments, ["api.xro", "2.0", "Contacts", "717f2bfc"]);
        assert!(
            xero.headers
                .contains(&("xero-tenant-id", "c2cc9b6e".to_owned()))
        );
    }

    #[test]
    fn events_without_usable_ids_are_refused_for_good() {
        let err = Target::of(
            SourceKind::Xero,
            "contact.update",
            &json!({"resourceId": "..", "eventCategory": "CONTACT", "tenantId": "t"}),
        )
        .expect_err("dot-dot");
        assert!(
            matches!(&err, HydrateError::Permanent(r) if r.contains("no usable resourceId")),
            "{err:?}"
        );
        let err = Target::of(
            SourceKind::Quickbooks,
            "qbo.class.created.v1",
            &json!({"type": "qbo.class.created.v1", "intuitaccountid": "1", "intuitentityid": "2"}),
        )
        .expect_err("classes are not read");
        assert!(matches!(err, HydrateError::Permanent(_)));
    }

    #[test]
    fn the_record_is_taken_out_of_each_answer() {
        let target = |unwrap| Target {
            describe: "x".to_owned(),
            segments: Vec::new(),
            query: Vec::new(),
            headers: Vec::new(),
            unwrap,
        };
        assert_eq!(
            unwrap(
                &target(Unwrap::Key("Customer")),
                json!({"Customer": {"Id": "1"}, "time": "t"})
            ),
            Ok(json!({"Id": "1"}))
        );
        assert_eq!(
            unwrap(
                &target(Unwrap::FirstOf("Contacts")),
                json!({"Contacts": [{"ContactID": "c"}]})
            ),
            Ok(json!({"ContactID": "c"}))
        );
        assert!(
            unwrap(
                &target(Unwrap::FirstOf("Contacts")),
                json!({"Contacts": []})
            )
            .is_err()
        );
    }
}
