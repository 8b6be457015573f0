//! Dedupe: canonical objects from many systems in, one golden record per real-world customer out.
//! Only real changes leave this service; each source event is applied once however often it
//! arrives.

pub mod normalize;
pub mod store;

use std::net::SocketAddr;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use switchyard_chassis::bus::{Bus, ConsumerSpec, Delivery, StreamKind, run_consumer, settled};
use switchyard_chassis::config::Config;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::{CanonicalObject, canonical_object};

use store::{ContactRules, Pending};

const STAGE: &str = "dedupe";
/// Attempts at a message that keeps failing (database or bus down) before it is dead-lettered.
const MAX_ATTEMPTS: u64 = 20;

mod migrations {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    object: &'static str,
    outcome: &'static str,
}

/// The dedupe service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    consumer: switchyard_chassis::async_nats::jetstream::consumer::PullConsumer,
    handler: Handler,
}

#[derive(Debug, Clone)]
struct Handler {
    bus: Bus,
    pool: Pool,
    events: Family<Labels, Counter>,
    retry: RedeliveryPolicy,
    contacts: ContactRules,
}

impl App {
    /// Connects to NATS and PostgreSQL, runs migrations, creates the `dedupe` consumer.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        // A region the numbering-plan metadata does not know would make every national number
        // unmatchable; refuse to start instead of resolving contacts half-blind.
        let default_region = normalize::region(&config.dedupe.default_region)
            .map_err(|error| Error::Other(error.to_string()))?;
        // The metadata loads on first use (noticeably slow in debug builds): pay for it here, off
        // the async workers, rather than on the first message.
        tokio::task::spawn_blocking(move || normalize::phone("+1 201 555 0123", default_region))
            .await
            .map_err(|error| Error::Other(format!("loading phone metadata: {error}")))?;
        let mut runtime = Runtime::start(
            STAGE,
            &config,
            config.dedupe.ops_listen,
            Some(migrations::migrations::runner()),
            shutdown,
        )
        .await?;
        let consumer = runtime
            .bus
            .consumer(&ConsumerSpec {
                stream: StreamKind::Canonical,
                name: STAGE.to_owned(),
                filter: runtime.bus.names().stream_subjects(StreamKind::Canonical),
                max_deliver: i64::try_from(MAX_ATTEMPTS).unwrap_or(20) + 5,
                ack_wait: std::time::Duration::from_secs(30),
                batch: 64,
            })
            .await?;
        let events = Family::<Labels, Counter>::default();
        runtime.registry.register(
            "dedupe_events",
            "Canonical objects resolved, by object and outcome (created, updated, noop, stale, conflict, duplicate, failed)",
            events.clone(),
        );
        let pool = runtime.pool()?;
        let names = runtime.bus.names();
        let contacts = ContactRules {
            golden_subject: names.golden("contact"),
            conflict_subject: names.ops_conflict("contact"),
            default_region,
        };
        let handler = Handler {
            bus: runtime.bus.clone(),
            pool,
            events,
            retry: RedeliveryPolicy::default(),
            contacts,
        };
        Ok(Self {
            runtime,
            consumer,
            handler,
        })
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.runtime.ops_addr()
    }

    /// Resolves canonical objects until shutdown.
    pub async fn run(self) -> Result<(), Error> {
        let shutdown = self.runtime.shutdown.clone();
        let handler = self.handler;
        let consumer = self.consumer;
        self.runtime
            .run(async move {
                run_consumer(consumer, STAGE, 64, shutdown, |d| handler.clone().handle(d)).await;
                Ok(())
            })
            .await
    }
}

impl Handler {
    fn count(&self, object: &'static str, outcome: &'static str) {
        self.events.get_or_create(&Labels { object, outcome }).inc();
    }

    async fn handle(self, delivery: Delivery) {
        let object = match CanonicalObject::decode(delivery.payload()) {
            Ok(object) => object,
            Err(error) => {
                let reason = format!("undecodable canonical object: {error}");
                self.bus
                    .dead_letter_then_ack(delivery, STAGE, "unknown", &reason, 0, &self.retry)
                    .await;
                return;
            }
        };
        let envelope = object.envelope.clone().unwrap_or_default();
        let contact = match &object.object {
            Some(canonical_object::Object::Contact(contact)) => contact,
            _ => {
                let reason = "no identity rules for this object type yet".to_owned();
                self.bus
                    .dead_letter_then_ack(
                        delivery,
                        STAGE,
                        &envelope.source_system,
                        &reason,
                        0,
                        &self.retry,
                    )
                    .await;
                return;
            }
        };
        let result = store::resolve_contact(&self.pool, &self.contacts, &envelope, contact).await;
        let resolution = match result {
            Ok(resolution) => resolution,
            Err(error) => {
                return self
                    .retry_later(delivery, &envelope.source_system, &error.to_string())
                    .await;
            }
        };
        tracing::debug!(
            event_id = %envelope.event_id,
            outcome = resolution.outcome.as_str(),
            "contact resolved"
        );
        if let Some(pending) = &resolution.pending
            && let Err(error) = self.publish(pending).await
        {
            {
                return self
                    .retry_later(delivery, &envelope.source_system, &error)
                    .await;
            }
        }
        self.count("contact", resolution.outcome.as_str());
        settled(delivery.ack().await);
    }

    /// Publishes an outbox entry, then marks it published. The `Nats-Msg-Id` is the change id, so
    /// publishing twice (crash between publish and mark) is dropped by JetStream.
    async fn publish(&self, pending: &Pending) -> Result<(), String> {
        self.bus
            .publish(
                pending.subject.clone(),
                &pending.msg_id,
                Default::default(),
                Bytes::from(pending.payload.clone()),
            )
            .await
            .map_err(|e| e.to_string())?;
        store::mark_published(&self.pool, &pending.event_id)
            .await
            .map_err(|e| e.to_string())
    }

    async fn retry_later(&self, delivery: Delivery, source: &str, reason: &str) {
        self.count("contact", "failed");
        if delivery.attempt() >= MAX_ATTEMPTS {
            let reason = format!("gave up after {} attempts: {reason}", delivery.attempt());
            self.bus
                .dead_letter_then_ack(delivery, STAGE, source, &reason, 0, &self.retry)
                .await;
        } else {
            tracing::warn!(%reason, attempt = delivery.attempt(), "resolution failed; will retry");
            let delay = self.retry.delay(delivery.attempt(), None);
            settled(delivery.nak(Some(delay)).await);
        }
    }
}
