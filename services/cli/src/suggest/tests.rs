//! Tests for `mappings suggest`: word splitting, name and value evidence, the record's envelope,
//! YAML scalars, and whole proposals that load and dry-run against the built-in contracts.

use serde_json::{Value, json};
use switchyard_proto::contracts::{self, Contract};

use super::candidates::is_decimal;
use super::checker::Checker;
use super::evidence::{Kind, evidence, is_date, kind_of, phone_digits, unix_transform};
use super::names::{Split, name_match, tokens};
use super::output::{render, scalar};
use super::proposal::{Options, suggest};
use super::sampling::{flatten, record_root};
use super::{THRESHOLD, dry_run, validate};

fn contract(object: &str) -> Contract {
    contracts::built_in()
        .expect("built-in contracts")
        .into_iter()
        .find(|c| c.object == object)
        .expect("contract")
}

fn options() -> Options {
    Options {
        name: "test-contact".to_owned(),
        source_kind: "standard-webhooks".to_owned(),
        event_type: None,
        sample_label: "sample.json".to_owned(),
    }
}

fn names(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

#[test]
fn names_split_into_words_in_every_case() {
    assert_eq!(tokens("EmailAddress"), ["email", "address"]);
    assert_eq!(tokens("firstName"), ["first", "name"]);
    assert_eq!(tokens("first_name"), ["first", "name"]);
    assert_eq!(tokens("FNAME"), ["fname"]);
    assert_eq!(tokens("UpdatedDateUTC"), ["updated", "date", "utc"]);
    assert_eq!(tokens("HTTPServer"), ["http", "server"]);
    assert_eq!(tokens("phone-number2"), ["phone", "number", "2"]);
    assert_eq!(tokens("data[merges][FNAME]"), ["data", "merges", "fname"]);
    assert!(tokens("--").is_empty());
}

#[test]
fn flattening_gives_mapping_paths_with_indices_and_key_names() {
    let nodes = flatten(&json!({
        "items": [{ "sku": "A-1" }],
        "data[merges][FNAME]": "Jane",
        "a.b": "unreachable",
    }));
    let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
    assert!(paths.contains(&"items.0.sku"), "{paths:?}");
    assert!(paths.contains(&"items"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("a.b")),
        "a key with a dot cannot be a path: {paths:?}"
    );
    let fname = nodes
        .iter()
        .find(|n| n.path == "data[merges][FNAME]")
        .expect("bracketed key");
    assert_eq!(fname.names, ["data", "merges", "FNAME"]);
    let sku = nodes.iter().find(|n| n.path == "items.0.sku").expect("sku");
    assert_eq!(sku.names, ["items", "sku"], "indices are not names");
}

#[test]
fn names_score_exact_then_synonym_then_full_name_then_shared_words() {
    let exact = name_match("email", &names("data.email"));
    assert!((exact.score - 1.0).abs() < 1e-9, "{exact:?}");
    let synonym = name_match("email", &names("EmailAddress"));
    assert!((synonym.score - 0.9).abs() < 1e-9, "{synonym:?}");
    assert!(synonym.why.contains("~ email"), "{synonym:?}");
    for (field, key) in [
        ("first_name", "given_name"),
        ("first_name", "FNAME"),
        ("last_name", "surname"),
        ("phone", "mobile"),
        ("company_name", "organization"),
        ("country", "country_code"),
        ("sku", "item_code"),
        ("total", "grand_total"),
    ] {
        let m = name_match(field, &names(key));
        assert!(m.score >= 0.85, "{field} ~ {key}: {m:?}");
    }
    let parent = name_match("company_name", &names("company.name"));
    assert!((parent.score - 0.9).abs() < 1e-9, "{parent:?}");
    let full = name_match("first_name", &names("name"));
    assert_eq!(full.split, Some(Split::First));
    assert!(full.score < synonym.score);
    let shared = name_match("email", &names("billing_email"));
    assert!(
        shared.score > 0.3 && shared.score < 0.8,
        "shared words are weaker than a synonym: {shared:?}"
    );
    // Generic words alone (`id`, `name`) are no match.
    assert!(name_match("first_name", &names("id")).score < 1e-9);
    assert!(name_match("company_name", &names("file_name")).score < 1e-9);
    assert!(name_match("email", &names("livemode")).score < 1e-9);
}

#[test]
fn values_count_for_or_against_the_field_type() {
    let checker = Checker::new("contact");
    let contact = contract("contact");
    let read = |field: &str, value: Value| {
        let rule = &contact.fields[field];
        evidence(kind_of(field, rule), field, rule, &value, None, &checker)
    };
    let email = read("email", json!("Jane@Example.com"));
    assert!(email.score >= 1.0 && email.transforms == ["trim", "lowercase"]);
    assert!(read("email", json!("jane at example")).score < 0.0);
    // contact.phone is a string in the contract, but named like a phone.
    let phone = read("phone", json!("(201) 555-0123"));
    assert!(phone.score >= 1.0 && phone.transforms == ["trim", "e164"]);
    assert!(read("phone", json!("call me")).score < 0.0);
    assert!(read("country", json!("gb")).score >= 1.0);
    assert!(read("country", json!("United Kingdom")).score < 0.0);
    assert!(read("country", json!("XX")).score < 0.0);
    assert!(read("marketing_consent", json!(true)).score >= 1.0);
    assert_eq!(
        read("marketing_consent", json!("yes")).transforms,
        ["bool"],
        "yes/no text reads through `bool`"
    );
    assert!(read("marketing_consent", json!("subscribed")).score < 0.0);
    let stage = read("lifecycle_stage", json!("Customer"));
    assert!(stage.score > 0.5 && stage.transforms == ["trim", "lowercase"]);
    assert!(read("lifecycle_stage", json!("vip")).score < 0.0);
    assert!(read("first_name", json!("Jane")).score > 0.5);
    assert!(read("first_name", json!("jane@example.com")).score < 0.0);
    assert!(
        read("first_name", Value::Null).score.abs() < 1e-9,
        "no value is no evidence"
    );
    let order = contract("order");
    let rule = &order.fields["placed_at"];
    let at = |value: Value| evidence(Kind::Datetime, "placed_at", rule, &value, None, &checker);
    assert_eq!(at(json!(1_700_000_000)).transforms, ["unix_seconds"]);
    assert_eq!(at(json!(1_700_000_000_000_i64)).transforms, ["unix_millis"]);
    assert_eq!(
        at(json!("2021-12-31T19:00:00-05:00")).transforms,
        ["datetime_utc"]
    );
    assert_eq!(
        at(json!("2009-03-26 21:35:57")).transforms,
        ["datetime_utc"]
    );
    assert!(at(json!("soon")).score < 0.0);
    assert!(
        at(json!(42)).score < 0.0,
        "42 is no unix time of this century"
    );
}

#[test]
fn value_patterns_tell_phones_dates_and_amounts_apart() {
    assert_eq!(phone_digits("+44 20 7946 0958"), Some(12));
    assert_eq!(phone_digits("(201) 555-0123"), Some(10));
    assert_eq!(phone_digits("2024-06-21"), None, "a date");
    assert_eq!(phone_digits("1234567.89"), None, "a decimal");
    assert_eq!(phone_digits("12345"), None, "too short");
    assert_eq!(phone_digits("1+2345678"), None);
    assert!(is_date("2024-06-21") && !is_date("2024-13-01"));
    assert!(is_decimal("110.00") && is_decimal("-5.5") && !is_decimal("110"));
    assert_eq!(unix_transform(&json!("1234567890")), Some("unix_seconds"));
    assert_eq!(unix_transform(&json!(109_757_538)), None, "1973");
    let checker = Checker::new("order");
    assert!(checker.is_currency("usd") && !checker.is_currency("ABC"));
    assert!(checker.is_country("nz") && !checker.is_country("NZL"));
}

#[test]
fn the_record_is_found_inside_its_envelope() {
    assert_eq!(
        record_root(
            &json!({ "id": "evt_1", "data": { "object": { "id": "cus_1" } } }),
            "contact"
        ),
        "data.object"
    );
    assert_eq!(
        record_root(&json!({ "Contacts": [{ "ContactID": "c" }] }), "company"),
        "Contacts.0",
        "a lone key is an envelope"
    );
    assert_eq!(
        record_root(&json!({ "customer": { "id": 1 }, "type": "x" }), "contact"),
        "customer"
    );
    assert_eq!(
        record_root(&json!({ "id": 1, "email": "a@b.co" }), "contact"),
        ""
    );
    assert_eq!(record_root(&json!([{ "objectId": 1 }]), "contact"), "0");
}

#[test]
fn yaml_scalars_are_quoted_only_when_needed() {
    assert_eq!(scalar("data.object.email"), "data.object.email");
    assert_eq!(scalar("customers/create"), "customers/create");
    assert_eq!(scalar("data[merges][FNAME]"), "\"data[merges][FNAME]\"");
    assert_eq!(scalar("0.id"), "\"0.id\"");
    assert_eq!(scalar("true"), "\"true\"");
    assert_eq!(scalar("a: b"), "\"a: b\"");
}

#[test]
fn a_sample_becomes_a_proposal_that_loads_and_explains_itself() {
    let sample = json!({
        "type": "contact.updated",
        "id": "evt_9",
        "data": {
            "id": 42,
            "EmailAddress": "Jane.Doe@Example.com",
            "mobile": "+44 20 7946 0958",
            "fname": "Jane",
            "surname": "Doe",
            "updatedAt": "2026-01-02T03:04:05Z",
            "country": "United Kingdom",
            "accepts_marketing": "yes",
            "notes": "VIP",
        },
    });
    let contact = contract("contact");
    let checker = Checker::new("contact");
    let p = suggest(&sample, &contact, &options(), &checker);
    assert_eq!(p.root, "data");
    assert_eq!(p.event_type, "contact.updated");
    let id = p.record_id.as_ref().expect("record id");
    assert_eq!(id.paths, ["data.id"], "the record's id, not the event's");
    assert_eq!(id.transforms, ["to_string"]);
    let at = p.occurred_at.as_ref().expect("occurred_at");
    assert_eq!(at.paths, ["data.updatedAt"]);
    let field = |name: &str| {
        p.fields
            .get(name)
            .unwrap_or_else(|| panic!("{name}: {p:?}"))
    };
    assert_eq!(field("email").paths, ["data.EmailAddress"]);
    assert!(field("email").confidence > 0.9);
    assert_eq!(field("phone").paths, ["data.mobile"]);
    assert_eq!(field("first_name").paths, ["data.fname"]);
    assert_eq!(field("last_name").paths, ["data.surname"]);
    assert_eq!(field("marketing_consent").transforms, ["bool"]);
    // A country name needs a map: not proposed, but the closest path is named.
    assert!(
        !p.fields.contains_key("country"),
        "{:?}",
        p.fields.get("country")
    );
    let country = p
        .missing
        .iter()
        .find(|m| m.field == "country")
        .expect("country missing");
    assert!(
        country
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("data.country") && h.contains("map")),
        "{country:?}"
    );
    let yaml = render(&p);
    assert!(yaml.starts_with("# PROPOSAL"), "{yaml}");
    assert!(
        yaml.contains(
            "  email: { paths: [data.EmailAddress], transforms: [trim, lowercase] }  # 0.9"
        ),
        "{yaml}"
    );
    assert!(
        yaml.contains("name \\\"EmailAddress\\\" ~ email")
            || yaml.contains("name \"EmailAddress\" ~ email"),
        "{yaml}"
    );
    assert!(yaml.contains("#   job_title"), "{yaml}");
    assert!(
        !yaml.contains("Jane"),
        "no personal data in the comments: {yaml}"
    );
    let loaded = contracts::built_in().expect("contracts");
    let mapping = validate(&yaml, "test-contact", &loaded).expect("the proposal loads");
    assert_eq!(mapping.contract, "contact/v1");
    let problems = dry_run(&mapping, &contact, &sample, &checker.ctx);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_well_named_path_whose_value_contradicts_the_type_is_not_proposed() {
    let sample = json!({ "email": "n/a", "contact_info": "sam@example.org" });
    let contact = contract("contact");
    let checker = Checker::new("contact");
    let p = suggest(&sample, &contact, &options(), &checker);
    let email = p.fields.get("email").expect("email");
    assert_eq!(
        email.paths,
        ["contact_info"],
        "an email-shaped value wins over a name that lies"
    );
    assert!(
        email.confidence > THRESHOLD && email.confidence < 0.6,
        "a value alone is a weak guess: {email:?}"
    );
    let none = suggest(&json!({ "email": "n/a" }), &contact, &options(), &checker);
    assert!(none.fields.is_empty(), "{:?}", none.fields);
    let missing = none
        .missing
        .iter()
        .find(|m| m.field == "email")
        .expect("email missing");
    assert!(missing.required);
    assert!(render(&none).contains("#   email — REQUIRED"));
}

#[test]
fn money_is_built_from_an_amount_and_its_currency_when_the_mapping_language_can() {
    let sample = json!({
        "id": 7, "currency": "usd", "total_price": "403.00", "subtotal_price": "393.00",
        "financial_status": "paid", "name": "#1001", "created_at": "2021-12-31T19:00:00-05:00",
    });
    let order = contract("order");
    let checker = Checker::new("order");
    let p = suggest(&sample, &order, &options(), &checker);
    if checker.features.money {
        let total = p.fields.get("total").expect("total");
        assert_eq!(total.parts.len(), 2, "{total:?}");
        assert_eq!(total.parts[0].path, "total_price");
        assert_eq!(total.parts[0].transforms, ["minor_units"]);
        assert_eq!(total.parts[1].path, "currency");
        let yaml = render(&p);
        assert!(
            yaml.contains("total: { object: { minor_units: { paths: [total_price], transforms: [minor_units] }, currency: { paths: [currency], transforms: [trim, uppercase] } } }"),
            "{yaml}"
        );
        let loaded = contracts::built_in().expect("contracts");
        let mapping = validate(&yaml, "test-contact", &loaded).expect("loads");
        let (mapped, problems) = mapping.apply_all(&sample, &checker.ctx);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            mapped.record.get("total"),
            Some(&json!({ "minor_units": 40300, "currency": "USD" }))
        );
    } else {
        assert!(!p.fields.contains_key("total"));
        let hint = p
            .missing
            .iter()
            .find(|m| m.field == "total")
            .and_then(|m| m.hint.clone())
            .expect("a hint for total");
        assert!(
            hint.contains("total_price") && hint.contains("currency"),
            "{hint}"
        );
    }
    assert_eq!(
        p.fields.get("status").map(|s| s.paths.clone()),
        Some(vec!["financial_status".to_owned()])
    );
}
