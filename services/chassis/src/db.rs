//! PostgreSQL: a deadpool connection pool and per-service migrations run at start-up.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::ExposeSecret as _;
use tokio_postgres::NoTls;

use crate::config::DatabaseConfig;
use crate::retry;

/// Database failures at start-up.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database settings: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("migrations failed for {service}: {reason}")]
    Migrate { service: String, reason: String },
}

/// Builds the pool and checks one connection (retrying briefly while PostgreSQL starts).
pub async fn connect(config: &DatabaseConfig) -> Result<Pool, DbError> {
    let pg: tokio_postgres::Config =
        config
            .url
            .expose_secret()
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                DbError::Url(format!(
                    "database.url is not a valid PostgreSQL connection string: {e}"
                ))
            })?;
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        let tls = crate::db_tls::client_config(config.ca_file.as_deref()).map_err(DbError::Url)?;
        Manager::from_config(
            pg,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            manager_config,
        )
    } else {
        Manager::from_config(pg, NoTls, manager_config)
    };
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

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use secrecy::SecretString;

    use crate::config::DatabaseConfig;

    /// The test server over TCP (TLS needs TCP; the other tests use the local socket). A stock
    /// Debian server asks for a password over TCP, so scripts/test.sh sets
    /// `SWITCHYARD_TEST_DATABASE_TCP_URL` only where a TCP login works; elsewhere these tests say
    /// they were skipped.
    fn tcp(extra: &str) -> Option<DatabaseConfig> {
        let Ok(base) = std::env::var("SWITCHYARD_TEST_DATABASE_TCP_URL") else {
            eprintln!(
                "skipped: SWITCHYARD_TEST_DATABASE_TCP_URL is not set (no TCP login to the test server)"
            );
            return None;
        };
        Some(DatabaseConfig {
            url: SecretString::from(format!("{base} {extra}")),
            pool_size: 1,
            ca_file: None,
        })
    }

    #[tokio::test]
    async fn sslmode_require_encrypts_the_connection() {
        let Some(config) = tcp("sslmode=require") else {
            return;
        };
        let pool = super::connect(&config).await.expect("TLS connection");
        let client = pool.get().await.expect("client");
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_ssl");
        assert!(row.get::<_, bool>(0), "the session is encrypted");
        let Some(config) = tcp("sslmode=disable") else {
            return;
        };
        let plain = super::connect(&config).await.expect("plain connection");
        let row = plain
            .get()
            .await
            .expect("client")
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_ssl");
        assert!(!row.get::<_, bool>(0));
    }

    #[tokio::test]
    async fn a_ca_that_did_not_sign_the_server_certificate_is_refused() {
        // A CA that certainly did not sign the server's certificate: a fresh self-signed one.
        let dir = std::env::temp_dir().join(crate::testkit::unique("sy-ca-"));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, OTHER_CA).expect("write");
        let Some(mut config) = tcp("sslmode=require connect_timeout=2") else {
            return;
        };
        config.ca_file = Some(ca);
        let err = super::connect(&config)
            .await
            .expect_err("unverifiable server");
        assert!(err.to_string().contains("cannot connect"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A self-signed certificate made for this test (CN=switchyard-test-ca), not the server's CA.
    const OTHER_CA: &str = include_str!("../tests/data/other-ca.pem");
}
