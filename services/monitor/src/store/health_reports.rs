//! What the health report and the webhook sender read and write: a period's totals and the alerts
//! opened in it, the `health_reports` rows, and the outbox — the alerts' openings and resolutions
//! and the reports not yet accepted by the webhook, marked sent once they are.

use std::collections::HashMap;
use std::time::SystemTime;

use switchyard_chassis::deadpool_postgres::{Client, Pool};

use super::StoreError;

/// Messages older than this are not sent late (after a long outage, or when the webhook is
/// configured only now): a day-old page helps nobody, and the alerts stay in `ListAlerts`.
const STALE_AFTER: &str = "1 day";

/// A flow's numbers over a period.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub received: i64,
    pub delivered: i64,
    pub failed: i64,
    pub dead_lettered: i64,
    pub latency_ms_sum: i64,
    pub latency_count: i64,
}

/// Each flow's totals over the buckets that start in [from, to).
pub(crate) async fn period_totals(
    client: &Client,
    from: SystemTime,
    to: SystemTime,
) -> Result<HashMap<String, Totals>, StoreError> {
    let mut totals: HashMap<String, Totals> = HashMap::new();
    for r in client
        .query(
            "SELECT flow, sum(received)::int8, sum(delivered)::int8, sum(failed)::int8, \
                 sum(dead_lettered)::int8, sum(latency_ms_sum)::int8, sum(latency_count)::int8 \
                 FROM flow_buckets WHERE bucket_start >= $1 AND bucket_start < $2 GROUP BY flow",
            &[&from, &to],
        )
        .await?
    {
        totals.insert(
            r.get(0),
            Totals {
                received: r.get(1),
                delivered: r.get(2),
                failed: r.get(3),
                dead_lettered: r.get(4),
                latency_ms_sum: r.get(5),
                latency_count: r.get(6),
            },
        );
    }
    Ok(totals)
}

/// How often an alert (id and rule) opened in [from, to), by id and rule.
#[derive(Debug)]
pub(crate) struct Opened {
    pub id: String,
    pub rule: String,
    pub count: i64,
}

/// The alerts opened in [from, to), counted per id and rule.
pub(crate) async fn opened_between(
    client: &Client,
    from: SystemTime,
    to: SystemTime,
) -> Result<Vec<Opened>, StoreError> {
    let rows = client
        .query(
            "SELECT id, rule, count(*) FROM alerts \
                 WHERE opened_at >= $1 AND opened_at < $2 GROUP BY 1, 2 ORDER BY 1, 2",
            &[&from, &to],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Opened {
            id: r.get(0),
            rule: r.get(1),
            count: r.get(2),
        })
        .collect())
}

/// How many alerts are open now.
pub(crate) async fn open_alerts(client: &Client) -> Result<i64, StoreError> {
    Ok(client
        .query_one("SELECT count(*) FROM alerts WHERE resolved_at IS NULL", &[])
        .await?
        .get(0))
}

/// Stores the report of [start, end) unless another replica did.
pub(crate) async fn store_report(
    pool: &Pool,
    start: SystemTime,
    end: SystemTime,
    body: &str,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO health_reports (period_end, period_start, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (period_end) DO NOTHING",
            &[&end, &start, &body],
        )
        .await?;
    Ok(())
}

/// An alert with an opening or a resolution the webhook has not accepted yet.
#[derive(Debug)]
pub(crate) struct UnsentAlert {
    pub id: String,
    pub severity: String,
    pub summary: String,
    pub runbook: String,
    pub opened_at: SystemTime,
    pub resolved_at: Option<SystemTime>,
    /// `opened_at` in milliseconds since the epoch, as the message ids use it.
    pub opened_ms: i64,
    pub open_sent: bool,
}

/// The alerts with an unsent opening or resolution (not stale), oldest first, 200 at most.
pub(crate) async fn unsent_alerts(pool: &Pool) -> Result<Vec<UnsentAlert>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT id, severity, summary, runbook, opened_at, resolved_at, \
                         (extract(epoch FROM opened_at) * 1000)::int8, open_sent_at IS NOT NULL \
                         FROM alerts WHERE (open_sent_at IS NULL AND opened_at > now() - interval '{STALE_AFTER}') \
                         OR (resolved_at IS NOT NULL AND resolved_sent_at IS NULL \
                             AND resolved_at > now() - interval '{STALE_AFTER}') \
                         ORDER BY opened_at, id LIMIT 200"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| UnsentAlert {
            id: r.get(0),
            severity: r.get(1),
            summary: r.get(2),
            runbook: r.get(3),
            opened_at: r.get(4),
            resolved_at: r.get(5),
            opened_ms: r.get(6),
            open_sent: r.get(7),
        })
        .collect())
}

/// Which message of an alert the webhook accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AlertMessage {
    Opening,
    Resolution,
}

/// Marks an alert's opening or resolution sent.
pub(crate) async fn mark_sent(
    pool: &Pool,
    message: AlertMessage,
    id: &str,
    opened_at: SystemTime,
) -> Result<(), StoreError> {
    let statement = match message {
        AlertMessage::Opening => {
            "UPDATE alerts SET open_sent_at = now() WHERE id = $1 AND opened_at = $2"
        }
        AlertMessage::Resolution => {
            "UPDATE alerts SET resolved_sent_at = now() WHERE id = $1 AND opened_at = $2"
        }
    };
    let client = pool.get().await?;
    client.execute(statement, &[&id, &opened_at]).await?;
    Ok(())
}

/// A health report the webhook has not accepted yet.
#[derive(Debug)]
pub(crate) struct UnsentReport {
    pub period_end: SystemTime,
    /// `period_end` in Unix seconds, as the message id uses it.
    pub end: i64,
    pub body: String,
}

/// The unsent reports (not stale), oldest first.
pub(crate) async fn unsent_reports(pool: &Pool) -> Result<Vec<UnsentReport>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT period_end, extract(epoch FROM period_end)::int8, body FROM health_reports \
                         WHERE sent_at IS NULL AND period_end > now() - interval '{STALE_AFTER}' ORDER BY period_end"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| UnsentReport {
            period_end: r.get(0),
            end: r.get(1),
            body: r.get(2),
        })
        .collect())
}

/// Marks the report of the period ending at `period_end` sent.
pub(crate) async fn mark_report_sent(
    pool: &Pool,
    period_end: SystemTime,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE health_reports SET sent_at = now() WHERE period_end = $1",
            &[&period_end],
        )
        .await?;
    Ok(())
}
