//! Transform through the real pipeline: vendor samples become canonical objects, a violation is
//! dead-lettered and delivered after the mapping is fixed and the letter replayed, and a drifted
//! payload raises exactly one notice.

use std::time::Duration;

use prost::Message as _;
use serde_json::json;
use switchyard_chassis::bus::StreamKind;
use switchyard_chassis::testkit;
use switchyard_integration_tests::{
    MAILCHIMP_TOKEN, Options, Pipeline, SALESFORCE_ORG, STRIPE_SECRET, Service,
};
use switchyard_proto::v1::{CanonicalObject, DeadLetter, SchemaDrift, canonical_object};

const WAIT: Duration = Duration::from_secs(30);

fn sample(path: &str) -> serde_json::Value {
    testkit::vendor_json(&format!("samples/{path}"))
}

fn hex_hmac(key: &str, parts: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

async fn contacts(pipeline: &Pipeline) -> Vec<(String, switchyard_proto::v1::Contact)> {
    pipeline
        .stream_messages(StreamKind::Canonical)
        .await
        .iter()
        .filter_map(|m| {
            let object = CanonicalObject::decode(m.payload.as_ref()).ok()?;
            let id = object.envelope.as_ref()?.source_object_id.clone();
            match object.object? {
                canonical_object::Object::Contact(c) => Some((id, c)),
                _ => None,
            }
        })
        .collect()
}

#[tokio::test]
async fn vendor_samples_become_canonical_contacts_with_their_values() {
    let pipeline = Pipeline::start(Options::default()).await;
    // Mailchimp: the published subscribe, profile and upemail forms, as Mailchimp posts them.
    for name in [
        "subscribe",
        "profile",
        "upemail",
        "unsubscribe",
        "cleaned",
        "campaign",
    ] {
        let fields = sample(&format!("mailchimp/{name}.form-fields.json"));
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields.as_object().expect("map") {
            form.append_pair(k, v.as_str().unwrap_or_default());
        }
        let headers = [(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let (status, text) = pipeline
            .send_to(
                &format!("mailchimp/{MAILCHIMP_TOKEN}"),
                &headers,
                form.finish().as_bytes(),
            )
            .await;
        assert_eq!(status, 200, "{name}: {text}");
    }
    // Stripe: the customer fixture with an email (Stripe's own fixture has none; see below).
    let mut stripe = sample("stripe/customer.created.derived-from-fixtures.json");
    stripe["data"]["object"]["email"] = json!("Ada@Example.org");
    stripe["data"]["object"]["name"] = json!("Ada Lovelace");
    stripe["data"]["object"]["phone"] = json!("+1 (201) 555-0142");
    // A paid invoice built from Stripe's published invoice fixture, and the plan sample (a price,
    // not a customer-data object: acknowledged and counted as unmapped).
    let mut invoice =
        testkit::vendor_json("specs/stripe/fixtures3.json")["resources"]["invoice"].clone();
    invoice["status"] = json!("paid");
    invoice["number"] = json!("INV-0042");
    let invoice = json!({"id": "evt_invoice_paid_1", "object": "event", "type": "invoice.paid",
        "created": 1_764_000_000, "data": {"object": invoice}});
    let mut plan = sample("stripe/event.plan.created.fixture.json");
    // Both fixtures carry the same event id; ingest would rightly take the second for a retry.
    plan["id"] = json!("evt_plan_created_fixture");
    for event in [&stripe, &invoice, &plan] {
        let body = serde_json::to_vec(event).expect("json");
        let t = switchyard_chassis::unix_now().to_string();
        let headers = [
            ("content-type", "application/json".to_owned()),
            (
                "stripe-signature",
                format!(
                    "t={t},v1={}",
                    hex_hmac(STRIPE_SECRET, &[t.as_bytes(), b".", &body])
                ),
            ),
        ];
        assert_eq!(pipeline.send_to("stripe", &headers, &body).await.0, 200);
    }
    // Salesforce: an outbound message for a Contact.
    let soap = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{SALESFORCE_ORG}</OrganizationId><ActionId>04k000000000001AAA</ActionId><Notification><Id>04l000000000001AAA</Id><sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>003000000000001AAA</sf:Id><sf:Email>Grace@Example.com</sf:Email><sf:FirstName>Grace</sf:FirstName><sf:LastName>Hopper</sf:LastName><sf:LastModifiedDate>2026-11-27T09:00:00.000Z</sf:LastModifiedDate></sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"#
    );
    let headers = [("content-type", "text/xml; charset=utf-8".to_owned())];
    let (status, text) = pipeline
        .send_to("salesforce", &headers, soap.as_bytes())
        .await;
    assert!(
        status == 200 && text.contains("<Ack>true</Ack>"),
        "{status} {text}"
    );
    pipeline.wait_drained(WAIT).await;

    let found = contacts(&pipeline).await;
    let by_id = |id: &str| {
        found
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{id} in {found:#?}"))
    };
    let subscribed = by_id("8a25ff1d98");
    assert_eq!(
        (
            subscribed.email.as_str(),
            subscribed.first_name.as_str(),
            subscribed.last_name.as_str()
        ),
        ("api@mailchimp.com", "MailChimp", "API")
    );
    assert_eq!(subscribed.consent.as_ref().map(|c| c.marketing), Some(true));
    assert_eq!(subscribed.lifecycle_stage, "subscriber");
    let moved = by_id("51da8c3259");
    assert_eq!(moved.email, "api+new@mailchimp.com");
    let ada = by_id("cus_QXg1o8vcGmoR32");
    assert_eq!(
        (
            ada.email.as_str(),
            ada.first_name.as_str(),
            ada.phone.as_str()
        ),
        ("ada@example.org", "Ada", "+12015550142")
    );
    assert_eq!(ada.lifecycle_stage, "customer");
    let grace = by_id("003000000000001AAA");
    assert_eq!(
        (grace.email.as_str(), grace.last_name.as_str()),
        ("grace@example.com", "Hopper")
    );
    let unsubscribed = by_id("8a25ff1d98");
    assert!(
        found.iter().any(|(id, c)| id == "8a25ff1d98"
            && c.email == "api+unsub@mailchimp.com"
            && c.consent.as_ref().map(|c| c.marketing) == Some(false)),
        "the unsubscribe withdrew consent: {unsubscribed:?} in {found:#?}"
    );
    let cleaned = by_id("api+cleaned@mailchimp.com");
    assert_eq!(
        cleaned.consent.map(|c| (c.marketing, c.source)),
        Some((false, "mailchimp cleaned (bounced)".to_owned()))
    );
    assert_eq!(found.len(), 7, "{found:#?}");

    let invoices: Vec<_> = pipeline
        .stream_messages(StreamKind::Canonical)
        .await
        .iter()
        .filter_map(
            |m| match CanonicalObject::decode(m.payload.as_ref()).ok()?.object? {
                canonical_object::Object::Invoice(invoice) => {
                    Some((m.subject.to_string(), invoice))
                }
                _ => None,
            },
        )
        .collect();
    assert_eq!(invoices.len(), 1, "{invoices:#?}");
    let (subject, invoice) = &invoices[0];
    assert!(subject.ends_with(".canonical.invoice.stripe"), "{subject}");
    assert_eq!(
        (invoice.invoice_number.as_str(), invoice.status.as_str()),
        ("INV-0042", "paid")
    );
    assert_eq!(
        invoice
            .total
            .as_ref()
            .map(|m| (m.minor_units, m.currency.as_str())),
        Some((1000, "USD"))
    );
    assert_eq!(
        invoice.customer.as_ref().map(|c| c.id.as_str()),
        Some("cus_QXg1o8vcGmoR32")
    );
    // The campaign send and the plan are about no person or sale: acknowledged, counted, kept.
    for source in ["mailchimp", "stripe"] {
        let line =
            format!(r#"switchyard_transform_events_total{{source="{source}",outcome="unmapped"}}"#);
        assert_eq!(
            pipeline.metric(Service::Transform, &line).await,
            Some(1.0),
            "{line}"
        );
    }
    let transform_letters: Vec<_> = pipeline
        .stream_messages(StreamKind::Dlq)
        .await
        .iter()
        .filter_map(|m| DeadLetter::decode(m.payload.as_ref()).ok())
        .filter(|l| l.stage == "transform")
        .map(|l| l.reason)
        .collect();
    assert!(
        transform_letters.is_empty(),
        "nothing violated its contract: {transform_letters:?}"
    );
    pipeline.finish().await;
}

#[tokio::test]
async fn a_violation_is_delivered_after_the_mapping_is_fixed_and_the_letter_replayed() {
    let dir = std::env::temp_dir().join(testkit::unique("sy-mappings-"));
    std::fs::create_dir_all(&dir).expect("mappings dir");
    let mut pipeline = Pipeline::start(Options {
        mappings_dir: Some(dir.clone()),
        ..Options::default()
    })
    .await;
    // This sender puts the email under `contact_email`, which the built-in mapping does not read.
    let event = json!({"type": "contact.created", "timestamp": "2026-11-27T10:00:00Z",
        "data": {"id": "crm-77", "contact_email": "Lin@Example.com", "first_name": "Lin"}});
    assert_eq!(pipeline.send("v1", &event).await.0, 200);
    pipeline.wait_drained(WAIT).await;
    let dead = pipeline.stream_messages(StreamKind::Dlq).await;
    assert_eq!(dead.len(), 1);
    let letter = DeadLetter::decode(dead[0].payload.as_ref()).expect("dead letter");
    assert_eq!(letter.stage, "transform");
    assert!(
        letter.reason.contains("contact.email: required"),
        "{}",
        letter.reason
    );
    assert!(pipeline.sink.received().is_empty());

    // The fix: a user mapping of the same name that also reads `contact_email`, then a restart.
    let builtin =
        include_str!("../../../services/transform/mappings/standard-webhooks.contact.yaml");
    let fixed = builtin.replace(
        "paths: [data.email, data.email_address]",
        "paths: [data.email, data.email_address, data.contact_email]",
    );
    assert_ne!(fixed, builtin);
    std::fs::write(dir.join("standard-webhooks.contact.yaml"), fixed).expect("write mapping");
    pipeline.stop_service(Service::Transform).await;
    pipeline.start_service(Service::Transform).await;
    pipeline.replay(dead[0].sequence).await;
    pipeline.sink.wait_for(1, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    let received = pipeline.sink.received();
    assert_eq!(received.len(), 1, "delivered once");
    assert_eq!(received[0].json()["data"]["email"], "lin@example.com");
    // Replaying the same letter again within the window changes nothing.
    pipeline.replay(dead[0].sequence).await;
    pipeline.wait_drained(WAIT).await;
    assert_eq!(pipeline.sink.received().len(), 1);
    pipeline.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_drifted_payload_raises_exactly_one_notice() {
    let pipeline = Pipeline::start(Options::default()).await;
    let event = |i: u32, extra: serde_json::Value| {
        let mut data = json!({"id": format!("crm-{i}"), "email": format!("p{i}@example.com"), "lifecycle_stage": "lead"});
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        json!({"type": "contact.updated", "timestamp": "2026-11-27T10:00:00Z", "data": data})
    };
    // The baseline, and the same shape again: no notice.
    for i in 0..2 {
        assert_eq!(
            pipeline
                .send(&format!("base{i}"), &event(i, json!({})))
                .await
                .0,
            200
        );
    }
    pipeline.wait_drained(WAIT).await;
    // A new field, three times; a re-typed field; a new enum value.
    for i in 2..5 {
        assert_eq!(
            pipeline
                .send(
                    &format!("new{i}"),
                    &event(i, json!({"loyalty_tier": "gold"}))
                )
                .await
                .0,
            200
        );
    }
    assert_eq!(
        pipeline
            .send("retyped", &event(5, json!({"id": 5})))
            .await
            .0,
        200
    );
    assert_eq!(
        pipeline
            .send("enum", &event(6, json!({"lifecycle_stage": "customer"})))
            .await
            .0,
        200
    );
    // The baseline's lifecycle stage left out, twice: one "missing field" notice.
    for i in 7..9 {
        let mut missing = event(i, json!({}));
        if let Some(data) = missing["data"].as_object_mut() {
            data.remove("lifecycle_stage");
        }
        assert_eq!(pipeline.send(&format!("missing{i}"), &missing).await.0, 200);
    }
    pipeline.wait_drained(WAIT).await;

    let notices: Vec<SchemaDrift> = pipeline
        .stream_messages(StreamKind::Ops)
        .await
        .iter()
        .filter(|m| m.subject.as_str() == format!("{}.ops.drift.demo", pipeline.prefix))
        .map(|m| SchemaDrift::decode(m.payload.as_ref()).expect("notice"))
        .collect();
    // Transform handles several events at once, so the notices' order is not the sending order.
    let mut summary: Vec<(String, String)> = notices
        .iter()
        .map(|n| (n.path.clone(), n.change.clone()))
        .collect();
    summary.sort();
    let expected = [
        ("data.id", "re-typed field"),
        ("data.lifecycle_stage", "missing field"),
        ("data.loyalty_tier", "new field"),
        ("lifecycle_stage=customer", "new enum value"),
    ];
    assert_eq!(
        summary,
        expected.map(|(p, c)| (p.to_owned(), c.to_owned())),
        "one notice per change, not per event"
    );
    let retyped = notices
        .iter()
        .find(|n| n.path == "data.id")
        .expect("re-typed");
    assert_eq!(retyped.previous_types, vec!["string".to_owned()]);
    let missing = notices
        .iter()
        .find(|n| n.change == "missing field")
        .expect("missing");
    assert_eq!(
        (
            missing.previous_types.clone(),
            missing.observed_type.as_str()
        ),
        (vec!["string".to_owned()], "absent")
    );
    assert!(
        !notices.iter().any(|n| n.example.contains("example.com")),
        "no personal data in notices"
    );
    let line =
        r#"switchyard_transform_schema_drift_notices_total{source="demo",change="new field"}"#;
    assert_eq!(pipeline.metric(Service::Transform, line).await, Some(1.0));
    pipeline.finish().await;
}
