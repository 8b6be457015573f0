//! Each vendor's scheme against its published vectors and samples (`testdata/vendor`), tampered
//! variants, and a property test that no input panics any verifier or parser.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use proptest::prelude::*;
use secrecy::SecretString;
use switchyard_chassis::config::{SecretRef, SourceConfig, SourceKind};

use super::{HmacSha256, Incoming, Parsed, Reply, Source};
use crate::IngestError;

fn vendor(path: &str) -> serde_json::Value {
    let file = switchyard_chassis::testkit::vendor_file(&format!("samples/{path}"))
        .display()
        .to_string();
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn source(kind: SourceKind, secrets: &[&str]) -> Source {
    let config = SourceConfig {
        name: "s".to_owned(),
        kind,
        secret_env: secrets
            .iter()
            .enumerate()
            .map(|(i, s)| SecretRef::resolved(&format!("SECRET_{i}"), s))
            .collect(),
        tolerance: Duration::from_secs(300),
        public_url: None,
        organization_id: Some("00D000000000062EAA".to_owned()),
        api: None,
    };
    Source::new(&config).expect("source")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    map
}

fn run(
    source: &Source,
    method: &Method,
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
    token: Option<&str>,
) -> Result<Parsed, IngestError> {
    source.accept(&Incoming {
        method,
        url: url.to_owned(),
        headers,
        body,
        path_token: token,
        now_ms,
    })
}

fn b64_hmac(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for p in parts {
        mac.update(p);
    }
    B64.encode(mac.finalize().into_bytes())
}

fn is_signature_error(result: &Result<Parsed, IngestError>) -> bool {
    matches!(result, Err(IngestError::Signature(_)))
}

#[test]
fn hubspot_v3_matches_the_published_vector() {
    let v = vendor("hubspot/signature-vectors.json");
    let secret = v["client_secret"].as_str().expect("secret");
    let body = v["request_body"].as_str().expect("body");
    let url = v["url"].as_str().expect("url");
    let ts = v["timestamp"].as_i64().expect("ts");
    let expected = v["vectors"][3]["expected"].as_str().expect("v3");
    let s = source(SourceKind::Hubspot, &[secret]);
    let h = headers(&[
        ("x-hubspot-signature-v3", expected),
        ("x-hubspot-request-timestamp", &ts.to_string()),
        ("content-type", "application/json"),
    ]);
    // The vector's body is not JSON, so a passing signature shows as a 400, a failing one as a 401.
    let result = run(&s, &Method::POST, url, &h, body.as_bytes(), ts, None);
    assert!(
        matches!(result, Err(IngestError::MalformedJson(_))),
        "{result:?}"
    );
    let result = run(
        &s,
        &Method::POST,
        "https://www.example.com/other",
        &h,
        body.as_bytes(),
        ts,
        None,
    );
    assert!(
        is_signature_error(&result),
        "a different URL is a different signature"
    );
    let result = run(
        &s,
        &Method::POST,
        url,
        &h,
        body.as_bytes(),
        ts + 301_000,
        None,
    );
    assert!(is_signature_error(&result), "stale");
}

#[test]
fn hubspot_batches_split_into_one_event_per_element() {
    let batch = serde_json::to_vec(&vendor(
        "hubspot/webhook-batch.contact.propertyChange+creation.docs-example.json",
    ))
    .expect("json");
    let (secret, url, now) = (
        "hub-secret",
        "https://hooks.example.com/v1/webhooks/s",
        1_700_000_000_000_i64,
    );
    let ts = now.to_string();
    let sig = b64_hmac(secret, &[b"POST", url.as_bytes(), &batch, ts.as_bytes()]);
    let s = source(SourceKind::Hubspot, &["old-secret", secret]);
    let h = headers(&[
        ("x-hubspot-signature-v3", &sig),
        ("x-hubspot-request-timestamp", &ts),
        ("content-type", "application/json"),
    ]);
    let parsed = run(&s, &Method::POST, url, &h, &batch, now, None).expect("genuine");
    let ids: Vec<_> = parsed
        .events
        .iter()
        .map(|e| (e.vendor_id.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("3816279340", "contact.propertychange"),
            ("3816279480", "contact.creation")
        ]
    );
    let mut tampered = batch.clone();
    tampered[5] ^= 1;
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        url,
        &h,
        &tampered,
        now,
        None
    )));
}

#[test]
fn stripe_matches_the_derived_vector() {
    let v = vendor("stripe/signature-vector.derived.json");
    let s = source(SourceKind::Stripe, &[v["secret"].as_str().expect("secret")]);
    let body = v["raw_body"].as_str().expect("body").as_bytes();
    let now = v["timestamp"].as_i64().expect("ts") * 1000;
    let h = headers(&[
        (
            "stripe-signature",
            v["header_value"].as_str().expect("header"),
        ),
        ("content-type", "application/json; charset=utf-8"),
    ]);
    let parsed = run(&s, &Method::POST, "https://x/", &h, body, now, None).expect("genuine");
    assert_eq!(parsed.events.len(), 1);
    assert_eq!(parsed.events[0].vendor_id, "evt_1Pgc76B7WZ01zgkWwyRHS12y");
    assert_eq!(parsed.events[0].event_type, "customer.created");
    let other = headers(&[
        ("stripe-signature", "t=1700000000,v1=00,v0=ab"),
        ("content-type", "application/json"),
    ]);
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &other,
        body,
        now,
        None
    )));
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        body,
        now + 301_000,
        None
    )));
}

#[test]
fn quickbooks_matches_the_published_vector_and_splits_entities() {
    let v = vendor("quickbooks/signature-vector.json");
    let s = source(
        SourceKind::Quickbooks,
        &[v["verifier_token"].as_str().expect("token")],
    );
    let body = v["raw_body"].as_str().expect("body").as_bytes();
    let h = headers(&[
        (
            "intuit-signature",
            v["expected_signature"].as_str().expect("sig"),
        ),
        ("content-type", "application/json"),
    ]);
    let parsed = run(&s, &Method::POST, "https://x/", &h, body, 0, None).expect("genuine");
    assert_eq!(parsed.events.len(), 1);
    assert_eq!(
        parsed.events[0].vendor_id,
        "1185883450:Customer:1:Create:2015-10-05T14:42:19-0700"
    );
    assert_eq!(parsed.events[0].event_type, "customer.create");
    let bad = headers(&[
        (
            "intuit-signature",
            v["invalid_signature_example"].as_str().expect("sig"),
        ),
        ("content-type", "application/json"),
    ]);
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &bad,
        body,
        0,
        None
    )));
}

#[test]
fn quickbooks_cloudevents_split_per_element() {
    let body =
        serde_json::to_vec(&vendor("quickbooks/cloudevents.class.created.json")).expect("json");
    let s = source(SourceKind::Quickbooks, &["token"]);
    let h = headers(&[
        ("intuit-signature", &b64_hmac("token", &[&body])),
        ("content-type", "application/cloudevents-batch+json"),
    ]);
    let parsed = run(&s, &Method::POST, "https://x/", &h, &body, 0, None).expect("genuine");
    assert_eq!(
        parsed.events[0].vendor_id,
        "d1a3aedd-9670-41bf-a4f9-c148a1cc4e03"
    );
    assert_eq!(parsed.events[0].event_type, "qbo.class.created.v1");
}

#[test]
fn xero_events_and_the_intent_to_receive_handshake() {
    let body = serde_json::to_vec(&vendor("xero/contact.update.json")).expect("json");
    let s = source(SourceKind::Xero, &["xero-key"]);
    let h = headers(&[
        ("x-xero-signature", &b64_hmac("xero-key", &[&body])),
        ("content-type", "application/json"),
    ]);
    let parsed = run(&s, &Method::POST, "https://x/", &h, &body, 0, None).expect("genuine");
    assert_eq!(parsed.reply, Reply::Empty);
    assert_eq!(parsed.events[0].event_type, "contact.update");
    assert!(
        parsed.events[0]
            .vendor_id
            .contains("717f2bfc-c6d4-41fd-b238-3f2f0c0cf777")
    );
    let handshake =
        br#"{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"ABC"}"#;
    let h = headers(&[
        ("x-xero-signature", &b64_hmac("xero-key", &[handshake])),
        ("content-type", "application/json"),
    ]);
    let parsed = run(&s, &Method::POST, "https://x/", &h, handshake, 0, None).expect("handshake");
    assert!(parsed.events.is_empty());
    let h = headers(&[
        ("x-xero-signature", &b64_hmac("wrong", &[handshake])),
        ("content-type", "application/json"),
    ]);
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        handshake,
        0,
        None
    )));
}

#[test]
fn shopify_klaviyo_and_standard_webhooks() {
    let body = br#"{"id":706405506930370084,"email":"bob@example.com"}"#;
    let s = source(SourceKind::Shopify, &["shp"]);
    let h = headers(&[
        ("x-shopify-hmac-sha256", &b64_hmac("shp", &[body])),
        ("x-shopify-webhook-id", "b54557e4"),
        ("x-shopify-topic", "customers/create"),
        ("content-type", "application/json"),
    ]);
    let parsed = run(&s, &Method::POST, "https://x/", &h, body, 0, None).expect("genuine");
    assert_eq!(
        (
            parsed.events[0].vendor_id.as_str(),
            parsed.events[0].event_type.as_str()
        ),
        ("b54557e4", "customers.create")
    );

    let body = br#"{"data":[{"external_id":"ev-1","topic":"event:klaviyo.email_delivered","payload":{}}],"meta":{"klaviyo_account_id":"A"}}"#;
    let s = source(SourceKind::Klaviyo, &["kl"]);
    let ts = "1700000000";
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"kl").expect("key");
    mac.update(body);
    mac.update(ts.as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    let h = headers(&[
        ("klaviyo-signature", &sig),
        ("klaviyo-timestamp", ts),
        ("content-type", "application/json"),
    ]);
    let parsed = run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        body,
        1_700_000_000_000,
        None,
    )
    .expect("genuine");
    assert_eq!(
        (
            parsed.events[0].vendor_id.as_str(),
            parsed.events[0].event_type.as_str()
        ),
        ("ev-1", "event.klaviyo.email_delivered")
    );
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        body,
        1_700_000_400_000,
        None
    )));

    let v = vendor("standard-webhooks/test-vectors.json");
    let sv = &v["sign_vector"];
    let s = source(
        SourceKind::StandardWebhooks,
        &[sv["secret"].as_str().expect("secret")],
    );
    let ts = sv["timestamp"].as_i64().expect("ts");
    let h = headers(&[
        ("webhook-id", sv["msg_id"].as_str().expect("id")),
        ("webhook-timestamp", &ts.to_string()),
        (
            "webhook-signature",
            sv["expected_signature"].as_str().expect("sig"),
        ),
        ("content-type", "application/json"),
    ]);
    let parsed = run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        sv["payload"].as_str().expect("payload").as_bytes(),
        ts * 1000,
        None,
    )
    .expect("genuine");
    assert_eq!(parsed.events[0].vendor_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
}

#[test]
fn mailchimp_checks_the_url_token_and_parses_forms() {
    let fields = vendor("mailchimp/subscribe.form-fields.json");
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields.as_object().expect("map") {
        form.append_pair(k, v.as_str().unwrap_or_default());
    }
    let body = form.finish();
    let s = source(SourceKind::Mailchimp, &["tok-1"]);
    let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
    let parsed = run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        body.as_bytes(),
        0,
        Some("tok-1"),
    )
    .expect("genuine");
    assert_eq!(parsed.events[0].event_type, "subscribe");
    let event: serde_json::Value = serde_json::from_slice(&parsed.events[0].body).expect("json");
    assert_eq!(event["data"]["merges"]["EMAIL"], "api@mailchimp.com");
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        body.as_bytes(),
        0,
        Some("tok-2")
    )));
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        body.as_bytes(),
        0,
        None
    )));
    let validation = run(
        &s,
        &Method::GET,
        "https://x/",
        &HeaderMap::new(),
        b"",
        0,
        Some("tok-1"),
    )
    .expect("GET validation");
    assert!(validation.events.is_empty());
    let json = headers(&[("content-type", "application/json")]);
    assert!(matches!(
        run(
            &s,
            &Method::POST,
            "https://x/",
            &json,
            b"{}",
            0,
            Some("tok-1")
        ),
        Err(IngestError::UnsupportedMediaType(_))
    ));
}

/// An outbound message as Salesforce documents it (two notifications).
pub const SALESFORCE_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000062EAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/59.0/00D000000000062</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/59.0/00D000000000062</PartnerUrl>
   <Notification>
    <Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>003000000000001AAA</sf:Id>
     <sf:Email>jane&amp;co@example.com</sf:Email>
     <sf:LastName>Doe</sf:LastName>
    </sObject>
   </Notification>
   <Notification>
    <Id>04l000000000002AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q000000000001AAA</sf:Id>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

#[test]
fn salesforce_checks_the_organisation_and_splits_notifications() {
    let s = source(SourceKind::Salesforce, &[]);
    let h = headers(&[("content-type", "text/xml; charset=utf-8")]);
    let parsed = run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        SALESFORCE_SAMPLE.as_bytes(),
        0,
        None,
    )
    .expect("genuine");
    assert_eq!(parsed.reply, Reply::SoapAck);
    let ids: Vec<_> = parsed
        .events
        .iter()
        .map(|e| (e.vendor_id.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("04l000000000001AAA", "contact.outbound_message"),
            ("04l000000000002AAA", "lead.outbound_message")
        ]
    );
    let first: serde_json::Value = serde_json::from_slice(&parsed.events[0].body).expect("json");
    assert_eq!(first["fields"]["Email"], "jane&co@example.com");
    let foreign = SALESFORCE_SAMPLE.replace("00D000000000062EAA", "00D000000000099EAA");
    assert!(is_signature_error(&run(
        &s,
        &Method::POST,
        "https://x/",
        &h,
        foreign.as_bytes(),
        0,
        None
    )));
    assert!(matches!(
        run(&s, &Method::POST, "https://x/", &h, b"<not xml", 0, None),
        Err(IngestError::Malformed(_))
    ));
}

const KINDS: [SourceKind; 9] = [
    SourceKind::StandardWebhooks,
    SourceKind::Hubspot,
    SourceKind::Stripe,
    SourceKind::Shopify,
    SourceKind::Quickbooks,
    SourceKind::Xero,
    SourceKind::Mailchimp,
    SourceKind::Klaviyo,
    SourceKind::Salesforce,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever arrives — any body, any signature header, any content type — every kind answers
    /// with a result, never a panic.
    #[test]
    fn no_input_panics_any_source(body in proptest::collection::vec(any::<u8>(), 0..512),
                                  sig in "[ -~]{0,80}", content in prop::sample::select(vec!["application/json", "text/xml", "application/x-www-form-urlencoded", "text/plain"])) {
        let h = headers(&[
            ("content-type", content),
            ("webhook-id", "m"), ("webhook-timestamp", "1"), ("webhook-signature", &sig),
            ("x-hubspot-signature-v3", &sig), ("x-hubspot-request-timestamp", "1"),
            ("stripe-signature", &sig), ("x-shopify-hmac-sha256", &sig), ("x-shopify-webhook-id", "1"),
            ("intuit-signature", &sig), ("x-xero-signature", &sig),
            ("klaviyo-signature", &sig), ("klaviyo-timestamp", "1"),
        ]);
        for kind in KINDS {
            let s = source(kind, &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
            let _ = run(&s, &Method::POST, "https://x/", &h, &body, 1000, Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        }
    }
}

#[test]
fn standard_webhooks_bodies_that_are_not_json_are_refused_at_the_edge() {
    // Found by the ingest_parse fuzz target: the envelope parsed (serde_json skips the fields it
    // does not build without checking them), and transform then met a body that is not JSON.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let s = source(SourceKind::StandardWebhooks, &[secret]);
    let key = switchyard_chassis::signing::SigningKey::from_secret(&SecretString::from(
        secret.to_owned(),
    ))
    .expect("key");
    let body = b"{\"type\": \"contact.updated\", \"note\": \"\xff\xfe\"}";
    let now = 1_795_000_000;
    let signed = key.headers("msg_1", now, body);
    let h = headers(&[
        (signed[0].0, signed[0].1.as_str()),
        (signed[1].0, signed[1].1.as_str()),
        (signed[2].0, signed[2].1.as_str()),
        ("content-type", "application/json"),
    ]);
    let refused = run(&s, &Method::POST, "https://x/", &h, body, now * 1000, None);
    assert!(
        matches!(&refused, Err(IngestError::MalformedJson(_))),
        "{refused:?}"
    );
    let body = b"{ \"type\": \"contact.updated\", \"a\": 1.2e9148 }";
    let signed = key.headers("msg_2", now, body);
    let h = headers(&[
        (signed[0].0, signed[0].1.as_str()),
        (signed[1].0, signed[1].1.as_str()),
        (signed[2].0, signed[2].1.as_str()),
        ("content-type", "application/json"),
    ]);
    let refused = run(&s, &Method::POST, "https://x/", &h, body, now * 1000, None);
    assert!(
        matches!(&refused, Err(IngestError::MalformedJson(reason)) if reason.contains("number out of range")),
        "{refused:?}"
    );
}
