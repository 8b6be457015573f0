//! Sends opened and resolved alerts and the health reports to the Slack-compatible webhook
//! (`monitor.alerts.webhook_url`): a JSON body of `text` plus one section block, signed the
//! Standard Webhooks way. The `alerts` and `health_reports` tables are the outbox: a message is
//! marked sent only once the webhook accepted it, and its `webhook-id` is stable per alert,
//! opening time and state (or per report period), so a retry — or two replicas sending the same
//! one — is recognisable as a repeat.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest as _, Sha256};
use switchyard_chassis::CancellationToken;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::retry::RedeliveryPolicy;
use switchyard_chassis::signing::SigningKey;
use tokio::sync::Notify;

use crate::clock::{unix, utc};
use crate::store::StoreError;
use crate::store::health_reports::{self, AlertMessage, UnsentAlert};

/// Attempts per message and round; what still fails waits for the next round.
const ATTEMPTS: u64 = 5;
/// How often the outbox is looked at when nothing wakes the sender.
const IDLE_ROUND: Duration = Duration::from_secs(30);

/// Where messages go, and how they are signed.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub url: String,
    pub key: SigningKey,
    pub http: reqwest::Client,
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// 408, 429, 5xx or no answer: worth trying again.
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Permanent(String),
}

/// A Slack incoming-webhook body: `text` (shown in notifications) and the same as one `mrkdwn`
/// section block.
pub(crate) fn slack_body(text: &str, blocks: &[String]) -> Vec<u8> {
    let blocks: Vec<_> = blocks
        .iter()
        .map(|b| json!({"type": "section", "text": {"type": "mrkdwn", "text": b}}))
        .collect();
    serde_json::to_vec(&json!({ "text": text, "blocks": blocks })).unwrap_or_default()
}

/// The `webhook-id` of an alert's opening or resolution: stable, header-safe, and different for
/// each (alert, opened at, state).
pub(crate) fn alert_webhook_id(id: &str, opened_at_ms: i64, state: &str) -> String {
    let digest = Sha256::digest(format!("{id}\n{opened_at_ms}\n{state}").as_bytes());
    format!("alert_{}", hex::encode(&digest[..16]))
}

impl Webhook {
    /// POSTs a signed body, retrying transient failures with back-off.
    async fn send(&self, webhook_id: &str, body: &[u8]) -> Result<(), SendError> {
        let retry = RedeliveryPolicy {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        };
        let mut attempt = 1;
        loop {
            match self.attempt(webhook_id, body).await {
                Ok(()) => return Ok(()),
                Err(SendError::Retryable(reason)) if attempt < ATTEMPTS => {
                    tracing::debug!(%reason, attempt, "alert webhook failed; retrying");
                    tokio::time::sleep(retry.delay(attempt, None)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(&self, webhook_id: &str, body: &[u8]) -> Result<(), SendError> {
        // Signed per attempt: the timestamp is when this attempt was made (the id stays).
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in self
            .key
            .headers(webhook_id, switchyard_chassis::unix_now(), body)
        {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SendError::Retryable(format!("no answer: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Retryable(format!("webhook answered {status}")))
        } else {
            Err(SendError::Permanent(format!("webhook answered {status}")))
        }
    }
}

/// Sends what the outbox holds whenever woken, and every [`IDLE_ROUND`].
#[derive(Debug)]
pub(crate) struct Sender {
    pub pool: Pool,
    pub webhook: Webhook,
    pub wake: Arc<Notify>,
}

impl Sender {
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        loop {
            // A round retrying a failing webhook may take a minute: shutdown does not wait for
            // it (what was not marked sent is sent again later, under the same id).
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = self.round() => if let Err(error) = result {
                    tracing::warn!(%error, "alert webhook round failed; trying again later");
                },
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(IDLE_ROUND) => {}
            }
        }
    }

    /// Sends every unsent opening, resolution and report, oldest first; stops at the first that
    /// fails, so they arrive in order.
    async fn round(&self) -> Result<(), StoreError> {
        for alert in health_reports::unsent_alerts(&self.pool).await? {
            let UnsentAlert {
                id,
                severity,
                summary,
                runbook,
                opened_at,
                resolved_at,
                opened_ms,
                open_sent,
            } = alert;
            if !open_sent {
                let text = format!(
                    "[{severity}] {id} opened at {}: {summary}. Runbook: {runbook}",
                    utc(unix(opened_at))
                );
                let block = format!(
                    ":rotating_light: *[{severity}] `{id}`* opened at {}\n{summary}\nRunbook: `{runbook}`",
                    utc(unix(opened_at))
                );
                if !self
                    .deliver(&alert_webhook_id(&id, opened_ms, "open"), &text, &block)
                    .await
                {
                    return Ok(());
                }
                health_reports::mark_sent(&self.pool, AlertMessage::Opening, &id, opened_at)
                    .await?;
            }
            if let Some(resolved_at) = resolved_at {
                let text = format!(
                    "[resolved] {id} resolved at {} (open since {}): {summary}",
                    utc(unix(resolved_at)),
                    utc(unix(opened_at))
                );
                let block = format!(
                    ":white_check_mark: *[resolved] `{id}`* at {} (open since {})\n{summary}\nRunbook: `{runbook}`",
                    utc(unix(resolved_at)),
                    utc(unix(opened_at))
                );
                if !self
                    .deliver(&alert_webhook_id(&id, opened_ms, "resolved"), &text, &block)
                    .await
                {
                    return Ok(());
                }
                health_reports::mark_sent(&self.pool, AlertMessage::Resolution, &id, opened_at)
                    .await?;
            }
        }
        for report in health_reports::unsent_reports(&self.pool).await? {
            match self
                .webhook
                .send(&format!("report_{}", report.end), report.body.as_bytes())
                .await
            {
                Ok(()) => health_reports::mark_report_sent(&self.pool, report.period_end).await?,
                Err(error) => {
                    tracing::warn!(%error, "health report not accepted by the webhook; will retry");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Sends one alert message; false when the webhook did not take it.
    async fn deliver(&self, webhook_id: &str, text: &str, block: &str) -> bool {
        match self
            .webhook
            .send(webhook_id, &slack_body(text, &[block.to_owned()]))
            .await
        {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, webhook_id, "alert not accepted by the webhook; will retry");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_are_stable_per_alert_opening_and_state() {
        let open = alert_webhook_id("volume_drop:flow=contacts", 1_700_000_000_000, "open");
        assert_eq!(
            open,
            alert_webhook_id("volume_drop:flow=contacts", 1_700_000_000_000, "open")
        );
        assert_ne!(
            open,
            alert_webhook_id("volume_drop:flow=contacts", 1_700_000_000_000, "resolved")
        );
        assert_ne!(
            open,
            alert_webhook_id("volume_drop:flow=contacts", 1_700_000_000_001, "open")
        );
        assert!(open.starts_with("alert_") && open.len() == 38, "{open}");
    }

    #[test]
    fn bodies_have_slacks_shape() {
        let body: serde_json::Value =
            serde_json::from_slice(&slack_body("plain", &["*bold*".to_owned()])).expect("json");
        assert_eq!(body["text"], "plain");
        assert_eq!(body["blocks"][0]["type"], "section");
        assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(body["blocks"][0]["text"]["text"], "*bold*");
    }
}
