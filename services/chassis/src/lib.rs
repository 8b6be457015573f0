//! What every Switchyard service stands on: configuration, telemetry, the JetStream bus,
//! PostgreSQL, the ops HTTP endpoints, graceful shutdown, the retry policy and OAuth2 tokens for
//! vendor APIs.

pub mod bus;
pub mod config;
pub mod db;
mod db_tls;
mod error;
pub mod group_commit;
pub mod ids;
pub mod oauth;
pub mod ops;
pub mod retry;
pub mod runtime;
pub mod shutdown;
pub mod signing;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::Error;
pub use runtime::Runtime;

/// Re-exports services need without naming the crates themselves.
pub use async_nats;
pub use deadpool_postgres;
pub use prometheus_client;
pub use refinery;
pub use tokio_postgres;
pub use tokio_util::sync::CancellationToken;

/// Seconds since the Unix epoch, as webhooks carry them.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Command-line arguments every service binary takes.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// The Switchyard YAML configuration file.
    #[arg(long, short, env = "SWITCHYARD_CONFIG")]
    pub config: std::path::PathBuf,
}

impl ServiceArgs {
    /// Loads the configuration the arguments name, with the process environment applied and
    /// only the secrets `scope` needs resolved.
    pub fn load(&self, scope: config::Scope) -> Result<config::Config, config::ConfigError> {
        config::Config::load_for(&self.config, &config::Env::from_process(), scope)
    }
}

/// Ends a binary: on error prints it with its causes (`error: …`, no backtrace, whatever
/// `RUST_BACKTRACE` says — a bad config should read as a message, not a crash) and exits 1.
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr().lock(), "error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
