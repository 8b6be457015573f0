//! The destinations a flow can write to, behind one `write` call, each with an optional token
//! bucket shared by every flow writing to it.

use std::num::NonZeroU32;
use std::sync::Arc;

use switchyard_chassis::config::{DestinationConfig, DestinationKind};
use switchyard_proto::v1::{GoldenChange, canonical_object};

use crate::mailchimp::MailchimpDestination;
use crate::webhook::{SendError, WebhookDestination, http_client};

/// A token bucket shared by every flow writing to one destination.
pub type Limiter = governor::DefaultDirectRateLimiter;

/// The limiter for a destination's configured rate, if it has one.
pub fn limiter(config: &DestinationConfig) -> Option<Arc<Limiter>> {
    let rate = NonZeroU32::new(config.rate_per_second?)?;
    let burst = config.burst.and_then(NonZeroU32::new).unwrap_or(rate);
    Some(Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(rate).allow_burst(burst),
    )))
}

/// A configured destination.
#[derive(Debug)]
pub struct Destination {
    connector: Connector,
    limiter: Option<Arc<Limiter>>,
}

#[derive(Debug)]
enum Connector {
    Webhook(WebhookDestination),
    Mailchimp(MailchimpDestination),
}

impl Destination {
    pub fn new(config: &DestinationConfig, limiter: Option<Arc<Limiter>>) -> Result<Self, String> {
        let connector = match config.kind {
            DestinationKind::Webhook => Connector::Webhook(WebhookDestination::new(config)?),
            DestinationKind::Mailchimp => {
                Connector::Mailchimp(MailchimpDestination::new(config, http_client(config)?)?)
            }
        };
        Ok(Self { connector, limiter })
    }

    pub fn name(&self) -> &str {
        match &self.connector {
            Connector::Webhook(w) => &w.name,
            Connector::Mailchimp(m) => &m.name,
        }
    }

    /// Writes one golden change; `webhook_id` is the stable idempotency key of this write.
    pub async fn write(
        &self,
        webhook_id: &str,
        change: &GoldenChange,
        body: impl FnOnce() -> Vec<u8>,
    ) -> Result<u16, SendError> {
        // Wait for a token rather than be throttled: each vendor 429 would cost a retry.
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        match &self.connector {
            Connector::Webhook(w) => w.send(webhook_id, body()).await,
            Connector::Mailchimp(m) => match change.record.as_ref().and_then(|r| r.object.as_ref())
            {
                Some(canonical_object::Object::Contact(contact)) => m.upsert(contact).await,
                _ => Err(SendError::Permanent {
                    status: 0,
                    reason: "a Mailchimp audience takes contacts only".to_owned(),
                }),
            },
        }
    }
}
