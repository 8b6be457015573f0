//! Monitor's database: one error type for every statement, and every statement of the crate, each
//! table family in its own file. The modules that hold the logic (the recorder's batching, the
//! alert rules' evaluation, the health report, notification sending, pruning, the admin API and the
//! dashboard pages) call these functions with a `Pool`, a `Client` or — where several statements
//! must commit together — their own `Transaction`, and get typed rows back.
//!
//! - `reports`: delivery reports as counted — `counted_reports`, `flow_counts`, `flow_freshness`,
//!   `flow_buckets`, `source_buckets` and the `destination.write` audit entries, written together
//!   in the recorder's batch transaction; the totals read at start-up, by `GetFlowHealth` and by
//!   the dashboard's flows page.
//! - `alerts`: the `alerts` rows the evaluator opens and resolves in its transaction (under its
//!   advisory lock) and what it evaluates — buckets, first buckets, drift notices, open conflicts
//!   per object; `drift_notices`; `ListAlerts`; the open alerts and drift notices the dashboard
//!   shows.
//! - `status`: `flow_status`, deliver's reported conditions (paused flows, failing credentials).
//! - `health_reports`: what `report` and `notify` read and write — a period's totals and
//!   deviations, the `health_reports` rows, and the outbox of unsent alerts and reports.
//! - `audit`: the admin API's operator actions in `audit_log`, and `ListAudit`.
//! - `prune`: the chunked deletes of old buckets and counted-report ids.
//! - `conflicts`: identity conflicts and operators' merge commands (`conflicts`,
//!   `identity_commands`), for the admin API (and its wait for a command's result) and the
//!   golden-record page.
//! - `lineage`: a golden record's lineage, read only through dedupe's `golden_lineage` function.

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod conflicts;
pub(crate) mod health_reports;
pub(crate) mod lineage;
pub(crate) mod prune;
pub(crate) mod reports;
pub(crate) mod status;

/// A statement or a connection failed; the message that caused it is retried, the admin call
/// answers `UNAVAILABLE`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database connection: {0}")]
    Pool(#[from] switchyard_chassis::deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// One failure of a statement several waiters shared (a batch written together).
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
    /// The task that writes a batch of rows together stopped (the service is shutting down).
    #[error("the batch writer stopped")]
    Stopped,
    /// A stored value that does not read back as what was written (a corrupt row).
    #[error("stored value unreadable: {0}")]
    Decode(String),
}

impl StoreError {
    /// The failure in the pool's or the driver's own words, without the prefix `Display` puts
    /// before them: what start-up, the dashboard's pages and the admin API's audit and
    /// flow-health calls report.
    pub(crate) fn cause(&self) -> String {
        match self {
            Self::Pool(error) => error.to_string(),
            Self::Db(error) => error.to_string(),
            other => other.to_string(),
        }
    }
}
