//! Transform: raw webhooks in, canonical objects that satisfy their data contract out. A payload
//! that breaks its contract is dead-lettered with every problem named, never dropped.

pub mod mapping;

use std::net::SocketAddr;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message as _;
use switchyard_chassis::bus::{
    Bus, ConsumerSpec, Delivery, StreamKind, run_consumer, settled as settle,
};
use switchyard_chassis::config::Config;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::{CancellationToken, Error, Runtime};
use switchyard_proto::v1::{CanonicalObject, Envelope, RawEvent, canonical_object};

use mapping::{Mapped, map_standard_webhook};

const STAGE: &str = "transform";
/// Redeliveries of a message whose publish failed before it is dead-lettered.
const MAX_ATTEMPTS: u64 = 20;

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

#[derive(Debug, Clone)]
struct Handler {
    bus: Bus,
    events: Family<Labels, Counter>,
    retry: RedeliveryPolicy,
}

impl App {
    /// Connects to NATS, declares the streams and the `transform` durable consumer.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        let mut runtime =
            Runtime::start(STAGE, &config, config.transform.ops_listen, None, shutdown).await?;
        let consumer = runtime
            .bus
            .consumer(&ConsumerSpec {
                stream: StreamKind::Raw,
                name: STAGE.to_owned(),
                filter: runtime.bus.names().stream_subjects(StreamKind::Raw),
                max_deliver: i64::try_from(MAX_ATTEMPTS).unwrap_or(20) + 5,
                ack_wait: std::time::Duration::from_secs(30),
                batch: 64,
            })
            .await?;
        let handler = Handler {
            bus: runtime.bus.clone(),
            events: register(&mut runtime.registry),
            retry: RedeliveryPolicy::default(),
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

fn register(registry: &mut Registry) -> Family<Labels, Counter> {
    let events = Family::<Labels, Counter>::default();
    registry.register(
        "transform_events",
        "Raw events transformed, by source and outcome (mapped, unmapped, violation, failed)",
        events.clone(),
    );
    events
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

    async fn handle(self, delivery: Delivery) {
        let raw = match RawEvent::decode(delivery.payload()) {
            Ok(raw) => raw,
            Err(error) => {
                let reason = format!("undecodable raw event: {error}");
                return self.dead_letter(delivery, "unknown", &reason).await;
            }
        };
        // Vendor-specific mappings are not written yet: those events stay in RAW for replay.
        let mapped = if raw.source_kind == "standard-webhooks" {
            map_standard_webhook(&raw.event_type, &raw.body)
        } else {
            Ok(Mapped::Unmapped)
        };
        match mapped {
            Ok(Mapped::Unmapped) => {
                tracing::info!(event_type = %raw.event_type, "no mapping for this event type; skipped");
                self.count(&raw.source, "unmapped");
                settle(delivery.ack().await);
            }
            Err(violation) => {
                tracing::info!(%violation, "contract violation; dead-lettering");
                self.count(&raw.source, "violation");
                self.dead_letter(delivery, &raw.source, &violation.to_string())
                    .await;
            }
            Ok(Mapped::Contact {
                contact,
                source_object_id,
                occurred_at,
            }) => {
                let object = CanonicalObject {
                    envelope: Some(Envelope {
                        event_id: raw.event_id.clone(),
                        source_system: raw.source.clone(),
                        source_kind: raw.source_kind.clone(),
                        source_object_id,
                        occurred_at: occurred_at.or(raw.received_at),
                        received_at: raw.received_at,
                        contract_version: mapping::CONTACT_CONTRACT.to_owned(),
                        event_type: raw.event_type.clone(),
                    }),
                    object: Some(canonical_object::Object::Contact(*contact)),
                };
                let subject = self.bus.names().canonical("contact", &raw.source);
                let published = self
                    .bus
                    .publish(
                        subject,
                        &format!("canonical:{}", raw.event_id),
                        Default::default(),
                        Bytes::from(object.encode_to_vec()),
                    )
                    .await;
                match published {
                    Ok(_) => {
                        self.count(&raw.source, "mapped");
                        settle(delivery.ack().await);
                    }
                    Err(error) if delivery.attempt() < MAX_ATTEMPTS => {
                        tracing::warn!(%error, "canonical publish failed; will retry");
                        self.count(&raw.source, "failed");
                        let delay = self.retry.delay(delivery.attempt(), None);
                        settle(delivery.nak(Some(delay)).await);
                    }
                    Err(error) => {
                        let reason =
                            format!("canonical publish failed {MAX_ATTEMPTS} times: {error}");
                        self.dead_letter(delivery, &raw.source, &reason).await;
                    }
                }
            }
        }
    }

    async fn dead_letter(&self, delivery: Delivery, source: &str, reason: &str) {
        self.bus
            .dead_letter_then_ack(delivery, STAGE, source, reason, 0, &self.retry)
            .await;
    }
}
