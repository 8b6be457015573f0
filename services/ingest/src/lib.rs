//! Ingest: the front door. Verifies each webhook as its vendor documents, splits batches into one
//! event per change, answers 2xx only once JetStream has stored every event (with the vendor's id
//! as `Nats-Msg-Id`, and a longer-lived record in PostgreSQL, so retries are not stored twice),
//! and refuses everything else with a clear status.

mod error;
mod load;
mod metrics;
mod seen;
pub mod sources;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use prost::Message as _;
use switchyard_chassis::bus::{Bus, BusError};
use switchyard_chassis::config::{Config, SourceKind};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::RawEvent;
use tokio::net::TcpListener;
use tracing::Instrument as _;

pub use error::IngestError;
use load::Backlog;
use metrics::Metrics;
use sources::{Incoming, Reply, Source};

mod migrations {
    refinery::embed_migrations!("migrations");
}

/// Request headers kept with the raw event (never signatures or credentials).
const KEPT_HEADERS: [&str; 6] = [
    "content-type",
    "webhook-id",
    "webhook-timestamp",
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-hubspot-request-timestamp",
];

/// Shared by every request; behind one `Arc` so a request costs one reference count, not a
/// clone of the NATS client and pools.
type AppState = Arc<Shared>;

#[derive(Debug)]
struct Shared {
    bus: Bus,
    recorder: seen::Recorder,
    lookup: seen::Lookup,
    sources: Arc<HashMap<String, Source>>,
    max_body_bytes: usize,
    max_header_bytes: usize,
    metrics: Metrics,
    backlog: Backlog,
}

/// The ingest service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    listener: TcpListener,
    router: Router,
    backlog: Backlog,
    pool: Pool,
    retention: Duration,
}

impl App {
    /// Connects to NATS and PostgreSQL, declares the streams, binds the webhook and ops listeners.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        let mut sources = HashMap::new();
        for source in &config.sources {
            sources.insert(
                source.name.clone(),
                Source::new(source).map_err(Error::Other)?,
            );
        }
        let mut runtime = Runtime::start(
            "ingest",
            &config,
            config.ingest.ops_listen,
            Some(migrations::migrations::runner()),
            shutdown,
        )
        .await?;
        let pool = runtime.pool()?;
        let flows: Vec<String> = config.flows.iter().map(|f| f.name.clone()).collect();
        let backlog = Backlog::new(runtime.bus.clone(), config.ingest.max_lag, &flows);
        runtime.registry.register(
            "ingest_pipeline_lag",
            "Unfinished messages of the stage furthest behind (transform, dedupe or a flow), as ingest's back-pressure last measured it",
            backlog.lag_gauge(),
        );
        let state = Arc::new(Shared {
            bus: runtime.bus.clone(),
            recorder: seen::Recorder::start(pool.clone(), runtime.shutdown.clone()),
            lookup: seen::Lookup::start(pool.clone(), 2),
            sources: Arc::new(sources),
            max_body_bytes: config.ingest.max_body_bytes,
            max_header_bytes: config.ingest.max_header_bytes,
            metrics: Metrics::register(&mut runtime.registry),
            backlog: backlog.clone(),
        });
        let router = Router::new()
            .route("/v1/webhooks/{source}", any(receive))
            .route("/v1/webhooks/{source}/{token}", any(receive_with_token))
            .layer(DefaultBodyLimit::max(config.ingest.max_body_bytes))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                limit_headers,
            ))
            .with_state(state);
        let listener = switchyard_chassis::runtime::bind(config.ingest.listen).await?;
        Ok(Self {
            runtime,
            listener,
            router,
            backlog,
            pool,
            retention: config.ingest.dedupe_retention,
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
        tokio::spawn(self.backlog.clone().watch(shutdown.clone()));
        tokio::spawn(seen::prune(
            self.pool.clone(),
            self.retention,
            shutdown.clone(),
        ));
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

/// Refuses a header section over `ingest.max_header_bytes` with 431 before the body is read (the
/// HTTP library's own bound is its ~400 KiB read buffer).
async fn limit_headers(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // As sent: "name: value\r\n" per header.
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size <= state.max_header_bytes {
        return next.run(request).await;
    }
    let label = request
        .uri()
        .path()
        .strip_prefix("/v1/webhooks/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|name| state.sources.get(name))
        .map_or("unknown", |s| s.name.as_str());
    let error = IngestError::HeadersTooLarge(state.max_header_bytes);
    state.metrics.webhook_handled(label, error.outcome());
    tracing::info!(
        source = label,
        header_bytes = size,
        outcome = error.outcome(),
        "webhook refused"
    );
    error.into_response()
}

async fn receive(
    state: State<AppState>,
    Path(source): Path<String>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, source, None, method, uri, headers, body).await
}

async fn receive_with_token(
    state: State<AppState>,
    Path((source, token)): Path<(String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, source, Some(token), method, uri, headers, body).await
}

/// The request's server span, a child of the sender's `traceparent` when it has one.
async fn handle(
    state: State<AppState>,
    source_name: String,
    token: Option<String>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let span = tracing::info_span!(
        "webhook",
        otel.kind = "server",
        otel.name = "POST /v1/webhooks/{source}",
        http.request.method = %method,
        source = %source_name,
        kind = tracing::field::Empty,
        events = tracing::field::Empty,
    );
    // A sender that traces (e.g. our own outbound webhooks) continues its trace here. The parent
    // must be set before the span is first entered: once entered, its trace is fixed.
    switchyard_chassis::telemetry::adopt_http_context(&span, &headers);
    respond(state, source_name, token, method, uri, headers, body)
        .instrument(span)
        .await
}

async fn respond(
    State(state): State<AppState>,
    source_name: String,
    token: Option<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let source = state.sources.get(&source_name);
    let label = source.map_or("unknown", |s| s.name.as_str());
    let result = match source {
        Some(source) => {
            tracing::Span::current().record("kind", source.kind.as_str());
            accept(
                &state,
                source,
                token.as_deref(),
                &method,
                &uri,
                &headers,
                body,
                started,
            )
            .await
        }
        None => Err(IngestError::UnknownSource(source_name.clone())),
    };
    match result {
        Ok(response) => response,
        Err(error) => {
            state.metrics.webhook_handled(label, error.outcome());
            tracing::info!(outcome = error.outcome(), %error, "webhook refused");
            // Xero's handshake judges the status alone and wants an empty body.
            if source.is_some_and(|s| s.kind == SourceKind::Xero) {
                return error.status().into_response();
            }
            error.into_response()
        }
    }
}

/// The answer to a request whose events were all stored.
#[derive(Debug, serde::Serialize)]
struct Accepted {
    status: &'static str,
    /// Events the request held.
    events: usize,
    /// True when every event was accepted before; nothing is processed again.
    duplicate: bool,
    /// The first event's id (the only one for unbatched senders).
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one request's parts, passed through once
async fn accept(
    state: &AppState,
    source: &Source,
    token: Option<&str>,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
) -> Result<Response, IngestError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            IngestError::TooLarge(state.max_body_bytes)
        } else {
            IngestError::Body(rejection.body_text())
        }
    })?;
    let incoming = Incoming {
        method,
        url: full_url(headers, uri),
        headers,
        body: &body,
        path_token: token,
        now_ms: now_ms(),
    };
    let parsed = source.accept(&incoming)?;
    tracing::Span::current().record("events", parsed.events.len());
    if !parsed.events.is_empty() && state.backlog.overloaded() {
        return Err(IngestError::Overloaded);
    }
    let _in_flight = state.backlog.publishing(parsed.events.len());
    let received_at = Some(switchyard_proto::timestamp(std::time::SystemTime::now()));
    let kept: HashMap<String, String> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*name).to_owned(), v.to_owned()))
        })
        .collect();
    let event_ids: Vec<String> = parsed
        .events
        .iter()
        .map(|e| format!("{}:{}", source.name, e.vendor_id))
        .collect();
    // Ids stored long ago (past JetStream's window) are acknowledged without storing them again.
    let known = state.lookup.known(&event_ids).await;
    let mut publishes = Vec::new();
    for (event, event_id) in parsed.events.iter().zip(&event_ids) {
        if known.contains(event_id) {
            continue;
        }
        let raw = RawEvent {
            event_id: event_id.clone(),
            source: source.name.clone(),
            source_kind: source.kind.as_str().to_owned(),
            event_type: event.event_type.clone(),
            received_at,
            content_type: "application/json".to_owned(),
            body: event.body.clone(),
            headers: kept.clone(),
        };
        let subject = state.bus.names().raw(&source.name, &event.event_type);
        publishes.push(state.bus.publish(
            subject,
            event_id,
            switchyard_chassis::async_nats::HeaderMap::new(),
            Bytes::from(raw.encode_to_vec()),
        ));
    }
    // Every event must be stored before the vendor hears 2xx; a partial failure answers 503 (or
    // 429) and the vendor's retry is de-duplicated event by event.
    let results = futures::future::join_all(publishes).await;
    let mut duplicates = known.len();
    for result in results {
        match result {
            Ok(published) => duplicates += usize::from(published.duplicate),
            // Still connected, yet JetStream did not ack in time: the server is alive and behind
            // (saturated), not gone. That is overload, so the sender hears 429 with a short
            // Retry-After and backs off, like any sender past the backlog bound; 503 (with a
            // longer Retry-After) stays for a bus that is unreachable or refusing.
            Err(BusError::AckTimeout(_)) if state.bus.is_connected() => {
                tracing::warn!("JetStream is not acknowledging in time; answering 429");
                return Err(IngestError::Overloaded);
            }
            Err(error) => {
                tracing::warn!(%error, "event not stored; answering 503 so the sender retries");
                return Err(IngestError::Unavailable);
            }
        }
    }
    state.recorder.remember(&event_ids, &known);
    state.metrics.publish_acked(started.elapsed().as_secs_f64());
    let all_duplicates = !event_ids.is_empty() && duplicates == event_ids.len();
    let duplicates = duplicates.min(event_ids.len());
    state
        .metrics
        .events_handled(&source.name, "accepted", event_ids.len() - duplicates);
    state
        .metrics
        .events_handled(&source.name, "duplicate", duplicates);
    if event_ids.is_empty() {
        state.metrics.webhook_handled(&source.name, "handshake");
    }
    Ok(match parsed.reply {
        Reply::Empty => StatusCode::OK.into_response(),
        Reply::SoapAck => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            sources::SALESFORCE_ACK,
        )
            .into_response(),
        Reply::Json => (
            StatusCode::OK,
            axum::Json(Accepted {
                status: "accepted",
                events: event_ids.len(),
                duplicate: all_duplicates,
                event_id: event_ids.first().cloned(),
            }),
        )
            .into_response(),
    })
}

/// The URL the sender called, as it saw it (behind a proxy: `X-Forwarded-Proto` and `Host`).
fn full_url(headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header("x-forwarded-proto").unwrap_or("https");
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or("localhost");
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{path}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
