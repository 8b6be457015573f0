//! One flow: which golden changes it takes, the request it makes, and what happens on failure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use serde_json::json;
use switchyard_chassis::bus::{Bus, Delivery, settled};
use switchyard_chassis::config::{FlowConfig, Trigger};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_proto::v1::{
    ChangeKind, DeliveryOutcome, DeliveryResult, GoldenChange, canonical_object,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::STAGE;
use crate::destination::{Destination, Write, Written};
use crate::minimise::minimise;
use crate::webhook::SendError;

/// The dead-letter reason of every change of a flow whose destination answered 410.
pub(crate) const PAUSED: &str = "destination gone (410): flow paused";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Labels {
    flow: String,
    outcome: &'static str,
}

/// A configured flow with its destination.
#[derive(Debug)]
pub(crate) struct Flow {
    pub config: FlowConfig,
    pub destination: std::sync::Arc<Destination>,
    pub bus: Bus,
    pub pool: Pool,
    pub retry: RedeliveryPolicy,
    pub attempts: Family<Labels, Counter>,
    /// Set when the destination answered 410 Gone: from then on (until deliver restarts with a
    /// fixed configuration) every change is dead-lettered without calling the destination, so
    /// nothing hammers an endpoint that no longer exists and every change stays replayable.
    pub paused: AtomicBool,
}

impl Flow {
    fn count(&self, outcome: &'static str) {
        self.attempts
            .get_or_create(&Labels {
                flow: self.config.name.clone(),
                outcome,
            })
            .inc();
    }

    pub async fn handle(&self, delivery: Delivery) {
        let flow = self.config.name.as_str();
        let change = match GoldenChange::decode(delivery.payload()) {
            Ok(change) => change,
            Err(error) => {
                let reason = format!("undecodable golden change: {error}");
                self.bus
                    .dead_letter_then_ack(delivery, STAGE, flow, &reason, 0, &self.retry)
                    .await;
                return;
            }
        };
        let attempt = delivery.attempt();
        if attempt == 1 {
            // Monitor's "received": best effort, the terminal outcome below is what must land.
            if let Err(error) = self
                .report(&change, DeliveryOutcome::Received, 0, "", attempt)
                .await
            {
                tracing::warn!(%error, "received report not published");
            }
        }
        let trigger = match ChangeKind::try_from(change.kind) {
            Ok(ChangeKind::Created) => Some(Trigger::Created),
            Ok(ChangeKind::Updated) => Some(Trigger::Updated),
            _ => None,
        };
        if !trigger.is_some_and(|t| self.config.on.contains(&t)) || !self.matches_when(&change) {
            self.count("skipped");
            self.finish(
                delivery,
                &change,
                DeliveryOutcome::Skipped,
                0,
                "not a trigger of this flow, or its `when` does not match",
            )
            .await;
            return;
        }
        match self.delivered_before(&change.change_id).await {
            Ok(Some(status)) => {
                // Delivered, but the report or the ack was lost: say it again (same id, so counted once).
                self.finish(delivery, &change, DeliveryOutcome::Delivered, status, "")
                    .await;
                return;
            }
            Ok(None) => {}
            Err(error) => return self.retry_later(delivery, &change, &error, 0, None).await,
        }
        if self.paused.load(Ordering::Relaxed) {
            return self.give_up(delivery, &change, 410, PAUSED).await;
        }
        let webhook_id = format!("{flow}:{}", change.change_id);
        // Data minimisation: the connector (and the webhook body) see only the named fields.
        let mut minimised = change.clone();
        if let (Some(fields), Some(object)) = (
            &self.config.fields,
            minimised.record.as_mut().and_then(|r| r.object.as_mut()),
        ) {
            minimise(object, fields);
        }
        let write = Write {
            key: &webhook_id,
            flow: &self.config,
            change: &minimised,
        };
        let fields = self.config.fields.as_deref();
        match self
            .destination
            .write(&write, || payload(&minimised, fields))
            .await
        {
            Ok(Written::Done(status)) => {
                if let Err(error) = self.record(&change.change_id, status, attempt).await {
                    // The write happened; the retry sends it again with the same idempotency
                    // key (or upsert key), which the destination treats as a repeat.
                    return self
                        .retry_later(delivery, &change, &error, status, None)
                        .await;
                }
                self.count("delivered");
                tracing::info!(status, attempt, "delivered");
                self.finish(delivery, &change, DeliveryOutcome::Delivered, status, "")
                    .await;
            }
            Ok(Written::Skipped(reason)) => {
                self.count("skipped");
                self.finish(delivery, &change, DeliveryOutcome::Skipped, 0, &reason)
                    .await;
            }
            Err(SendError::Retryable {
                status,
                retry_after,
                reason,
            }) if attempt < u64::from(self.config.max_attempts) => {
                self.retry_later(delivery, &change, &reason, status.unwrap_or(0), retry_after)
                    .await;
            }
            Err(SendError::Gone { reason }) => {
                // Not in the dead letter: it may quote the vendor's body.
                tracing::error!(%reason, "destination gone (410); flow paused until deliver restarts");
                self.paused.store(true, Ordering::Relaxed);
                self.give_up(delivery, &change, 410, PAUSED).await;
            }
            Err(error) => {
                let status = error.status();
                let reason = match &error {
                    SendError::Retryable { reason, .. } => {
                        format!("gave up after {attempt} attempts: {reason}")
                    }
                    SendError::Permanent { reason, .. } | SendError::Gone { reason } => {
                        reason.clone()
                    }
                };
                self.give_up(delivery, &change, status, &reason).await;
            }
        }
    }

    /// Dead-letters the change with its reason, then reports it; if the dead letter cannot be
    /// stored the message is retried instead (never dropped).
    async fn give_up(&self, delivery: Delivery, change: &GoldenChange, status: u16, reason: &str) {
        let flow = self.config.name.as_str();
        let attempt = delivery.attempt();
        tracing::warn!(status, attempt, "delivery dead-lettered");
        self.count("dead_lettered");
        if let Err(error) = self
            .bus
            .dead_letter(&delivery, STAGE, flow, reason, status)
            .await
        {
            tracing::warn!(%error, "dead letter not stored; will retry");
            let delay = self.retry.delay(attempt, None);
            settled(delivery.nak(Some(delay)).await);
            return;
        }
        self.finish(
            delivery,
            change,
            DeliveryOutcome::DeadLettered,
            status,
            reason,
        )
        .await;
    }

    /// Whether the golden record has every value the flow's `when` asks for.
    fn matches_when(&self, change: &GoldenChange) -> bool {
        if self.config.when.is_empty() {
            return true;
        }
        let Some(canonical_object::Object::Contact(c)) =
            change.record.as_ref().and_then(|r| r.object.as_ref())
        else {
            return false;
        };
        self.config.when.iter().all(|(field, expected)| {
            let actual = match field.as_str() {
                "email" => json!(c.email),
                "phone" => json!(c.phone),
                "first_name" => json!(c.first_name),
                "last_name" => json!(c.last_name),
                "company_name" => json!(c.company_name),
                "job_title" => json!(c.job_title),
                "lifecycle_stage" => json!(c.lifecycle_stage),
                "marketing_consent" => json!(c.consent.as_ref().is_some_and(|x| x.marketing)),
                "country" => json!(
                    c.address
                        .as_ref()
                        .map(|a| a.country.clone())
                        .unwrap_or_default()
                ),
                _ => return false,
            };
            &actual == expected
        })
    }

    /// Reports a terminal outcome to monitor, then acks; if the report cannot be stored the
    /// message is retried, and the retry finds the work done and reports again.
    async fn finish(
        &self,
        delivery: Delivery,
        change: &GoldenChange,
        outcome: DeliveryOutcome,
        status: u16,
        reason: &str,
    ) {
        match self
            .report(change, outcome, status, reason, delivery.attempt())
            .await
        {
            Ok(()) => settled(delivery.ack().await),
            Err(error) => {
                tracing::warn!(%error, "outcome report not published; will retry");
                let delay = self.retry.delay(delivery.attempt(), None);
                settled(delivery.nak(Some(delay)).await);
            }
        }
    }

    async fn retry_later(
        &self,
        delivery: Delivery,
        change: &GoldenChange,
        reason: &str,
        status: u16,
        retry_after: Option<Duration>,
    ) {
        self.count("failed");
        let attempt = delivery.attempt();
        tracing::warn!(%reason, status, attempt, "delivery attempt failed; will retry");
        if let Err(error) = self
            .report(change, DeliveryOutcome::Failed, status, reason, attempt)
            .await
        {
            tracing::warn!(%error, "failure report not published");
        }
        let delay = self.retry.delay(attempt, retry_after);
        settled(delivery.nak(Some(delay)).await);
    }

    async fn report(
        &self,
        change: &GoldenChange,
        outcome: DeliveryOutcome,
        status: u16,
        reason: &str,
        attempt: u64,
    ) -> Result<(), String> {
        let flow = self.config.name.as_str();
        let end_to_end_ms = match outcome {
            DeliveryOutcome::Delivered => change
                .cause
                .as_ref()
                .and_then(|c| c.received_at)
                .and_then(|t| SystemTime::try_from(t).ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            _ => 0,
        };
        let result = DeliveryResult {
            flow: flow.to_owned(),
            destination: self.destination.name().to_owned(),
            change_id: change.change_id.clone(),
            outcome: outcome.into(),
            http_status: u32::from(status),
            reason: reason.to_owned(),
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
            at: Some(switchyard_proto::timestamp(SystemTime::now())),
            end_to_end_ms,
        };
        // Failed attempts are counted per attempt, terminal outcomes once per change.
        let msg_id = match outcome {
            DeliveryOutcome::Failed => format!("ops:{flow}:{}:failed:{attempt}", change.change_id),
            other => format!("ops:{flow}:{}:{}", change.change_id, other.as_str_name()),
        };
        self.bus
            .publish(
                self.bus.names().ops_delivery(flow),
                &msg_id,
                Default::default(),
                Bytes::from(result.encode_to_vec()),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn delivered_before(&self, change_id: &str) -> Result<Option<u16>, String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let row = client
            .query_opt(
                "SELECT http_status FROM deliveries WHERE flow = $1 AND change_id = $2",
                &[&self.config.name, &change_id],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.map(|r| u16::try_from(r.get::<_, i32>(0)).unwrap_or(0)))
    }

    async fn record(&self, change_id: &str, status: u16, attempt: u64) -> Result<(), String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        client
            .execute(
                "INSERT INTO deliveries (flow, change_id, destination, http_status, attempts) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &self.config.name,
                    &change_id,
                    &self.destination.name(),
                    &i32::from(status),
                    &i32::try_from(attempt).unwrap_or(i32::MAX),
                ],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The JSON body sent to a webhook destination: Standard Webhooks' `{type, timestamp, data}`.
fn payload(change: &GoldenChange, fields: Option<&[String]>) -> Vec<u8> {
    let kind = match ChangeKind::try_from(change.kind) {
        Ok(ChangeKind::Created) => "created",
        _ => "updated",
    };
    // The source's timestamp keeps the body identical across retries.
    let timestamp = change
        .cause
        .as_ref()
        .and_then(|c| c.occurred_at)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let contact = match change.record.as_ref().and_then(|r| r.object.as_ref()) {
        Some(canonical_object::Object::Contact(contact)) => contact.clone(),
        _ => Default::default(),
    };
    let refs: Vec<_> = change
        .external_refs
        .iter()
        .map(|r| json!({ "system": r.system, "object": r.object, "id": r.id }))
        .collect();
    let mut body = json!({
        "type": format!("{}.{kind}", change.object_type),
        "timestamp": timestamp,
        "data": {
            "id": change.golden_id,
            "version": change.version,
            "email": contact.email,
            "phone": contact.phone,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "company_name": contact.company_name,
            "job_title": contact.job_title,
            "lifecycle_stage": contact.lifecycle_stage,
            "marketing_consent": contact.consent.as_ref().map(|c| c.marketing),
            "changed_fields": change.changed_fields,
            "external_refs": refs,
        }
    });
    // Data minimisation: the record's fields the flow does not name are left out.
    if let (Some(fields), Some(data)) = (fields, body["data"].as_object_mut()) {
        data.retain(|key, _| {
            matches!(
                key.as_str(),
                "id" | "version" | "changed_fields" | "external_refs"
            ) || fields.iter().any(|f| f == key)
        });
    }
    serde_json::to_vec(&body).unwrap_or_default()
}
