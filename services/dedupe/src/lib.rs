//! Dedupe: canonical objects from many systems in, one golden record per real-world customer out.
//! Only real changes leave this service; each source event is applied once however often it
//! arrives.

pub mod merge;
pub mod normalize;
pub mod records;
pub mod store;
pub mod survivorship;

use std::net::SocketAddr;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use switchyard_chassis::bus::{
    Bus, ConsumerSpec, Delivery, StreamKind, run_consumer_concurrently, settled,
};
use switchyard_chassis::config::Config;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::{CanonicalObject, IdentityCommand, canonical_object};

use store::{ContactRules, Pending};

const STAGE: &str = "dedupe";
/// Attempts at a message that keeps failing (database or bus down) before it is dead-lettered.
const MAX_ATTEMPTS: u64 = 20;
/// Messages pulled per request.
const BATCH: usize = 256;
/// Messages resolved at once (each holds one pooled connection while it runs).
const CONCURRENCY: usize = 64;

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
    records: records::RecordRules,
    marks: store::PublishedMarks,
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
                batch: BATCH,
            })
            .await?;
        let events = Family::<Labels, Counter>::default();
        runtime.registry.register(
            "dedupe_events",
            "Canonical objects resolved and operator identity commands applied, by object and outcome (created, updated, noop, stale, conflict, duplicate, failed; merged, unmerged, refused)",
            events.clone(),
        );
        let pool = runtime.pool()?;
        let names = runtime.bus.names();
        let contracts =
            switchyard_proto::contracts::load(config.transform.contracts_dir.as_deref())
                .map_err(|e| Error::Other(e.to_string()))?;
        let write_rules = survivorship::WriteRules::from_contracts(&contracts);
        let contacts = ContactRules {
            golden_subject: names.golden("contact"),
            conflict_subject: names.ops_conflict("contact"),
            default_region,
            write_rules: write_rules.clone(),
        };
        let records = records::RecordRules {
            subjects: ["lead", "company", "product", "deal", "order", "invoice"]
                .into_iter()
                .map(|object| (object, (names.golden(object), names.ops_conflict(object))))
                .collect(),
            write_rules,
        };
        let handler = Handler {
            bus: runtime.bus.clone(),
            marks: store::PublishedMarks::spawn(pool.clone()),
            pool,
            events,
            retry: RedeliveryPolicy::default(),
            contacts,
            records,
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
                // Records sharing a key are serialised by advisory locks, so messages can be in
                // hand at once; the pool bounds how many reach the database together.
                run_consumer_concurrently(consumer, STAGE, BATCH, CONCURRENCY, shutdown, |d| {
                    handler.clone().handle(d)
                })
                .await;
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
        if delivery.subject() == self.bus.names().identity_command() {
            return self.handle_command(delivery).await;
        }
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
        let (name, result) = match &object.object {
            Some(canonical_object::Object::Contact(contact)) => (
                "contact",
                store::resolve_contact(&self.pool, &self.contacts, &envelope, contact).await,
            ),
            Some(other) => (
                records::object_name(other),
                records::resolve(&self.pool, &self.records, &envelope, other).await,
            ),
            None => {
                let reason = "canonical message without an object".to_owned();
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
        let resolution = match result {
            Ok(resolution) => resolution,
            Err(error) => {
                return self
                    .retry_later(delivery, name, &envelope.source_system, &error.to_string())
                    .await;
            }
        };
        tracing::debug!(
            event_id = %envelope.event_id,
            object = name,
            outcome = resolution.outcome.as_str(),
            "resolved"
        );
        if let Some(pending) = &resolution.pending
            && let Err(error) = self.publish(pending).await
        {
            {
                return self
                    .retry_later(delivery, name, &envelope.source_system, &error)
                    .await;
            }
        }
        self.count(name, resolution.outcome.as_str());
        settled(delivery.ack().await);
    }

    /// Applies an operator's merge or un-merge (see [`merge`]), publishes its golden changes and
    /// its result, then acks.
    async fn handle_command(self, delivery: Delivery) {
        let command = match IdentityCommand::decode(delivery.payload()) {
            Ok(command) if merge::valid_command_id(&command.command_id) => command,
            Ok(_) => {
                let reason = "identity command without a valid command_id".to_owned();
                self.bus
                    .dead_letter_then_ack(delivery, STAGE, "admin", &reason, 0, &self.retry)
                    .await;
                return;
            }
            Err(error) => {
                let reason = format!("undecodable identity command: {error}");
                self.bus
                    .dead_letter_then_ack(delivery, STAGE, "admin", &reason, 0, &self.retry)
                    .await;
                return;
            }
        };
        let object = merge::object_label(&command.object);
        let applied = match merge::apply(&self.pool, self.bus.names(), &command).await {
            Ok(applied) => applied,
            Err(error) => {
                return self
                    .retry_later(delivery, object, "admin", &error.to_string())
                    .await;
            }
        };
        // Changes first, the result last: once monitor sees the result, the changes are out.
        for pending in &applied.pending {
            if let Err(error) = self.publish(pending).await {
                return self.retry_later(delivery, object, "admin", &error).await;
            }
        }
        self.count(object, applied.outcome);
        settled(delivery.ack().await);
    }

    /// Publishes an outbox entry, then queues its published mark. The `Nats-Msg-Id` is the change
    /// id, so publishing twice (a crash before the mark is written) is dropped by JetStream.
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
        self.marks.mark(pending.event_id.clone());
        Ok(())
    }

    async fn retry_later(
        &self,
        delivery: Delivery,
        object: &'static str,
        source: &str,
        reason: &str,
    ) {
        self.count(object, "failed");
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
