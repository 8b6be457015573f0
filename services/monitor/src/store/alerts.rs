//! Alerts and what the rules are evaluated on: the evaluator's advisory lock, the `alerts` it
//! opens and resolves, and its reads — volume buckets, first buckets, freshness (`reports`),
//! drift notices and open identity conflicts — all in the evaluator's one transaction; the
//! `drift_notices` transform reports; `ListAlerts`; and the open alerts and drift notices the
//! dashboard shows.

use std::collections::HashMap;
use std::time::SystemTime;

use switchyard_chassis::deadpool_postgres::{Client, Pool, Transaction};
use switchyard_proto::v1::{Alert, SchemaDrift};
use tokio_postgres::Row;
use tokio_postgres::types::FromSqlOwned;

use super::StoreError;
use crate::rules::{Counts, Finding};

/// Only one replica evaluates at a time (a transaction-scoped advisory lock; PostgreSQL scopes
/// it to the database, so tenants and tests sharing a server do not contend).
const EVALUATION_LOCK: i64 = 0x5357_4d4f_4e41_4c54; // "SWMONALT"

/// Takes the evaluation lock for the rest of `tx`; false when another replica holds it.
pub(crate) async fn try_lock_evaluation(tx: &Transaction<'_>) -> Result<bool, StoreError> {
    Ok(tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&EVALUATION_LOCK])
        .await?
        .get(0))
}

/// Opens an alert for a finding unless one is open under its id; answers the rows inserted.
pub(crate) async fn open(
    tx: &Transaction<'_>,
    finding: &Finding,
    now: SystemTime,
) -> Result<u64, StoreError> {
    Ok(tx
        .execute(
            "INSERT INTO alerts (id, rule, severity, summary, runbook, opened_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (id) WHERE resolved_at IS NULL DO NOTHING",
            &[
                &finding.id,
                &finding.rule.as_str(),
                &finding.rule.severity(),
                &finding.summary,
                &finding.rule.runbook(),
                &now,
            ],
        )
        .await?)
}

/// Resolves every open alert whose id is not in `holding`; answers how many.
pub(crate) async fn resolve_all_but(
    tx: &Transaction<'_>,
    holding: &[&str],
    now: SystemTime,
) -> Result<u64, StoreError> {
    Ok(tx
        .execute(
            "UPDATE alerts SET resolved_at = $2 \
                     WHERE resolved_at IS NULL AND NOT (id = ANY($1))",
            &[&holding, &now],
        )
        .await?)
}

/// Rows of a name and a number: per flow, source, rule or object.
async fn named_numbers(
    tx: &Transaction<'_>,
    statement: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(tx
        .query(statement, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Alerts open now, per rule.
pub(crate) async fn open_per_rule(
    tx: &Transaction<'_>,
) -> Result<HashMap<String, i64>, StoreError> {
    let open = "SELECT rule, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY rule";
    Ok(named_numbers(tx, open).await?.into_iter().collect())
}

/// Each flow's first bucket ever (its start, Unix seconds).
pub(crate) async fn first_flow_buckets(
    tx: &Transaction<'_>,
) -> Result<HashMap<String, i64>, StoreError> {
    let first =
        "SELECT flow, extract(epoch FROM min(bucket_start))::int8 FROM flow_buckets GROUP BY flow";
    Ok(named_numbers(tx, first).await?.into_iter().collect())
}

/// Each source's first bucket ever (its start, Unix seconds), by source.
pub(crate) async fn first_source_buckets(
    tx: &Transaction<'_>,
) -> Result<Vec<(String, i64)>, StoreError> {
    named_numbers(
        tx,
        "SELECT source, extract(epoch FROM min(bucket_start))::int8 FROM source_buckets \
             GROUP BY source ORDER BY source",
    )
    .await
}

/// Open identity conflicts per object, by object.
pub(crate) async fn open_conflicts_per_object(
    tx: &Transaction<'_>,
) -> Result<Vec<(String, i64)>, StoreError> {
    named_numbers(
        tx,
        "SELECT object, count(*) FROM conflicts WHERE resolved_at IS NULL GROUP BY object ORDER BY object",
    )
    .await
}

/// Counts by key (flow or source) and bucket start (Unix seconds).
pub(crate) type BucketCounts = HashMap<String, HashMap<i64, Counts>>;

/// The flows' counts in the buckets starting at `slots`.
pub(crate) async fn flow_buckets_at(
    tx: &Transaction<'_>,
    slots: &[SystemTime],
) -> Result<BucketCounts, StoreError> {
    buckets_at(tx, "flow_buckets", "flow", slots).await
}

/// The sources' counts in the buckets starting at `slots`.
pub(crate) async fn source_buckets_at(
    tx: &Transaction<'_>,
    slots: &[SystemTime],
) -> Result<BucketCounts, StoreError> {
    buckets_at(tx, "source_buckets", "source", slots).await
}

/// The counts of `table` (`flow_buckets` keyed by `flow`, `source_buckets` by `source`) in the
/// buckets starting at `slots`, by key and bucket start (Unix seconds).
async fn buckets_at(
    tx: &Transaction<'_>,
    table: &str,
    key: &str,
    slots: &[SystemTime],
) -> Result<BucketCounts, StoreError> {
    let mut buckets: BucketCounts = HashMap::new();
    let sql = format!(
        "SELECT {key}, extract(epoch FROM bucket_start)::int8, received, delivered, failed, \
         dead_lettered FROM {table} WHERE bucket_start = ANY($1)"
    );
    for r in tx.query(&sql, &[&slots]).await? {
        buckets.entry(r.get(0)).or_default().insert(
            r.get(1),
            Counts {
                received: r.get(2),
                delivered: r.get(3),
                failed: r.get(4),
                dead_lettered: r.get(5),
            },
        );
    }
    Ok(buckets)
}

/// The latest schema-drift notice of a source and payload path; `At` is when it was last seen
/// (Unix seconds for the rules, a time for the dashboard).
#[derive(Debug)]
pub(crate) struct DriftNotice<At> {
    pub source: String,
    pub path: String,
    pub event_type: String,
    pub change: String,
    pub last_seen: At,
}

impl<At: FromSqlOwned> DriftNotice<At> {
    /// From a row of source, path, the event type and the change (at the positions the
    /// statement put them) and the time it was last seen.
    fn read(r: &Row, event_type: usize, change: usize) -> Self {
        Self {
            source: r.get(0),
            path: r.get(1),
            event_type: r.get(event_type),
            change: r.get(change),
            last_seen: r.get(4),
        }
    }
}

/// The drift notices last seen after `quiet_since`, by source and path.
pub(crate) async fn drift_since(
    tx: &Transaction<'_>,
    quiet_since: SystemTime,
) -> Result<Vec<DriftNotice<i64>>, StoreError> {
    let rows = tx
        .query(
            "SELECT source, path, change, event_type, extract(epoch FROM last_seen_at)::int8 \
                 FROM drift_notices WHERE last_seen_at > $1 ORDER BY source, path",
            &[&quiet_since],
        )
        .await?;
    Ok(rows.iter().map(|r| DriftNotice::read(r, 3, 2)).collect())
}

/// Keeps a schema-drift notice: the latest per source and path.
pub(crate) async fn store_drift(pool: &Pool, drift: &SchemaDrift) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let at = drift
        .detected_at
        .and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now);
    client
        .execute(
            "INSERT INTO drift_notices (source, path, event_type, change, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, path) DO UPDATE SET \
             event_type = EXCLUDED.event_type, change = EXCLUDED.change, \
             last_seen_at = GREATEST(drift_notices.last_seen_at, EXCLUDED.last_seen_at)",
            &[
                &drift.source,
                &drift.path,
                &drift.event_type,
                &drift.change,
                &at,
            ],
        )
        .await?;
    Ok(())
}

/// The latest drift notices, newest first, for the dashboard.
pub(crate) async fn drift_notices(pool: &Pool) -> Result<Vec<DriftNotice<SystemTime>>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT source, path, event_type, change, last_seen_at FROM drift_notices \
                 ORDER BY last_seen_at DESC LIMIT 500",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| DriftNotice::read(r, 2, 3)).collect())
}

/// Alerts, newest first, optionally only the open ones.
pub(crate) async fn list(
    pool: &Pool,
    open_only: bool,
    limit: i64,
) -> Result<Vec<Alert>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, rule, severity, summary, runbook, opened_at, resolved_at FROM alerts \
             WHERE (NOT $1 OR resolved_at IS NULL) ORDER BY opened_at DESC, id LIMIT $2",
            &[&open_only, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Alert {
            id: r.get(0),
            rule: r.get(1),
            severity: r.get(2),
            summary: r.get(3),
            runbook: r.get(4),
            opened_at: Some(switchyard_proto::timestamp(r.get(5))),
            resolved_at: r
                .get::<_, Option<SystemTime>>(6)
                .map(switchyard_proto::timestamp),
        })
        .collect())
}

/// The open alerts' ids and severities, for the dashboard's flows page.
pub(crate) async fn open_severities(client: &Client) -> Result<Vec<(String, String)>, StoreError> {
    let rows = client
        .query(
            "SELECT id, severity FROM alerts WHERE resolved_at IS NULL",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
