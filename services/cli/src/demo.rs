//! Demo tools: a signature-checking sink that prints what arrives, and a sender of signed sample
//! webhooks that shows creation, a differently-typed update, a repeat and a no-op.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use secrecy::SecretString;
use switchyard_chassis::signing::{self, SigningKey};

/// Prints a line for the person running the demo.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn key_from_env(var: &str) -> anyhow::Result<SigningKey> {
    let secret =
        std::env::var(var).map_err(|_| anyhow::anyhow!("environment variable {var} is not set"))?;
    Ok(SigningKey::from_secret(&SecretString::from(secret))?)
}

#[derive(Clone)]
struct SinkState {
    key: Arc<SigningKey>,
    seen: Arc<Mutex<HashSet<String>>>,
}

pub async fn sink(listen: SocketAddr, secret_env: &str) -> anyhow::Result<()> {
    let state = SinkState {
        key: Arc::new(key_from_env(secret_env)?),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    say(&format!("demo sink listening on http://{listen}/"));
    axum::serve(listener, app)
        .with_graceful_shutdown(switchyard_chassis::shutdown::on_signals().cancelled_owned())
        .await?;
    Ok(())
}

async fn receive(State(state): State<SinkState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = signing::verify(
        std::slice::from_ref(&*state.key),
        header(signing::HEADER_ID),
        header(signing::HEADER_TIMESTAMP),
        header(signing::HEADER_SIGNATURE),
        &body,
        switchyard_chassis::unix_now(),
        300,
    );
    if let Err(error) = verified {
        say(&format!("sink: REFUSED a delivery: {error}"));
        return StatusCode::UNAUTHORIZED;
    }
    let id = header(signing::HEADER_ID).unwrap_or_default().to_owned();
    let first = state
        .seen
        .lock()
        .map(|mut s| s.insert(id.clone()))
        .unwrap_or(true);
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let data = &value["data"];
    let email = data["email"]
        .as_str()
        .map(switchyard_chassis::telemetry::redact_email)
        .unwrap_or_default();
    say(&format!(
        "sink: {} {} golden={} version={} email={} changed={} (signature verified, webhook-id {id}){}",
        if first { "received" } else { "repeat of" },
        value["type"].as_str().unwrap_or("?"),
        data["id"].as_str().unwrap_or("?"),
        data["version"],
        email,
        data["changed_fields"],
        if first { "" } else { " — dropped" },
    ));
    StatusCode::OK
}

pub async fn send(ingest: &str, source: &str, secret_env: &str) -> anyhow::Result<()> {
    let key = key_from_env(secret_env)?;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/webhooks/{source}", ingest.trim_end_matches('/'));
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..8];
    let now = time::OffsetDateTime::now_utc();
    let at = |secs: i64| {
        (now + time::Duration::seconds(secs))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let jane = format!("Jane.Doe.{run}@Example.com");
    let steps = [
        (
            "new contact",
            format!("evt_{run}_1"),
            serde_json::json!({"type": "contact.created", "timestamp": at(0),
            "data": {"id": format!("crm-{run}-1"), "email": jane, "name": "Jane Doe", "marketing_consent": true}}),
        ),
        (
            "same person, email typed differently, phone added",
            format!("evt_{run}_2"),
            serde_json::json!({"type": "contact.updated", "timestamp": at(1),
            "data": {"id": format!("shop-{run}-7"), "email": format!("  {}  ", jane.to_lowercase()), "first_name": "Jane", "last_name": "Doe", "phone": "+44 20 7946 0958"}}),
        ),
        (
            "the sender retries the same webhook",
            format!("evt_{run}_2"),
            serde_json::Value::Null,
        ),
        (
            "an update that changes nothing",
            format!("evt_{run}_3"),
            serde_json::json!({"type": "contact.updated", "timestamp": at(2),
            "data": {"id": format!("shop-{run}-7"), "email": jane.to_lowercase(), "phone": "+44 20 7946 0958"}}),
        ),
        (
            "another person",
            format!("evt_{run}_4"),
            serde_json::json!({"type": "contact.created", "timestamp": at(3),
            "data": {"id": format!("crm-{run}-2"), "email": format!("sam.{run}@example.org"), "name": "Sam Lee"}}),
        ),
    ];
    let mut last_body = Vec::new();
    for (what, id, payload) in steps {
        let body = if payload.is_null() {
            last_body.clone()
        } else {
            serde_json::to_vec(&payload)?
        };
        last_body.clone_from(&body);
        let ts = switchyard_chassis::unix_now();
        let mut request = client.post(&url).header("content-type", "application/json");
        for (name, value) in key.headers(&id, ts, &body) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        say(&format!("send: {what:<52} → {status} {text}"));
    }
    Ok(())
}
