//! Group commit for delivery reports. Handlers hand their report to one recorder task (a
//! [`GroupCommit`]), which writes a whole batch in one transaction — each report id marked
//! counted, per-flow totals, freshness, the flow's and the source's volume buckets and, for a
//! delivery, its `destination.write` audit entry — then answers every handler, which acks only
//! then. One transaction is written at a time and what arrives meanwhile goes into the next, so
//! under load each holds hundreds of reports, while a lone report waits no more than `MAX_WAIT`.
//! A report is in its bucket exactly once (the bucket and the "counted" mark commit together),
//! and the batch in hand at shutdown is written before its messages are acked.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::group_commit::{Batching, GroupCommit, Submitted};

use crate::store::{self, StoreError, reports::Increments};

/// Reports written per transaction at most; more wait for the next one.
const MAX_BATCH: usize = 512;
/// The longest the first report of a batch waits for others to join it. Short: the handlers in
/// hand (the consumer's concurrency) wait on this batch, so a long linger caps monitor at
/// `concurrency / MAX_WAIT` reports a second (250 ms held it to ~500/s behind 1,000 deliveries/s).
const MAX_WAIT: Duration = Duration::from_millis(5);

/// One delivery report, as it is counted.
#[derive(Debug)]
pub(crate) struct Report {
    /// The report's `Nats-Msg-Id` (or stream sequence): counted once.
    pub msg_id: String,
    pub flow: String,
    pub outcome: &'static str,
    /// When deliver reported it: which bucket it falls in.
    pub at: SystemTime,
    /// Delivered only: webhook received → destination acknowledged.
    pub latency_ms: u64,
    /// The source behind the change; empty when none (its report counts for the flow only).
    pub source: String,
    /// Delivered only: the write to audit.
    pub write: Option<DestinationWrite>,
}

/// A destination write, as the audit log keeps it.
#[derive(Debug)]
pub(crate) struct DestinationWrite {
    pub destination: String,
    pub change_id: String,
    pub http_status: u32,
    pub attempt: u32,
}

impl Report {
    /// The audit entry's target, `<destination>/<flow>/<change id>`: unique per write, so a
    /// redelivered report finds its entry there already.
    fn audit_target(&self) -> Option<String> {
        self.write
            .as_ref()
            .map(|w| format!("{}/{}/{}", w.destination, self.flow, w.change_id))
    }
}

/// Hands reports to the recorder task (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    batches: GroupCommit<Report, bool, StoreError>,
}

impl Recorder {
    /// Starts the recorder task. It runs until every `Recorder` is dropped, then writes what is
    /// left and stops.
    pub(crate) fn start(pool: Pool, bucket: Duration) -> Self {
        let bucket_secs = bucket.as_secs().max(1);
        let batching = Batching {
            max_batch: MAX_BATCH,
            // A bucket of seconds (tests) gets its rows sooner, so its baseline sees whole
            // buckets.
            linger: MAX_WAIT.min(bucket / 8),
            // One transaction at a time: they update the same bucket rows, so two at once would
            // only wait on each other's locks.
            in_flight: 1,
        };
        let batches = GroupCommit::start(batching, move |reports: Vec<Report>| {
            let pool = pool.clone();
            async move {
                match write(&pool, bucket_secs, &reports).await {
                    Ok(fresh) => fresh.into_iter().map(Ok).collect(),
                    Err(error) => {
                        let error = Arc::new(error);
                        reports
                            .iter()
                            .map(|_| Err(StoreError::Shared(error.clone())))
                            .collect()
                    }
                }
            }
        });
        Self { batches }
    }

    /// Stores one report; true when it was counted now, false when it had been before.
    pub(crate) async fn record(&self, report: Report) -> Result<bool, StoreError> {
        self.batches.submit(report).await.map_err(|e| match e {
            Submitted::Stopped => StoreError::Stopped,
            Submitted::Failed(error) => error,
        })
    }
}

/// The start of the bucket `at` falls in, in seconds since the epoch (buckets are aligned to the
/// epoch, so hourly buckets start on the UTC hour).
pub(crate) fn bucket_start(at: SystemTime, bucket_secs: u64) -> i64 {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs - secs % bucket_secs).unwrap_or(i64::MAX)
}

fn bucket_column(outcome: &str) -> Option<usize> {
    match outcome {
        "received" => Some(0),
        "delivered" => Some(1),
        "failed" => Some(2),
        "dead_lettered" => Some(3),
        _ => None,
    }
}

/// Writes a batch in one transaction; answers, per report, whether it was counted now.
async fn write(pool: &Pool, bucket_secs: u64, reports: &[Report]) -> Result<Vec<bool>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let ids: Vec<&str> = reports.iter().map(|r| r.msg_id.as_str()).collect();
    let mut counted_now = store::reports::mark_counted(&tx, &ids).await?;
    // `remove`: a report redelivered while its first copy is in the same batch counts once.
    let fresh: Vec<bool> = reports
        .iter()
        .map(|r| counted_now.remove(&r.msg_id))
        .collect();

    let mut batch = Increments::default();
    for report in reports
        .iter()
        .zip(&fresh)
        .filter(|(_, f)| **f)
        .map(|(r, _)| r)
    {
        *batch
            .counts
            .entry((&report.flow, report.outcome))
            .or_default() += 1;
        if let (Some(target), Some(write)) = (report.audit_target(), &report.write) {
            let detail = format!(
                "http status {}, attempt {}",
                write.http_status, write.attempt
            );
            batch.writes.entry(target).or_insert((report.at, detail));
        }
        if let Some(column) = bucket_column(report.outcome) {
            if !report.source.is_empty() {
                batch
                    .sources
                    .entry((&report.source, bucket_start(report.at, bucket_secs)))
                    .or_default()[column] += 1;
            }
            let row = batch
                .buckets
                .entry((&report.flow, bucket_start(report.at, bucket_secs)))
                .or_default();
            row[column] += 1;
            if report.outcome == "delivered" {
                batch
                    .last_delivered
                    .entry(&report.flow)
                    .and_modify(|t| *t = (*t).max(report.at))
                    .or_insert(report.at);
                row[4] += i64::try_from(report.latency_ms).unwrap_or(i64::MAX);
                row[5] += 1;
            }
        }
    }
    store::reports::add(&tx, batch).await?;
    tx.commit().await?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_the_utc_hour_or_the_given_width() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_123);
        assert_eq!(bucket_start(at, 3600), 1_699_999_200);
        assert_eq!(bucket_start(at, 2), 1_700_000_122);
        assert_eq!(bucket_column("skipped"), None);
    }
}
