//! The built-in mappings against the vendors' published samples and canonical payloads.

use serde_json::{Value, json};
use switchyard_proto::contracts;

use super::{Context, Registry};

fn registry() -> Registry {
    let contracts = contracts::built_in().expect("contracts");
    Registry::load(None, &contracts).expect("built-in mappings load")
}

fn ctx() -> Context {
    Context {
        default_region: phonenumber::country::Id::US,
    }
}

fn vendor(path: &str) -> Value {
    let file = switchyard_chassis_free_vendor_path(path);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}")))
        .expect("json")
}

/// `shared/vendor` beside the checkout, or `SWITCHYARD_VENDOR_DIR`.
fn switchyard_chassis_free_vendor_path(path: &str) -> String {
    let dir = std::env::var("SWITCHYARD_VENDOR_DIR")
        .unwrap_or_else(|_| format!("{}/../../../shared/vendor", env!("CARGO_MANIFEST_DIR")));
    format!("{dir}/samples/{path}")
}

#[test]
fn the_canonical_json_of_standard_webhooks_senders_maps_field_by_field() {
    let payload = json!({"type": "contact.created", "timestamp": "2026-11-27T10:00:00Z",
        "data": {"id": 42, "email": "  Jane.Doe@Example.COM ", "name": "Jane van Doe", "phone": "(201) 555-0123", "marketing_consent": true, "country": "gb"}});
    let mapping = registry()
        .find("standard-webhooks", "contact.created")
        .cloned()
        .expect("mapping");
    let mapped = mapping.apply(&payload, &ctx()).expect("mapped");
    assert_eq!(mapped.record_id, "42");
    assert_eq!(mapped.occurred_at.as_deref(), Some("2026-11-27T10:00:00Z"));
    assert_eq!(
        Value::Object(mapped.record),
        json!({"email": "jane.doe@example.com", "first_name": "Jane van", "last_name": "Doe", "phone": "+12015550123", "marketing_consent": true, "country": "GB"})
    );
}

#[test]
fn stripe_customers_map_and_the_fixture_without_email_is_caught_by_the_contract() {
    let mut event = vendor("stripe/customer.created.derived-from-fixtures.json");
    let mapping = registry()
        .find("stripe", "customer.created")
        .cloned()
        .expect("mapping");
    let contract = contracts::built_in()
        .expect("contracts")
        .into_iter()
        .find(|c| c.id() == "contact/v1")
        .expect("contact");
    let mut mapped = mapping.apply(&event, &ctx()).expect("mapped");
    assert_eq!(mapped.record_id, "cus_QXg1o8vcGmoR32");
    assert_eq!(mapped.occurred_at.as_deref(), Some("2009-02-13T23:31:30Z"));
    let problems = contract
        .apply(&mut mapped.record)
        .expect_err("the fixture has no email");
    assert_eq!(problems, vec!["contact.email: required".to_owned()]);

    event["data"]["object"]["email"] = json!("Ada@Example.org");
    event["data"]["object"]["name"] = json!("Ada Lovelace");
    let mut mapped = mapping.apply(&event, &ctx()).expect("mapped");
    contract.apply(&mut mapped.record).expect("valid");
    assert_eq!(mapped.record["email"], "ada@example.org");
    assert_eq!(mapped.record["first_name"], "Ada");
    assert_eq!(mapped.record["lifecycle_stage"], "customer");
}

#[test]
fn mailchimp_forms_map_with_consent_only_for_subscriptions() {
    let subscribe = json!({"type": "subscribe", "fired_at": "2009-03-26 21:35:57",
        "data": {"id": "8a25ff1d98", "email": "api@mailchimp.com", "merges": {"EMAIL": "api@mailchimp.com", "FNAME": "MailChimp", "LNAME": "API"}}});
    let mapping = registry()
        .find("mailchimp", "subscribe")
        .cloned()
        .expect("mapping");
    let mapped = mapping.apply(&subscribe, &ctx()).expect("mapped");
    assert_eq!(mapped.occurred_at.as_deref(), Some("2009-03-26T21:35:57Z"));
    assert_eq!(mapped.record["marketing_consent"], true);
    assert_eq!(mapped.record["first_name"], "MailChimp");
    let upemail = json!({"type": "upemail", "fired_at": "2009-03-26 22:15:09",
        "data": {"new_id": "51aa6d5d12", "new_email": "api+new@mailchimp.com", "old_email": "api+old@mailchimp.com"}});
    let mapped = mapping.apply(&upemail, &ctx()).expect("mapped");
    assert_eq!(
        (mapped.record_id.as_str(), mapped.record["email"].as_str()),
        ("51aa6d5d12", Some("api+new@mailchimp.com"))
    );
    assert!(
        !mapped.record.contains_key("marketing_consent"),
        "an address change says nothing about consent"
    );
}

#[test]
fn unknown_events_have_no_mapping_and_broken_files_are_refused() {
    let registry = registry();
    assert!(registry.find("stripe", "invoice.paid").is_none());
    assert!(
        registry.find("hubspot", "contact.creation").is_none(),
        "thin events need hydration first"
    );
    let contracts = contracts::built_in().expect("contracts");
    let dir = std::env::temp_dir().join(format!("sy-mappings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("bad.yaml"), "name: x\nsource_kind: stripe\nevent_types: [a]\ncontract: contact/v1\nrecord_id: { paths: [id] }\nfields:\n  fax: { paths: [fax] }\n").expect("write");
    let err = Registry::load(Some(&dir), &contracts).expect_err("unknown field");
    assert!(
        err.to_string()
            .contains("fields.fax: not a field of contact/v1"),
        "{err}"
    );
    std::fs::write(dir.join("bad.yaml"), "name: stripe-customer\nsource_kind: stripe\nevent_types: [customer.created]\ncontract: contact/v1\nrecord_id: { paths: [data.object.id] }\nfields:\n  email: { paths: [data.object.email] }\n").expect("write");
    let overridden = Registry::load(Some(&dir), &contracts).expect("override");
    assert_eq!(
        overridden
            .find("stripe", "customer.created")
            .map(|m| m.fields.len()),
        Some(1),
        "the user's file replaced the built-in one"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
