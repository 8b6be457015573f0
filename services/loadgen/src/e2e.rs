//! The destination end of the end-to-end benchmark and of the chaos suite: a webhook endpoint
//! that times every delivery from the moment the load generator sent its webhook (the send time
//! rides in the record id, which deliveries carry back in `external_refs`) and keeps the
//! destination's side of the ledger — which records arrived, under which `webhook-id`s. Its
//! answers can be switched (`POST /control` with `ok`, `500`, `429` or `hang`) to play a failing
//! destination.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hdrhistogram::Histogram;

/// Microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Fail500,
    Throttle429,
    /// Records the delivery, then answers only after the sender's timeout: the write happened,
    /// the answer was lost.
    Hang,
}

#[derive(Debug)]
struct Seen {
    latency: Histogram<u64>,
    /// Record id → the distinct `webhook-id`s it arrived under.
    records: HashMap<String, HashSet<String>>,
    deliveries: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    mode: Mode,
}

/// A running sink.
#[derive(Debug, Clone)]
pub struct Sink {
    seen: Arc<Mutex<Seen>>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(seen: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sink {
    /// Serves `POST /control` and `POST /…` on `addr`.
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Seen {
            latency: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            records: HashMap::new(),
            deliveries: 0,
            first: None,
            last: None,
            mode: Mode::Ok,
        }));
        let app = Router::new()
            .route("/control", post(control))
            .route("/{*path}", post(receive))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { seen })
    }

    /// Waits (at most `drain`) until every accepted record arrived, then prints the ledger and
    /// the figures: missing = accepted but never delivered; duplicates = a record written under
    /// more than one `webhook-id` (a second write); redeliveries = the same `webhook-id` again
    /// (idempotent for a receiver that honours it).
    pub async fn report(&self, accepted: &HashSet<String>, drain: Duration, label: &str) {
        let deadline = Instant::now() + drain;
        loop {
            let missing = {
                let seen = lock(&self.seen);
                accepted
                    .iter()
                    .filter(|id| !seen.records.contains_key(*id))
                    .count()
            };
            if missing == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = lock(&self.seen);
        let missing = accepted
            .iter()
            .filter(|id| !seen.records.contains_key(*id))
            .count();
        let delivered = seen.records.len();
        let writes: usize = seen.records.values().map(HashSet::len).sum();
        let duplicates = writes - delivered;
        let redeliveries = seen.deliveries.saturating_sub(writes as u64);
        let window = match (seen.first, seen.last) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let rate = if window > 0.0 {
            delivered as f64 / window
        } else {
            0.0
        };
        let ms = |q: f64| seen.latency.value_at_quantile(q) as f64 / 1000.0;
        crate::report::say(&format!(
            "{label} end to end: accepted={} delivered={delivered} ({rate:.0}/s) missing={missing} duplicates={duplicates} redeliveries={redeliveries} e2e_ms p50={:.1} p90={:.1} p99={:.1} p99.9={:.1} max={:.1}",
            accepted.len(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            seen.latency.max() as f64 / 1000.0,
        ));
    }
}

async fn control(State(seen): State<Shared>, body: Bytes) -> StatusCode {
    let mode = match body.as_ref() {
        b"ok" => Mode::Ok,
        b"500" => Mode::Fail500,
        b"429" => Mode::Throttle429,
        b"hang" => Mode::Hang,
        _ => return StatusCode::BAD_REQUEST,
    };
    lock(&seen).mode = mode;
    StatusCode::NO_CONTENT
}

async fn receive(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let now = now_micros();
    let mode = lock(&seen).mode;
    match mode {
        Mode::Fail500 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Throttle429 => {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
        }
        Mode::Ok | Mode::Hang => {}
    }
    let record = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/data/external_refs")?
                .as_array()?
                .iter()
                .find_map(|r| r.get("id")?.as_str().map(str::to_owned))
        });
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    {
        let mut seen = lock(&seen);
        let at = Instant::now();
        seen.first.get_or_insert(at);
        seen.last = Some(at);
        seen.deliveries += 1;
        if let Some(record) = record {
            let micros = record
                .rsplit('-')
                .next()
                .and_then(|t| t.parse::<u64>().ok());
            let first_arrival = !seen.records.contains_key(&record);
            seen.records.entry(record).or_default().insert(webhook_id);
            if first_arrival && let Some(micros) = micros {
                let _ = seen.latency.record(now.saturating_sub(micros).max(1));
            }
        }
    }
    if mode == Mode::Hang {
        // Longer than any sender's timeout: the write is kept, the answer never arrives in time.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    "ok".into_response()
}
