//! A destination that records every request it gets and answers from a script of statuses, so
//! tests can make it fail, refuse or recover. A refusal quotes the record it refused, as many
//! receivers' validation errors do.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use switchyard_chassis::signing;
use switchyard_chassis::testkit;
use tokio::sync::watch;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// What the sink answered.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<u16>,
    default_status: u16,
    /// Holds every answer this long (a destination that hangs past the caller's timeout).
    hang: Option<Duration>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    count: Arc<watch::Sender<usize>>,
}

/// The recording sink.
#[allow(missing_debug_implementations)]
pub struct Sink {
    shared: Shared,
    url: String,
    secret: String,
}

impl Sink {
    /// Starts on a free loopback port, answering 200 by default.
    pub async fn start() -> Self {
        let (count, _) = watch::channel(0);
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                default_status: 200,
                ..Default::default()
            })),
            count: Arc::new(count),
        };
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("sink binds");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            shared,
            url,
            secret: testkit::random_secret(),
        }
    }

    /// The sink's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signing secret deliver must use.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Answers the next requests with these statuses, then with `then`.
    pub fn script(&self, statuses: &[u16], then: u16) {
        let mut inner = self.shared.inner.lock().expect("sink lock");
        inner.script = statuses.iter().copied().collect();
        inner.default_status = then;
    }

    /// Makes every answer wait `delay` (or answer at once again with `None`).
    pub fn hang(&self, delay: Option<Duration>) {
        self.shared.inner.lock().expect("sink lock").hang = delay;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .inner
            .lock()
            .expect("sink lock")
            .received
            .clone()
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) {
        let mut rx = self.shared.count.subscribe();
        let reached = tokio::time::timeout(within, rx.wait_for(|count| *count >= n)).await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "sink got {} requests, expected at least {n} within {within:?}",
            self.received().len()
        );
    }

    /// Checks a received request's Standard Webhooks signature with the sink's secret.
    pub fn verify(&self, received: &Received) -> bool {
        let key =
            signing::SigningKey::from_secret(&self.secret.clone().into()).expect("sink secret");
        let ts: i64 = received.timestamp.parse().unwrap_or(0);
        signing::verify(
            &[key],
            Some(&received.webhook_id),
            Some(&received.timestamp),
            Some(&received.signature),
            &received.body,
            ts,
            300,
        )
        .is_ok()
    }
}

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, hang) = {
        let mut inner = shared.inner.lock().expect("sink lock");
        let status = inner.script.pop_front().unwrap_or(inner.default_status);
        inner.received.push(Received {
            webhook_id: header(signing::HEADER_ID),
            timestamp: header(signing::HEADER_TIMESTAMP),
            signature: header(signing::HEADER_SIGNATURE),
            body: body.to_vec(),
            status,
            at: std::time::Instant::now(),
        });
        let count = inner.received.len();
        shared.count.send_replace(count);
        (status, inner.hang)
    };
    if let Some(delay) = hang {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_client_error() {
        let record: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let answer = serde_json::json!({"error": "record refused", "record": record});
        return (status, axum::Json(answer)).into_response();
    }
    status.into_response()
}
