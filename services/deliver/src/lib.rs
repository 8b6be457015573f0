//! Deliver: golden-record changes in, writes to destination systems out. One durable consumer per
//! flow, so a failing destination never blocks another; every write carries a stable idempotency
//! key; every failure ends in a retry or a dead letter with its reason.

mod batcher;
pub use connectors::{mailchimp, webhook};
mod breaker;
mod connectors;
mod destination;
mod flow;
mod minimise;
mod pause;
mod status;
mod when;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use switchyard_chassis::bus::{ConsumerSpec, Delivery, Settler, StreamKind, run_laned_consumer};
use switchyard_chassis::config::Config;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::{CancellationToken, Error, Runtime};

use destination::Destination;
use flow::{Flow, Labels};

const STAGE: &str = "deliver";
/// Messages asked for per pull request, per flow: enough that the lanes never wait on a pull.
const PULL: usize = 512;
/// Writes in flight per flow, each on its own lane (see `run`): throughput is lanes over a
/// delivery's latency (the destination's answer, plus the batched look-up, record and outcome
/// report — several hops between processes, each waiting its turn on a busy machine), so many
/// cheap lanes; a destination with a rate limit is still paced by its token bucket.
const LANES: usize = 128;
/// Changes queued behind each lane's write in hand; a full lane holds the pull.
const LANE_DEPTH: usize = 4;
/// Attempts at an operator's flow command before it is dead-lettered.
const COMMAND_ATTEMPTS: u64 = 100;

/// A golden change's golden record id alone (`GoldenChange.golden_id`, field 2): decoding it
/// skips the record and the cause, which the lane's handler decodes anyway.
#[derive(Clone, PartialEq, prost::Message)]
struct LaneKey {
    #[prost(string, tag = "2")]
    golden_id: String,
}

/// The lane key of a golden change: its golden record id, so one record's changes stay in order.
fn lane_key(delivery: &Delivery) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let key = LaneKey::decode(delivery.payload())
        .map(|key| key.golden_id)
        .unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

mod migrations {
    refinery::embed_migrations!("migrations");
}

/// The deliver service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    flows: Vec<(Arc<Flow>, Settler, PullConsumer)>,
}

type PullConsumer = switchyard_chassis::async_nats::jetstream::consumer::PullConsumer;

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
        let circuit_open = breaker::OpenGauge::default();
        runtime.registry.register(
            "deliver_circuit_open",
            "Whether the destination's circuit breaker is open (1): deliver does not call it until the cool-down ends",
            circuit_open.clone(),
        );
        let reporter = status::Reporter::start(runtime.bus.clone(), runtime.shutdown.clone());
        // One connector per destination, shared by all its flows: one token bucket, one circuit
        // breaker, and one OAuth2 token manager, so flows never refresh the same destination's
        // token twice.
        let mut destinations: std::collections::HashMap<String, Arc<Destination>> =
            std::collections::HashMap::new();
        let mut flows = Vec::new();
        // One batcher for every flow's `deliveries` rows: the more lanes share it, the fewer
        // round trips and commits per delivery.
        let deliveries = batcher::Deliveries::start(pool.clone());
        for flow_config in &config.flows {
            let dest_config = config
                .destination(&flow_config.destination)
                .ok_or_else(|| {
                    Error::Other(format!("flow {}: unknown destination", flow_config.name))
                })?;
            if !connectors::takes(dest_config.kind, flow_config.object) {
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
                    // Every refresh of its OAuth2 token is watched for credential alerts.
                    let mut watched = dest_config.clone();
                    if watched.refreshes() {
                        watched.refresh_observer = Some(Arc::new(status::CredentialWatch::new(
                            &dest_config.name,
                            reporter.clone(),
                        )));
                    }
                    let gauge = circuit_open
                        .get_or_create(&breaker::DestinationLabel {
                            destination: dest_config.name.clone(),
                        })
                        .clone();
                    let destination = Arc::new(
                        Destination::new(
                            &watched,
                            destination::limiter(dest_config),
                            &pool,
                            &runtime.bus,
                        )
                        .await
                        .map_err(Error::Other)?
                        .with_breaker(breaker::Breaker::for_destination(dest_config, gauge)),
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
                    // Unlimited: a change is dead-lettered at max_attempts real attempts or at
                    // max_age, whichever comes first, and redeliveries that only waited for an
                    // open circuit breaker are not attempts. A server limit would drop a change
                    // without a dead letter while it waits out a long outage.
                    max_deliver: -1,
                    // A pulled message may wait for its lane's current write and those queued
                    // before it, each at most a timeout, besides its own.
                    ack_wait: dest_config.timeout * u32::try_from(LANE_DEPTH + 2).unwrap_or(6)
                        + Duration::from_secs(30),
                    batch: PULL,
                })
                .await?;
            let defaults = RedeliveryPolicy::default();
            let settler = Settler::new(
                runtime.bus.clone(),
                STAGE,
                RedeliveryPolicy {
                    base: flow_config.retry_base.unwrap_or(defaults.base),
                    max: flow_config.retry_max.unwrap_or(defaults.max),
                },
                u64::from(flow_config.max_attempts),
            );
            let flow = Flow {
                config: flow_config.clone(),
                destination,
                bus: runtime.bus.clone(),
                pool: pool.clone(),
                deliveries: deliveries.clone(),
                attempts: attempts.clone(),
                paused: Default::default(),
                reporter: reporter.clone(),
                deferrals: Default::default(),
            };
            flows.push((Arc::new(flow), settler, consumer));
        }
        // Pauses survive restarts; monitor hears of them again (the same report, counted once).
        for (name, at) in pause::load(&pool).await.map_err(Error::Other)? {
            if let Some((flow, ..)) = flows.iter().find(|(f, ..)| f.config.name == name) {
                flow.paused
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                reporter.paused(&name, flow.destination.name(), flow::PAUSED, at);
            }
        }
        // Operators' commands (resume a paused flow) on their own consumer, beside the flows.
        let commands = Arc::new(pause::Commands {
            flows: Arc::new(
                flows
                    .iter()
                    .map(|(f, ..)| (f.config.name.clone(), f.clone()))
                    .collect(),
            ),
            pool: pool.clone(),
            reporter,
        });
        let command_consumer = runtime
            .bus
            .consumer(&ConsumerSpec {
                stream: StreamKind::Ops,
                name: "deliver-commands".to_owned(),
                filter: runtime.bus.names().ops_command(STAGE),
                // A backstop behind the settler's own limit, which dead-letters first.
                max_deliver: i64::try_from(COMMAND_ATTEMPTS).unwrap_or(100) + 5,
                ack_wait: Duration::from_secs(30),
                batch: 8,
            })
            .await?;
        let settler = runtime.settler(COMMAND_ATTEMPTS);
        tokio::spawn(switchyard_chassis::bus::run_consumer(
            command_consumer,
            settler,
            8,
            runtime.shutdown.clone(),
            commands,
        ));
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
                let runs = flows.into_iter().map(|(flow, settler, consumer)| {
                    let shutdown = shutdown.clone();
                    async move {
                        // Lanes: changes of one golden record always take the same lane, so a
                        // record's versions reach the destination in order, while other records'
                        // writes proceed beside them (one write at a time capped throughput at
                        // one over the destination's latency). The pull keeps running while
                        // lanes work; only a full lane holds it.
                        run_laned_consumer(
                            consumer, settler, PULL, LANES, LANE_DEPTH, shutdown, lane_key, flow,
                        )
                        .await;
                    }
                });
                futures::future::join_all(runs).await;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_proto::v1::GoldenChange;

    #[test]
    fn the_lane_key_reads_the_golden_id_of_a_whole_change() {
        let change = GoldenChange {
            change_id: "g1:3".to_owned(),
            golden_id: "g1".to_owned(),
            object_type: "contact".to_owned(),
            version: 3,
            changed_fields: vec!["email".to_owned()],
            ..Default::default()
        };
        let key = LaneKey::decode(change.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(key.golden_id, "g1");
        // Bad input is a key like any other (the handler dead-letters it), never a panic.
        assert!(LaneKey::decode(&b"\xff\xff"[..]).is_err());
    }
}
