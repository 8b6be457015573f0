//! Deliver: golden-record changes in, writes to destination systems out. One durable consumer per
//! flow, so a failing destination never blocks another; every write carries a stable idempotency
//! key; every failure ends in a retry or a dead letter with its reason.

mod api;
mod books;
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
use prost::Message as _;
use switchyard_chassis::bus::{ConsumerSpec, Delivery, StreamKind, run_consumer};
use switchyard_chassis::config::Config;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::GoldenChange;
use tracing::Instrument as _;

use destination::Destination;
use flow::{Flow, Labels};

const STAGE: &str = "deliver";
/// Messages pulled at once per flow: small, because each may wait on a slow destination.
const BATCH: usize = 4;
/// Writes in flight per flow, each on its own lane (see `run`).
const LANES: usize = 16;

/// The lane of a golden change: by its golden record id, so one record's changes stay in order.
fn lane_of(delivery: &Delivery, lanes: usize) -> usize {
    use std::hash::{Hash as _, Hasher as _};
    let key = GoldenChange::decode(delivery.payload())
        .map(|change| change.golden_id)
        .unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    usize::try_from(hasher.finish() % lanes.max(1) as u64).unwrap_or(0)
}

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
                    // A pulled message may wait for its lane's current write and the one queued
                    // before it, each at most a timeout, besides its own.
                    ack_wait: dest_config.timeout * u32::try_from(BATCH + 2).unwrap_or(6)
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
                        // Lanes: changes of one golden record always take the same lane, so a
                        // record's versions reach the destination in order, while other records'
                        // writes proceed beside them (one write at a time capped throughput at
                        // one over the destination's latency).
                        let (lanes, workers): (Vec<_>, Vec<_>) = (0..LANES)
                            .map(|_| {
                                let (lane, mut queue) = tokio::sync::mpsc::channel::<Delivery>(1);
                                let flow = flow.clone();
                                let worker = tokio::spawn(async move {
                                    while let Some(delivery) = queue.recv().await {
                                        let span = delivery.span().clone();
                                        flow.handle(delivery).instrument(span).await;
                                    }
                                });
                                (lane, worker)
                            })
                            .unzip();
                        run_consumer(consumer, STAGE, BATCH, shutdown, |d| {
                            let lane = lanes[lane_of(&d, lanes.len())].clone();
                            async move {
                                // Waits while the lane is busy: what is pulled stays bounded.
                                let _ = lane.send(d).await;
                            }
                        })
                        .await;
                        // What the lanes hold is finished (and acknowledged) before stopping.
                        drop(lanes);
                        futures::future::join_all(workers).await;
                    }
                });
                futures::future::join_all(runs).await;
                Ok(())
            })
            .await
    }
}
