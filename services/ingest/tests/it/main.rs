//! Ingest, run for real in-process against real NATS JetStream: what it accepts, what it refuses
//! and how it answers when the bus is gone.

use std::time::Duration;

use switchyard_chassis::CancellationToken;
use switchyard_chassis::async_nats;
use switchyard_chassis::bus::{Names, StreamKind};
use switchyard_chassis::config::{Config, Env};
use switchyard_chassis::testkit;

mod limits;

struct Ingest {
    base: String,
    ops: String,
    prefix: String,
    secret: String,
    database: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), switchyard_chassis::Error>>,
}

async fn start(nats_url: &str, publish_timeout: &str) -> Ingest {
    start_with(
        &format!("nats: {{ url: \"{nats_url}\", publish_timeout: {publish_timeout} }}"),
        "",
        &[],
    )
    .await
}

/// Starts ingest with a `demo` standard-webhooks source plus `extra_sources` (YAML list items)
/// and their secrets.
async fn start_with(nats_yaml: &str, extra_sources: &str, secrets: &[(&str, &str)]) -> Ingest {
    let prefix = testkit::unique("ing");
    let secret = testkit::random_secret();
    let database = testkit::fresh_database("ing").await.expect("test database");
    let yaml = format!(
        r#"
prefix: {prefix}
{nats_yaml}
database: {{ url: "{database}", pool_size: 4 }}
ingest: {{ listen: "127.0.0.1:0", ops_listen: "127.0.0.1:0", max_body_bytes: 2048, max_lag: 2 }}
sources:
  - {{ name: demo, kind: standard-webhooks, secret_env: [SRC_SECRET] }}
{extra_sources}
"#
    );
    let mut env = vec![("SRC_SECRET", secret.as_str())];
    env.extend_from_slice(secrets);
    let config = Config::from_yaml(&yaml, &Env::from_pairs(env)).expect("test config is valid");
    let shutdown = CancellationToken::new();
    let app = switchyard_ingest::App::build(config, shutdown.clone())
        .await
        .expect("ingest starts");
    let base = format!("http://{}", app.addr());
    let ops = format!("http://{}", app.ops_addr());
    let task = tokio::spawn(app.run());
    Ingest {
        base,
        ops,
        prefix,
        secret,
        database,
        shutdown,
        task,
    }
}

impl Ingest {
    async fn post(
        &self,
        source: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let mut all = vec![("content-type", "application/json".to_owned())];
        all.extend_from_slice(headers);
        let (status, text) = self
            .request(reqwest::Method::POST, source, &all, body)
            .await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Any request; headers as given (no content type added); answers status and body text.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/v1/webhooks/{path}", self.base))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("ingest answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    fn signed(&self, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        testkit::signed_headers(&self.secret, id, switchyard_chassis::unix_now(), body).to_vec()
    }

    async fn metric(&self, line_start: &str) -> Option<u64> {
        let text = reqwest::get(format!("{}/metrics", self.ops))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    async fn stop(self, nats_url: &str) {
        self.shutdown.cancel();
        let _ = self.task.await;
        testkit::delete_streams(nats_url, &self.prefix).await;
        testkit::drop_database(&self.database).await;
    }
}

/// (subject, Nats-Msg-Id) of every message in the RAW stream.
async fn raw_stream(nats_url: &str, prefix: &str) -> Vec<(String, String)> {
    let client = async_nats::connect(nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(Names::new(prefix).stream(StreamKind::Raw))
        .await
        .expect("RAW stream");
    let state = stream.info().await.expect("info").state.clone();
    let mut out = Vec::new();
    if state.messages > 0 {
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                let id = m
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                out.push((m.subject.to_string(), id));
            }
        }
    }
    out
}

async fn raw_messages(nats_url: &str, prefix: &str) -> (u64, Option<String>) {
    let client = async_nats::connect(nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(Names::new(prefix).stream(StreamKind::Raw))
        .await
        .expect("RAW stream");
    let count = stream.info().await.expect("info").state.messages;
    let msg_id = if count > 0 {
        stream
            .get_raw_message(1)
            .await
            .ok()
            .and_then(|m| m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()))
    } else {
        None
    };
    (count, msg_id)
}

#[tokio::test]
async fn refuses_bad_input_with_clear_statuses_and_counts_it() {
    let nats = testkit::nats_url();
    let ingest = start(&nats, "5s").await;
    let body = br#"{"type":"contact.created","data":{"id":"1","email":"a@example.com"}}"#;

    let (status, json) = ingest
        .post("nobody", &ingest.signed("m1", body), body)
        .await;
    assert_eq!(status, 404, "{json}");
    assert_eq!(json["error"]["code"], "unknown_source");

    let mut forged = ingest.signed("m2", body);
    forged[2].1 = "v1,bm90IGEgcmVhbCBzaWduYXR1cmUgYXQgYWxsIQ==".to_owned();
    let (status, json) = ingest.post("demo", &forged, body).await;
    assert_eq!(status, 401, "{json}");
    assert_eq!(json["error"]["code"], "bad_signature");

    let (status, _) = ingest.post("demo", &[], body).await;
    assert_eq!(status, 401, "unsigned requests are refused");

    let stale = testkit::signed_headers(
        &ingest.secret,
        "m3",
        switchyard_chassis::unix_now() - 600,
        body,
    );
    let (status, json) = ingest.post("demo", &stale, body).await;
    assert_eq!(status, 401, "{json}");
    assert_eq!(json["error"]["code"], "stale_timestamp");

    let malformed = b"{\"type\": \"contact.created\", ";
    let (status, json) = ingest
        .post("demo", &ingest.signed("m4", malformed), malformed)
        .await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("malformed JSON"),
        "{json}"
    );

    let (status, _) = ingest
        .request(
            reqwest::Method::POST,
            "demo",
            &ingest.signed("m6", body),
            body,
        )
        .await;
    assert_eq!(status, 415, "no content type");
    let mut as_text = ingest.signed("m7", body);
    as_text.push(("content-type", "text/plain".to_owned()));
    let (status, text) = ingest
        .request(reqwest::Method::POST, "demo", &as_text, body)
        .await;
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("unsupported content type"), "{text}");
    let (status, _) = ingest.request(reqwest::Method::GET, "demo", &[], b"").await;
    assert_eq!(status, 405);

    let big = format!(
        r#"{{"type":"contact.created","data":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    let (status, json) = ingest
        .post("demo", &ingest.signed("m5", big.as_bytes()), big.as_bytes())
        .await;
    assert_eq!(status, 413, "{json}");

    // None of them reached the pipeline.
    assert_eq!(raw_messages(&nats, &ingest.prefix).await.0, 0);
    // All of them were counted.
    let counted = [
        ("unknown", "unknown_source", 1),
        ("demo", "bad_signature", 2),
        ("demo", "stale_timestamp", 1),
        ("demo", "malformed", 1),
        ("demo", "too_large", 1),
        ("demo", "unsupported_media_type", 2),
        ("demo", "method_not_allowed", 1),
    ];
    for (source, outcome, expected) in counted {
        let line =
            format!(r#"switchyard_ingest_webhooks_total{{source="{source}",outcome="{outcome}"}}"#);
        assert_eq!(ingest.metric(&line).await, Some(expected), "{line}");
    }

    // A genuine webhook is stored once, with the sender's id as Nats-Msg-Id.
    let headers = ingest.signed("msg_genuine", body);
    let (status, json) = ingest.post("demo", &headers, body).await;
    assert_eq!(
        (status, json["duplicate"].as_bool()),
        (200, Some(false)),
        "{json}"
    );
    let (status, json) = ingest.post("demo", &headers, body).await;
    assert_eq!(
        (status, json["duplicate"].as_bool()),
        (200, Some(true)),
        "a retry is acknowledged but not stored again: {json}"
    );
    let (count, msg_id) = raw_messages(&nats, &ingest.prefix).await;
    assert_eq!(count, 1);
    assert_eq!(msg_id.as_deref(), Some("demo:msg_genuine"));
    ingest.stop(&nats).await;
}

#[tokio::test]
async fn answers_503_when_the_bus_is_unreachable_and_does_not_count_it_accepted() {
    let mut nats = testkit::PrivateNats::start()
        .await
        .expect("private nats-server");
    let ingest = start(&nats.url, "1s").await;
    let body = br#"{"type":"contact.created","data":{"id":"1","email":"a@example.com"}}"#;
    let (status, _) = ingest
        .post("demo", &ingest.signed("before", body), body)
        .await;
    assert_eq!(status, 200, "accepted while the bus is up");

    nats.kill();
    let started = std::time::Instant::now();
    let (status, json) = ingest
        .post("demo", &ingest.signed("after", body), body)
        .await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"]["code"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the sender is not kept waiting"
    );

    let accepted = r#"switchyard_ingest_webhooks_total{source="demo",outcome="accepted"}"#;
    let unavailable = r#"switchyard_ingest_webhooks_total{source="demo",outcome="unavailable"}"#;
    assert_eq!(ingest.metric(accepted).await, Some(1));
    assert_eq!(ingest.metric(unavailable).await, Some(1));
    let ready = reqwest::get(format!("{}/readyz", ingest.ops))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 503, "not ready without the bus");
    ingest.stop(&nats.url).await;
}

fn b64_hmac(key: &str, parts: &[&[u8]]) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for p in parts {
        mac.update(p);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn hex_hmac(key: &str, parts: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn sample(path: &str) -> Vec<u8> {
    let file = testkit::vendor_file(&format!("samples/{path}"))
        .display()
        .to_string();
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}")))
            .expect("json");
    serde_json::to_vec(&value).expect("json")
}

const VENDOR_SOURCES: &str = r#"
  - { name: hub, kind: hubspot, secret_env: [HUB], public_url: "https://hooks.example.com/v1/webhooks/hub" }
  - { name: stripe, kind: stripe, secret_env: [STRIPE] }
  - { name: shop, kind: shopify, secret_env: [SHOP] }
  - { name: qbo, kind: quickbooks, secret_env: [QBO] }
  - { name: xero, kind: xero, secret_env: [XERO] }
  - { name: mc, kind: mailchimp, secret_env: [MC] }
  - { name: kl, kind: klaviyo, secret_env: [KL] }
  - { name: sf, kind: salesforce, organization_id: "00D000000000062EAA" }
"#;

struct Case {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// (subject tail after `<prefix>.raw.`, Nats-Msg-Id) expected on the RAW stream.
    expect: Vec<(String, String)>,
    /// What the vendor must get back.
    reply: &'static str,
}

fn vendor_cases() -> Vec<Case> {
    let now = switchyard_chassis::unix_now();
    let now_ms = (now * 1000).to_string();
    let hub = sample("hubspot/webhook-batch.contact.propertyChange+creation.docs-example.json");
    let stripe = sample("stripe/customer.created.derived-from-fixtures.json");
    let qbo = sample("quickbooks/eventNotifications.customer.create.json");
    let qbo_ce = sample("quickbooks/cloudevents.customer.merged.docs-example.json");
    let xero = sample("xero/contact.update.json");
    let kl = br#"{"data":[{"external_id":"kl-1","topic":"event:klaviyo.subscribed_to_list","payload":{}},{"external_id":"kl-2","topic":"event:klaviyo.subscribed_to_list","payload":{}}],"meta":{"klaviyo_account_id":"A"}}"#.to_vec();
    let shop = br#"{"id":706405506930370084,"email":"bob@example.com"}"#.to_vec();
    let mc_fields: serde_json::Value =
        serde_json::from_slice(&sample("mailchimp/profile.form-fields.json")).expect("json");
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in mc_fields.as_object().expect("map") {
        form.append_pair(k, v.as_str().unwrap_or_default());
    }
    let mc = form.finish().into_bytes();
    let sf = SALESFORCE.as_bytes().to_vec();
    let json = || ("content-type", "application/json".to_owned());
    vec![
        Case {
            path: "hub",
            headers: vec![json(), ("x-hubspot-request-timestamp", now_ms.clone()),
                ("x-hubspot-signature-v3", b64_hmac("hub-secret", &[b"POST", b"https://hooks.example.com/v1/webhooks/hub", &hub, now_ms.as_bytes()]))],
            expect: vec![("hub.contact.propertychange".into(), "hub:3816279340".into()), ("hub.contact.creation".into(), "hub:3816279480".into())],
            body: hub,
            reply: "json",
        },
        Case {
            path: "stripe",
            headers: vec![json(), ("stripe-signature", format!("t={now},v1={}", hex_hmac("whsec_stripe", &[now.to_string().as_bytes(), b".", &stripe])))],
            expect: vec![("stripe.customer.created".into(), "stripe:evt_1Pgc76B7WZ01zgkWwyRHS12y".into())],
            body: stripe,
            reply: "json",
        },
        Case {
            path: "shop",
            headers: vec![json(), ("x-shopify-hmac-sha256", b64_hmac("shop-secret", &[&shop])), ("x-shopify-webhook-id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into()), ("x-shopify-topic", "customers/create".into())],
            expect: vec![("shop.customers.create".into(), "shop:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into())],
            body: shop,
            reply: "json",
        },
        Case {
            path: "qbo",
            headers: vec![json(), ("intuit-signature", b64_hmac("qbo-token", &[&qbo]))],
            expect: vec![("qbo.customer.create".into(), "qbo:1185883450:Customer:1:Create:2015-10-05T14:42:19-0700".into())],
            body: qbo,
            reply: "json",
        },
        Case {
            path: "qbo",
            headers: vec![("content-type", "application/cloudevents-batch+json".into()), ("intuit-signature", b64_hmac("qbo-token", &[&qbo_ce]))],
            expect: vec![],
            body: qbo_ce,
            reply: "json",
        },
        Case {
            path: "xero",
            headers: vec![json(), ("x-xero-signature", b64_hmac("xero-key", &[&xero]))],
            expect: vec![("xero.contact.update".into(), "xero:c2cc9b6e-9458-4c7d-93cc-f02b81b0594f:CONTACT:717f2bfc-c6d4-41fd-b238-3f2f0c0cf777:UPDATE:2024-06-21T01:15:39.902".into())],
            body: xero,
            reply: "empty",
        },
        Case {
            path: "mc/mc-token",
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            expect: vec![],
            body: mc,
            reply: "json",
        },
        Case {
            path: "kl",
            headers: vec![json(), ("klaviyo-timestamp", now.to_string()), ("klaviyo-signature", hex_hmac("kl-secret", &[&kl, now.to_string().as_bytes()]))],
            expect: vec![("kl.event.klaviyo.subscribed_to_list".into(), "kl:kl-1".into()), ("kl.event.klaviyo.subscribed_to_list".into(), "kl:kl-2".into())],
            body: kl,
            reply: "json",
        },
        Case {
            path: "sf",
            headers: vec![("content-type", "text/xml; charset=utf-8".into())],
            expect: vec![("sf.contact.outbound_message".into(), "sf:04l000000000001AAA".into()), ("sf.lead.outbound_message".into(), "sf:04l000000000002AAA".into())],
            body: sf,
            reply: "soap",
        },
    ]
}

const SALESFORCE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000062EAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <Notification><Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>003000000000001AAA</sf:Id><sf:Email>jane@example.com</sf:Email></sObject>
   </Notification>
   <Notification><Id>04l000000000002AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>00Q000000000001AAA</sf:Id></sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

#[tokio::test]
async fn every_vendor_kind_stores_genuine_webhooks_and_refuses_tampered_ones() {
    let nats = testkit::nats_url();
    let secrets = [
        ("HUB", "hub-secret"),
        ("STRIPE", "whsec_stripe"),
        ("SHOP", "shop-secret"),
        ("QBO", "qbo-token"),
        ("XERO", "xero-key"),
        ("MC", "mc-token"),
        ("KL", "kl-secret"),
    ];
    let ingest = start_with(
        &format!("nats: {{ url: \"{nats}\" }}"),
        VENDOR_SOURCES,
        &secrets,
    )
    .await;
    let mut expected = Vec::new();
    for case in vendor_cases() {
        let (status, text) = ingest
            .request(reqwest::Method::POST, case.path, &case.headers, &case.body)
            .await;
        assert_eq!(status, 200, "{}: {text}", case.path);
        match case.reply {
            "empty" => assert!(
                text.is_empty(),
                "{}: Xero wants an empty body, got {text}",
                case.path
            ),
            "soap" => assert!(text.contains("<Ack>true</Ack>"), "{}: {text}", case.path),
            _ => assert!(
                text.contains("\"status\":\"accepted\""),
                "{}: {text}",
                case.path
            ),
        }
        for (tail, id) in &case.expect {
            expected.push((format!("{}.raw.{tail}", ingest.prefix), id.clone()));
        }
        // The vendor retries: acknowledged again, stored once.
        let (status, _) = ingest
            .request(reqwest::Method::POST, case.path, &case.headers, &case.body)
            .await;
        assert_eq!(status, 200, "{}: retry", case.path);
        // One flipped byte: refused, with Xero's empty body. Mailchimp and Salesforce sign
        // nothing; their URL token and organisation id are checked below instead.
        if case.path != "sf" && !case.path.starts_with("mc/") {
            let mut tampered = case.body.clone();
            let last = tampered.len() - 2;
            tampered[last] ^= 0x01;
            let (status, text) = ingest
                .request(reqwest::Method::POST, case.path, &case.headers, &tampered)
                .await;
            assert_eq!(status, 401, "{}: tampered: {text}", case.path);
            if case.path == "xero" {
                assert!(text.is_empty(), "Xero gets an empty body even on 401");
            }
        }
    }
    let foreign = SALESFORCE.replace("00D000000000062EAA", "00D000000000099EAA");
    let (status, _) = ingest
        .request(
            reqwest::Method::POST,
            "sf",
            &[("content-type", "text/xml".into())],
            foreign.as_bytes(),
        )
        .await;
    assert_eq!(status, 401, "another organisation's messages are refused");
    let (status, _) = ingest
        .request(reqwest::Method::GET, "mc/mc-token", &[], b"")
        .await;
    assert_eq!(status, 200, "Mailchimp's URL validation");
    let (status, _) = ingest
        .request(reqwest::Method::GET, "mc/wrong", &[], b"")
        .await;
    assert_eq!(status, 401);
    let form = [(
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    let (status, _) = ingest
        .request(reqwest::Method::POST, "mc/wrong", &form, b"type=subscribe")
        .await;
    assert_eq!(
        status, 401,
        "a Mailchimp post without the URL token is refused"
    );
    // Xero's intent-to-receive handshake.
    let handshake = br#"{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"X"}"#;
    let signed = vec![
        ("content-type", "application/json".to_owned()),
        ("x-xero-signature", b64_hmac("xero-key", &[handshake])),
    ];
    assert_eq!(
        ingest
            .request(reqwest::Method::POST, "xero", &signed, handshake)
            .await,
        (200, String::new())
    );
    let forged = vec![
        ("content-type", "application/json".to_owned()),
        ("x-xero-signature", b64_hmac("nope", &[handshake])),
    ];
    assert_eq!(
        ingest
            .request(reqwest::Method::POST, "xero", &forged, handshake)
            .await,
        (401, String::new())
    );

    let stored = raw_stream(&nats, &ingest.prefix).await;
    for pair in &expected {
        assert_eq!(
            stored.iter().filter(|s| *s == pair).count(),
            1,
            "{pair:?} stored exactly once in {stored:#?}"
        );
    }
    // Every genuine event is on the stream, no retry twice: the CloudEvents and Mailchimp cases
    // add one each beyond the listed ones.
    assert_eq!(stored.len(), expected.len() + 2, "{stored:#?}");
    ingest.stop(&nats).await;
}

#[tokio::test]
async fn a_retry_after_the_jetstream_window_is_still_stored_once() {
    let nats = testkit::nats_url();
    let ingest = start_with(
        &format!("nats: {{ url: \"{nats}\", duplicate_window: 1s }}"),
        "",
        &[],
    )
    .await;
    let body = br#"{"type":"contact.created","data":{"id":"1","email":"a@example.com"}}"#;
    let (status, json) = ingest
        .post("demo", &ingest.signed("late", body), body)
        .await;
    assert_eq!((status, json["duplicate"].as_bool()), (200, Some(false)));
    // Outlive JetStream's one-second window: only the PostgreSQL record can catch the retry now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, json) = ingest
        .post("demo", &ingest.signed("late", body), body)
        .await;
    assert_eq!(
        (status, json["duplicate"].as_bool()),
        (200, Some(true)),
        "{json}"
    );
    assert_eq!(raw_messages(&nats, &ingest.prefix).await.0, 1);
    ingest.stop(&nats).await;
}

#[tokio::test]
async fn a_backlog_past_the_bound_answers_429_with_retry_after() {
    let nats = testkit::nats_url();
    let ingest = start_with(&format!("nats: {{ url: \"{nats}\" }}"), "", &[]).await;
    // Transform's consumer exists but nothing consumes it: the backlog only grows.
    let client = async_nats::connect(&nats).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let names = Names::new(&ingest.prefix);
    let stream = js
        .get_stream(names.stream(StreamKind::Raw))
        .await
        .expect("RAW");
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(names.consumer("transform")),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    let refused = loop {
        assert!(std::time::Instant::now() < deadline, "never answered 429");
        i += 1;
        let body = format!(r#"{{"type":"contact.created","data":{{"id":"{i}"}}}}"#);
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/webhooks/demo", ingest.base))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in ingest.signed(&format!("b{i}"), body.as_bytes()) {
            request = request.header(k, v);
        }
        let response = request.send().await.expect("answer");
        if response.status().as_u16() == 429 {
            break response;
        }
        assert_eq!(response.status().as_u16(), 200);
        // Let the backlog watcher take its next reading.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let (stored, _) = raw_messages(&nats, &ingest.prefix).await;
    assert!(
        stored > 2,
        "refused only past the bound of 2 (stored {stored})"
    );
    let overloaded = r#"switchyard_ingest_webhooks_total{source="demo",outcome="overloaded"}"#;
    assert_eq!(ingest.metric(overloaded).await, Some(1));
    ingest.stop(&nats).await;
}

/// Posts signed webhooks (`<tag>1`, `<tag>2`, …) until one is answered `wanted`, within 15 s;
/// every other answer must be `otherwise`. Returns the wanted response.
async fn post_until(ingest: &Ingest, tag: &str, wanted: u16, otherwise: u16) -> reqwest::Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for i in 1.. {
        assert!(
            std::time::Instant::now() < deadline,
            "never answered {wanted}"
        );
        let body = format!(r#"{{"type":"contact.created","data":{{"id":"{tag}{i}"}}}}"#);
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/webhooks/demo", ingest.base))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in ingest.signed(&format!("{tag}{i}"), body.as_bytes()) {
            request = request.header(k, v);
        }
        let response = request.send().await.expect("answer");
        if response.status().as_u16() == wanted {
            return response;
        }
        assert_eq!(response.status().as_u16(), otherwise);
        // The backlog watcher measures twice a second.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn a_lagging_deliver_consumer_answers_429_until_its_backlog_drains() {
    let nats = testkit::nats_url();
    // A flow whose deliver consumer is stopped: its backlog is the pipeline's lag, as much as
    // transform's would be.
    let sink_secret = testkit::random_secret();
    let ingest = start_with(
        &format!("nats: {{ url: \"{nats}\" }}"),
        "destinations:\n  - { name: sink, kind: webhook, url: \"http://127.0.0.1:9/hooks\", secret_env: SINK_SECRET }\n\
         flows:\n  - { name: slow, object: contact, on: [created], destination: sink }\n",
        &[("SINK_SECRET", sink_secret.as_str())],
    )
    .await;
    let client = async_nats::connect(&nats).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let names = Names::new(&ingest.prefix);
    let golden = js
        .get_stream(names.stream(StreamKind::Golden))
        .await
        .expect("GOLDEN");
    let consumer: async_nats::jetstream::consumer::PullConsumer = golden
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(names.consumer("deliver-slow")),
            filter_subject: names.golden("contact"),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("deliver consumer");
    // Five golden changes waiting: past the bound of two.
    for i in 0..5 {
        js.publish(names.golden("contact"), format!("change {i}").into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }

    let refused = post_until(&ingest, "lag", 429, 200).await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = refused.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "overloaded");
    let lag = r#"switchyard_ingest_pipeline_lag "#;
    assert_eq!(ingest.metric(lag).await, Some(5));

    // Deliver catches up: every change handled and acknowledged.
    let mut batch = consumer
        .fetch()
        .max_messages(5)
        .messages()
        .await
        .expect("fetch");
    let mut drained = 0;
    while let Some(message) = futures::StreamExt::next(&mut batch).await {
        message.expect("message").double_ack().await.expect("ack");
        drained += 1;
    }
    assert_eq!(drained, 5);

    let accepted = post_until(&ingest, "drained", 200, 429).await;
    let body: serde_json::Value = accepted.json().await.expect("JSON body");
    assert_eq!(body["status"], "accepted");
    ingest.stop(&nats).await;
}
