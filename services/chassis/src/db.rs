//! PostgreSQL: a deadpool connection pool and per-service migrations run at start-up.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::ExposeSecret as _;
use tokio_postgres::NoTls;

use crate::config::DatabaseConfig;
use crate::retry;

/// Database failures at start-up.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database.url is not a valid PostgreSQL connection string: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("migrations failed for {service}: {reason}")]
    Migrate { service: String, reason: String },
}

/// Builds the pool and checks one connection (retrying briefly while PostgreSQL starts).
pub async fn connect(config: &DatabaseConfig) -> Result<Pool, DbError> {
    let pg: tokio_postgres::Config = config
        .url
        .expose_secret()
        .parse()
        .map_err(|e: tokio_postgres::Error| DbError::Url(e.to_string()))?;
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(config.pool_size)
        .build()
        .map_err(|e| DbError::Connect(e.to_string()))?;
    retry::startup(|| async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(DbError::Connect)?;
    Ok(pool)
}

/// Runs `runner` with its own history table, under an advisory lock so several replicas starting
/// at once migrate one after the other.
pub async fn migrate(
    pool: &Pool,
    service: &str,
    mut runner: refinery::Runner,
) -> Result<(), DbError> {
    let fail = |reason: String| DbError::Migrate {
        service: service.to_owned(),
        reason,
    };
    let mut client = pool.get().await.map_err(|e| fail(e.to_string()))?;
    // A fixed key: one migration at a time across all Switchyard services sharing the database.
    const LOCK: i64 = 0x5357_5943_4859_4d49;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await
        .map_err(|e| fail(e.to_string()))?;
    runner.set_migration_table_name(format!("refinery_history_{service}"));
    let result = runner.run_async(&mut **client).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    result.map_err(|e| fail(e.to_string()))?;
    unlock.map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// True when a connection can be had and answers within a second.
pub async fn is_ready(pool: &Pool) -> bool {
    let check = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(1), check).await,
        Ok(Some(_))
    )
}
