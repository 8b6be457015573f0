//! `switchyard mappings suggest` on vendor samples: the paths it picks, the confidence bands,
//! that the proposal loads as a mapping against the contracts, and how it refuses bad requests.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use switchyard_chassis::testkit::vendor_file;
use switchyard_transform::mapping::{Context, Mapping, Registry};

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn switchyard(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("switchyard runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sy-suggest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("json")).expect("write");
    path.to_str().expect("utf-8").to_owned()
}

/// Loads a proposal the way transform does: the registry, against the built-in contracts.
fn load(yaml: &str, name: &str) -> Mapping {
    let dir = scratch(&format!("load-{name}"));
    std::fs::write(dir.join("proposal.yaml"), yaml).expect("write");
    let contracts = switchyard_proto::contracts::built_in().expect("contracts");
    let registry = Registry::load(Some(&dir), &contracts)
        .unwrap_or_else(|e| panic!("the proposal does not load: {e}\n{yaml}"));
    let _ = std::fs::remove_dir_all(&dir);
    registry
        .all()
        .iter()
        .rev()
        .find(|m| m.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no mapping {name} in\n{yaml}"))
}

/// The confidence written on the line that starts with `prefix` (`  email:`).
fn confidence(yaml: &str, prefix: &str) -> f64 {
    let line = yaml
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{yaml}"));
    let (_, comment) = line
        .split_once("  # ")
        .unwrap_or_else(|| panic!("no comment on {line:?}"));
    comment
        .split(':')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no confidence on {line:?}"))
}

fn paths<'a>(mapping: &'a Mapping, field: &str) -> &'a [String] {
    &mapping
        .fields
        .get(field)
        .unwrap_or_else(|| panic!("{field} is not in the proposal"))
        .paths
}

fn transforms(mapping: &Mapping, field: &str) -> String {
    format!("{:?}", mapping.fields[field].transforms)
}

fn ctx() -> Context {
    Context::new(phonenumber::country::Id::US)
}

/// Stripe's customer.created fixture with the contact details a real customer has.
fn stripe_customer() -> Value {
    let file = vendor_file("samples/stripe/customer.created.derived-from-fixtures.json");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut event: Value = serde_json::from_str(&text).expect("json");
    let customer = &mut event["data"]["object"];
    customer["email"] = json!("Jane.Doe@Example.com");
    customer["phone"] = json!("+44 20 7946 0958");
    customer["name"] = json!("Jane van Doe");
    customer["address"]["country"] = json!("gb");
    event
}

#[test]
fn a_stripe_customer_becomes_the_mapping_a_person_would_write() {
    let dir = scratch("stripe");
    let sample = write_json(&dir, "customer.json", &stripe_customer());
    let out = dir.join("proposal.yaml");
    let run = switchyard(&[
        "mappings",
        "suggest",
        "--object",
        "contact",
        "--source-kind",
        "stripe",
        &sample,
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "--out keeps stdout clean: {}",
        run.stdout
    );
    let yaml = std::fs::read_to_string(&out).expect("the proposal is written");
    assert!(yaml.starts_with("# PROPOSAL"), "{yaml}");
    assert!(yaml.contains("review"), "{yaml}");

    let proposal = load(&yaml, "stripe-contact");
    assert_eq!(proposal.source_kind, "stripe");
    assert_eq!(
        proposal.event_types,
        ["customer.created"],
        "from the sample's type"
    );
    assert_eq!(proposal.contract, "contact/v1");
    assert_eq!(
        proposal.record_id.paths,
        ["data.object.id"],
        "not the event's id"
    );
    assert_eq!(paths(&proposal, "email"), ["data.object.email"]);
    assert_eq!(
        transforms(&proposal, "email"),
        "[Named(Trim), Named(Lowercase)]"
    );
    assert_eq!(paths(&proposal, "phone"), ["data.object.phone"]);
    assert_eq!(transforms(&proposal, "phone"), "[Named(Trim), Named(E164)]");
    assert_eq!(paths(&proposal, "first_name"), ["data.object.name"]);
    assert!(transforms(&proposal, "first_name").contains("FirstName"));
    assert_eq!(paths(&proposal, "last_name"), ["data.object.name"]);
    assert!(transforms(&proposal, "last_name").contains("LastName"));
    assert_eq!(paths(&proposal, "country"), ["data.object.address.country"]);

    for (line, low, high) in [
        ("record_id:", 0.9, 1.0),
        ("  email:", 0.9, 1.0),
        ("  phone:", 0.9, 1.0),
        ("  country:", 0.9, 1.0),
        // A full name split at its last space is a guess, and says so.
        ("  first_name:", 0.5, 0.8),
        ("  last_name:", 0.5, 0.8),
        ("occurred_at:", 0.6, 0.9),
    ] {
        let c = confidence(&yaml, line);
        assert!(
            (low..high).contains(&c),
            "{line} {c} not in {low}..{high}\n{yaml}"
        );
    }
    assert!(
        yaml.contains("name \"email\" = email; value looks like an email"),
        "{yaml}"
    );
    assert!(yaml.contains("# Not found in the sample:"), "{yaml}");
    assert!(yaml.contains("#   job_title"), "{yaml}");
    assert!(
        !yaml.contains("Jane") && !yaml.contains("7946"),
        "sample values stay out of the comments: {yaml}"
    );

    // The stderr summary: one row per field with its path and confidence.
    let email_row = run
        .stderr
        .lines()
        .find(|l| l.starts_with("email "))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(email_row.contains("data.object.email") && email_row.contains("0.9"));
    assert!(
        run.stderr
            .contains("dry run on the sample: contact/v1 accepts"),
        "{}",
        run.stderr
    );

    // It agrees with the hand-written built-in Stripe mapping where that one reads paths.
    let contracts = switchyard_proto::contracts::built_in().expect("contracts");
    let built_in = Registry::load(None, &contracts).expect("built-in mappings");
    let stripe = built_in
        .find("stripe", "customer.created")
        .expect("stripe mapping");
    assert_eq!(proposal.record_id.paths, stripe.record_id.paths);
    for field in ["email", "phone", "first_name", "last_name", "country"] {
        assert_eq!(paths(&proposal, field), paths(stripe, field), "{field}");
    }
    assert_eq!(
        proposal.occurred_at.as_ref().map(|s| s.paths.clone()),
        stripe.occurred_at.as_ref().map(|s| s.paths.clone())
    );

    // And applied to the sample, it produces a record the contract accepts.
    let mapped = proposal.apply(&stripe_customer(), &ctx()).expect("maps");
    assert_eq!(mapped.record["email"], "jane.doe@example.com");
    assert_eq!(mapped.record["phone"], "+442079460958");
    assert_eq!(mapped.record["first_name"], "Jane van");
    assert_eq!(mapped.record["last_name"], "Doe");
    assert_eq!(mapped.record["country"], "GB");
    assert_eq!(mapped.record_id, "cus_QXg1o8vcGmoR32");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_xero_contact_is_read_through_its_envelope_and_pascal_case() {
    let dir = scratch("xero");
    // A Contact as Xero's Accounting API returns it (GET /Contacts/{ContactID}).
    let sample = write_json(
        &dir,
        "contact.json",
        &json!({ "Contacts": [{
            "ContactID": "bd2270c3-8706-4c11-9cfb-000b551c3f51",
            "ContactStatus": "ACTIVE",
            "Name": "ABC Limited",
            "FirstName": "Andrea",
            "LastName": "Dutchess",
            "EmailAddress": "a.dutchess@abclimited.com",
            "Addresses": [
                { "AddressType": "STREET", "City": "", "Country": "" },
                { "AddressType": "POBOX", "City": "Wellington", "PostalCode": "6011", "Country": "NZ" }
            ],
            "Phones": [
                { "PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": "" },
                { "PhoneType": "DEFAULT", "PhoneNumber": "1111111", "PhoneAreaCode": "04", "PhoneCountryCode": "64" }
            ],
            "UpdatedDateUTC": "/Date(1488391422280+0000)/",
            "IsSupplier": false,
            "IsCustomer": true
        }]}),
    );
    let run = switchyard(&[
        "mappings",
        "suggest",
        "--object",
        "contact",
        "--source-kind",
        "xero",
        "--event-type",
        "contact.update",
        "--name",
        "xero-contact-proposal",
        &sample,
    ]);
    assert!(run.ok, "{}", run.stderr);
    let yaml = run.stdout;
    let proposal = load(&yaml, "xero-contact-proposal");
    assert_eq!(proposal.event_types, ["contact.update"]);
    assert_eq!(proposal.record_id.paths, ["Contacts.0.ContactID"]);
    assert_eq!(paths(&proposal, "email"), ["Contacts.0.EmailAddress"]);
    assert_eq!(paths(&proposal, "first_name"), ["Contacts.0.FirstName"]);
    assert_eq!(paths(&proposal, "last_name"), ["Contacts.0.LastName"]);
    assert_eq!(
        paths(&proposal, "phone").first().map(String::as_str),
        Some("Contacts.0.Phones.1.PhoneNumber"),
        "the number the sample has comes first"
    );
    assert!(
        paths(&proposal, "phone").contains(&"Contacts.0.Phones.0.PhoneNumber".to_owned()),
        "the other numbers follow: the first non-empty one wins at run time"
    );
    assert!(
        !proposal.fields.contains_key("company_name"),
        "\"Name\" alone is no company name"
    );
    // "EmailAddress" is a synonym, not the name itself: high, but below an exact match.
    let email = confidence(&yaml, "  email:");
    assert!((0.85..0.97).contains(&email), "{email}\n{yaml}");
    assert!(
        yaml.contains("name \"EmailAddress\" ~ email; value looks like an email"),
        "{yaml}"
    );
    assert!(confidence(&yaml, "record_id:") >= 0.9, "{yaml}");
    assert!(confidence(&yaml, "  first_name:") >= 0.8, "{yaml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shopify_customer_keeps_the_records_own_fields_first() {
    let dir = scratch("shopify");
    let sample = write_json(
        &dir,
        "customer.json",
        &json!({
            "id": 706405506930370000_u64,
            "email": "bob@biller.com",
            "created_at": "2021-12-31T19:00:00-05:00",
            "updated_at": "2022-01-02T10:00:00-05:00",
            "first_name": "Bob",
            "last_name": "Biller",
            "phone": null,
            "accepts_marketing": true,
            "currency": "USD",
            "default_address": {
                "id": 1, "first_name": "Bob", "last_name": "Biller", "company": "Biller Ltd",
                "country": "Canada", "country_code": "CA", "phone": "555-555-5555", "name": "Bob Biller"
            }
        }),
    );
    let run = switchyard(&[
        "mappings",
        "suggest",
        "--object",
        "contact",
        "--source-kind",
        "shopify",
        &sample,
    ]);
    assert!(run.ok, "{}", run.stderr);
    let yaml = run.stdout;
    let proposal = load(&yaml, "shopify-contact");
    assert_eq!(proposal.event_types, ["TODO"], "the sample names no type");
    assert!(yaml.contains("pass --event-type"), "{yaml}");
    assert_eq!(proposal.record_id.paths, ["id"]);
    assert!(format!("{:?}", proposal.record_id.transforms).contains("ToString"));
    assert_eq!(paths(&proposal, "first_name")[0], "first_name");
    assert_eq!(paths(&proposal, "last_name")[0], "last_name");
    assert_eq!(
        paths(&proposal, "phone"),
        ["phone", "default_address.phone"],
        "the customer's own phone first, the address's when it is empty"
    );
    assert_eq!(
        paths(&proposal, "country"),
        ["default_address.country_code"],
        "a code, not the country's name"
    );
    assert_eq!(
        paths(&proposal, "company_name"),
        ["default_address.company"]
    );
    assert_eq!(paths(&proposal, "marketing_consent"), ["accepts_marketing"]);
    let occurred = proposal.occurred_at.as_ref().expect("occurred_at");
    assert_eq!(occurred.paths, ["updated_at", "created_at"]);
    assert!(confidence(&yaml, "  first_name:") >= 0.8, "{yaml}");
    let company = confidence(&yaml, "  company_name:");
    assert!((0.6..0.85).contains(&company), "{company}\n{yaml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_mailchimp_form_post_gets_quoted_bracket_paths() {
    let sample = vendor_file("samples/mailchimp/subscribe.form-fields.json");
    let run = switchyard(&[
        "mappings",
        "suggest",
        "--object",
        "contact",
        "--source-kind",
        "mailchimp",
        sample.to_str().expect("utf-8"),
    ]);
    assert!(run.ok, "{}", run.stderr);
    let proposal = load(&run.stdout, "mailchimp-contact");
    assert_eq!(proposal.event_types, ["subscribe"]);
    assert_eq!(paths(&proposal, "email")[0], "data[email]");
    assert_eq!(paths(&proposal, "first_name"), ["data[merges][FNAME]"]);
    assert_eq!(paths(&proposal, "last_name"), ["data[merges][LNAME]"]);
    assert_eq!(proposal.record_id.paths, ["data[id]"]);
    let mapped = proposal
        .apply(
            &serde_json::from_str(&std::fs::read_to_string(&sample).expect("read")).expect("json"),
            &ctx(),
        )
        .expect("maps");
    assert_eq!(mapped.record["first_name"], "MailChimp");
}

#[test]
fn out_never_replaces_an_existing_file_without_force() {
    let dir = scratch("out");
    let sample = write_json(
        &dir,
        "sample.json",
        &json!({ "id": "c1", "email": "a@example.com" }),
    );
    let out = dir.join("mine.yaml");
    std::fs::write(&out, "keep me\n").expect("write");
    let args = [
        "mappings",
        "suggest",
        "--object",
        "contact",
        &sample,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    let run = switchyard(&args);
    assert!(!run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("exists; pass --force to replace it"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "keep me\n");

    let mut forced = args.to_vec();
    forced.push("--force");
    let run = switchyard(&forced);
    assert!(run.ok, "{}", run.stderr);
    let yaml = std::fs::read_to_string(&out).expect("read");
    assert_eq!(
        load(&yaml, "standard-webhooks-contact").record_id.paths,
        ["id"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_object_or_version_is_refused_by_name() {
    let dir = scratch("unknown");
    let sample = write_json(&dir, "sample.json", &json!({ "id": 1 }));
    let run = switchyard(&["mappings", "suggest", "--object", "widget", &sample]);
    assert!(!run.ok);
    assert!(run.stdout.is_empty(), "no proposal: {}", run.stdout);
    assert!(
        run.stderr.contains("unknown object \"widget\"")
            && run.stderr.contains("contact")
            && run.stderr.contains("invoice"),
        "{}",
        run.stderr
    );
    let run = switchyard(&[
        "mappings",
        "suggest",
        "--object",
        "contact",
        "--version",
        "9",
        &sample,
    ]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("contact has no version 9"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
