//! The shared harness: ingest started in-process against real NATS JetStream and a fresh
//! PostgreSQL database, requests to it, its metrics, and what reached the RAW stream.

use switchyard_chassis::CancellationToken;
use switchyard_chassis::async_nats;
use switchyard_chassis::bus::{Names, StreamKind};
use switchyard_chassis::config::{Config, Env};
use switchyard_chassis::testkit;

pub(crate) struct Ingest {
    pub(crate) base: String,
    pub(crate) ops: String,
    pub(crate) prefix: String,
    pub(crate) secret: String,
    database: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), switchyard_chassis::Error>>,
}

pub(crate) async fn start(nats_url: &str, publish_timeout: &str) -> Ingest {
    start_with(
        &format!("nats: {{ url: \"{nats_url}\", publish_timeout: {publish_timeout} }}"),
        "",
        &[],
    )
    .await
}

/// Starts ingest with a `demo` standard-webhooks source plus `extra_sources` (YAML list items)
/// and their secrets.
pub(crate) async fn start_with(
    nats_yaml: &str,
    extra_sources: &str,
    secrets: &[(&str, &str)],
) -> Ingest {
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
    pub(crate) async fn post(
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
    pub(crate) async fn request(
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

    pub(crate) fn signed(&self, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        testkit::signed_headers(&self.secret, id, switchyard_chassis::unix_now(), body).to_vec()
    }

    pub(crate) async fn metric(&self, line_start: &str) -> Option<u64> {
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

    pub(crate) async fn stop(self, nats_url: &str) {
        self.shutdown.cancel();
        let _ = self.task.await;
        testkit::delete_streams(nats_url, &self.prefix).await;
        testkit::drop_database(&self.database).await;
    }
}

/// (subject, Nats-Msg-Id) of every message in the RAW stream.
pub(crate) async fn raw_stream(nats_url: &str, prefix: &str) -> Vec<(String, String)> {
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

pub(crate) async fn raw_messages(nats_url: &str, prefix: &str) -> (u64, Option<String>) {
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
