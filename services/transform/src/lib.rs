//! Transform: raw webhooks in, canonical objects that satisfy their data contract out. Declarative
//! mappings say how each vendor event becomes a canonical object; the object is checked against its
//! contract; a payload that breaks it is dead-lettered with every problem named, never dropped and
//! never half-mapped; changes in a vendor's payload shape raise one schema-drift notice each.

mod canonical;
mod drift;
mod hydrate;
pub mod mapping;

use std::net::SocketAddr;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use serde_json::Value;
use switchyard_chassis::bus::{
    Bus, ConsumerSpec, Delivery, ErrorClass, Failure, Outcome, StreamKind,
    run_consumer_concurrently,
};
use switchyard_chassis::config::Config;
use switchyard_chassis::ids::MsgId;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::contracts::{self, Contract, FieldType};
use switchyard_proto::v1::{CanonicalObject, Envelope, RawEvent, canonical_object};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use mapping::{Context, Registry};

const STAGE: &str = "transform";
/// Attempts at a message whose publish (or vendor read) failed before it is dead-lettered.
const MAX_ATTEMPTS: u64 = 20;
/// Messages pulled per request.
const BATCH: usize = 256;
/// Events transformed at once: each mostly waits on a publish acknowledgement or a vendor API, and
/// their order does not matter downstream (dedupe orders changes by source time).
const CONCURRENCY: usize = 32;

mod migrations {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    source: String,
    outcome: &'static str,
}

/// The transform service, built and ready to run.
#[derive(Debug)]
pub struct App {
    runtime: Runtime,
    consumer: switchyard_chassis::async_nats::jetstream::consumer::PullConsumer,
    handler: Handler,
}

#[derive(Debug)]
struct Handler {
    bus: Bus,
    events: Family<Labels, Counter>,
    registry: std::sync::Arc<Registry>,
    contracts: std::sync::Arc<Vec<Contract>>,
    ctx: Context,
    drift: drift::Drift,
    hydrator: hydrate::Hydration,
}

impl App {
    /// Loads contracts and mappings, connects, and creates the `transform` durable consumer.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        let contracts = contracts::load(config.transform.contracts_dir.as_deref())
            .map_err(|e| Error::Other(e.to_string()))?;
        let registry = Registry::load(config.transform.mappings_dir.as_deref(), &contracts)
            .map_err(|e| Error::Other(e.to_string()))?;
        let default_region = config.dedupe.default_region.parse().map_err(|_| {
            Error::Other(format!(
                "dedupe.default_region: {:?} is not a known region",
                config.dedupe.default_region
            ))
        })?;
        let mut runtime = Runtime::start(
            STAGE,
            &config,
            config.transform.ops_listen,
            Some(migrations::migrations::runner()),
            shutdown,
        )
        .await?;
        let consumer = runtime
            .bus
            .consumer(&ConsumerSpec {
                stream: StreamKind::Raw,
                name: STAGE.to_owned(),
                filter: runtime.bus.names().stream_subjects(StreamKind::Raw),
                max_deliver: i64::try_from(MAX_ATTEMPTS).unwrap_or(20) + 5,
                ack_wait: std::time::Duration::from_secs(30),
                batch: BATCH,
            })
            .await?;
        let events = Family::<Labels, Counter>::default();
        runtime.registry.register(
            "transform_events",
            "Raw events transformed, by source and outcome (mapped, unmapped, violation, failed)",
            events.clone(),
        );
        let notices = Family::<Vec<(String, String)>, Counter>::default();
        runtime.registry.register(
            "transform_schema_drift_notices",
            "Schema-drift notices, by source and change (new field, re-typed field, new enum value, missing field)",
            notices.clone(),
        );
        let pool = runtime.pool()?;
        let hydrator =
            hydrate::Hydration::new(&config, pool.clone(), &mut runtime.registry).await?;
        let handler = Handler {
            bus: runtime.bus.clone(),
            events,
            registry: std::sync::Arc::new(registry),
            contracts: std::sync::Arc::new(contracts),
            ctx: Context::new(default_region),
            drift: drift::Drift::new(pool, runtime.bus.clone(), notices),
            hydrator,
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

    /// Transforms raw events until shutdown.
    pub async fn run(self) -> Result<(), Error> {
        let shutdown = self.runtime.shutdown.clone();
        let settler = self.runtime.settler(MAX_ATTEMPTS);
        let handler = std::sync::Arc::new(self.handler);
        let consumer = self.consumer;
        self.runtime
            .run(async move {
                run_consumer_concurrently(consumer, settler, BATCH, CONCURRENCY, shutdown, handler)
                    .await;
                Ok(())
            })
            .await
    }
}

/// Why an event cannot become a canonical object.
enum Refusal {
    NoMapping,
    Violation(String),
    /// Worth another try (a vendor API read failed transiently), after at least the delay.
    Retry(String, Option<std::time::Duration>),
    /// Cannot succeed as things stand (the vendor API refused the read).
    Permanent(String),
}

impl Handler {
    fn count(&self, source: &str, outcome: &'static str) {
        self.events
            .get_or_create(&Labels {
                source: source.to_owned(),
                outcome,
            })
            .inc();
    }

    async fn transform(&self, delivery: &Delivery) -> Outcome {
        let raw = match RawEvent::decode(delivery.payload()) {
            Ok(raw) => raw,
            Err(error) => {
                let reason = format!("undecodable raw event: {error}");
                return Outcome::DeadLetter(Failure::new(
                    "unknown",
                    ErrorClass::Undecodable,
                    reason,
                ));
            }
        };
        let object = match self.canonical(&raw).await {
            Ok(object) => object,
            Err(Refusal::NoMapping) => {
                // Kept in RAW for replay once a mapping exists (thin events wait for hydration).
                tracing::info!(kind = %raw.source_kind, event_type = %raw.event_type, "no mapping for this event type; skipped");
                self.count(&raw.source, "unmapped");
                return Outcome::Ack;
            }
            Err(Refusal::Violation(reason)) => {
                tracing::info!(event_type = %raw.event_type, "contract violation; dead-lettering");
                self.count(&raw.source, "violation");
                return Outcome::DeadLetter(Failure::new(
                    raw.source,
                    ErrorClass::ContractViolation,
                    reason,
                ));
            }
            Err(Refusal::Retry(reason, after)) => {
                self.count(&raw.source, "failed");
                return Outcome::Retry {
                    failure: Failure::transient(raw.source, reason),
                    after,
                };
            }
            Err(Refusal::Permanent(reason)) => {
                tracing::info!(%reason, "cannot be transformed; dead-lettering");
                self.count(&raw.source, "failed");
                return Outcome::DeadLetter(Failure::new(raw.source, ErrorClass::Mapping, reason));
            }
        };
        let subject = self
            .bus
            .names()
            .canonical(object_name(&object), &raw.source);
        let published = self
            .bus
            .publish(
                subject,
                &MsgId::Canonical {
                    event_id: &raw.event_id,
                }
                .to_string(),
                Default::default(),
                Bytes::from(object.encode_to_vec()),
            )
            .await;
        match published {
            Ok(_) => {
                self.count(&raw.source, "mapped");
                Outcome::Ack
            }
            Err(error) => {
                self.count(&raw.source, "failed");
                let reason = format!("canonical publish failed: {error}");
                Outcome::retry(Failure::transient(raw.source, reason))
            }
        }
    }

    /// Maps the event, checks drift and the contract, and builds the canonical object.
    async fn canonical(&self, raw: &RawEvent) -> Result<CanonicalObject, Refusal> {
        let mapping = self
            .registry
            .find(&raw.source_kind, &raw.event_type)
            .ok_or(Refusal::NoMapping)?;
        let contract = self
            .contracts
            .iter()
            .find(|c| c.id() == mapping.contract)
            .ok_or(Refusal::NoMapping)?;
        let violation = |problems: Vec<String>| {
            Refusal::Violation(format!(
                "contract violation ({}, mapping {}): {}",
                mapping.contract,
                mapping.name,
                problems.join("; ")
            ))
        };
        let payload: Value = serde_json::from_slice(&raw.body)
            .map_err(|e| violation(vec![format!("body: not JSON: {e}")]))?;
        // Thin events (HubSpot, QuickBooks, Xero) become `{event, record}` with the record read
        // from the vendor's API; the rest pass through.
        let payload = self.hydrator.hydrate(raw, payload).await?;
        if !mapping.applies_to(&payload) {
            return Err(Refusal::NoMapping);
        }
        let (mut mapped, mut problems) = mapping.apply_all(&payload, &self.ctx);
        // Enum values of the mapped record join the shape, so a new vendor value is noticed.
        let enums: Vec<(String, String)> = contract
            .fields
            .iter()
            .filter(|(_, rule)| rule.kind == FieldType::Enum)
            .filter_map(|(name, _)| {
                mapped
                    .record
                    .get(name)
                    .and_then(Value::as_str)
                    .map(|v| (name.clone(), v.to_owned()))
            })
            .collect();
        self.drift
            .observe(&raw.source, &raw.event_type, &payload, &enums)
            .await;
        // Every problem at once: the mapping's and the contract's.
        if let Err(more) = contract.apply(&mut mapped.record) {
            problems.extend(more);
        }
        if !problems.is_empty() {
            return Err(violation(problems));
        }
        let object = canonical::build(mapping.object(), &mapped.record, &raw.source)
            .ok_or(Refusal::NoMapping)?;
        let occurred_at = match mapped.occurred_at.as_deref() {
            Some(text) => Some(timestamp(text).map_err(|p| violation(vec![p]))?),
            None => raw.received_at,
        };
        Ok(CanonicalObject {
            envelope: Some(Envelope {
                event_id: raw.event_id.clone(),
                source_system: raw.source.clone(),
                source_kind: raw.source_kind.clone(),
                source_object_id: mapped.record_id,
                occurred_at,
                received_at: raw.received_at,
                contract_version: mapping.contract.clone(),
                event_type: raw.event_type.clone(),
            }),
            object: Some(object),
        })
    }
}

impl switchyard_chassis::bus::Handler for Handler {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.transform(delivery).await
    }
}

fn timestamp(text: &str) -> Result<switchyard_proto::Timestamp, String> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        format!(
            "occurred_at: {} is not an RFC 3339 date-time",
            switchyard_proto::redact::value(&Value::from(text))
        )
    })?;
    Ok(switchyard_proto::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    })
}

/// The subject token of the object a canonical message carries.
fn object_name(object: &CanonicalObject) -> &'static str {
    use canonical_object::Object;
    match object.object {
        Some(Object::Lead(_)) => "lead",
        Some(Object::Contact(_)) => "contact",
        Some(Object::Company(_)) => "company",
        Some(Object::Product(_)) => "product",
        Some(Object::Deal(_)) => "deal",
        Some(Object::Order(_)) => "order",
        Some(Object::Invoice(_)) => "invoice",
        None => "unknown",
    }
}
