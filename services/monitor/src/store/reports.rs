//! Delivery reports as monitor counts them: each report id marked counted, per-flow totals and
//! freshness, the flows' and the sources' volume buckets and, for a delivery, its
//! `destination.write` audit entry — all written in the recorder's batch transaction — and the
//! totals and freshness read back at start-up, by `GetFlowHealth` and by the dashboard's flows
//! page.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_chassis::deadpool_postgres::{Client, GenericClient, Pool, Transaction};
use switchyard_proto::v1::FlowHealth;
use tokio_postgres::types::ToSql;

use super::StoreError;

/// Per flow and bucket: received, delivered, failed, dead-lettered, latency sum and count.
pub(crate) type BucketRow = [i64; 6];
/// Per source and bucket: received, delivered, failed, dead-lettered.
pub(crate) type SourceRow = [i64; 4];

/// What the reports of a batch counted now add. Sorted (BTreeMap), so replicas writing the same
/// rows lock them in the same order and never deadlock each other.
#[derive(Debug, Default)]
pub(crate) struct Increments<'a> {
    /// Per flow and outcome.
    pub counts: BTreeMap<(&'a str, &'a str), i64>,
    /// Per flow: its latest delivery in the batch.
    pub last_delivered: BTreeMap<&'a str, SystemTime>,
    /// Per flow and bucket start (Unix seconds).
    pub buckets: BTreeMap<(&'a str, i64), BucketRow>,
    /// Per source and bucket start (Unix seconds).
    pub sources: BTreeMap<(&'a str, i64), SourceRow>,
    /// Destination writes to audit: target → (at, detail); sorted and one per target, for the
    /// same reasons.
    pub writes: BTreeMap<String, (SystemTime, String)>,
}

/// Marks report ids counted; answers those that were not counted before.
pub(crate) async fn mark_counted(
    tx: &Transaction<'_>,
    ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    Ok(tx
        .query(
            "INSERT INTO counted_reports (msg_id) SELECT DISTINCT unnest($1::text[]) \
             ON CONFLICT DO NOTHING RETURNING msg_id",
            &[&ids],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Adds bucket rows with `statement`, whose parameters are the keys, the bucket starts and one
/// array a column, in the rows' (sorted) order.
async fn add_buckets<const N: usize>(
    tx: &Transaction<'_>,
    statement: &str,
    rows: BTreeMap<(&str, i64), [i64; N]>,
) -> Result<(), StoreError> {
    let mut keys = Vec::new();
    let mut starts = Vec::new();
    let mut columns: [Vec<i64>; N] = std::array::from_fn(|_| Vec::new());
    for ((key, start), row) in rows {
        keys.push(key);
        starts.push(UNIX_EPOCH + Duration::from_secs(u64::try_from(start).unwrap_or(0)));
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&keys, &starts];
    params.extend(columns.iter().map(|c| c as &(dyn ToSql + Sync)));
    tx.execute(statement, &params).await?;
    Ok(())
}

/// Adds a batch's increments: totals, freshness, buckets and audit entries, in `tx`.
pub(crate) async fn add(tx: &Transaction<'_>, batch: Increments<'_>) -> Result<(), StoreError> {
    let Increments {
        counts,
        last_delivered,
        buckets,
        sources,
        writes,
    } = batch;
    if !counts.is_empty() {
        let (keys, values): (Vec<_>, Vec<i64>) = counts.into_iter().unzip();
        let (flows, outcomes): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
        tx.execute(
            "INSERT INTO flow_counts (flow, outcome, count) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
             ON CONFLICT (flow, outcome) DO UPDATE SET count = flow_counts.count + EXCLUDED.count",
            &[&flows, &outcomes, &values],
        )
        .await?;
    }
    if !last_delivered.is_empty() {
        let (flows, ats): (Vec<&str>, Vec<SystemTime>) = last_delivered.into_iter().unzip();
        tx.execute(
            "INSERT INTO flow_freshness (flow, last_delivered_at) \
             SELECT * FROM unnest($1::text[], $2::timestamptz[]) \
             ON CONFLICT (flow) DO UPDATE SET last_delivered_at = \
             GREATEST(flow_freshness.last_delivered_at, EXCLUDED.last_delivered_at)",
            &[&flows, &ats],
        )
        .await?;
    }
    if !buckets.is_empty() {
        add_buckets(
            tx,
            "INSERT INTO flow_buckets (flow, bucket_start, received, delivered, failed, \
             dead_lettered, latency_ms_sum, latency_count) \
             SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int8[], $4::int8[], \
             $5::int8[], $6::int8[], $7::int8[], $8::int8[]) \
             ON CONFLICT (flow, bucket_start) DO UPDATE SET \
             received = flow_buckets.received + EXCLUDED.received, \
             delivered = flow_buckets.delivered + EXCLUDED.delivered, \
             failed = flow_buckets.failed + EXCLUDED.failed, \
             dead_lettered = flow_buckets.dead_lettered + EXCLUDED.dead_lettered, \
             latency_ms_sum = flow_buckets.latency_ms_sum + EXCLUDED.latency_ms_sum, \
             latency_count = flow_buckets.latency_count + EXCLUDED.latency_count",
            buckets,
        )
        .await?;
    }
    if !sources.is_empty() {
        add_buckets(
            tx,
            "INSERT INTO source_buckets (source, bucket_start, received, delivered, failed, \
             dead_lettered) \
             SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int8[], $4::int8[], \
             $5::int8[], $6::int8[]) \
             ON CONFLICT (source, bucket_start) DO UPDATE SET \
             received = source_buckets.received + EXCLUDED.received, \
             delivered = source_buckets.delivered + EXCLUDED.delivered, \
             failed = source_buckets.failed + EXCLUDED.failed, \
             dead_lettered = source_buckets.dead_lettered + EXCLUDED.dead_lettered",
            sources,
        )
        .await?;
    }
    if !writes.is_empty() {
        let mut targets = Vec::new();
        let mut ats = Vec::new();
        let mut details = Vec::new();
        for (target, (at, detail)) in writes {
            targets.push(target);
            ats.push(at);
            details.push(detail);
        }
        // The unique index keeps one entry per write even if its report's "counted" mark was
        // pruned and the report came back.
        tx.execute(
            "INSERT INTO audit_log (at, role, action, target, detail) \
             SELECT at, 'deliver', 'destination.write', target, detail \
             FROM unnest($1::timestamptz[], $2::text[], $3::text[]) AS w (at, target, detail) \
             ON CONFLICT (target) WHERE action = 'destination.write' DO NOTHING",
            &[&ats, &targets, &details],
        )
        .await?;
    }
    Ok(())
}

/// A flow's stored total of one outcome.
#[derive(Debug)]
pub(crate) struct OutcomeCount {
    pub flow: String,
    pub outcome: String,
    pub count: i64,
}

/// Every flow's totals, per outcome.
pub(crate) async fn flow_counts(client: &Client) -> Result<Vec<OutcomeCount>, StoreError> {
    let rows = client
        .query("SELECT flow, outcome, count FROM flow_counts", &[])
        .await?;
    Ok(rows
        .iter()
        .map(|row| OutcomeCount {
            flow: row.get(0),
            outcome: row.get(1),
            count: row.get(2),
        })
        .collect())
}

/// Each flow's last delivery (Unix seconds), on a connection or in a transaction.
pub(crate) async fn last_delivered(
    client: &impl GenericClient,
) -> Result<HashMap<String, i64>, StoreError> {
    Ok(client
        .query(
            "SELECT flow, extract(epoch FROM last_delivered_at)::int8 FROM flow_freshness",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// One flow's totals and last delivery, for `GetFlowHealth`.
pub(crate) async fn flow_health(pool: &Pool, flow: String) -> Result<FlowHealth, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT outcome, count FROM flow_counts WHERE flow = $1",
            &[&flow],
        )
        .await?;
    let count = |outcome: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == outcome)
            .map_or(0, |r| u64::try_from(r.get::<_, i64>(1)).unwrap_or(0))
    };
    let last: Option<SystemTime> = client
        .query_opt(
            "SELECT last_delivered_at FROM flow_freshness WHERE flow = $1",
            &[&flow],
        )
        .await?
        .map(|r| r.get(0));
    Ok(FlowHealth {
        flow,
        received: count("received"),
        delivered: count("delivered"),
        failed: count("failed"),
        dead_lettered: count("dead_lettered"),
        last_delivered_at: last.map(switchyard_proto::timestamp),
    })
}

/// A flow's counts in one bucket: received, delivered, failed, dead-lettered.
#[derive(Debug)]
pub(crate) struct FlowBucket {
    pub flow: String,
    /// Unix seconds.
    pub start: i64,
    pub counts: [i64; 4],
}

/// The flows' buckets that start at `since` (Unix seconds) or later.
pub(crate) async fn buckets_since(
    client: &Client,
    since: i64,
) -> Result<Vec<FlowBucket>, StoreError> {
    let rows = client
        .query(
            "SELECT flow, extract(epoch FROM bucket_start)::bigint, received, delivered, failed, \
             dead_lettered FROM flow_buckets WHERE bucket_start >= to_timestamp($1::bigint)",
            &[&since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FlowBucket {
            flow: r.get(0),
            start: r.get(1),
            counts: [r.get(2), r.get(3), r.get(4), r.get(5)],
        })
        .collect())
}
