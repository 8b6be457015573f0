//! The JetStream bus: streams declared idempotently, publishing with `Nats-Msg-Id` and trace
//! context, durable pull consumers, and dead letters. Works against nats-server 2.9 and newer:
//! nothing here needs a feature added after 2.9.

mod consume;
mod dlq;
mod names;
pub mod permissions;
mod replay;
mod settle;

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use prost::Message as _;
use switchyard_proto::v1::DeadLetter;

pub use consume::{
    ConsumeMetrics, Delivery, run_batch_consumer, run_consumer, run_consumer_concurrently,
    run_laned_consumer,
};
pub use dlq::{
    ErrorClass, Failure, Filter as DeadLetterFilter, RESPONSE_BODY_LIMIT, get as get_dead_letter,
    page as dead_letters_page, trim_to,
};
pub use names::{Names, StreamKind};
pub use replay::{Replayed, replay_dead_letter, replay_dead_letters};
pub use settle::{BatchHandler, Handler, Outcome, Settled, Settler, Step};

use crate::config::{NatsConfig, StorageKind};
use crate::retry;

/// Header carrying JetStream's de-duplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// Dead-letter headers, readable without decoding the body.
pub const DLQ_REASON: &str = "Switchyard-Dlq-Reason";
pub const DLQ_STAGE: &str = "Switchyard-Dlq-Stage";
pub const DLQ_ATTEMPTS: &str = "Switchyard-Dlq-Attempts";
pub const DLQ_ORIGINAL_SUBJECT: &str = "Switchyard-Dlq-Original-Subject";
pub const DLQ_ERROR_CLASS: &str = "Switchyard-Dlq-Error-Class";
/// On a replayed golden change: the one flow it is replayed into. Every other flow consuming the
/// subject acks it without delivering, so a replay never reaches a destination twice.
pub const REPLAY_FLOW: &str = "Switchyard-Replay-Flow";
/// The stage whose dead letters are a flow's (their key is the flow's name).
pub const DELIVER_STAGE: &str = "deliver";

/// Bus failures.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS is not connected")]
    Disconnected,
    #[error("JetStream did not acknowledge the publish within {0:?}")]
    AckTimeout(Duration),
    #[error("publish failed: {0}")]
    Publish(String),
    #[error("cannot declare stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("cannot create consumer {consumer}: {reason}")]
    Consumer { consumer: String, reason: String },
}

/// A header value cannot hold line breaks (they would end the header block); the body keeps the
/// full text.
fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Connection options from the config: name, private inbox, credentials and TLS. Files are read
/// on every attempt, so a credentials file mounted a moment late is still picked up.
async fn connect_options(
    config: &NatsConfig,
    prefix: &str,
    name: &str,
) -> Result<async_nats::ConnectOptions, String> {
    use secrecy::ExposeSecret as _;
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .custom_inbox_prefix(permissions::inbox_prefix(prefix, name))
        .connection_timeout(Duration::from_secs(2));
    if let Some(creds) = &config.creds_file {
        options = async_nats::ConnectOptions::with_credentials_file(creds.clone())
            .await
            .map_err(|e| format!("cannot read {}: {e}", creds.display()))?
            .name(name)
            .custom_inbox_prefix(permissions::inbox_prefix(prefix, name))
            .connection_timeout(Duration::from_secs(2));
    }
    if let Some(user) = &config.user {
        let password = config
            .password()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        options = options.user_and_password(user.clone(), password);
    }
    let tls = &config.tls;
    if let Some(ca) = &tls.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if tls.required {
        options = options.require_tls(true);
    }
    Ok(options)
}

/// What JetStream said about a publish.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub sequence: u64,
    /// True when the `Nats-Msg-Id` was seen within the duplicate window and the message dropped.
    pub duplicate: bool,
}

/// A durable pull consumer to create or reuse.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: StreamKind,
    /// Un-prefixed durable name, e.g. `transform` or `deliver-contacts`.
    pub name: String,
    /// Subject filter (already prefixed).
    pub filter: String,
    /// The server's redelivery limit. Services dead-letter before reaching it, so this is only a
    /// backstop against messages that crash the process on every delivery.
    pub max_deliver: i64,
    /// How long a delivered message may stay unacknowledged before the server redelivers it.
    pub ack_wait: Duration,
    /// Messages pulled per request; keep it small when each message can take long.
    pub batch: usize,
}

/// A connection to NATS JetStream under one name prefix.
#[derive(Debug, Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    config: NatsConfig,
    metrics: ConsumeMetrics,
}

impl Bus {
    /// Connects (retrying for a short while, so a service can start alongside NATS) with the
    /// configured credentials and TLS. Replies come to an inbox of this connection's own
    /// (`_INBOX.<prefix>.<name>`), so a per-service NATS user needs no access to other inboxes.
    pub async fn connect(config: &NatsConfig, prefix: &str, name: &str) -> Result<Self, BusError> {
        let url = config.url.clone();
        let fail = |reason: String| BusError::Connect {
            url: url.clone(),
            reason,
        };
        let client = retry::startup(|| async {
            connect_options(config, prefix, name)
                .await?
                .connect(url.clone())
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(fail)?;
        let js = jetstream::new(client.clone());
        Ok(Self {
            client,
            js,
            names: Names::new(prefix),
            config: config.clone(),
            metrics: ConsumeMetrics::default(),
        })
    }

    /// Stream, subject and consumer names under this bus's prefix.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The timings of this service's consumers, for its `/metrics`.
    pub fn consume_metrics(&self) -> &ConsumeMetrics {
        &self.metrics
    }

    /// The underlying NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Whether the client currently holds a connection to a server.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Declares the five streams; safe to call from every service and every replica at start-up.
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        for kind in StreamKind::ALL {
            let name = self.names.stream(kind);
            let max_age = match kind {
                StreamKind::Dlq => self.config.dlq_retention,
                _ => self.config.retention,
            };
            let config = stream::Config {
                name: name.clone(),
                subjects: vec![self.names.stream_subjects(kind)],
                retention: stream::RetentionPolicy::Limits,
                storage: match self.config.storage {
                    StorageKind::File => stream::StorageType::File,
                    StorageKind::Memory => stream::StorageType::Memory,
                },
                max_age,
                duplicate_window: self.config.duplicate_window,
                num_replicas: self.config.replicas,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            };
            self.js
                .get_or_create_stream(config)
                .await
                .map_err(|e| BusError::Stream {
                    stream: name.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Publishes `payload` with `msg_id` as `Nats-Msg-Id` and the current trace context, and waits
    /// (at most `nats.publish_timeout`) for JetStream to store it.
    pub async fn publish(
        &self,
        subject: String,
        msg_id: &str,
        mut headers: HeaderMap,
        payload: Bytes,
    ) -> Result<Published, BusError> {
        if !self.is_connected() {
            return Err(BusError::Disconnected);
        }
        headers.insert(MSG_ID, msg_id);
        crate::telemetry::inject_context(&mut headers);
        let timeout = self.config.publish_timeout;
        let send = async {
            let ack = self
                .js
                .publish_with_headers(subject, headers, payload)
                .await
                .map_err(|e| BusError::Publish(e.to_string()))?;
            ack.await.map_err(|e| BusError::Publish(e.to_string()))
        };
        let ack = tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| BusError::AckTimeout(timeout))??;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Creates the durable pull consumer, or reuses it when it exists.
    pub async fn consumer(
        &self,
        spec: &ConsumerSpec,
    ) -> Result<jetstream::consumer::PullConsumer, BusError> {
        let durable = self.names.consumer(&spec.name);
        let fail = |reason: String| BusError::Consumer {
            consumer: durable.clone(),
            reason,
        };
        let stream = self
            .js
            .get_stream(self.names.stream(spec.stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: spec.filter.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_wait: spec.ack_wait,
            max_deliver: spec.max_deliver,
            max_ack_pending: 10_000,
            ..Default::default()
        };
        let mut consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(&durable, config.clone())
            .await
            .map_err(|e| fail(e.to_string()))?;
        // A consumer made by an earlier version keeps the settings it was made with; the ones
        // this version sizes (the ack wait covers its lanes, the redelivery backstop) are
        // brought up to date, so an upgrade needs no hand edits. (The filter is not editable
        // before NATS 2.10, and never changes.)
        let held = &consumer.cached_info().config;
        if held.ack_wait != config.ack_wait
            || held.max_deliver != config.max_deliver
            || held.max_ack_pending != config.max_ack_pending
        {
            tracing::info!(
                consumer = %durable,
                ack_wait = ?config.ack_wait,
                max_deliver = config.max_deliver,
                "consumer settings brought up to date"
            );
            consumer = stream
                .create_consumer(config)
                .await
                .map_err(|e| fail(format!("cannot update its settings: {e}")))?;
        }
        self.metrics.track(&durable);
        Ok(consumer)
    }

    /// Dead-letters `delivery` for `stage` with what `failure` says about it (key, class,
    /// reason, the destination's answer) and its attempts. The caller acks afterwards (the
    /// [`Settler`] does): the DLQ copy is stored before the original is let go, so nothing is
    /// dropped.
    pub async fn dead_letter(
        &self,
        delivery: &Delivery,
        stage: &str,
        failure: &Failure,
    ) -> Result<(), BusError> {
        let Failure {
            key,
            class,
            reason,
            http_status,
            destination,
            response_body,
        } = failure;
        // Reasons and answers are shown to read-only users: whatever a stage or a destination
        // quoted, no email or phone number survives into them. The original message stays as it
        // was, for operators only.
        let reason = switchyard_proto::redact::text(reason);
        let response_body =
            switchyard_proto::redact::text(trim_to(response_body, RESPONSE_BODY_LIMIT));
        let attempts = delivery.attempt();
        let original_headers = delivery
            .headers()
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| v.first().map(|v| (k.to_string(), v.as_str().to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let letter = DeadLetter {
            stage: stage.to_owned(),
            key: key.clone(),
            reason: reason.clone(),
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            original_subject: delivery.subject().to_owned(),
            original_headers,
            payload: delivery.payload().to_vec(),
            failed_at: Some(switchyard_proto::timestamp(std::time::SystemTime::now())),
            http_status: u32::from(*http_status),
            destination: destination.clone(),
            error_class: class.as_str().to_owned(),
            response_body,
        };
        let mut headers = HeaderMap::new();
        headers.insert(DLQ_REASON, header_safe(&reason).as_str());
        headers.insert(DLQ_STAGE, stage);
        headers.insert(DLQ_ATTEMPTS, attempts.to_string().as_str());
        headers.insert(DLQ_ORIGINAL_SUBJECT, delivery.subject());
        headers.insert(DLQ_ERROR_CLASS, class.as_str());
        // One dead letter per original message, however often this runs.
        let msg_id = format!("dlq:{stage}:{key}:{}", delivery.stream_sequence());
        self.publish(
            self.names.dlq(stage, key),
            &msg_id,
            headers,
            Bytes::from(letter.encode_to_vec()),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use std::time::Duration;

    use super::{Bus, ConsumerSpec, StreamKind};
    use crate::config::NatsConfig;

    /// An upgrade that sizes a consumer differently (a longer ack wait for more lanes, another
    /// redelivery backstop) finds the consumer an earlier version made and updates it in place.
    #[tokio::test]
    async fn an_existing_consumer_takes_the_settings_of_this_version() {
        let prefix = crate::testkit::unique("cons");
        let config = NatsConfig {
            url: crate::testkit::nats_url(),
            ..NatsConfig::default()
        };
        let bus = Bus::connect(&config, &prefix, "test").await.expect("bus");
        bus.ensure_streams().await.expect("streams");
        let spec = |max_deliver, ack_wait| ConsumerSpec {
            stream: StreamKind::Golden,
            name: "deliver-contacts".to_owned(),
            filter: bus.names().golden("contact"),
            max_deliver,
            ack_wait,
            batch: 16,
        };
        let before = bus
            .consumer(&spec(5, Duration::from_secs(30)))
            .await
            .expect("consumer");
        assert_eq!(before.cached_info().config.max_deliver, 5);
        let mut after = bus
            .consumer(&spec(8, Duration::from_secs(60)))
            .await
            .expect("consumer");
        let info = after.info().await.expect("info").clone();
        assert_eq!(info.config.max_deliver, 8);
        assert_eq!(info.config.ack_wait, Duration::from_secs(60));
        assert_eq!(info.name, before.cached_info().name, "the same consumer");
        crate::testkit::delete_streams(&config.url, &prefix).await;
    }
}
