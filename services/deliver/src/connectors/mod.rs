//! The connectors: one file per vendor behind one trait, so adding a vendor is one new file here,
//! its `DestinationKind` in the configuration, and its tests. `http` sorts every vendor's answers;
//! `api` is the authenticated client the vendor APIs share; `ids` keeps the ids vendors give the
//! records deliver creates; `books` is what the two accounting systems share.

mod api;
mod books;
pub(crate) mod http;
mod hubspot;
mod ids;
mod klaviyo;
pub mod mailchimp;
mod quickbooks;
mod salesforce;
mod stripe;
mod values;
pub mod webhook;
mod xero;

use futures::future::BoxFuture;
use switchyard_chassis::bus::Bus;
use switchyard_chassis::config::{DestinationConfig, DestinationKind, FlowConfig, ObjectType};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{GoldenChange, canonical_object};

pub(crate) use http::SendError;
use ids::Links;

/// A vendor (or the generic webhook) that golden changes are written to.
pub(crate) trait Connector: std::fmt::Debug + Send + Sync {
    /// The destination's configured name.
    fn name(&self) -> &str;

    /// Writes one change idempotently: a repeat of `write.key` changes nothing more.
    fn write<'a>(&'a self, write: &'a Write<'a>) -> BoxFuture<'a, Result<Written, SendError>>;
}

/// The connector for a configured destination; OAuth2 destinations start from the tokens kept in
/// `pool`, and those that create records report their ids through `bus`.
pub(crate) async fn connect(
    config: &DestinationConfig,
    pool: &Pool,
    bus: &Bus,
) -> Result<Box<dyn Connector>, String> {
    let pool = pool.clone();
    let links = || Links::new(bus, config);
    Ok(match config.kind {
        DestinationKind::Webhook => Box::new(webhook::WebhookDestination::new(config)?),
        DestinationKind::Mailchimp => Box::new(mailchimp::MailchimpDestination::new(
            config,
            http::http_client(config)?,
        )?),
        DestinationKind::Hubspot => {
            Box::new(hubspot::HubspotDestination::new(config, pool, links()).await?)
        }
        DestinationKind::Salesforce => {
            Box::new(salesforce::SalesforceDestination::new(config, pool).await?)
        }
        DestinationKind::Klaviyo => Box::new(klaviyo::KlaviyoDestination::new(config)?),
        DestinationKind::Quickbooks => {
            Box::new(quickbooks::QuickbooksDestination::new(config, pool, links()).await?)
        }
        DestinationKind::Xero => Box::new(xero::XeroDestination::new(config, pool, links()).await?),
        DestinationKind::Stripe => {
            Box::new(stripe::StripeDestination::new(config, pool, links()).await?)
        }
    })
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
