//! The destinations a flow can write to, behind one `write` call, each with an optional token
//! bucket shared by every flow writing to it.

use std::num::NonZeroU32;
use std::sync::Arc;

use switchyard_chassis::bus::Bus;
use switchyard_chassis::config::{DestinationConfig, DestinationKind, FlowConfig, ObjectType};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{GoldenChange, canonical_object};

use crate::breaker::Breaker;
use crate::hubspot::HubspotDestination;
use crate::ids::Links;
use crate::klaviyo::KlaviyoDestination;
use crate::mailchimp::MailchimpDestination;
use crate::quickbooks::QuickbooksDestination;
use crate::salesforce::SalesforceDestination;
use crate::stripe::StripeDestination;
use crate::webhook::{SendError, WebhookDestination, http_client};
use crate::xero::XeroDestination;

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

/// The canonical objects a kind of destination can write; a flow of any other object is a
/// configuration error found at start-up.
pub fn takes(kind: DestinationKind, object: ObjectType) -> bool {
    use ObjectType as O;
    match kind {
        DestinationKind::Webhook => true,
        // Invoices: post-sale nurture of the paying customer (a tag, a list).
        DestinationKind::Mailchimp | DestinationKind::Klaviyo => {
            matches!(object, O::Contact | O::Invoice)
        }
        DestinationKind::Stripe => object == O::Contact,
        // Invoices: the deal the invoice settles moves to the flow's `deal_stage`.
        DestinationKind::Hubspot => {
            matches!(object, O::Contact | O::Company | O::Deal | O::Invoice)
        }
        DestinationKind::Salesforce => matches!(object, O::Contact | O::Company | O::Deal),
        DestinationKind::Quickbooks | DestinationKind::Xero => {
            matches!(object, O::Contact | O::Invoice | O::Order | O::Deal)
        }
    }
}

/// One write: the change, the flow it is for, and its stable key.
#[derive(Debug)]
pub struct Write<'a> {
    /// `<flow>:<change id>`: the same for every retry, redelivery and replay of this change in
    /// this flow; connectors derive their idempotency keys from it.
    pub key: &'a str,
    pub flow: &'a FlowConfig,
    /// The change, its record already cut down to the flow's `fields`.
    pub change: &'a GoldenChange,
}

impl Write<'_> {
    /// The golden record.
    pub fn object(&self) -> Option<&canonical_object::Object> {
        self.change.record.as_ref().and_then(|r| r.object.as_ref())
    }
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Written; the vendor's 2xx status.
    Done(u16),
    /// Nothing to write for this change (e.g. a deal that is not won, for an accounting system).
    Skipped(String),
}

/// A permanent failure that is the record's or the configuration's, not the vendor's answer.
pub(crate) fn permanent(reason: &str) -> SendError {
    SendError::Permanent {
        status: 0,
        reason: reason.to_owned(),
    }
}

/// A configured destination, shared by every flow writing to it.
#[derive(Debug)]
pub struct Destination {
    connector: Connector,
    limiter: Option<Arc<Limiter>>,
    /// Stops calls while the destination keeps failing (see `breaker`); flows consult it.
    breaker: Breaker,
}

#[derive(Debug)]
enum Connector {
    Webhook(WebhookDestination),
    Mailchimp(MailchimpDestination),
    Hubspot(HubspotDestination),
    Salesforce(SalesforceDestination),
    Klaviyo(KlaviyoDestination),
    Quickbooks(QuickbooksDestination),
    Xero(XeroDestination),
    Stripe(StripeDestination),
}

impl Destination {
    /// The connector for `config`; OAuth2 destinations start from the tokens kept in `pool`.
    pub async fn new(
        config: &DestinationConfig,
        limiter: Option<Arc<Limiter>>,
        pool: &Pool,
        bus: &Bus,
    ) -> Result<Self, String> {
        let pool = pool.clone();
        let links = || Links::new(bus, config);
        let connector = match config.kind {
            DestinationKind::Webhook => Connector::Webhook(WebhookDestination::new(config)?),
            DestinationKind::Mailchimp => {
                Connector::Mailchimp(MailchimpDestination::new(config, http_client(config)?)?)
            }
            DestinationKind::Hubspot => {
                Connector::Hubspot(HubspotDestination::new(config, pool, links()).await?)
            }
            DestinationKind::Salesforce => {
                Connector::Salesforce(SalesforceDestination::new(config, pool).await?)
            }
            DestinationKind::Klaviyo => Connector::Klaviyo(KlaviyoDestination::new(config)?),
            DestinationKind::Quickbooks => {
                Connector::Quickbooks(QuickbooksDestination::new(config, pool, links()).await?)
            }
            DestinationKind::Xero => {
                Connector::Xero(XeroDestination::new(config, pool, links()).await?)
            }
            DestinationKind::Stripe => {
                Connector::Stripe(StripeDestination::new(config, pool, links()).await?)
            }
        };
        let breaker = Breaker::for_destination(config, Default::default());
        Ok(Self {
            connector,
            limiter,
            breaker,
        })
    }

    /// The same destination with `breaker` (whose gauge is registered) instead of its own.
    pub(crate) fn with_breaker(mut self, breaker: Breaker) -> Self {
        self.breaker = breaker;
        self
    }

    /// The destination's circuit breaker.
    pub(crate) fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub fn name(&self) -> &str {
        match &self.connector {
            Connector::Webhook(w) => &w.name,
            Connector::Mailchimp(m) => &m.name,
            Connector::Hubspot(c) => c.name(),
            Connector::Salesforce(c) => c.name(),
            Connector::Klaviyo(c) => c.name(),
            Connector::Quickbooks(c) => c.name(),
            Connector::Xero(c) => c.name(),
            Connector::Stripe(c) => c.name(),
        }
    }

    /// Writes one golden change; `body` builds the generic webhook's payload.
    pub async fn write(
        &self,
        write: &Write<'_>,
        body: impl FnOnce() -> Vec<u8>,
    ) -> Result<Written, SendError> {
        // Wait for a token rather than be throttled: each vendor 429 would cost a retry.
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        match &self.connector {
            Connector::Webhook(w) => w.send(write.key, body()).await.map(Written::Done),
            Connector::Mailchimp(m) => match write.object() {
                Some(canonical_object::Object::Contact(contact)) => {
                    m.upsert(contact).await.map(Written::Done)
                }
                Some(canonical_object::Object::Invoice(_)) => {
                    m.nurture(write).await.map(Written::Done)
                }
                _ => Err(permanent(
                    "a Mailchimp audience takes contacts and invoices",
                )),
            },
            Connector::Hubspot(c) => c.write(write).await,
            Connector::Salesforce(c) => c.write(write).await,
            Connector::Klaviyo(c) => c.write(write).await,
            Connector::Quickbooks(c) => c.write(write).await,
            Connector::Xero(c) => c.write(write).await,
            Connector::Stripe(c) => c.write(write).await,
        }
    }
}
