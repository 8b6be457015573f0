//! Ops HTTP on every service: `/healthz` (alive), `/readyz` (NATS and, where used, PostgreSQL
//! reachable) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::Pool;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;

#[derive(Clone)]
struct OpsState {
    service: &'static str,
    registry: Arc<Registry>,
    bus: Bus,
    pool: Option<Pool>,
}

/// Serves the ops endpoints on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    service: &'static str,
    registry: Arc<Registry>,
    bus: Bus,
    pool: Option<Pool>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = OpsState {
        service,
        registry,
        bus,
        pool,
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn healthz(State(state): State<OpsState>) -> impl IntoResponse {
    Json(serde_json::json!({ "service": state.service, "status": "ok" }))
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let nats = state.bus.is_connected();
    let postgres = match &state.pool {
        Some(pool) => Some(crate::db::is_ready(pool).await),
        None => None,
    };
    let ready = nats && postgres.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "service": state.service,
            "ready": ready,
            "nats": nats,
            "postgres": postgres,
        })),
    )
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
