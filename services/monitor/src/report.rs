//! The health report: per flow, the period's volume, errors, mean latency, freshness, the
//! deviations alerted on and the value delivered (events × minutes saved × hourly cost). Built
//! daily at `monitor.alerts.report_at` (UTC) for the 24 hours before — or every
//! `monitor.alerts.report_every` — once per period whichever replica gets there first, and sent by
//! `notify` to the alerts webhook.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use switchyard_chassis::CancellationToken;
use switchyard_chassis::config::{AlertsConfig, FlowConfig};
use switchyard_chassis::deadpool_postgres::Pool;
use tokio::sync::Notify;

use crate::clock::{system_time, unix, utc};
use crate::store::health_reports::{self, Totals};
use crate::store::{self, StoreError};

const DAY: i64 = 24 * 3600;
/// Slack takes at most 50 blocks per message: the title, the flows, and the alerts line.
const MAX_FLOW_BLOCKS: usize = 47;

/// The next period to report on after `now`: (start, end), due at its end. Periods are aligned
/// (to `report_at` each day, or to multiples of `every` since the epoch) so every replica agrees
/// on them.
pub(crate) fn next_period(now: i64, report_at: i64, every: Option<Duration>) -> (i64, i64) {
    match every.map(|e| i64::try_from(e.as_secs()).unwrap_or(DAY).max(1)) {
        Some(every) => {
            let end = now - now.rem_euclid(every) + every;
            (end - every, end)
        }
        None => {
            let today = now - now.rem_euclid(DAY) + report_at;
            let end = if today > now { today } else { today + DAY };
            (end - DAY, end)
        }
    }
}

/// The value of `delivered` events: hours saved × hourly cost (both 0 unless configured).
pub(crate) fn value(flow: &FlowConfig, delivered: f64) -> (f64, f64) {
    let hours = delivered * flow.minutes_per_record.unwrap_or(0.0) / 60.0;
    (hours, hours * flow.hourly_cost.unwrap_or(0.0))
}

/// Builds the health reports on schedule.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub pool: Pool,
    pub config: AlertsConfig,
    pub flows: Vec<FlowConfig>,
    pub wake: Arc<Notify>,
}

impl Reporter {
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let report_at = self
            .config
            .report_at_seconds()
            .and_then(|s| i64::try_from(s).ok())
            .unwrap_or(8 * 3600);
        loop {
            let now = SystemTime::now();
            let (start, end) = next_period(unix(now), report_at, self.config.report_every);
            // Built once the last bucket of the period has settled, as the rules wait for it.
            let settle = (self.config.bucket / 2).min(Duration::from_secs(30));
            let wait = (system_time(end) + settle)
                .duration_since(now)
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.build(start, end).await {
                Ok(()) => self.wake.notify_one(),
                Err(error) => tracing::warn!(%error, "health report not built"),
            }
        }
    }

    /// Stores the report for [start, end) unless another replica did.
    async fn build(&self, start: i64, end: i64) -> Result<(), StoreError> {
        let body = self.render(start, end).await?;
        health_reports::store_report(&self.pool, system_time(start), system_time(end), &body).await
    }

    /// The report's Slack-compatible JSON body: the whole buckets of the period (a `report_at`
    /// inside an hour reports up to that hour's start).
    pub(crate) async fn render(&self, start: i64, end: i64) -> Result<String, StoreError> {
        let client = self.pool.get().await?;
        let bucket = i64::try_from(self.config.bucket.as_secs().max(1)).unwrap_or(3600);
        let (start, end) = (
            start - start.rem_euclid(bucket),
            end - end.rem_euclid(bucket),
        );
        let (from, to) = (system_time(start), system_time(end));
        let totals = health_reports::period_totals(&client, from, to).await?;
        let fresh = store::reports::last_delivered(&client).await?;
        // Deviations: the alerts about each flow opened in the period, by rule.
        let mut deviations: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        for opened in health_reports::opened_between(&client, from, to).await? {
            if let Some(flow) = crate::rules::flow_of(&opened.id) {
                let by_rule = deviations.entry(flow.to_owned()).or_default();
                match by_rule.iter_mut().find(|(r, _)| *r == opened.rule) {
                    Some((_, n)) => *n += opened.count,
                    None => by_rule.push((opened.rule, opened.count)),
                }
            }
        }
        let open = health_reports::open_alerts(&client).await?;
        let now = unix(SystemTime::now());
        let title = format!("Switchyard health report, {} to {}", utc(start), utc(end));
        let mut text = format!("{title}\n");
        let mut blocks = vec![format!("*{title}*")];
        for flow in &self.flows {
            let t = totals.get(&flow.name).copied().unwrap_or_default();
            let line = flow_line(
                flow,
                t,
                fresh.get(&flow.name).copied(),
                now,
                deviations.get(&flow.name),
            );
            let _ = writeln!(text, "- {line}");
            if blocks.len() <= MAX_FLOW_BLOCKS {
                blocks.push(format!("• {line}"));
            }
        }
        if self.flows.len() > MAX_FLOW_BLOCKS {
            blocks.push(format!(
                "… and {} more flows (`switchyard admin health FLOW`)",
                self.flows.len() - MAX_FLOW_BLOCKS
            ));
        }
        let alerts = format!("Alerts open now: {open} (`switchyard admin alerts`)");
        let _ = writeln!(text, "{alerts}");
        blocks.push(alerts);
        Ok(
            String::from_utf8_lossy(&crate::notify::slack_body(text.trim_end(), &blocks))
                .into_owned(),
        )
    }
}

/// One flow's line of the report; numbers and names only.
fn flow_line(
    flow: &FlowConfig,
    t: Totals,
    last_delivered: Option<i64>,
    now: i64,
    deviations: Option<&Vec<(String, i64)>>,
) -> String {
    let errors = t.failed + t.dead_lettered;
    #[allow(clippy::cast_precision_loss)] // event counts are far below 2^52
    let (rate, latency, delivered) = (
        if t.received > 0 {
            format!(
                " ({:.1}% of received)",
                errors as f64 * 100.0 / t.received as f64
            )
        } else {
            String::new()
        },
        if t.latency_count > 0 {
            format!(
                ", mean end-to-end {} ms",
                t.latency_ms_sum / t.latency_count
            )
        } else {
            String::new()
        },
        t.delivered as f64,
    );
    let freshness = match (last_delivered, flow.freshness_sla) {
        (None, _) => "nothing delivered yet".to_owned(),
        (Some(at), None) => format!("last delivery {}", utc(at)),
        (Some(at), Some(sla)) => {
            let met = u64::try_from(now - at).unwrap_or(0) <= sla.as_secs();
            format!(
                "last delivery {} (freshness SLA {}: {})",
                utc(at),
                humantime::format_duration(sla),
                if met { "met" } else { "breached" }
            )
        }
    };
    let deviations = match deviations {
        None => "none".to_owned(),
        Some(list) => list
            .iter()
            .map(|(rule, n)| format!("{rule} ×{n}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let (hours, money) = value(flow, delivered);
    format!(
        "*{}*: {} received, {} delivered, {errors} errors{rate}{latency}; {freshness}; deviations: {deviations}; value delivered {money:.2} ({hours:.1} h saved)",
        flow.name, t.received, t.delivered
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_end_at_report_at_or_on_multiples_of_every() {
        let day = 19_000 * DAY;
        let eight = 8 * 3600;
        assert_eq!(
            next_period(day + 3600, eight, None),
            (day + eight - DAY, day + eight)
        );
        assert_eq!(
            next_period(day + eight, eight, None),
            (day + eight, day + eight + DAY)
        );
        assert_eq!(
            next_period(1003, eight, Some(Duration::from_secs(5))),
            (1000, 1005)
        );
    }

    #[test]
    fn value_follows_the_roi_arithmetic() {
        // 200 orders × 10 minutes = 33⅓ hours of typing, ≈ 1,167 at 35 an hour.
        let flow: FlowConfig = serde_yaml_ng::from_str(
            "{ name: orders, object: order, destination: erp, minutes_saved_per_event: 10, hourly_cost: 35 }",
        )
        .expect("flow");
        let (hours, money) = value(&flow, 200.0);
        assert!((hours - 33.333).abs() < 1e-3, "{hours}");
        assert!((money - 1166.667).abs() < 1e-3, "{money}");
        let unpriced: FlowConfig =
            serde_yaml_ng::from_str("{ name: c, object: contact, destination: d }").expect("flow");
        assert_eq!(value(&unpriced, 200.0), (0.0, 0.0));
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    }
}
