//! Ingest: the front door. Verifies each webhook, answers 2xx only once JetStream has stored the
//! event (with the sender's id as `Nats-Msg-Id`, so retries are dropped), and refuses everything
//! else with a clear status.

mod error;
mod metrics;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use prost::Message as _;
use switchyard_chassis::bus::{Bus, BusError};
use switchyard_chassis::config::{Config, SourceKind};
use switchyard_chassis::signing::{self, SigningKey};
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::RawEvent;
use tokio::net::TcpListener;

pub use error::IngestError;
use metrics::Metrics;

/// Request headers kept with the raw event (never signatures or credentials).
const KEPT_HEADERS: [&str; 3] = ["content-type", "webhook-id", "webhook-timestamp"];

/// One configured sender.
#[derive(Debug)]
struct Source {
    name: String,
    kind: SourceKind,
    keys: Vec<SigningKey>,
    tolerance_secs: i64,
}

#[derive(Debug, Clone)]
struct AppState {
    bus: Bus,
    sources: Arc<HashMap<String, Source>>,
    max_body_bytes: usize,
    metrics: Metrics,
}

/// The ingest service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    listener: TcpListener,
    router: Router,
}

impl App {
    /// Connects to NATS, declares the streams, binds the webhook and ops listeners.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        let mut sources = HashMap::new();
        for source in &config.sources {
            let keys = source
                .secrets
                .iter()
                .map(SigningKey::from_secret)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Other(format!("sources: {}: {e}", source.name)))?;
            sources.insert(
                source.name.clone(),
                Source {
                    name: source.name.clone(),
                    kind: source.kind,
                    keys,
                    tolerance_secs: i64::try_from(source.tolerance.as_secs()).unwrap_or(300),
                },
            );
        }
        let mut runtime =
            Runtime::start("ingest", &config, config.ingest.ops_listen, None, shutdown).await?;
        let state = AppState {
            bus: runtime.bus.clone(),
            sources: Arc::new(sources),
            max_body_bytes: config.ingest.max_body_bytes,
            metrics: Metrics::register(&mut runtime.registry),
        };
        let router = Router::new()
            .route("/v1/webhooks/{source}", post(receive))
            .layer(DefaultBodyLimit::max(config.ingest.max_body_bytes))
            .with_state(state);
        let listener = switchyard_chassis::runtime::bind(config.ingest.listen).await?;
        Ok(Self {
            runtime,
            listener,
            router,
        })
    }

    /// Where webhooks are received.
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.runtime.ops_addr()
    }

    /// Serves webhooks until shutdown; requests in flight are answered before it returns.
    pub async fn run(self) -> Result<(), Error> {
        let shutdown = self.runtime.shutdown.clone();
        let addr = self.addr();
        tracing::info!(%addr, "ingest listening for webhooks on /v1/webhooks/{{source}}");
        let serve = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned());
        self.runtime
            .run(async move {
                serve.await.map_err(|source| Error::Io {
                    context: "webhook server",
                    source,
                })
            })
            .await
    }
}

#[tracing::instrument(
    skip_all,
    fields(otel.kind = "server", source = %source_name, webhook_id = tracing::field::Empty)
)]
async fn receive(
    State(state): State<AppState>,
    Path(source_name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let label = if state.sources.contains_key(&source_name) {
        source_name.as_str()
    } else {
        "unknown"
    };
    match accept(&state, &source_name, &headers, body, started).await {
        Ok(accepted) => {
            let outcome = if accepted.duplicate {
                "duplicate"
            } else {
                "accepted"
            };
            state.metrics.webhook_handled(label, outcome);
            (StatusCode::OK, axum::Json(accepted)).into_response()
        }
        Err(error) => {
            state.metrics.webhook_handled(label, error.outcome());
            tracing::info!(outcome = error.outcome(), %error, "webhook refused");
            error.into_response()
        }
    }
}

/// The answer to an accepted webhook.
#[derive(Debug, serde::Serialize)]
struct Accepted {
    status: &'static str,
    event_id: String,
    /// True when this id was accepted before; the event is not processed again.
    duplicate: bool,
}

async fn accept(
    state: &AppState,
    source_name: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
) -> Result<Accepted, IngestError> {
    let source = state
        .sources
        .get(source_name)
        .ok_or_else(|| IngestError::UnknownSource(source_name.to_owned()))?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            IngestError::TooLarge(state.max_body_bytes)
        } else {
            IngestError::Body(rejection.body_text())
        }
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match source.kind {
        SourceKind::StandardWebhooks => signing::verify(
            &source.keys,
            header(signing::HEADER_ID),
            header(signing::HEADER_TIMESTAMP),
            header(signing::HEADER_SIGNATURE),
            &body,
            switchyard_chassis::unix_now(),
            source.tolerance_secs,
        )?,
    }
    // Verified above, so the header is present.
    let vendor_id = header(signing::HEADER_ID).unwrap_or_default();
    tracing::Span::current().record("webhook_id", vendor_id);
    let event_type = event_type(&body)?;
    let event_id = format!("{}:{vendor_id}", source.name);
    let raw = RawEvent {
        event_id: event_id.clone(),
        source: source.name.clone(),
        source_kind: source.kind.as_str().to_owned(),
        event_type: event_type.clone(),
        received_at: Some(switchyard_proto::timestamp(std::time::SystemTime::now())),
        content_type: header("content-type")
            .unwrap_or("application/json")
            .to_owned(),
        body: body.to_vec(),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|name| header(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect(),
    };
    let subject = state.bus.names().raw(&source.name, &event_type);
    let published = state
        .bus
        .publish(
            subject,
            &event_id,
            switchyard_chassis::async_nats::HeaderMap::new(),
            Bytes::from(raw.encode_to_vec()),
        )
        .await
        .map_err(|error: BusError| {
            tracing::warn!(%error, "event not stored; answering 503 so the sender retries");
            IngestError::Unavailable
        })?;
    state.metrics.publish_acked(started.elapsed().as_secs_f64());
    Ok(Accepted {
        status: "accepted",
        event_id,
        duplicate: published.duplicate,
    })
}

/// The event type of a Standard Webhooks payload (`{"type": …, "timestamp": …, "data": …}`).
fn event_type(body: &[u8]) -> Result<String, IngestError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| IngestError::MalformedJson(e.to_string()))?;
    let object = value.as_object().ok_or_else(|| {
        IngestError::MalformedJson("the payload must be a JSON object".to_owned())
    })?;
    Ok(object
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown")
        .to_owned())
}
