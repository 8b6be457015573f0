//! Deliver: golden-record changes in, writes to destination systems out. One durable consumer per
//! flow, so a failing destination never blocks another; every write carries a stable idempotency
//! key; every failure ends in a retry or a dead letter with its reason.

mod api;
mod destination;
mod flow;
mod hubspot;
mod ids;
mod klaviyo;
pub mod mailchimp;
mod minimise;
mod quickbooks;
mod salesforce;
mod stripe;
mod values;
pub mod webhook;
mod xero;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use switchyard_chassis::bus::{ConsumerSpec, StreamKind, run_consumer};
use switchyard_chassis::config::Config;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::{CancellationToken, Error, Runtime};

use destination::Destination;
use flow::{Flow, Labels};

const STAGE: &str = "deliver";
/// Messages pulled at once per flow: small, because each may wait on a slow destination.
const BATCH: usize = 4;

mod migrations {
    refinery::embed_migrations!("migrations");
}

/// The deliver service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    flows: Vec<(
        Arc<Flow>,
        switchyard_chassis::async_nats::jetstream::consumer::PullConsumer,
    )>,
}

impl App {
    /// Connects to NATS and PostgreSQL, runs migrations, creates one consumer per flow.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        let mut runtime = Runtime::start(
            STAGE,
            &config,
            config.deliver.ops_listen,
            Some(migrations::migrations::runner()),
            shutdown,
        )
        .await?;
        let pool = runtime.pool()?;
        let attempts = Family::<Labels, Counter>::default();
        runtime.registry.register(
            "deliver_attempts",
            "Delivery attempts, by flow and outcome (delivered, failed, dead_lettered, skipped)",
            attempts.clone(),
        );
        // One connector per destination, shared by all its flows: one token bucket, and one
        // OAuth2 token manager, so flows never refresh the same destination's token twice.
        let mut destinations: std::collections::HashMap<String, Arc<Destination>> =
            std::collections::HashMap::new();
        let mut flows = Vec::new();
        for flow_config in &config.flows {
            let dest_config = config
                .destination(&flow_config.destination)
                .ok_or_else(|| {
                    Error::Other(format!("flow {}: unknown destination", flow_config.name))
                })?;
            if !destination::takes(dest_config.kind, flow_config.object) {
                return Err(Error::Other(format!(
                    "flow {}: a {} destination does not take {} changes",
                    flow_config.name,
                    dest_config.kind.as_str(),
                    flow_config.object.as_str()
                )));
            }
            let destination = match destinations.get(&dest_config.name) {
                Some(destination) => destination.clone(),
                None => {
                    let destination = Arc::new(
                        Destination::new(
                            dest_config,
                            destination::limiter(dest_config),
                            &pool,
                            &runtime.bus,
                        )
                        .await
                        .map_err(Error::Other)?,
                    );
                    destinations.insert(dest_config.name.clone(), destination.clone());
                    destination
                }
            };
            let consumer = runtime
                .bus
                .consumer(&ConsumerSpec {
                    stream: StreamKind::Golden,
                    name: format!("deliver-{}", flow_config.name),
                    filter: runtime.bus.names().golden(flow_config.object.as_str()),
                    // Dead-lettering happens at max_attempts; the server limit is a backstop.
                    max_deliver: i64::from(flow_config.max_attempts) + 5,
                    ack_wait: dest_config.timeout * u32::try_from(BATCH).unwrap_or(4)
                        + Duration::from_secs(30),
                    batch: BATCH,
                })
                .await?;
            let defaults = RedeliveryPolicy::default();
            let flow = Flow {
                config: flow_config.clone(),
                destination,
                bus: runtime.bus.clone(),
                pool: pool.clone(),
                retry: RedeliveryPolicy {
                    base: flow_config.retry_base.unwrap_or(defaults.base),
                    max: flow_config.retry_max.unwrap_or(defaults.max),
                },
                attempts: attempts.clone(),
                paused: Default::default(),
            };
            flows.push((Arc::new(flow), consumer));
        }
        Ok(Self { runtime, flows })
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.runtime.ops_addr()
    }

    /// Delivers until shutdown, every flow on its own consumer.
    pub async fn run(self) -> Result<(), Error> {
        let shutdown = self.runtime.shutdown.clone();
        let flows = self.flows;
        self.runtime
            .run(async move {
                let runs = flows.into_iter().map(|(flow, consumer)| {
                    let shutdown = shutdown.clone();
                    async move {
                        run_consumer(consumer, STAGE, BATCH, shutdown, |d| {
                            let flow = flow.clone();
                            async move { flow.handle(d).await }
                        })
                        .await;
                    }
                });
                futures::future::join_all(runs).await;
                Ok(())
            })
            .await
    }
}
