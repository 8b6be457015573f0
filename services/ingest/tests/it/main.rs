//! Ingest, run for real in-process against real NATS JetStream: what it accepts, what it refuses
//! and how it answers when the bus is gone.

use std::time::Duration;

use switchyard_chassis::CancellationToken;
use switchyard_chassis::async_nats;
use switchyard_chassis::bus::{Names, StreamKind};
use switchyard_chassis::config::{Config, Env};
use switchyard_chassis::testkit;

struct Ingest {
    base: String,
    ops: String,
    prefix: String,
    secret: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), switchyard_chassis::Error>>,
}

async fn start(nats_url: &str, publish_timeout: &str) -> Ingest {
    let prefix = testkit::unique("ing");
    let secret = testkit::random_secret();
    let yaml = format!(
        r#"
prefix: {prefix}
nats: {{ url: "{nats_url}", publish_timeout: {publish_timeout} }}
ingest: {{ listen: "127.0.0.1:0", ops_listen: "127.0.0.1:0", max_body_bytes: 2048 }}
sources:
  - {{ name: demo, kind: standard-webhooks, secret_env: [SRC_SECRET] }}
"#
    );
    let config = Config::from_yaml(&yaml, &Env::from_pairs([("SRC_SECRET", secret.as_str())]))
        .expect("test config is valid");
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
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/webhooks/{source}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("ingest answers");
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, json)
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
    }
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
