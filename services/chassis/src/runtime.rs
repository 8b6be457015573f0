//! What a service needs before it can work: the bus with its streams, the database with its
//! migrations, a metrics registry and a bound ops listener; and the run loop that serves ops
//! while the service works, until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::bus::Bus;
use crate::config::Config;

/// How long in-flight work may take to finish after shutdown is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The started dependencies of one service.
#[derive(Debug)]
pub struct Runtime {
    pub service: &'static str,
    pub bus: Bus,
    pub pool: Option<Pool>,
    /// Register the service's metrics here before [`Runtime::run`].
    pub registry: Registry,
    pub shutdown: CancellationToken,
    ops_listener: TcpListener,
}

impl Runtime {
    /// Connects to NATS (declaring the streams), to PostgreSQL when `migrations` are given
    /// (running them), and binds the ops listener.
    pub async fn start(
        service: &'static str,
        config: &Config,
        ops_listen: SocketAddr,
        migrations: Option<refinery::Runner>,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        let bus = Bus::connect(
            &config.nats,
            &config.prefix,
            &format!("switchyard-{service}"),
        )
        .await?;
        bus.ensure_streams().await?;
        let pool = match migrations {
            Some(runner) => {
                let pool = crate::db::connect(&config.database).await?;
                crate::db::migrate(&pool, service, runner).await?;
                Some(pool)
            }
            None => None,
        };
        let ops_listener = bind(ops_listen).await?;
        let mut registry = Registry::with_prefix("switchyard");
        bus.consume_metrics().register(&mut registry);
        Ok(Self {
            service,
            bus,
            pool,
            registry,
            shutdown,
            ops_listener,
        })
    }

    /// The database pool of a service started with migrations.
    pub fn pool(&self) -> Result<Pool, Error> {
        self.pool
            .clone()
            .ok_or_else(|| Error::Other(format!("{} needs PostgreSQL", self.service)))
    }

    /// The settler of this service's messages: the default redelivery policy, `max_attempts`
    /// attempts, dead letters under the service's stage.
    pub fn settler(&self, max_attempts: u64) -> crate::bus::Settler {
        crate::bus::Settler::new(
            self.bus.clone(),
            self.service,
            crate::retry::RedeliveryPolicy::default(),
            max_attempts,
        )
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves the ops endpoints while `work` runs. `work` must return once the shutdown token is
    /// cancelled and its in-flight messages are settled; it gets [`DRAIN_TIMEOUT`] to do so.
    pub async fn run<F>(self, work: F) -> Result<(), Error>
    where
        F: Future<Output = Result<(), Error>>,
    {
        let Self {
            service,
            bus,
            pool,
            registry,
            shutdown,
            ops_listener,
        } = self;
        let ops = tokio::spawn(crate::ops::serve(
            ops_listener,
            service,
            Arc::new(registry),
            bus,
            pool,
            shutdown.clone(),
        ));
        tracing::info!(service, "started");
        tokio::pin!(work);
        let result = tokio::select! {
            result = &mut work => result,
            () = shutdown.cancelled() => {
                match tokio::time::timeout(DRAIN_TIMEOUT, &mut work).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!(service, "in-flight work did not finish in time; unacknowledged messages will be redelivered");
                        Ok(())
                    }
                }
            }
        };
        // Work that ended on its own (an error) takes the ops server down with it.
        shutdown.cancel();
        match ops.await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => tracing::warn!(service, error = %source, "ops server failed"),
            Err(join) => tracing::warn!(service, error = %join, "ops server task failed"),
        }
        tracing::info!(service, "stopped");
        result
    }
}

/// Binds a TCP listener, naming the address when it fails.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}
