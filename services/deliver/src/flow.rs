//! One flow: which golden changes it takes, the request it makes, and what happens on failure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prost::Message as _;
use switchyard_chassis::bus::{
    Bus, Delivery, ErrorClass, Failure, Handler, Outcome, REPLAY_FLOW, Step,
};
use switchyard_chassis::config::{FlowConfig, Trigger};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{ChangeKind, DeliveryOutcome, DeliveryResult, GoldenChange};

use crate::batcher::StoreError;
use crate::breaker::Admit;
use crate::connectors::{SendError, Write, Written};
use crate::destination::Destination;
use crate::minimise::minimise;

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
    /// Group commit of this flow's `deliveries` look-ups and records (shared by every flow).
    pub deliveries: crate::batcher::Deliveries,
    pub attempts: Family<Labels, Counter>,
    /// Set when the destination answered 410 Gone: from then on (until an operator resumes the
    /// flow) every change is dead-lettered without calling the destination, so nothing hammers
    /// an endpoint that no longer exists and every change stays replayable. A cache of the
    /// flow's `flow_pauses` row (see `pause`), which is the truth across restarts and replicas.
    pub paused: AtomicBool,
    /// Flow and credential status reports for monitor's alerts.
    pub reporter: crate::status::Reporter,
    /// Redeliveries that only waited for the destination's open circuit breaker.
    pub deferrals: crate::breaker::Deferrals,
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

    /// Delivers one change, or says why not; the consume loop settles the message as told.
    async fn deliver(&self, delivery: &Delivery) -> Outcome {
        let flow = self.config.name.as_str();
        // A replayed dead letter is meant for the flow it came from; every other flow on the
        // object has had its turn at this change already.
        if let Some(target) = delivery.headers().and_then(|h| h.get(REPLAY_FLOW))
            && target.as_str() != flow
        {
            self.count("skipped");
            return Outcome::Ack;
        }
        let change = match GoldenChange::decode(delivery.payload()) {
            Ok(change) => change,
            Err(error) => {
                let reason = format!("undecodable golden change: {error}");
                return Outcome::DeadLetter(self.failure(ErrorClass::Undecodable, reason));
            }
        };
        // No "received" report of its own: monitor counts the change received with the first
        // report this flow makes of it (delivered, failed, skipped or dead-lettered), which
        // spares every change one OPS message.
        let trigger = match ChangeKind::try_from(change.kind) {
            Ok(ChangeKind::Created) => Some(Trigger::Created),
            Ok(ChangeKind::Updated) => Some(Trigger::Updated),
            _ => None,
        };
        if !trigger.is_some_and(|t| self.config.on.contains(&t)) || !self.matches_when(&change) {
            self.count("skipped");
            let reason = "not a trigger of this flow, or its `when` does not match";
            return self
                .finish(delivery, &change, DeliveryOutcome::Skipped, 0, reason)
                .await;
        }
        match self.delivered_before(&change.change_id).await {
            // Delivered, but the report or the ack was lost: say it again (same id, so counted
            // once).
            Ok(Some(status)) => {
                return self
                    .finish(delivery, &change, DeliveryOutcome::Delivered, status, "")
                    .await;
            }
            Ok(None) => {}
            Err(error) => return self.retry(error.to_string(), 0),
        }
        if self.paused.load(Ordering::Relaxed) {
            // The row decides: an operator may have resumed the flow through another replica.
            match crate::pause::holds(&self.pool, flow).await {
                Ok(true) => {
                    return Outcome::DeadLetter(self.failure(ErrorClass::Gone, PAUSED).status(410));
                }
                Ok(false) => self.paused.store(false, Ordering::Relaxed),
                Err(error) => return self.retry(error, 0),
            }
        }
        if let Some(reason) = self.too_old(delivery, &change) {
            return Outcome::DeadLetter(self.failure(ErrorClass::MaxAge, reason));
        }
        if let Admit::Wait(delay) = self.destination.breaker().admit(Instant::now()) {
            // The destination is not called while its breaker is open: the change comes back
            // when the cool-down ends. JetStream counts this redelivery, so it is remembered
            // (`deferrals`) and not counted as an attempt (`attempts`): waiting never uses up
            // `max_attempts`. The server's max_deliver does not stop it either (see
            // `App::build`); `max_age` does.
            self.deferrals.defer(delivery.stream_sequence());
            // Still a failed delivery for monitor (reported under this redelivery's number), so
            // failure rates and "destination down" alerts see the outage while nothing is sent.
            self.count("failed");
            let reason = format!(
                "circuit breaker of destination {} open: not called for another {}",
                self.destination.name(),
                humantime::format_duration(Duration::from_secs(delay.as_secs().max(1)))
            );
            if let Err(error) = self
                .report(
                    &change,
                    DeliveryOutcome::Failed,
                    0,
                    &reason,
                    delivery.attempt(),
                )
                .await
            {
                tracing::warn!(%error, "failure report not published");
            }
            return Outcome::Defer { after: Some(delay) };
        }
        self.write(delivery, &change).await
    }

    /// Writes the change to the destination, records it, and reports it.
    async fn write(&self, delivery: &Delivery, change: &GoldenChange) -> Outcome {
        let flow = self.config.name.as_str();
        let attempt = self.real_attempts(delivery);
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
        let written = self.destination.write(&write).await;
        match &written {
            // A skipped write may not have called the destination: it proves nothing.
            Ok(Written::Done(_)) => self.destination.breaker().success(),
            Ok(Written::Skipped(_)) => {}
            Err(SendError::Retryable { .. }) => {
                self.destination.breaker().failure(Instant::now());
            }
            // The destination answered: it is up, whatever it thought of the request.
            Err(SendError::Permanent { .. } | SendError::Gone { .. }) => {
                self.destination.breaker().success();
            }
        }
        match written {
            Ok(Written::Done(status)) => {
                if let Err(error) = self.record(&change.change_id, status, attempt).await {
                    // The write happened; the retry sends it again with the same idempotency
                    // key (or upsert key), which the destination treats as a repeat.
                    return self.retry(error.to_string(), status);
                }
                self.count("delivered");
                tracing::info!(status, attempt, "delivered");
                self.finish(delivery, change, DeliveryOutcome::Delivered, status, "")
                    .await
            }
            Ok(Written::Skipped(reason)) => {
                self.count("skipped");
                self.finish(delivery, change, DeliveryOutcome::Skipped, 0, &reason)
                    .await
            }
            Err(error @ SendError::Gone { .. }) => {
                // The dead letter's reason says the flow paused; the vendor's body goes to its
                // response body, not into the reason.
                tracing::error!(reason = %error, "destination gone (410); flow paused until an operator resumes it");
                // Paused only once the pause is stored: a pause that would not survive a restart
                // is retried instead (the retry meets the 410 again).
                match crate::pause::store(&self.pool, flow, PAUSED).await {
                    Ok(Some(at)) => {
                        self.reporter
                            .paused(flow, self.destination.name(), PAUSED, at);
                    }
                    Ok(None) => {}
                    Err(error) => return self.retry(error, 410),
                }
                self.paused.store(true, Ordering::Relaxed);
                Outcome::DeadLetter(
                    self.failure(ErrorClass::Gone, PAUSED)
                        .status(410)
                        .response_body(error.response_body()),
                )
            }
            Err(error) => {
                // A vendor's answer keeps its own class, also once the attempts run out.
                let failure = self
                    .failure(error.class(), error.to_string())
                    .status(error.status())
                    .response_body(error.response_body());
                match error {
                    SendError::Retryable {
                        retry_after,
                        reason,
                        ..
                    } => Outcome::Retry {
                        failure: Failure { reason, ..failure },
                        after: retry_after,
                    },
                    SendError::Permanent { reason, .. } | SendError::Gone { reason } => {
                        Outcome::DeadLetter(Failure { reason, ..failure })
                    }
                }
            }
        }
    }

    /// A failure of this flow: its key is the flow, its destination the flow's.
    fn failure(&self, class: ErrorClass, reason: impl Into<String>) -> Failure {
        Failure::new(self.config.name.as_str(), class, reason).destination(self.destination.name())
    }

    /// A failed attempt on our own side (database, bus) after the destination answered
    /// `status` (0 when it was not called): retried, then dead-lettered as exhausted.
    fn retry(&self, reason: impl Into<String>, status: u16) -> Outcome {
        Outcome::retry(self.failure(ErrorClass::Exhausted, reason).status(status))
    }

    /// The attempts that really called the destination: redeliveries that only waited for an
    /// open circuit breaker do not count.
    fn real_attempts(&self, delivery: &Delivery) -> u64 {
        delivery
            .attempt()
            .saturating_sub(self.deferrals.count(delivery.stream_sequence()))
            .max(1)
    }

    /// Why the change is too old for another attempt, if it is: its age counts from ingest's
    /// receipt of its cause (else from when the golden change was stored), so `max_age` bounds
    /// how long a change can keep retrying or waiting for an open breaker.
    fn too_old(&self, delivery: &Delivery, change: &GoldenChange) -> Option<String> {
        // A replayed dead letter is an operator's decision to try again now: it counts from the
        // replay, or it would go straight back to the dead letters.
        let replayed = delivery
            .headers()
            .is_some_and(|h| h.get(REPLAY_FLOW).is_some())
            || delivery
                .msg_id()
                .is_some_and(|id| id.starts_with("replay:"));
        let since = change
            .cause
            .as_ref()
            .and_then(|c| c.received_at)
            .and_then(|t| SystemTime::try_from(t).ok())
            .filter(|_| !replayed)
            .or_else(|| delivery.published())?;
        let age = SystemTime::now().duration_since(since).ok()?;
        let max_age = self.config.max_age;
        (age > max_age).then(|| {
            format!(
                "maximum age {} exceeded: the change is {} old; not tried again",
                humantime::format_duration(max_age),
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            )
        })
    }

    /// Whether the golden record has every value the flow's `when` asks for (see `when`).
    fn matches_when(&self, change: &GoldenChange) -> bool {
        crate::when::matches(
            self.config.object.as_str(),
            &self.config.when,
            change.record.as_ref().and_then(|r| r.object.as_ref()),
        )
    }

    /// Reports a terminal outcome to monitor; once it is out the message is done. If the report
    /// cannot be published the message comes back (not a failed attempt), and the redelivery
    /// finds the work done and reports again.
    async fn finish(
        &self,
        delivery: &Delivery,
        change: &GoldenChange,
        outcome: DeliveryOutcome,
        status: u16,
        reason: &str,
    ) -> Outcome {
        match self
            .report(change, outcome, status, reason, delivery.attempt())
            .await
        {
            Ok(()) => Outcome::Ack,
            Err(error) => {
                tracing::warn!(%error, "outcome report not published; will retry");
                Outcome::Defer { after: None }
            }
        }
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
            source: change
                .cause
                .as_ref()
                .map(|c| c.source_system.clone())
                .unwrap_or_default(),
        };
        // Failed attempts are counted per attempt, terminal outcomes once per change.
        let msg_id = match outcome {
            DeliveryOutcome::Failed => format!("ops:{flow}:{}:failed:{attempt}", change.change_id),
            other => format!("ops:{flow}:{}:{}", change.change_id, other.as_str_name()),
        };
        let subject = self.bus.names().ops_delivery(flow);
        let payload = Bytes::from(result.encode_to_vec());
        self.bus
            .publish(subject, &msg_id, Default::default(), payload)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn delivered_before(&self, change_id: &str) -> Result<Option<u16>, StoreError> {
        // Batched with the other lanes' look-ups: one `= ANY` query instead of one each.
        self.deliveries
            .delivered(&self.config.name, change_id)
            .await
    }

    async fn record(&self, change_id: &str, status: u16, attempt: u64) -> Result<(), StoreError> {
        // Group commit with the other lanes' records; answered once the row has committed, so
        // the ack still follows the record.
        self.deliveries
            .record(
                &self.config.name,
                change_id,
                self.destination.name(),
                status,
                attempt,
            )
            .await
    }
}

impl Handler for Flow {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.deliver(delivery).await
    }

    fn attempts(&self, delivery: &Delivery) -> u64 {
        self.real_attempts(delivery)
    }

    /// Monitor hears of every failed attempt and every dead letter of a change; a dead letter is
    /// acked only once monitor has heard of it.
    async fn before(&self, delivery: &Delivery, step: Step<'_>) -> Result<(), String> {
        let (outcome, failure) = match step {
            Step::Ack => {
                self.deferrals.forget(delivery.stream_sequence());
                return Ok(());
            }
            Step::Retry { failure, .. } => {
                self.count("failed");
                (DeliveryOutcome::Failed, failure)
            }
            Step::DeadLettered { failure, .. } => {
                self.count("dead_lettered");
                self.deferrals.forget(delivery.stream_sequence());
                (DeliveryOutcome::DeadLettered, failure)
            }
        };
        // A message that is no change has nothing to report.
        let Ok(change) = GoldenChange::decode(delivery.payload()) else {
            return Ok(());
        };
        self.report(
            &change,
            outcome,
            failure.http_status,
            &failure.reason,
            delivery.attempt(),
        )
        .await
    }
}
