//! Monitor's database: one error type for every statement, and the SQL of each concern in its own
//! file (conflicts and identity commands; the rest is being moved here concern by concern).

pub(crate) mod conflicts;

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
