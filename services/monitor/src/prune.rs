//! Keeps monitor's tables from growing without end: on a timer, deletes volume buckets older than
//! `monitor.bucket_retention` (past every baseline's look-back) and counted-report ids older than
//! `monitor.report_retention` (past the time a report can still be delivered again). Every
//! replica may prune; the deletes are idempotent, so replicas racing only repeat each other.

use std::time::{Duration, SystemTime};

use crate::store::prune::Pruned;
use crate::store::{self, StoreError};

use switchyard_chassis::CancellationToken;
use switchyard_chassis::deadpool_postgres::Pool;

/// What to prune and when.
#[derive(Debug)]
pub(crate) struct Pruner {
    pub pool: Pool,
    pub bucket_retention: Duration,
    pub report_retention: Duration,
    pub every: Duration,
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
        let buckets_before = now.checked_sub(self.bucket_retention).unwrap_or(now);
        let reports_before = now.checked_sub(self.report_retention).unwrap_or(now);
        store::prune::delete_before(&self.pool, buckets_before, reports_before).await
    }
}
