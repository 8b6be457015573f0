//! Ingest's metrics as named events: every webhook ends in exactly one outcome.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    source: String,
    outcome: &'static str,
}

/// Counters and timings of the webhook endpoint.
#[derive(Debug, Clone)]
pub struct Metrics {
    webhooks: Family<WebhookLabels, Counter>,
    ack_seconds: Histogram,
}

impl Metrics {
    /// Registers ingest's metrics.
    pub fn register(registry: &mut Registry) -> Self {
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "ingest_webhooks",
            "Webhook events by source and outcome: accepted, duplicate, handshake, or the reason a request was refused",
            webhooks.clone(),
        );
        let ack_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register_with_unit(
            "ingest_publish_ack",
            "Time from request to JetStream acknowledgement",
            prometheus_client::registry::Unit::Seconds,
            ack_seconds.clone(),
        );
        Self {
            webhooks,
            ack_seconds,
        }
    }

    /// A webhook ended with `outcome`; `source` is a configured name or "unknown".
    pub fn webhook_handled(&self, source: &str, outcome: &'static str) {
        self.events_handled(source, outcome, 1);
    }

    /// `count` events of one request ended with `outcome`.
    pub fn events_handled(&self, source: &str, outcome: &'static str, count: usize) {
        if count == 0 {
            return;
        }
        self.webhooks
            .get_or_create(&WebhookLabels {
                source: source.to_owned(),
                outcome,
            })
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// JetStream stored an event after `seconds`.
    pub fn publish_acked(&self, seconds: f64) {
        self.ack_seconds.observe(seconds);
    }
}
