//! The flows page: each configured flow's counts in the current bucket against the mean of the
//! buckets before it, its totals, last delivery, value delivered and health.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use switchyard_chassis::config::FlowConfig;

use super::{Dashboard, error_page, page};
use crate::{report, store};

/// One flow's row on the flows page.
#[derive(Debug, Default)]
struct FlowRow {
    totals: [i64; 4],
    current: [i64; 4],
    baseline: Option<[f64; 4]>,
    last_delivered: Option<i64>,
    alerts: Vec<(String, String)>,
}

async fn flow_rows(dash: &Dashboard) -> Result<HashMap<String, FlowRow>, String> {
    let client = dash.pool.get().await.map_err(|e| e.to_string())?;
    let mut rows: HashMap<String, FlowRow> = HashMap::new();
    for stored in store::reports::flow_counts(&client)
        .await
        .map_err(|e| e.cause())?
    {
        let i = match stored.outcome.as_str() {
            "received" => 0,
            "delivered" => 1,
            "failed" => 2,
            "dead_lettered" => 3,
            _ => continue,
        };
        rows.entry(stored.flow).or_default().totals[i] = stored.count;
    }
    let bucket = i64::try_from(dash.bucket.as_secs()).unwrap_or(3600).max(1);
    let now = switchyard_chassis::unix_now();
    let current = now - now.rem_euclid(bucket);
    let since = current - bucket * i64::from(dash.trailing_buckets);
    for b in store::reports::buckets_since(&client, since)
        .await
        .map_err(|e| e.cause())?
    {
        let row = rows.entry(b.flow).or_default();
        if b.start == current {
            row.current = b.counts;
        } else {
            // Summed here, divided by the window below: a bucket without a row had no traffic.
            let sum = row.baseline.get_or_insert([0.0; 4]);
            for (s, c) in sum.iter_mut().zip(b.counts) {
                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                {
                    *s += c as f64;
                }
            }
        }
    }
    for row in rows.values_mut() {
        if let Some(sum) = row.baseline.as_mut() {
            for s in sum.iter_mut() {
                *s /= f64::from(dash.trailing_buckets.max(1));
            }
        }
    }
    for (flow, at) in store::reports::last_delivered(&client)
        .await
        .map_err(|e| e.cause())?
    {
        rows.entry(flow).or_default().last_delivered = Some(at);
    }
    for (id, severity) in store::alerts::open_severities(&client)
        .await
        .map_err(|e| e.cause())?
    {
        if let Some(flow) = crate::rules::flow_of(&id) {
            rows.entry(flow.to_owned())
                .or_default()
                .alerts
                .push((id.clone(), severity));
        }
    }
    Ok(rows)
}

/// ok / warning / failing: failing on an open critical alert or a breached freshness SLA,
/// warning on any other open alert or errors in the current bucket.
fn health(flow: &FlowConfig, row: &FlowRow, now: i64) -> &'static str {
    let stale = flow.freshness_sla.is_some_and(|sla| {
        let sla = i64::try_from(sla.as_secs()).unwrap_or(i64::MAX);
        row.last_delivered.is_none_or(|at| now - at > sla)
    });
    if stale || row.alerts.iter().any(|(_, s)| s == "critical") {
        "failing"
    } else if !row.alerts.is_empty() || row.current[2] + row.current[3] > 0 {
        "warning"
    } else {
        "ok"
    }
}

pub(super) async fn flows_page(State(dash): State<Dashboard>, headers: HeaderMap) -> Response {
    let role = session!(dash, headers);
    let rows = match flow_rows(&dash).await {
        Ok(rows) => rows,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(role), &e),
    };
    let now = switchyard_chassis::unix_now();
    let empty = FlowRow::default();
    let cell = |current: i64, baseline: Option<f64>| match baseline {
        Some(b) => format!("{current} (baseline {b:.1})"),
        None => format!("{current} (no baseline yet)"),
    };
    page(
        "Flows",
        Some(role),
        html! {
            p { "Figures are for the current bucket of " (humantime::format_duration(dash.bucket))
                " against the mean of the " (dash.trailing_buckets) " buckets before it; totals since the start." }
            table {
                tr { th { "Flow" } th { "Health" } th { "Received" } th { "Delivered" } th { "Failed" }
                     th { "Dead-lettered" } th { "Last delivery" } th { "Value delivered" } }
                @for flow in &dash.flows {
                    @let row = rows.get(&flow.name).unwrap_or(&empty);
                    @let status = health(flow, row, now);
                    tr data-flow=(flow.name) {
                        td { (flow.name) }
                        td class=(status) { (status)
                            @for (id, _) in &row.alerts { br; a href="/alerts" { (id) } } }
                        @for i in 0..4 {
                            td { (cell(row.current[i], row.baseline.map(|b| b[i])))
                                 br; small { "total " (row.totals[i]) } }
                        }
                        td { (row.last_delivered.map_or_else(|| "never".to_owned(), crate::clock::utc)) }
                        td {
                            @let value = {
                                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                                let delivered = row.totals[1] as f64;
                                report::value(flow, delivered).1
                            };
                            (format!("{value:.2}"))
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_alerts_freshness_and_current_errors() {
        let flow: FlowConfig = serde_yaml_ng::from_str(
            "{ name: c, object: contact, destination: d, freshness_sla: 1h }",
        )
        .expect("flow");
        let now = 100_000;
        let fresh = FlowRow {
            last_delivered: Some(now - 60),
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &fresh, now), "ok");
        let erring = FlowRow {
            current: [2, 1, 0, 1],
            last_delivered: Some(now - 60),
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &erring, now), "warning");
        let stale = FlowRow {
            last_delivered: Some(now - 7200),
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &stale, now), "failing");
        let alerted = FlowRow {
            last_delivered: Some(now - 60),
            alerts: vec![("error_rate:flow=c".into(), "critical".into())],
            ..FlowRow::default()
        };
        assert_eq!(health(&flow, &alerted, now), "failing");
    }
}
