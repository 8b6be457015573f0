//! Dedupe: canonical objects from many systems in, one golden record per real-world customer out.
//! Only real changes leave this service; each source event is applied once however often it
//! arrives.

pub mod merge;
pub mod near;
pub mod normalize;
pub mod records;
pub mod store;
pub mod survivorship;

use std::net::SocketAddr;

use bytes::Bytes;
use futures::future::join_all;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use switchyard_chassis::bus::{
    BatchHandler, Bus, ConsumerSpec, Delivery, ErrorClass, Failure, Outcome, StreamKind,
    run_batch_consumer,
};
use switchyard_chassis::config::Config;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::{
    CanonicalObject, Contact, CrosswalkLink, Envelope, IdentityCommand, canonical_object::Object,
};
use tracing::Instrument as _;

use store::{ContactRules, Pending, Resolution};

const STAGE: &str = "dedupe";
/// Attempts at a message that keeps failing (database or bus down) before it is dead-lettered.
const MAX_ATTEMPTS: u64 = 20;
/// Messages handled together: the contacts among them are resolved in one transaction. Each
/// batch holds up to three advisory locks per contact; PostgreSQL's lock table (64 ×
/// `max_connections` by default) has room for several such batches.
const BATCH: usize = 256;
/// Batches in hand at once (each holds one pooled connection for its contacts while it runs):
/// one is written and committed while the next is looked up and the last one published.
const BATCHES: usize = 3;

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

/// Canonical objects of a batch between two operator commands, by their place in the batch.
#[derive(Default)]
struct Run<'a> {
    contacts: Vec<(usize, &'a Delivery, Envelope, Contact)>,
    records: Vec<(usize, &'a Delivery, Envelope, Object)>,
}

/// Outcomes of a run, by place in the batch.
type Placed = Vec<(usize, Outcome)>;

#[derive(Debug)]
struct Handler {
    bus: Bus,
    pool: Pool,
    events: Family<Labels, Counter>,
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
        tokio::task::spawn_blocking(move || {
            switchyard_proto::phone::normalize("+1 201 555 0123", None, default_region)
        })
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
        let settler = self.runtime.settler(MAX_ATTEMPTS);
        let handler = std::sync::Arc::new(self.handler);
        let consumer = self.consumer;
        self.runtime
            .run(async move {
                // Records sharing a key are serialised by advisory locks, so batches can be in
                // hand at once; the pool bounds how many reach the database together.
                run_batch_consumer(consumer, settler, BATCH, BATCHES, shutdown, handler).await;
                Ok(())
            })
            .await
    }
}

impl Handler {
    fn count(&self, object: &'static str, outcome: &'static str) {
        self.events.get_or_create(&Labels { object, outcome }).inc();
    }

    /// A failed attempt (database or bus): counted, and retried until the attempts run out.
    fn failed(&self, object: &'static str, source: &str, reason: impl Into<String>) -> Outcome {
        self.count(object, "failed");
        Outcome::retry(Failure::transient(source, reason))
    }

    /// Handles one batch of messages in their order. Runs of canonical objects are resolved
    /// together — all their contacts in one transaction, every other object on its own beside
    /// it; an operator command waits for what came before it and is applied before what comes
    /// after, so it affects exactly the events behind it.
    async fn resolve_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Defer { after: None }; deliveries.len()];
        let mut placed = Vec::new();
        let mut run = Run::default();
        for (place, delivery) in deliveries.iter().enumerate() {
            if delivery.subject() == self.bus.names().identity_command() {
                placed.extend(self.resolve_run(std::mem::take(&mut run)).await);
                let span = delivery.span().clone();
                outcomes[place] = self.handle_command(delivery).instrument(span).await;
                continue;
            }
            if self.bus.names().is_crosswalk_link(delivery.subject()) {
                // In order with the events around it, like a command.
                placed.extend(self.resolve_run(std::mem::take(&mut run)).await);
                let span = delivery.span().clone();
                outcomes[place] = self.handle_link(delivery).instrument(span).await;
                continue;
            }
            let object = match CanonicalObject::decode(delivery.payload()) {
                Ok(object) => object,
                Err(error) => {
                    // Dead-lettered alone: the messages around it are fine.
                    let reason = format!("undecodable canonical object: {error}");
                    outcomes[place] = Outcome::DeadLetter(Failure::new(
                        "unknown",
                        ErrorClass::Undecodable,
                        reason,
                    ));
                    continue;
                }
            };
            let envelope = object.envelope.unwrap_or_default();
            match object.object {
                Some(Object::Contact(contact)) => {
                    run.contacts.push((place, delivery, envelope, contact));
                }
                Some(other) => run.records.push((place, delivery, envelope, other)),
                None => {
                    let reason = "canonical message without an object";
                    outcomes[place] = Outcome::DeadLetter(Failure::new(
                        envelope.source_system,
                        ErrorClass::Invalid,
                        reason,
                    ));
                }
            }
        }
        placed.extend(self.resolve_run(run).await);
        for (place, outcome) in placed {
            outcomes[place] = outcome;
        }
        outcomes
    }

    /// Resolves a run of canonical objects: the contacts as one batch, the other objects each in
    /// its own transaction, all at once (records sharing a key wait for each other's locks).
    async fn resolve_run(&self, run: Run<'_>) -> Placed {
        let records = run
            .records
            .into_iter()
            .map(|(place, delivery, envelope, object)| {
                let span = delivery.span().clone();
                async move { (place, self.resolve_record(envelope, object).await) }.instrument(span)
            });
        let (mut placed, records) =
            tokio::join!(self.resolve_contacts(run.contacts), join_all(records));
        placed.extend(records);
        placed
    }

    /// Resolves contacts in one transaction, then publishes their changes. When the database
    /// refuses the batch, each contact is tried again alone, so one event the database cannot
    /// take never fails (and after enough attempts dead-letters) the others.
    async fn resolve_contacts(
        &self,
        contacts: Vec<(usize, &Delivery, Envelope, Contact)>,
    ) -> Placed {
        if contacts.is_empty() {
            return Vec::new();
        }
        let (deliveries, events): (Vec<_>, Vec<_>) = contacts
            .into_iter()
            .map(|(place, delivery, envelope, contact)| ((place, delivery), (envelope, contact)))
            .unzip();
        let error = match store::resolve_contacts(&self.pool, &self.contacts, &events).await {
            Ok(resolutions) => {
                return self
                    .publish_contacts(&deliveries, &events, resolutions)
                    .await;
            }
            Err(error) => error,
        };
        if deliveries.len() == 1 || !error.is_refusal() {
            let reason = error.to_string();
            return deliveries
                .iter()
                .zip(&events)
                .map(|((place, _), (envelope, _))| {
                    (
                        *place,
                        self.failed("contact", &envelope.source_system, &reason),
                    )
                })
                .collect();
        }
        tracing::warn!(%error, count = deliveries.len(), "batch of contacts refused; resolving them one by one");
        let mut placed = Vec::with_capacity(deliveries.len());
        for (delivery, event) in deliveries.into_iter().zip(events) {
            let event = [event];
            match store::resolve_contacts(&self.pool, &self.contacts, &event).await {
                Ok(resolutions) => {
                    placed.extend(
                        self.publish_contacts(&[delivery], &event, resolutions)
                            .await,
                    );
                }
                Err(error) => {
                    let source = &event[0].0.source_system;
                    placed.push((
                        delivery.0,
                        self.failed("contact", source, error.to_string()),
                    ));
                }
            }
        }
        placed
    }

    /// After commit: publishes every change of the batch (in flight together, in order); a
    /// message whose change is out is done, one whose change could not be published is retried,
    /// and its redelivery publishes the change from the outbox.
    async fn publish_contacts(
        &self,
        deliveries: &[(usize, &Delivery)],
        events: &[(Envelope, Contact)],
        resolutions: Vec<Resolution>,
    ) -> Placed {
        let published = join_all(deliveries.iter().zip(&resolutions).map(
            |((_, delivery), resolution)| {
                self.publish_resolution(resolution)
                    // Inside the message's span: the change carries its trace on to deliver.
                    .instrument(delivery.span().clone())
            },
        ))
        .await;
        deliveries
            .iter()
            .zip(events)
            .zip(resolutions.iter().zip(published))
            .map(|(((place, _), (envelope, _)), (resolution, published))| {
                if let Err(error) = published {
                    return (
                        *place,
                        self.failed("contact", &envelope.source_system, error),
                    );
                }
                tracing::debug!(
                    event_id = %envelope.event_id,
                    object = "contact",
                    outcome = resolution.outcome.as_str(),
                    "resolved"
                );
                self.count("contact", resolution.outcome.as_str());
                (*place, Outcome::Ack)
            })
            .collect()
    }

    /// Publishes a resolution's change and its review notices. Review notices carry no
    /// published mark: a redelivery sends them again and JetStream drops the repeats by their
    /// msg id.
    async fn publish_resolution(&self, resolution: &Resolution) -> Result<(), String> {
        if let Some(pending) = &resolution.pending {
            self.publish(pending).await?;
        }
        for notice in &resolution.notices {
            self.publish_notice(notice).await?;
        }
        Ok(())
    }

    /// Resolves one canonical object other than a contact and publishes its change.
    async fn resolve_record(&self, envelope: Envelope, object: Object) -> Outcome {
        let name = records::object_name(&object);
        let resolution = match records::resolve(&self.pool, &self.records, &envelope, &object).await
        {
            Ok(resolution) => resolution,
            Err(error) => return self.failed(name, &envelope.source_system, error.to_string()),
        };
        tracing::debug!(
            event_id = %envelope.event_id,
            object = name,
            outcome = resolution.outcome.as_str(),
            "resolved"
        );
        if let Err(error) = self.publish_resolution(&resolution).await {
            return self.failed(name, &envelope.source_system, error);
        }
        self.count(name, resolution.outcome.as_str());
        Outcome::Ack
    }

    /// Adds the id a destination gave a golden record to the crosswalk (see
    /// `CrosswalkLink`). A source id already linked keeps its record: the crosswalk maps each
    /// external id to exactly one golden record.
    async fn handle_link(&self, delivery: &Delivery) -> Outcome {
        let link = match CrosswalkLink::decode(delivery.payload()) {
            Ok(link) => link,
            Err(error) => {
                let reason = format!("undecodable crosswalk link: {error}");
                return Outcome::DeadLetter(Failure::new(
                    "deliver",
                    ErrorClass::Undecodable,
                    reason,
                ));
            }
        };
        let object = merge::object_label(&link.object);
        let Ok(golden_id) = uuid::Uuid::parse_str(&link.golden_id) else {
            let reason = format!(
                "crosswalk link with a golden id that is not a UUID: {:?}",
                link.golden_id
            );
            return Outcome::DeadLetter(Failure::new(link.system, ErrorClass::Invalid, reason));
        };
        match store::link(&self.pool, &link, golden_id).await {
            Ok(inserted) => {
                self.count(object, if inserted { "linked" } else { "link_kept" });
                Outcome::Ack
            }
            Err(error) => self.failed(object, &link.system, error.to_string()),
        }
    }

    /// Applies an operator's merge or un-merge (see [`merge`]) and publishes its golden changes
    /// and its result.
    async fn handle_command(&self, delivery: &Delivery) -> Outcome {
        let command = match IdentityCommand::decode(delivery.payload()) {
            Ok(command) if merge::valid_command_id(&command.command_id) => command,
            Ok(_) => {
                let reason = "identity command without a valid command_id";
                return Outcome::DeadLetter(Failure::new("admin", ErrorClass::Invalid, reason));
            }
            Err(error) => {
                let reason = format!("undecodable identity command: {error}");
                return Outcome::DeadLetter(Failure::new("admin", ErrorClass::Undecodable, reason));
            }
        };
        let object = merge::object_label(&command.object);
        let applied = match merge::apply(&self.pool, self.bus.names(), &command).await {
            Ok(applied) => applied,
            Err(error) => return self.failed(object, "admin", error.to_string()),
        };
        // Changes first, the result last: once monitor sees the result, the changes are out.
        for pending in &applied.pending {
            if let Err(error) = self.publish(pending).await {
                return self.failed(object, "admin", error);
            }
        }
        self.count(object, applied.outcome);
        Outcome::Ack
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

    /// Publishes a review notice (`review_notices`), under its own `Nats-Msg-Id`.
    async fn publish_notice(&self, notice: &Pending) -> Result<(), String> {
        self.bus
            .publish(
                notice.subject.clone(),
                &notice.msg_id,
                Default::default(),
                Bytes::from(notice.payload.clone()),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl BatchHandler for Handler {
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        self.resolve_batch(deliveries).await
    }
}
