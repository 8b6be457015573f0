//! Keeps monitor's tables from growing without end: on a timer, deletes volume buckets older than
//! `monitor.bucket_retention` (past every baseline's look-back) and counted-report ids older than
//! `monitor.report_retention` (past the time a report can still be delivered again). Every
//! replica may prune; the deletes are idempotent, so replicas racing only repeat each other.

use std::time::{Duration, SystemTime};

use crate::store::StoreError;

use switchyard_chassis::CancellationToken;
use switchyard_chassis::deadpool_postgres::Pool;

/// Rows deleted per statement at most, so one prune never holds long locks or a huge
/// transaction after a long outage; the next statement goes on where it stopped.
const CHUNK: i64 = 10_000;

/// What to prune and when.
#[derive(Debug)]
pub(crate) struct Pruner {
    pub pool: Pool,
    pub bucket_retention: Duration,
    pub report_retention: Duration,
    pub every: Duration,
}

/// Rows deleted by one round.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub buckets: u64,
    pub reports: u64,
}

impl Pruner {
    /// Prunes every `every` until shutdown (first right away: a monitor that restarts often
    /// still prunes).
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.prune(SystemTime::now()).await {
                Ok(pruned) if pruned != Pruned::default() => {
                    tracing::info!(buckets = pruned.buckets, reports = pruned.reports, "pruned");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "not pruned; trying again next round"),
            }
        }
    }

    /// Deletes what is older than its retention at `now`.
    pub(crate) async fn prune(&self, now: SystemTime) -> Result<Pruned, StoreError> {
        let client = self.pool.get().await?;
        let buckets_before = now.checked_sub(self.bucket_retention).unwrap_or(now);
        let reports_before = now.checked_sub(self.report_retention).unwrap_or(now);
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
}
