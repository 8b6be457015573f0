//! Monitor: turns delivery reports into per-flow health — received, delivered, failed and
//! dead-lettered counts, end-to-end latency, freshness and the value delivered — on `/metrics`,
//! kept in PostgreSQL (with per-flow volume buckets) so they survive restarts; keeps dedupe's
//! identity conflicts and merge results and transform's schema-drift notices; evaluates the alert
//! rules against baselines, sends alerts and a daily health report to a webhook, and serves the
//! admin API.

pub mod admin;
mod alerts;
mod backlog;
mod clock;
pub mod dashboard;
mod notify;
mod payload;
mod prune;
mod recorder;
mod report;
mod rules;
mod status;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use prost::Message as _;
use switchyard_chassis::bus::{
    Bus, ConsumerSpec, Delivery, ErrorClass, Failure, Outcome, StreamKind,
    run_consumer_concurrently,
};
use switchyard_chassis::config::Config;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::signing::SigningKey;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::{
    DeliveryOutcome, DeliveryResult, FlowStatus, IdentityCommandResult, IdentityConflict,
    SchemaDrift,
};

use crate::recorder::{Recorder, Report};

const STAGE: &str = "monitor";
const MAX_ATTEMPTS: u64 = 20;
/// Reports in hand at once: each waits for its batch to be written (`recorder`), so many must
/// be in hand for batches to fill.
const CONCURRENCY: usize = 256;

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
    value_delivered: Family<FlowLabel, Gauge<f64, AtomicU64>>,
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
        let value_delivered = Family::<FlowLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "flow_value_delivered",
            "Value of the manual work the flow's deliveries saved, in the currency of its hourly_cost (currency units): delivered × minutes_per_record / 60 × hourly_cost",
            value_delivered.clone(),
        );
        Self {
            events,
            latency,
            last_delivered,
            value_delivered,
        }
    }

    /// Sets a flow's value delivered from its delivered count.
    fn value(&self, flow: &str, per_delivery: f64) {
        let delivered = self
            .events
            .get_or_create(&FlowOutcome {
                flow: flow.to_owned(),
                outcome: "delivered".to_owned(),
            })
            .get();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        self.value_delivered
            .get_or_create(&FlowLabel {
                flow: flow.to_owned(),
            })
            .set(delivered as f64 * per_delivery);
    }
}

/// The monitor service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    admin: admin::AdminService,
    auth: admin::Auth,
    admin_listener: tokio::net::TcpListener,
    /// The HTML dashboard and where it listens, when `monitor.dashboard_listen` is set.
    dashboard: Option<(dashboard::Dashboard, tokio::net::TcpListener)>,
    consumer: switchyard_chassis::async_nats::jetstream::consumer::PullConsumer,
    handler: Handler,
    evaluator: alerts::Evaluator,
    /// Sends alerts and reports, when a webhook is configured.
    sender: Option<(notify::Sender, report::Reporter)>,
    pruner: prune::Pruner,
    backlog: backlog::Backlog,
}

#[derive(Debug, Clone)]
struct Handler {
    bus: Bus,
    pool: Pool,
    metrics: Metrics,
    recorder: Recorder,
    /// Per flow: the value of one delivery (minutes saved / 60 × hourly cost).
    value_per_delivery: Arc<HashMap<String, f64>>,
    /// Identity notices are stored one at a time, in the order they arrive, as before reports
    /// were handled concurrently: a merge result must not overtake the conflict it resolves.
    identity_order: Arc<tokio::sync::Mutex<()>>,
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
        let value_per_delivery: HashMap<String, f64> = config
            .flows
            .iter()
            .map(|f| (f.name.clone(), report::value(f, 1.0).1))
            .collect();
        load_counts(&pool, &metrics, &config, &value_per_delivery).await?;
        let alert_metrics = alerts::AlertMetrics::register(&mut runtime.registry);
        let wake = Arc::new(tokio::sync::Notify::new());
        let alerting = &config.monitor.alerts;
        let sender = match (&alerting.webhook_url, alerting.webhook_secret()) {
            (Some(url), Some(secret)) => {
                let key = SigningKey::from_secret(secret)
                    .map_err(|e| Error::Other(format!("monitor.alerts.webhook_secret_env: {e}")))?;
                let http = reqwest::Client::builder()
                    .timeout(alerting.webhook_timeout)
                    .build()
                    .map_err(|e| Error::Other(format!("alerts webhook client: {e}")))?;
                Some((
                    notify::Sender {
                        pool: pool.clone(),
                        webhook: notify::Webhook {
                            url: url.clone(),
                            key,
                            http,
                        },
                        wake: wake.clone(),
                    },
                    report::Reporter {
                        pool: pool.clone(),
                        config: alerting.clone(),
                        flows: config.flows.clone(),
                        wake: wake.clone(),
                    },
                ))
            }
            _ => {
                tracing::info!(
                    "no alerts webhook configured (monitor.alerts.webhook_url); alerts are kept for the admin API only"
                );
                None
            }
        };
        let evaluator = alerts::Evaluator {
            pool: pool.clone(),
            config: alerting.clone(),
            flows: config.flows.clone(),
            metrics: alert_metrics,
            notifier: wake,
        };
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
            recorder: Recorder::start(pool.clone(), config.monitor.alerts.bucket),
            pool,
            metrics,
            value_per_delivery: Arc::new(value_per_delivery),
            identity_order: Arc::default(),
        };
        let admin = admin::AdminService {
            bus: runtime.bus.clone(),
            pool: handler.pool.clone(),
            flows: config.flows.clone(),
            contracts_dir: config.transform.contracts_dir.clone(),
        };
        let auth = admin::Auth::new(
            config.monitor.read_token().cloned(),
            config.monitor.operator_token().cloned(),
        );
        if config.monitor.read_token().is_none() && config.monitor.operator_token().is_none() {
            tracing::warn!(
                "no admin tokens configured (monitor.read_token_env, monitor.operator_token_env); the admin API refuses every call"
            );
        }
        let admin_listener = switchyard_chassis::runtime::bind(config.monitor.admin_listen).await?;
        let dashboard = dashboard::bind(config.monitor.dashboard_listen)
            .await?
            .map(|listener| {
                let pages = dashboard::Dashboard::new(
                    admin.clone(),
                    auth.clone(),
                    config.flows.clone(),
                    config.monitor.alerts.bucket,
                    config.monitor.alerts.trailing_buckets,
                );
                (pages, listener)
            });
        let flow_names: Vec<String> = config.flows.iter().map(|f| f.name.clone()).collect();
        let backlog = backlog::Backlog::register(
            &mut runtime.registry,
            runtime.bus.clone(),
            &flow_names,
            config.monitor.backlog_every,
        );
        let pruner = prune::Pruner {
            pool: handler.pool.clone(),
            bucket_retention: config.monitor.bucket_retention,
            report_retention: config.monitor.report_ids_kept(&config.nats),
            every: config.monitor.prune_every,
        };
        Ok(Self {
            runtime,
            admin,
            auth,
            admin_listener,
            dashboard,
            consumer,
            handler,
            evaluator,
            sender,
            pruner,
            backlog,
        })
    }

    /// Where the admin gRPC API is served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Where the HTML dashboard is served, when it is.
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        self.dashboard
            .as_ref()
            .and_then(|(_, listener)| listener.local_addr().ok())
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.runtime.ops_addr()
    }

    /// Counts reports, evaluates the alert rules, sends alerts and reports, and serves the admin
    /// API until shutdown.
    pub async fn run(self) -> Result<(), Error> {
        let shutdown = self.runtime.shutdown.clone();
        let dashboard = self.dashboard;
        let settler = self.runtime.settler(MAX_ATTEMPTS);
        let handler = Arc::new(self.handler);
        let consumer = self.consumer;
        // Reflection lets grpcurl and similar tools discover the API; it sits behind the same
        // bearer tokens as the API itself.
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(switchyard_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| Error::Other(format!("admin API reflection: {e}")))?;
        let admin = tonic::transport::Server::builder()
            .add_service(
                switchyard_proto::v1::admin_server::AdminServer::with_interceptor(
                    self.admin,
                    self.auth.clone(),
                ),
            )
            .add_service(tonic::service::interceptor::InterceptedService::new(
                reflection, self.auth,
            ))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.admin_listener),
                shutdown.clone().cancelled_owned(),
            );
        let tasks = tokio_util::task::TaskTracker::new();
        tasks.spawn(self.evaluator.run(shutdown.clone()));
        tasks.spawn(self.pruner.run(shutdown.clone()));
        tasks.spawn(self.backlog.run(shutdown.clone()));
        if let Some((pages, listener)) = dashboard {
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                if let Err(error) = pages.serve(listener, shutdown).await {
                    tracing::error!(%error, "dashboard stopped");
                }
            });
        }
        if let Some((sender, reporter)) = self.sender {
            tasks.spawn(sender.run(shutdown.clone()));
            tasks.spawn(reporter.run(shutdown.clone()));
        }
        tasks.close();
        self.runtime
            .run(async move {
                let consume = run_consumer_concurrently(
                    consumer,
                    settler,
                    128,
                    CONCURRENCY,
                    shutdown,
                    handler,
                );
                let (_, served, ()) = tokio::join!(consume, admin, tasks.wait());
                served.map_err(|e| Error::Other(format!("admin API: {e}")))
            })
            .await
    }
}

/// Starts the counters from what is stored, and shows every configured flow even before traffic.
async fn load_counts(
    pool: &Pool,
    metrics: &Metrics,
    config: &Config,
    value_per_delivery: &HashMap<String, f64>,
) -> Result<(), Error> {
    let client = pool.get().await.map_err(|e| Error::Other(e.to_string()))?;
    let rows = store::reports::flow_counts(&client)
        .await
        .map_err(|e| Error::Other(e.cause()))?;
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
            flow: row.flow,
            outcome: row.outcome,
        };
        metrics
            .events
            .get_or_create(&labels)
            .inc_by(u64::try_from(row.count).unwrap_or(0));
    }
    let fresh = store::reports::last_delivered(&client)
        .await
        .map_err(|e| Error::Other(e.cause()))?;
    for (flow, at) in fresh {
        metrics
            .last_delivered
            .get_or_create(&FlowLabel { flow })
            .set(at);
    }
    for (flow, per_delivery) in value_per_delivery {
        metrics.value(flow, *per_delivery);
    }
    Ok(())
}

/// The report id under which a flow's receipt of a change is counted: the id deliver gives its
/// own "received" report.
fn received_id(flow: &str, change_id: &str) -> String {
    format!(
        "ops:{flow}:{change_id}:{}",
        DeliveryOutcome::Received.as_str_name()
    )
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
    fn count(&self, flow: &str, outcome: &str) {
        self.metrics
            .events
            .get_or_create(&FlowOutcome {
                flow: flow.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    async fn handle_report(&self, delivery: &Delivery) -> Outcome {
        let conflicts = format!("{}.ops.conflict.", self.bus.names().prefix());
        if delivery.subject().starts_with(&conflicts) {
            return self.handle_identity(delivery).await;
        }
        if delivery.subject().contains(".ops.status.") {
            return self.handle_status(delivery).await;
        }
        if delivery.subject().contains(".ops.drift.") {
            return self.handle_drift(delivery).await;
        }
        if !delivery.subject().contains(".ops.delivery.") {
            // Other OPS traffic is not monitor's.
            return Outcome::Ack;
        }
        let result = match DeliveryResult::decode(delivery.payload()) {
            Ok(result) => result,
            Err(error) => return undecodable("delivery result", &error),
        };
        let kind = DeliveryOutcome::try_from(result.outcome).unwrap_or_default();
        let outcome = outcome_label(kind);
        let msg_id = delivery.msg_id().map_or_else(
            || format!("seq:{}", delivery.stream_sequence()),
            str::to_owned,
        );
        let at = result
            .at
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or_else(SystemTime::now);
        let report = Report {
            msg_id,
            flow: result.flow.clone(),
            outcome,
            at,
            latency_ms: result.end_to_end_ms,
            source: result.source.clone(),
            // Every destination write is audited (`recorder`), once per change.
            write: (outcome == "delivered").then(|| recorder::DestinationWrite {
                destination: result.destination.clone(),
                change_id: result.change_id.clone(),
                http_status: result.http_status,
                attempt: result.attempt,
            }),
        };
        // The flow received the change: deliver says so with its first report of the change,
        // whatever it is, so "received" is counted once under the id deliver's own "received"
        // report had (older deliver replicas still send it; the two count once together).
        let received =
            (kind != DeliveryOutcome::Received && !result.change_id.is_empty()).then(|| Report {
                msg_id: received_id(&result.flow, &result.change_id),
                flow: result.flow.clone(),
                outcome: "received",
                at,
                latency_ms: 0,
                source: result.source.clone(),
                write: None,
            });
        let (received, reported) = match received {
            Some(received) => {
                tokio::join!(self.recorder.record(received), self.recorder.record(report))
            }
            None => (Ok(false), self.recorder.record(report).await),
        };
        // Each row is counted as soon as it is stored, even if the other failed: a redelivery
        // finds it counted and does not count it again.
        if matches!(received, Ok(true)) {
            self.count(&result.flow, "received");
        }
        if matches!(reported, Ok(true)) {
            self.count(&result.flow, outcome);
            if outcome == "delivered" {
                let flow = FlowLabel {
                    flow: result.flow.clone(),
                };
                #[allow(clippy::cast_precision_loss)] // milliseconds fit a double exactly
                let seconds = result.end_to_end_ms as f64 / 1000.0;
                self.metrics.latency.get_or_create(&flow).observe(seconds);
                let at = result
                    .at
                    .map_or_else(switchyard_chassis::unix_now, |t| t.seconds);
                self.metrics.last_delivered.get_or_create(&flow).set(at);
                if let Some(per_delivery) = self.value_per_delivery.get(&result.flow) {
                    self.metrics.value(&result.flow, *per_delivery);
                }
            }
        }
        stored(received.and(reported), "report")
    }

    /// Keeps a schema-drift notice for the drift alert.
    async fn handle_drift(&self, delivery: &Delivery) -> Outcome {
        match SchemaDrift::decode(delivery.payload()) {
            Ok(drift) => stored(
                store::alerts::store_drift(&self.pool, &drift).await,
                "drift notice",
            ),
            Err(error) => undecodable("schema-drift notice", &error),
        }
    }

    /// Keeps deliver's report on a flow or destination for the `flow_paused` and `credentials`
    /// alerts.
    async fn handle_status(&self, delivery: &Delivery) -> Outcome {
        match FlowStatus::decode(delivery.payload()) {
            Ok(status) => stored(status::store(&self.pool, &status).await, "flow status"),
            Err(error) => undecodable("flow status", &error),
        }
    }

    /// Keeps an identity conflict notice or, on `.command` subjects, a merge command's result.
    async fn handle_identity(&self, delivery: &Delivery) -> Outcome {
        let _in_order = self.identity_order.clone().lock_owned().await;
        if delivery.subject().ends_with(".command") {
            match IdentityCommandResult::decode(delivery.payload()) {
                Ok(result) => stored(
                    store::conflicts::store_result(&self.pool, &result).await,
                    "identity command result",
                ),
                Err(error) => undecodable("identity command result", &error),
            }
        } else {
            match IdentityConflict::decode(delivery.payload()) {
                Ok(conflict) => stored(
                    store::conflicts::store_conflict(&self.pool, &conflict).await,
                    "identity conflict",
                ),
                Err(error) => undecodable("identity conflict", &error),
            }
        }
    }
}

impl switchyard_chassis::bus::Handler for Handler {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.handle_report(delivery).await
    }
}

/// Acked once stored; otherwise retried, and dead-lettered once the attempts run out.
fn stored<T>(stored: Result<T, store::StoreError>, what: &str) -> Outcome {
    match stored {
        Ok(_) => Outcome::Ack,
        Err(error) => Outcome::retry(Failure::transient(
            "ops",
            format!("{what} not stored: {error}"),
        )),
    }
}

/// A message monitor cannot read: dead-lettered at once.
fn undecodable(what: &str, error: &prost::DecodeError) -> Outcome {
    let reason = format!("undecodable {what}: {error}");
    Outcome::DeadLetter(Failure::new("ops", ErrorClass::Undecodable, reason))
}
