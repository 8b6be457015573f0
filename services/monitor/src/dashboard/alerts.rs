//! The read-only lists of what monitor has noticed: open alerts and schema-drift notices.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use switchyard_proto::v1::ListAlertsRequest;
use switchyard_proto::v1::admin_server::Admin as _;

use super::{Dashboard, as_role, error_page, page, utc};
use crate::store;

pub(super) async fn alerts_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let listed = dash
        .admin
        .list_alerts(as_role(
            role,
            ListAlertsRequest {
                open_only: true,
                limit: 500,
            },
        ))
        .await;
    let alerts = match listed {
        Ok(r) => r.into_inner().alerts,
        Err(s) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), s.message()),
    };
    page(
        "Open alerts",
        Some(role),
        html! {
            @if alerts.is_empty() { p { "No open alerts." } }
            @else {
                table {
                    tr { th { "Alert" } th { "Severity" } th { "Summary" } th { "Opened" } th { "Runbook section" } }
                    @for a in &alerts {
                        tr { td { (a.id) } td class=(a.severity) { (a.severity) } td { (a.summary) }
                             td { (utc(a.opened_at.as_ref())) } td { code { (a.runbook) } } }
                    }
                }
            }
        },
    )
    .into_response()
}

pub(super) async fn drift_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let notices = match store::alerts::drift_notices(&dash.pool).await {
        Ok(notices) => notices,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), &e.cause()),
    };
    page(
        "Schema drift",
        Some(role),
        html! {
            @if notices.is_empty() { p { "No schema-drift notices." } }
            @else {
                table {
                    tr { th { "Source" } th { "Path" } th { "Event type" } th { "Change" } th { "Last seen" } }
                    @for n in &notices {
                        tr { td { (n.source) } td { (n.path) }
                             td { (n.event_type) } td { (n.change) }
                             td { (utc(Some(&switchyard_proto::timestamp(n.last_seen)))) } }
                    }
                }
            }
        },
    )
    .into_response()
}
