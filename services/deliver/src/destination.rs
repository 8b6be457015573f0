//! The destinations a flow can write to, behind one `write` call.

use switchyard_chassis::config::{DestinationConfig, DestinationKind};
use switchyard_proto::v1::{GoldenChange, canonical_object};

use crate::mailchimp::MailchimpDestination;
use crate::webhook::{SendError, WebhookDestination, http_client};

/// A configured destination.
#[derive(Debug)]
pub enum Destination {
    Webhook(WebhookDestination),
    Mailchimp(MailchimpDestination),
}

impl Destination {
    pub fn new(config: &DestinationConfig) -> Result<Self, String> {
        Ok(match config.kind {
            DestinationKind::Webhook => Self::Webhook(WebhookDestination::new(config)?),
            DestinationKind::Mailchimp => {
                Self::Mailchimp(MailchimpDestination::new(config, http_client(config)?)?)
            }
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Webhook(w) => &w.name,
            Self::Mailchimp(m) => &m.name,
        }
    }

    /// Writes one golden change; `webhook_id` is the stable idempotency key of this write.
    pub async fn write(
        &self,
        webhook_id: &str,
        change: &GoldenChange,
        body: impl FnOnce() -> Vec<u8>,
    ) -> Result<u16, SendError> {
        match self {
            Self::Webhook(w) => w.send(webhook_id, body()).await,
            Self::Mailchimp(m) => match change.record.as_ref().and_then(|r| r.object.as_ref()) {
                Some(canonical_object::Object::Contact(contact)) => m.upsert(contact).await,
                _ => Err(SendError::Permanent {
                    status: 0,
                    reason: "a Mailchimp audience takes contacts only".to_owned(),
                }),
            },
        }
    }
}
