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

/// Set on every connection; see [`connect`].
const SESSION_OPTIONS: &str = "-c plan_cache_mode=force_custom_plan -c jit=off";

/// Builds the pool and checks one connection (retrying briefly while PostgreSQL starts).
pub async fn connect(config: &DatabaseConfig) -> Result<Pool, DbError> {
    let mut pg: tokio_postgres::Config =
        config
            .url
            .expose_secret()
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                DbError::Url(format!(
                    "database.url is not a valid PostgreSQL connection string: {e}"
                ))
            })?;
    // Statements are prepared once per connection (`prepare_cached`), and PostgreSQL would keep
    // the generic plan it chose while a table was still small: a sequential scan of
    // `golden_contacts`, a scan of every `deliveries` row of a flow, each look-up slower as the
    // table grows, until an ANALYZE (autovacuum, when it runs) replans them. Custom plans
    // (planned for each execution, ~0.1 ms) stay index look-ups whatever the statistics say.
    // JIT is off: without statistics the planner's cost estimates of a batch's look-ups reach
    // JIT's thresholds, and compiling them took ~0.7 s a statement for queries that run in
    // milliseconds; every statement here is short.
    let options = [pg.get_options(), Some(SESSION_OPTIONS)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    pg.options(&options);
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
        .max_size(config.pool_size.get())
        .build()
        .map_err(|e| DbError::Connect(e.to_string()))?;
    retry::startup(|| async {
        let client = pool
            .get()
            .await
            .map_err(|e| crate::error::with_causes(&e))?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| crate::error::with_causes(&e))
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
            pool_size: std::num::NonZeroUsize::new(1).expect("non-zero"),
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

    /// A pool of one connection to a fresh database of its own, and that database's URL.
    async fn fresh_pool(tag: &str) -> (deadpool_postgres::Pool, String) {
        let url = crate::testkit::fresh_database(tag)
            .await
            .expect("test database");
        let config = DatabaseConfig {
            url: SecretString::from(url.clone()),
            pool_size: std::num::NonZeroUsize::new(1).expect("non-zero"),
            ca_file: None,
        };
        (super::connect(&config).await.expect("pool"), url)
    }

    /// Every pooled connection plans each execution and never JIT-compiles: both are what the
    /// look-ups above and the batch statements rely on, whatever the server's own defaults.
    #[tokio::test]
    async fn connections_plan_every_execution_without_jit() {
        let (pool, url) = fresh_pool("session").await;
        let client = pool.get().await.expect("client");
        let row = client
            .query_one(
                "SELECT current_setting('jit'), current_setting('plan_cache_mode')",
                &[],
            )
            .await
            .expect("settings");
        let (jit, plans): (String, String) = (row.get(0), row.get(1));
        assert_eq!((jit.as_str(), plans.as_str()), ("off", "force_custom_plan"));
        drop(client);
        crate::testkit::drop_database(&url).await;
    }

    /// A statement cached while its table was small (as every table is on a fresh install) is
    /// still an index look-up by both key columns once the table holds thousands of rows, with
    /// no ANALYZE between: the generic plan PostgreSQL settles on for a table of a few rows
    /// probes the index by `flow` alone and filters every row of the flow.
    #[tokio::test]
    async fn cached_statements_stay_index_lookups_as_a_table_grows() {
        let (pool, url) = fresh_pool("plans").await;
        let client = pool.get().await.expect("client");
        client
            .batch_execute(
                "CREATE TABLE seen (flow text, id text, PRIMARY KEY (flow, id)); \
                 ALTER TABLE seen SET (autovacuum_enabled = false)",
            )
            .await
            .expect("table");
        client
            .execute(
                "INSERT INTO seen SELECT 'f', 'x' || i FROM generate_series(1, 100) i",
                &[],
            )
            .await
            .expect("first rows");
        let lookup = "SELECT id FROM seen WHERE flow = $1 AND id = ANY($2)";
        let statement = client.prepare_cached(lookup).await.expect("prepare");
        let ids = vec!["a".to_owned(), "b".to_owned()];
        // More executions than PostgreSQL's five custom plans before it settles on a generic one.
        for _ in 0..8 {
            client
                .query(&statement, &[&"f", &ids])
                .await
                .expect("look-up");
        }
        client
            .execute(
                "INSERT INTO seen SELECT 'f', i::text FROM generate_series(1, 20000) i",
                &[],
            )
            .await
            .expect("rows");
        // The rows this transaction's look-up read: none for two absent ids probed in the index,
        // every row of the flow (20,100) for a plan that probes by `flow` alone.
        let mut client = client;
        let tx = client.transaction().await.expect("transaction");
        let found = tx.query(&statement, &[&"f", &ids]).await.expect("look-up");
        assert!(found.is_empty());
        let read: i64 = tx
            .query_one(
                "SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) \
                 FROM pg_stat_xact_user_tables WHERE relname = 'seen'",
                &[],
            )
            .await
            .expect("statistics")
            .get(0);
        assert!(read < 10, "the look-up read {read} rows to find two ids");
        drop(tx);
        drop(client);
        crate::testkit::drop_database(&url).await;
    }

    /// A self-signed certificate made for this test (CN=switchyard-test-ca), not the server's CA.
    const OTHER_CA: &str = include_str!("../tests/data/other-ca.pem");
}
