//! Monitor: turns delivery reports into per-flow health — received, delivered, failed and
//! dead-lettered counts, end-to-end latency and freshness — on `/metrics`, kept in PostgreSQL so
//! they survive restarts; keeps dedupe's identity conflicts and merge results for the admin API.

pub mod admin;
mod identity;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use prost::Message as _;
use switchyard_chassis::bus::{Bus, ConsumerSpec, Delivery, StreamKind, run_consumer, settled};
use switchyard_chassis::config::Config;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::{
    DeliveryOutcome, DeliveryResult, IdentityCommandResult, IdentityConflict,
};

const STAGE: &str = "monitor";
const MAX_ATTEMPTS: u64 = 20;

mod migrations {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowOutcome {
    flow: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabel {
    flow: String,
}

#[derive(Debug, Clone)]
struct Metrics {
    events: Family<FlowOutcome, Counter>,
    latency: Family<FlowLabel, Histogram>,
    last_delivered: Family<FlowLabel, Gauge>,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Self {
        let events = Family::<FlowOutcome, Counter>::default();
        registry.register(
            "flow_events",
            "Golden changes per flow and outcome (received, delivered, failed, dead_lettered, skipped)",
            events.clone(),
        );
        let latency = Family::<FlowLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register_with_unit(
            "flow_end_to_end",
            "Webhook received by ingest to destination acknowledged",
            Unit::Seconds,
            latency.clone(),
        );
        let last_delivered = Family::<FlowLabel, Gauge>::default();
        registry.register(
            "flow_last_delivered_timestamp_seconds",
            "Unix time of the flow's last successful delivery (freshness)",
            last_delivered.clone(),
        );
        Self {
            events,
            latency,
            last_delivered,
        }
    }
}

/// The monitor service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    admin: admin::AdminService,
    auth: admin::Auth,
    admin_listener: tokio::net::TcpListener,
    consumer: switchyard_chassis::async_nats::jetstream::consumer::PullConsumer,
    handler: Handler,
}

#[derive(Debug, Clone)]
struct Handler {
    bus: Bus,
    pool: Pool,
    metrics: Metrics,
    retry: RedeliveryPolicy,
}

impl App {
    /// Connects, migrates, loads the stored counts and creates the `monitor` consumer.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        let mut runtime = Runtime::start(
            STAGE,
            &config,
            config.monitor.ops_listen,
            Some(migrations::migrations::runner()),
            shutdown,
        )
        .await?;
        let pool = runtime.pool()?;
        let metrics = Metrics::register(&mut runtime.registry);
        load_counts(&pool, &metrics, &config).await?;
        let consumer = runtime
            .bus
            .consumer(&ConsumerSpec {
                stream: StreamKind::Ops,
                name: STAGE.to_owned(),
                filter: runtime.bus.names().stream_subjects(StreamKind::Ops),
                max_deliver: i64::try_from(MAX_ATTEMPTS).unwrap_or(20) + 5,
                ack_wait: Duration::from_secs(30),
                batch: 128,
            })
            .await?;
        let handler = Handler {
            bus: runtime.bus.clone(),
            pool,
            metrics,
            retry: RedeliveryPolicy::default(),
        };
        let admin = admin::AdminService {
            bus: runtime.bus.clone(),
            pool: handler.pool.clone(),
            flows: config.flows.clone(),
        };
        let auth = admin::Auth::new(
            config.monitor.read_token.clone(),
            config.monitor.operator_token.clone(),
        );
        if config.monitor.read_token.is_none() && config.monitor.operator_token.is_none() {
            tracing::warn!(
                "no admin tokens configured (monitor.read_token_env, monitor.operator_token_env); the admin API refuses every call"
            );
        }
        let admin_listener = switchyard_chassis::runtime::bind(config.monitor.admin_listen).await?;
        Ok(Self {
            runtime,
            admin,
            auth,
            admin_listener,
            consumer,
            handler,
        })
    }

    /// Where the admin gRPC API is served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.runtime.ops_addr()
    }

    /// Counts delivery reports until shutdown.
    pub async fn run(self) -> Result<(), Error> {
        let shutdown = self.runtime.shutdown.clone();
        let handler = self.handler;
        let consumer = self.consumer;
        let admin = tonic::transport::Server::builder()
            .add_service(
                switchyard_proto::v1::admin_server::AdminServer::with_interceptor(
                    self.admin, self.auth,
                ),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.admin_listener),
                shutdown.clone().cancelled_owned(),
            );
        self.runtime
            .run(async move {
                let consume = run_consumer(consumer, STAGE, 128, shutdown, |d| {
                    handler.clone().handle(d)
                });
                let (_, served) = tokio::join!(consume, admin);
                served.map_err(|e| Error::Other(format!("admin API: {e}")))
            })
            .await
    }
}

/// Starts the counters from what is stored, and shows every configured flow even before traffic.
async fn load_counts(pool: &Pool, metrics: &Metrics, config: &Config) -> Result<(), Error> {
    let client = pool.get().await.map_err(|e| Error::Other(e.to_string()))?;
    let rows = client
        .query("SELECT flow, outcome, count FROM flow_counts", &[])
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    for flow in &config.flows {
        for outcome in ["received", "delivered", "failed", "dead_lettered"] {
            drop(metrics.events.get_or_create(&FlowOutcome {
                flow: flow.name.clone(),
                outcome: outcome.to_owned(),
            }));
        }
    }
    for row in rows {
        let labels = FlowOutcome {
            flow: row.get(0),
            outcome: row.get(1),
        };
        let count: i64 = row.get(2);
        metrics
            .events
            .get_or_create(&labels)
            .inc_by(u64::try_from(count).unwrap_or(0));
    }
    let fresh = client
        .query(
            "SELECT flow, extract(epoch FROM last_delivered_at)::bigint FROM flow_freshness",
            &[],
        )
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    for row in fresh {
        let at: i64 = row.get(1);
        metrics
            .last_delivered
            .get_or_create(&FlowLabel { flow: row.get(0) })
            .set(at);
    }
    Ok(())
}

fn outcome_label(outcome: DeliveryOutcome) -> &'static str {
    match outcome {
        DeliveryOutcome::Received => "received",
        DeliveryOutcome::Delivered => "delivered",
        DeliveryOutcome::Failed => "failed",
        DeliveryOutcome::DeadLettered => "dead_lettered",
        DeliveryOutcome::Skipped => "skipped",
        DeliveryOutcome::Unspecified => "unspecified",
    }
}

impl Handler {
    async fn handle(self, delivery: Delivery) {
        let conflicts = format!("{}.ops.conflict.", self.bus.names().prefix());
        if delivery.subject().starts_with(&conflicts) {
            return self.handle_identity(delivery).await;
        }
        if !delivery.subject().contains(".ops.delivery.") {
            // Other OPS traffic (notices, alerts) is not counted here yet.
            settled(delivery.ack().await);
            return;
        }
        let result = match DeliveryResult::decode(delivery.payload()) {
            Ok(result) => result,
            Err(error) => {
                let reason = format!("undecodable delivery result: {error}");
                self.bus
                    .dead_letter_then_ack(delivery, STAGE, "ops", &reason, 0, &self.retry)
                    .await;
                return;
            }
        };
        let outcome = outcome_label(DeliveryOutcome::try_from(result.outcome).unwrap_or_default());
        let msg_id = delivery.msg_id().map_or_else(
            || format!("seq:{}", delivery.stream_sequence()),
            str::to_owned,
        );
        match self.store(&msg_id, &result, outcome).await {
            Ok(true) => {
                let flow = FlowLabel {
                    flow: result.flow.clone(),
                };
                self.metrics
                    .events
                    .get_or_create(&FlowOutcome {
                        flow: result.flow.clone(),
                        outcome: outcome.to_owned(),
                    })
                    .inc();
                if outcome == "delivered" {
                    #[allow(clippy::cast_precision_loss)] // milliseconds fit a double exactly
                    let seconds = result.end_to_end_ms as f64 / 1000.0;
                    self.metrics.latency.get_or_create(&flow).observe(seconds);
                    let at = result
                        .at
                        .map_or_else(switchyard_chassis::unix_now, |t| t.seconds);
                    self.metrics.last_delivered.get_or_create(&flow).set(at);
                }
                settled(delivery.ack().await);
            }
            Ok(false) => settled(delivery.ack().await),
            Err(error) if delivery.attempt() < MAX_ATTEMPTS => {
                tracing::warn!(%error, "report not stored; will retry");
                let delay = self.retry.delay(delivery.attempt(), None);
                settled(delivery.nak(Some(delay)).await);
            }
            Err(error) => {
                let reason = format!("report not stored after {MAX_ATTEMPTS} attempts: {error}");
                self.bus
                    .dead_letter_then_ack(delivery, STAGE, "ops", &reason, 0, &self.retry)
                    .await;
            }
        }
    }

    /// Keeps an identity conflict notice or, on `.command` subjects, a merge command's result.
    async fn handle_identity(self, delivery: Delivery) {
        let stored = if delivery.subject().ends_with(".command") {
            match IdentityCommandResult::decode(delivery.payload()) {
                Ok(result) => identity::store_result(&self.pool, &result).await,
                Err(error) => {
                    let reason = format!("undecodable identity command result: {error}");
                    return self.dead_letter(delivery, &reason).await;
                }
            }
        } else {
            match IdentityConflict::decode(delivery.payload()) {
                Ok(conflict) => identity::store_conflict(&self.pool, &conflict).await,
                Err(error) => {
                    let reason = format!("undecodable identity conflict: {error}");
                    return self.dead_letter(delivery, &reason).await;
                }
            }
        };
        match stored {
            Ok(()) => settled(delivery.ack().await),
            Err(error) if delivery.attempt() < MAX_ATTEMPTS => {
                tracing::warn!(%error, "identity notice not stored; will retry");
                let delay = self.retry.delay(delivery.attempt(), None);
                settled(delivery.nak(Some(delay)).await);
            }
            Err(error) => {
                let reason = format!("notice not stored after {MAX_ATTEMPTS} attempts: {error}");
                self.dead_letter(delivery, &reason).await;
            }
        }
    }

    async fn dead_letter(&self, delivery: Delivery, reason: &str) {
        self.bus
            .dead_letter_then_ack(delivery, STAGE, "ops", reason, 0, &self.retry)
            .await;
    }

    /// Stores the count; false when this report was counted before.
    async fn store(
        &self,
        msg_id: &str,
        result: &DeliveryResult,
        outcome: &str,
    ) -> Result<bool, String> {
        let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        let fresh = tx
            .execute(
                "INSERT INTO counted_reports (msg_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&msg_id],
            )
            .await
            .map_err(|e| e.to_string())?;
        if fresh == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO flow_counts (flow, outcome, count) VALUES ($1, $2, 1) \
             ON CONFLICT (flow, outcome) DO UPDATE SET count = flow_counts.count + 1",
            &[&result.flow, &outcome],
        )
        .await
        .map_err(|e| e.to_string())?;
        if outcome == "delivered" {
            let at = result
                .at
                .and_then(|t| SystemTime::try_from(t).ok())
                .unwrap_or_else(SystemTime::now);
            tx.execute(
                "INSERT INTO flow_freshness (flow, last_delivered_at) VALUES ($1, $2) \
                 ON CONFLICT (flow) DO UPDATE SET last_delivered_at = GREATEST(flow_freshness.last_delivered_at, EXCLUDED.last_delivered_at)",
                &[&result.flow, &at],
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(true)
    }
}
