//! Thin-event hydration through the real pipeline: HubSpot, QuickBooks Online and Xero webhooks,
//! signed as each vendor signs them, become canonical contacts with the values of the records
//! transform read from (mock) vendor APIs; a refused token is refreshed once and the rotated
//! refresh token kept; throttling is waited out; a missing record is dead-lettered by name; a
//! replay maps the record kept the first time.

use std::time::Duration;

use base64::Engine as _;
use prost::Message as _;
use serde_json::{Value, json};
use switchyard_chassis::bus::StreamKind;
use switchyard_chassis::testkit;
use switchyard_integration_tests::vendors::{
    self, CLIENT_ID, CLIENT_SECRET, Fault, HUBSPOT_PRIVATE_APP_TOKEN, Vendor, Vendors,
    XERO_FIRST_ACCESS_TOKEN,
};
use switchyard_integration_tests::{Options, Pipeline, Service};
use switchyard_proto::v1::{CanonicalObject, Contact, DeadLetter, canonical_object};

const WAIT: Duration = Duration::from_secs(60);
const HUBSPOT_SECRET: &str = "hubspot-app-client-secret";
const HUBSPOT_URL: &str = "https://hooks.example.com/v1/webhooks/hubspot";
const QUICKBOOKS_VERIFIER: &str = "quickbooks-verifier-token";
const XERO_KEY: &str = "xero-webhook-key";
/// The contact of the Xero sample `contact.update.json`, and its organisation.
const XERO_CONTACT: &str = "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777";
const XERO_TENANT: &str = "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f";

/// A pipeline whose HubSpot (private-app token), QuickBooks (OAuth2 refresh only) and Xero
/// (access token plus OAuth2 refresh) sources read from the mock.
async fn pipeline(vendors: &Vendors) -> Pipeline {
    let url = vendors.url();
    let sources = format!(
        r#"  - {{ name: hubspot, kind: hubspot, secret_env: [HS_SECRET], public_url: "{HUBSPOT_URL}", api: {{ base_url: "{url}", access_token_env: HS_TOKEN, timeout: 5s }} }}
  - {{ name: quickbooks, kind: quickbooks, secret_env: [QB_VERIFIER], api: {{ base_url: "{url}", token_url: "{qb}", client_id_env: API_ID, client_secret_env: API_SECRET, refresh_token_env: QB_REFRESH, timeout: 5s }} }}
  - {{ name: xero, kind: xero, secret_env: [XERO_KEY], api: {{ base_url: "{url}", token_url: "{xero}", client_id_env: API_ID, client_secret_env: API_SECRET, refresh_token_env: XERO_REFRESH, access_token_env: XERO_ACCESS, timeout: 5s }} }}"#,
        qb = vendors.token_url(Vendor::Quickbooks),
        xero = vendors.token_url(Vendor::Xero),
    );
    let env = [
        ("HS_SECRET", HUBSPOT_SECRET.to_owned()),
        ("HS_TOKEN", HUBSPOT_PRIVATE_APP_TOKEN.to_owned()),
        ("QB_VERIFIER", QUICKBOOKS_VERIFIER.to_owned()),
        ("QB_REFRESH", Vendor::Quickbooks.first_refresh_token()),
        ("XERO_KEY", XERO_KEY.to_owned()),
        ("XERO_REFRESH", Vendor::Xero.first_refresh_token()),
        ("XERO_ACCESS", XERO_FIRST_ACCESS_TOKEN.to_owned()),
        ("API_ID", CLIENT_ID.to_owned()),
        ("API_SECRET", CLIENT_SECRET.to_owned()),
    ];
    Pipeline::start(Options {
        extra_sources: sources,
        extra_env: env.map(|(k, v)| (k.to_owned(), v)).into(),
        ..Options::default()
    })
    .await
}

fn hmac(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Posts a body as the vendor does: HubSpot v3 signature over method, URL, body and timestamp;
/// Intuit and Xero an HMAC of the body.
async fn send(pipeline: &Pipeline, vendor: Vendor, body: &Value) {
    let body = serde_json::to_vec(body).expect("json");
    let mut headers = vec![("content-type", "application/json".to_owned())];
    let path = match vendor {
        Vendor::Hubspot => {
            let ts = (switchyard_chassis::unix_now() * 1000).to_string();
            let parts: [&[u8]; 4] = [b"POST", HUBSPOT_URL.as_bytes(), &body, ts.as_bytes()];
            headers.push(("x-hubspot-signature-v3", b64(&hmac(HUBSPOT_SECRET, &parts))));
            headers.push(("x-hubspot-request-timestamp", ts));
            "hubspot"
        }
        Vendor::Quickbooks => {
            headers.push((
                "intuit-signature",
                b64(&hmac(QUICKBOOKS_VERIFIER, &[&body])),
            ));
            "quickbooks"
        }
        Vendor::Xero => {
            headers.push(("x-xero-signature", b64(&hmac(XERO_KEY, &[&body]))));
            "xero"
        }
    };
    let (status, text) = pipeline.send_to(path, &headers, &body).await;
    assert_eq!(status, 200, "{path}: {text}");
}

fn sample(path: &str) -> Value {
    testkit::vendor_json(&format!("samples/{path}"))
}

/// Canonical contacts by (source, id in the source), in stream order.
async fn contacts(pipeline: &Pipeline) -> Vec<((String, String), Contact)> {
    pipeline
        .stream_messages(StreamKind::Canonical)
        .await
        .iter()
        .filter_map(|m| {
            let object = CanonicalObject::decode(m.payload.as_ref()).ok()?;
            let envelope = object.envelope.as_ref()?;
            let key = (
                envelope.source_system.clone(),
                envelope.source_object_id.clone(),
            );
            match object.object? {
                canonical_object::Object::Contact(c) => Some((key, c)),
                _ => None,
            }
        })
        .collect()
}

async fn dead_letters(pipeline: &Pipeline) -> Vec<(u64, DeadLetter)> {
    pipeline
        .stream_messages(StreamKind::Dlq)
        .await
        .iter()
        .map(|m| {
            let letter = DeadLetter::decode(m.payload.as_ref()).expect("dead letter");
            (m.sequence, letter)
        })
        .collect()
}

/// The refresh token transform keeps for a source.
async fn kept_refresh_token(pipeline: &Pipeline, source: &str) -> Option<String> {
    pipeline
        .db()
        .await
        .query_opt(
            "SELECT refresh_token FROM oauth_tokens WHERE source = $1",
            &[&source],
        )
        .await
        .expect("oauth_tokens")
        .and_then(|row| row.get(0))
}

fn summary(c: &Contact) -> [&str; 7] {
    [
        &c.email,
        &c.first_name,
        &c.last_name,
        &c.phone,
        &c.company_name,
        &c.job_title,
        &c.lifecycle_stage,
    ]
}

#[tokio::test]
async fn thin_vendor_events_become_contacts_with_the_records_read_from_the_vendor_apis() {
    let vendors = Vendors::start().await;
    vendors.put(
        "/crm/v3/objects/contacts/1246965",
        vendors::hubspot_object(
            "1246965",
            json!({"email": "BCooper@Biglytics.net", "firstname": "Bryan", "lastname": "Cooper",
                "phone": "(877) 929-0687", "company": "Biglytics", "jobtitle": "CTO", "lifecyclestage": "subscriber"}),
            "2019-12-07T16:50:06.678Z",
        ),
    );
    vendors.put(
        "/crm/v3/objects/contacts/1246978",
        vendors::hubspot_object(
            "1246978",
            json!({"email": "ada@example.org", "firstname": "Ada", "lastname": "Lovelace", "lifecyclestage": "lead"}),
            "2016-05-02T19:11:47.945Z",
        ),
    );
    vendors.put(
        "/v3/company/1185883450/customer/1",
        vendors::quickbooks_customer("1"),
    );
    let mut merged = vendors::quickbooks_customer("123");
    merged["Customer"]["GivenName"] = json!("Mia");
    merged["Customer"]["PrimaryEmailAddr"]["Address"] = json!("Mia@Example.com");
    vendors.put("/v3/company/93414556*********/customer/123", merged);
    vendors.put(
        &format!("/api.xro/2.0/Contacts/{XERO_CONTACT}"),
        vendors::xero_contact(XERO_CONTACT),
    );
    let pipeline = pipeline(&vendors).await;

    send(
        &pipeline,
        Vendor::Hubspot,
        &sample("hubspot/webhook-batch.contact.propertyChange+creation.docs-example.json"),
    )
    .await;
    for name in [
        "eventNotifications.customer.create.json",
        "cloudevents.customer.merged.docs-example.json",
        "cloudevents.class.created.json",
    ] {
        send(
            &pipeline,
            Vendor::Quickbooks,
            &sample(&format!("quickbooks/{name}")),
        )
        .await;
    }
    send(&pipeline, Vendor::Xero, &sample("xero/contact.update.json")).await;
    // A credit note is not a customer invoice: no mapping, so no read, counted as unmapped.
    send(
        &pipeline,
        Vendor::Xero,
        &sample("xero/creditnote.create.json"),
    )
    .await;
    pipeline.wait_drained(WAIT).await;

    let found = contacts(&pipeline).await;
    let by = |source: &str, id: &str| {
        let matches: Vec<&Contact> = found
            .iter()
            .filter(|((s, i), _)| s == source && i == id)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(matches.len(), 1, "{source} {id} in {found:#?}");
        matches[0].clone()
    };
    assert_eq!(
        summary(&by("hubspot", "1246965")),
        [
            "bcooper@biglytics.net",
            "Bryan",
            "Cooper",
            // No country in HubSpot's record: transform leaves the national number as written,
            // and dedupe reads it in its default region.
            "(877) 929-0687",
            "Biglytics",
            "CTO",
            "subscriber"
        ]
    );
    assert_eq!(
        summary(&by("hubspot", "1246978")),
        ["ada@example.org", "Ada", "Lovelace", "", "", "", "lead"]
    );
    let bill = by("quickbooks", "1");
    assert_eq!(
        summary(&bill),
        [
            "surf@intuit.com",
            "Bill",
            "Lucchini",
            "+14154446538",
            "Bill's Windsurf Shop",
            "",
            "customer"
        ]
    );
    assert_eq!(
        bill.address.as_ref().map(|a| a.country.as_str()),
        Some("US")
    );
    assert_eq!(
        summary(&by("quickbooks", "123"))[..3],
        ["mia@example.com", "Mia", "Lucchini"]
    );
    // Xero's phone is the first of `Phones` (see xero.contact.yaml): the spec example's DDI.
    assert_eq!(
        summary(&by("xero", XERO_CONTACT)),
        [
            "bk@krave.co",
            "Blake",
            "Kohler",
            "489-44493",
            "Acme Parts Co.",
            "",
            "customer"
        ]
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        dead_letters(&pipeline).await.is_empty(),
        "every record was read and mapped"
    );

    // What the vendors saw: the documented paths, query and headers, each with its token.
    let seen = vendors.seen();
    assert_eq!(seen.len(), 5, "one read per mapped event: {seen:#?}");
    let hubspot = vendors.reads_of("/crm/v3/objects/contacts/1246965");
    assert_eq!(hubspot.len(), 1);
    assert_eq!(hubspot[0].method, "GET");
    assert_eq!(
        hubspot[0].bearer.as_deref(),
        Some(HUBSPOT_PRIVATE_APP_TOKEN)
    );
    assert!(
        hubspot[0]
            .query
            .starts_with("properties=email%2Cfirstname%2Clastname%2Cphone"),
        "{}",
        hubspot[0].query
    );
    let books = vendors.reads_of("/v3/company/1185883450/customer/1");
    assert_eq!(books.len(), 1);
    assert_eq!(books[0].query, "minorversion=75");
    assert_eq!(books[0].accept.as_deref(), Some("application/json"));
    assert_eq!(books[0].bearer.as_deref(), Some("quickbooks-access-1"));
    let xero = vendors.reads_of(&format!("/api.xro/2.0/Contacts/{XERO_CONTACT}"));
    assert_eq!(xero.len(), 1);
    assert_eq!(xero[0].xero_tenant_id.as_deref(), Some(XERO_TENANT));
    assert_eq!(xero[0].bearer.as_deref(), Some(XERO_FIRST_ACCESS_TOKEN));
    assert!(
        !seen
            .iter()
            .any(|s| s.path.contains("/class/") || s.path.contains("/CreditNotes/")),
        "no read for an event type without a mapping"
    );
    for source in ["quickbooks", "xero"] {
        let line =
            format!(r#"switchyard_transform_events_total{{source="{source}",outcome="unmapped"}}"#);
        assert_eq!(
            pipeline.metric(Service::Transform, &line).await,
            Some(1.0),
            "{line}: the QuickBooks class and the Xero credit note"
        );
    }

    // QuickBooks had no access token: one refresh served both reads, and the rotated refresh
    // token is kept for the next start.
    assert_eq!(vendors.refreshes(Vendor::Quickbooks), 1);
    assert_eq!(vendors.refused_refreshes(Vendor::Quickbooks), 0);
    let rotated = vendors.refresh_token(Vendor::Quickbooks);
    assert_ne!(rotated, Vendor::Quickbooks.first_refresh_token());
    assert_eq!(
        kept_refresh_token(&pipeline, "quickbooks").await.as_deref(),
        Some(rotated.as_str())
    );
    let kept: i64 = pipeline
        .db()
        .await
        .query_one("SELECT count(*) FROM hydrated_records", &[])
        .await
        .expect("hydrated_records")
        .get(0);
    assert_eq!(kept, 5, "every record read is kept for replay");
    let line = r#"switchyard_transform_hydrations_total{source="hubspot",outcome="fetched"}"#;
    assert_eq!(pipeline.metric(Service::Transform, line).await, Some(2.0));
    pipeline.finish().await;
}

#[tokio::test]
async fn refused_tokens_throttling_and_missing_records_are_handled_and_replays_map_the_kept_record()
{
    let vendors = Vendors::start().await;
    let mut pipeline = pipeline(&vendors).await;
    let contact_path = |id: u64| format!("/crm/v3/objects/contacts/{id}");
    let hubspot_event = |id: u64, event_id: u64| {
        json!([{"objectId": id, "changeSource": "CRM_UI", "eventId": event_id, "subscriptionId": 22,
            "portalId": 33, "appId": 1160452, "occurredAt": 1462216307945_u64,
            "subscriptionType": "contact.creation", "attemptNumber": 0}])
    };

    // Xero revokes the access token it issued at connection time: one refresh, one retry.
    let xero_path = format!("/api.xro/2.0/Contacts/{XERO_CONTACT}");
    vendors.put(&xero_path, vendors::xero_contact(XERO_CONTACT));
    vendors.fail_next(Vendor::Xero, Fault::RevokeToken);
    send(&pipeline, Vendor::Xero, &sample("xero/contact.update.json")).await;
    // HubSpot throttles the first read: the event waits `Retry-After` and goes through once.
    vendors.put(
        &contact_path(501),
        vendors::hubspot_object(
            "501",
            json!({"email": "grace@example.com", "firstname": "Grace", "lastname": "Hopper", "lifecyclestage": "lead"}),
            "2026-11-27T09:00:00Z",
        ),
    );
    vendors.fail_next(Vendor::Hubspot, Fault::RateLimited { retry_after: 1 });
    send(&pipeline, Vendor::Hubspot, &hubspot_event(501, 9001)).await;
    pipeline.wait_drained(WAIT).await;

    let xero = vendors.reads_of(&xero_path);
    let statuses: Vec<u16> = xero.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [401, 200]);
    assert_eq!(xero[0].bearer.as_deref(), Some(XERO_FIRST_ACCESS_TOKEN));
    assert_eq!(xero[1].bearer.as_deref(), Some("xero-access-1"));
    assert_eq!(vendors.refreshes(Vendor::Xero), 1, "exactly one refresh");
    let rotated = vendors.refresh_token(Vendor::Xero);
    assert_ne!(rotated, Vendor::Xero.first_refresh_token());
    assert_eq!(
        kept_refresh_token(&pipeline, "xero").await.as_deref(),
        Some(rotated.as_str()),
        "the rotated refresh token is kept"
    );
    let throttled: Vec<u16> = vendors
        .reads_of(&contact_path(501))
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(throttled, [429, 200]);
    let found = contacts(&pipeline).await;
    let grace: Vec<_> = found
        .iter()
        .filter(|((s, id), _)| s == "hubspot" && id == "501")
        .collect();
    assert_eq!(grace.len(), 1, "one canonical object: {found:#?}");
    assert_eq!(grace[0].1.email, "grace@example.com");
    assert!(
        found
            .iter()
            .any(|((s, _), c)| s == "xero" && c.email == "bk@krave.co")
    );
    assert!(dead_letters(&pipeline).await.is_empty());

    // A record the vendor does not have, and one whose lifecycle stage breaks the contract.
    vendors.put(
        &contact_path(777),
        vendors::hubspot_object(
            "777",
            json!({"email": "lin@example.com", "lifecyclestage": "1234567"}),
            "2026-11-27T09:00:00Z",
        ),
    );
    send(&pipeline, Vendor::Hubspot, &hubspot_event(404_404, 9002)).await;
    send(&pipeline, Vendor::Hubspot, &hubspot_event(777, 9003)).await;
    pipeline.wait_drained(WAIT).await;
    let letters = dead_letters(&pipeline).await;
    assert_eq!(letters.len(), 2, "{letters:#?}");
    let missing = letters
        .iter()
        .find(|(_, l)| l.reason.contains("404404"))
        .unwrap_or_else(|| panic!("{letters:#?}"));
    assert_eq!(missing.1.stage, "transform");
    assert_eq!(
        missing.1.reason,
        "hydrate hubspot contact 404404: 404 Not Found from the vendor API"
    );
    let broken = letters
        .iter()
        .find(|(_, l)| l.reason.contains("lifecycle_stage"))
        .unwrap_or_else(|| panic!("{letters:#?}"));

    // The record appears and the other is fixed at the vendor; both letters are replayed. The
    // missing one is read now; the broken one maps the record kept at its first read, so it is
    // dead-lettered again without another read.
    vendors.put(
        &contact_path(404_404),
        vendors::hubspot_object(
            "404404",
            json!({"email": "late@example.com", "lifecyclestage": "customer"}),
            "2026-11-27T09:00:00Z",
        ),
    );
    vendors.put(
        &contact_path(777),
        vendors::hubspot_object(
            "777",
            json!({"email": "lin@example.com", "lifecyclestage": "lead"}),
            "2026-11-27T10:00:00Z",
        ),
    );
    pipeline.replay(missing.0).await;
    pipeline.replay(broken.0).await;
    pipeline.wait_drained(WAIT).await;
    let found = contacts(&pipeline).await;
    assert!(
        found
            .iter()
            .any(|((s, id), c)| s == "hubspot" && id == "404404" && c.email == "late@example.com"),
        "{found:#?}"
    );
    assert!(!found.iter().any(|((_, id), _)| id == "777"));
    assert_eq!(
        vendors.reads_of(&contact_path(777)).len(),
        1,
        "no second read"
    );
    let letters = dead_letters(&pipeline).await;
    assert_eq!(letters.len(), 3, "{letters:#?}");
    assert!(
        letters[2].1.reason.contains("lifecycle_stage"),
        "{letters:#?}"
    );
    let line = r#"switchyard_transform_hydrations_total{source="hubspot",outcome="stored"}"#;
    assert_eq!(pipeline.metric(Service::Transform, line).await, Some(1.0));

    // After a restart the kept tokens win over the environment's (whose refresh token Xero
    // has since refused): the next refused access token is refreshed with the kept one.
    pipeline.stop_service(Service::Transform).await;
    pipeline.start_service(Service::Transform).await;
    vendors.fail_next(Vendor::Xero, Fault::RevokeToken);
    let mut later = sample("xero/contact.update.json");
    later["events"][0]["eventDateUtc"] = json!("2024-06-22T08:00:00.000");
    send(&pipeline, Vendor::Xero, &later).await;
    pipeline.wait_drained(WAIT).await;
    let xero = vendors.reads_of(&xero_path);
    let statuses: Vec<u16> = xero.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [401, 200, 401, 200]);
    assert_eq!(
        xero[2].bearer.as_deref(),
        Some("xero-access-1"),
        "the kept access token, not the environment's"
    );
    assert_eq!(vendors.refreshes(Vendor::Xero), 2);
    assert_eq!(
        vendors.refused_refreshes(Vendor::Xero),
        0,
        "the stale refresh token from the environment was never used"
    );
    assert_eq!(
        kept_refresh_token(&pipeline, "xero").await,
        Some(vendors.refresh_token(Vendor::Xero))
    );
    pipeline.finish().await;
}
