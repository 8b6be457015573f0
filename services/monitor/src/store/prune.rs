//! The deletes that keep monitor's tables from growing without end: volume buckets and
//! counted-report ids older than their retention, a bounded chunk per statement. Idempotent, so
//! replicas racing only repeat each other.

use std::time::SystemTime;

use switchyard_chassis::deadpool_postgres::Pool;

use super::StoreError;

/// Rows deleted per statement at most, so one prune never holds long locks or a huge
/// transaction after a long outage; the next statement goes on where it stopped.
const CHUNK: i64 = 10_000;

/// Rows deleted by one round.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub buckets: u64,
    pub reports: u64,
}

/// Deletes the flows' and sources' buckets that start before `buckets_before` and the report
/// ids counted before `reports_before`.
pub(crate) async fn delete_before(
    pool: &Pool,
    buckets_before: SystemTime,
    reports_before: SystemTime,
) -> Result<Pruned, StoreError> {
    let client = pool.get().await?;
    let mut deleted = [0_u64; 3];
    for ((table, column, before), count) in [
        ("flow_buckets", "bucket_start", buckets_before),
        ("source_buckets", "bucket_start", buckets_before),
        ("counted_reports", "counted_at", reports_before),
    ]
    .into_iter()
    .zip(deleted.iter_mut())
    {
        // ctid: PostgreSQL has no DELETE … LIMIT; the sub-select bounds each statement.
        let statement = format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} \
                 WHERE {column} < $1 LIMIT $2))"
        );
        loop {
            let n = client.execute(&statement, &[&before, &CHUNK]).await?;
            *count += n;
            if n < u64::try_from(CHUNK).unwrap_or(u64::MAX) {
                break;
            }
        }
    }
    let pruned = Pruned {
        buckets: deleted[0] + deleted[1],
        reports: deleted[2],
    };
    Ok(pruned)
}
