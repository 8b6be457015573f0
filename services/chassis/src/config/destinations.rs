//! Destinations: the systems deliver writes to, with their credentials and limits.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::secrets::{self, SecretRef};
use super::*;

/// Kinds of destinations deliver can write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationKind {
    /// A generic HTTPS endpoint, signed the Standard Webhooks way.
    Webhook,
    /// A Mailchimp audience: members upserted by subscriber hash (`url` is the API base, e.g.
    /// `https://us21.api.mailchimp.com/3.0`; `secret_env` holds the API key).
    Mailchimp,
    /// HubSpot CRM v3: contacts and companies upserted by email and domain, deals patched by id.
    Hubspot,
    /// Salesforce sObjects upserted by an external-id field (`url` is the instance URL).
    Salesforce,
    /// Klaviyo profiles imported (upserted by email), consent subscribed to a flow's list.
    Klaviyo,
    /// QuickBooks Online customers, invoices and sales receipts, each POST with a `requestid`.
    Quickbooks,
    /// Xero Accounting contacts and ACCREC invoices, each POST with an `Idempotency-Key`.
    Xero,
    /// Stripe customers, created with an `Idempotency-Key` or updated by id.
    Stripe,
}

impl DestinationKind {
    /// The name used in config files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Mailchimp => "mailchimp",
            Self::Hubspot => "hubspot",
            Self::Salesforce => "salesforce",
            Self::Klaviyo => "klaviyo",
            Self::Quickbooks => "quickbooks",
            Self::Xero => "xero",
            Self::Stripe => "stripe",
        }
    }

    /// The vendor's API host, when it is the same for every account (Salesforce has one per org,
    /// Mailchimp one per data centre, a webhook is wherever it is).
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            Self::Hubspot => Some("https://api.hubapi.com"),
            Self::Klaviyo => Some("https://a.klaviyo.com"),
            Self::Quickbooks => Some("https://quickbooks.api.intuit.com"),
            Self::Xero => Some("https://api.xero.com"),
            Self::Stripe => Some("https://api.stripe.com"),
            Self::Webhook | Self::Mailchimp | Self::Salesforce => None,
        }
    }

    /// The vendor's OAuth2 token endpoint, for kinds that take OAuth2.
    pub fn default_token_url(self) -> Option<&'static str> {
        match self {
            Self::Hubspot => SourceKind::Hubspot.default_token_url(),
            Self::Quickbooks => SourceKind::Quickbooks.default_token_url(),
            Self::Xero => SourceKind::Xero.default_token_url(),
            Self::Salesforce => Some("https://login.salesforce.com/services/oauth2/token"),
            _ => None,
        }
    }

    /// Whether the kind authenticates with OAuth2 bearer tokens (which `secret_env` may also
    /// hold as a static token: a HubSpot private-app token, a Salesforce session).
    pub fn takes_oauth(self) -> bool {
        matches!(
            self,
            Self::Hubspot | Self::Salesforce | Self::Quickbooks | Self::Xero
        )
    }
}

/// A system deliver writes to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub name: String,
    pub kind: DestinationKind,
    /// The webhook endpoint, or the vendor's API base (see [`DestinationConfig::base_url`]).
    #[serde(default)]
    pub url: Option<HttpUrl>,
    /// Environment variable holding the signing secret (`whsec_…`), the API key, or a static
    /// bearer token.
    #[serde(default)]
    pub secret_env: Option<SecretRef>,
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Mailchimp: the audience (list) id.
    #[serde(default)]
    pub list_id: Option<String>,
    /// Writes per second to this destination, across all its flows (a token bucket matched to
    /// the vendor's published quota, e.g. Mailchimp's 10 concurrent / HubSpot's 100 per 10 s).
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Writes allowed at once above the rate (the bucket's size); defaults to the rate.
    #[serde(default)]
    pub burst: Option<u32>,
    /// OAuth2: the token endpoint (the vendor's by default) and the names of the environment
    /// variables holding the client id, client secret and first refresh token (a rotated one is
    /// kept in deliver's database and wins).
    #[serde(default)]
    pub token_url: Option<HttpUrl>,
    #[serde(default)]
    pub client_id_env: Option<SecretRef>,
    #[serde(default)]
    pub client_secret_env: Option<SecretRef>,
    #[serde(default)]
    pub refresh_token_env: Option<SecretRef>,
    /// The configured source whose record ids are this destination's ids (the same HubSpot
    /// portal, Stripe account…): a golden record's crosswalk id from it is updated in place.
    #[serde(default)]
    pub source_system: Option<String>,
    /// Salesforce: the external-id field records are upserted by (`Switchyard_Id__c`).
    #[serde(default)]
    pub external_id_field: Option<String>,
    /// HubSpot: a unique-value deal property (e.g. `switchyard_id`, created once in the portal)
    /// that holds the golden id, so new deals are upserted by it (`deals/batch/upsert`) and a
    /// repeat after a lost answer updates the deal instead of creating a second.
    #[serde(default)]
    pub deal_id_property: Option<String>,
    /// HubSpot: the company property holding the tax id (VAT number). HubSpot has none of its own;
    /// create one (e.g. `tax_id`) and name it here, or companies are written without it.
    #[serde(default)]
    pub tax_id_property: Option<String>,
    /// QuickBooks Online: the company (realm) id.
    #[serde(default)]
    pub realm_id: Option<String>,
    /// QuickBooks Online: the item lines are booked to (`1`, "Services" in a new company).
    #[serde(default)]
    pub item_id: Option<String>,
    /// Xero: the organisation (tenant) id.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Xero: the sales account lines are booked to (`200`, "Sales" in the default chart).
    #[serde(default)]
    pub account_code: Option<String>,
    /// Xero: the bank account (its code) the payment of a paid invoice is recorded to. Unset,
    /// payments are left to the organisation (its bank-feed reconciliation records them).
    #[serde(default)]
    pub payment_account_code: Option<String>,
    /// QuickBooks Online and Xero: the vendor's product for each SKU a line may carry (a
    /// QuickBooks item id, a Xero item code). A line whose SKU is not listed is booked to
    /// `item_id` (QuickBooks) or only to `account_code` (Xero).
    #[serde(default)]
    pub items: BTreeMap<String, String>,
    /// QuickBooks Online and Xero: the tax code for each line tax rate in basis points (`2000`
    /// = 20 %): a QuickBooks `TaxCodeRef` (`TAX`/`NON` in a US company, a code id elsewhere), a
    /// Xero `TaxType` (`OUTPUT2`, `NONE`…). When set, a line at a rate not listed is a dead
    /// letter naming the rate: guessing a tax code would put wrong figures in the books.
    #[serde(default)]
    pub tax_codes: BTreeMap<u32, String>,
    /// When to stop calling a failing destination for a while (shared by all its flows).
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// Told every OAuth2 refresh's outcome (set by deliver at start-up for credential alerts;
    /// carried here so every connector's token manager gets it without new parameters).
    #[serde(skip)]
    pub refresh_observer: Option<std::sync::Arc<dyn crate::oauth::RefreshObserver>>,
}

impl DestinationConfig {
    /// The endpoint or API base to write to: `url`, else the vendor's.
    pub fn base_url(&self) -> &str {
        self.url
            .as_ref()
            .map(HttpUrl::as_str)
            .or(self.kind.default_url())
            .unwrap_or_default()
    }

    /// The OAuth2 token endpoint.
    pub fn token_url(&self) -> &str {
        self.token_url
            .as_ref()
            .map(HttpUrl::as_str)
            .or(self.kind.default_token_url())
            .unwrap_or_default()
    }

    /// The signing secret, API key or static bearer token, once resolved.
    pub fn secret(&self) -> Option<&SecretString> {
        secrets::value(&self.secret_env)
    }

    /// The OAuth2 client id, once resolved.
    pub fn client_id(&self) -> Option<&SecretString> {
        secrets::value(&self.client_id_env)
    }

    /// The OAuth2 client secret, once resolved.
    pub fn client_secret(&self) -> Option<&SecretString> {
        secrets::value(&self.client_secret_env)
    }

    /// The first OAuth2 refresh token, once resolved.
    pub fn refresh_token(&self) -> Option<&SecretString> {
        secrets::value(&self.refresh_token_env)
    }

    /// Whether OAuth2 refresh is configured (client id, client secret and refresh token).
    pub fn refreshes(&self) -> bool {
        self.client_id_env.is_some()
            && self.client_secret_env.is_some()
            && self.refresh_token_env.is_some()
    }
}

pub(super) fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A destination's circuit breaker: after `failures` retryable failures in a row deliver stops
/// calling it for `cool_down`, then lets one trial request through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    #[serde(with = "humantime_serde", default = "default_cool_down")]
    pub cool_down: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failures: default_breaker_failures(),
            cool_down: default_cool_down(),
        }
    }
}

pub(super) fn default_breaker_failures() -> u32 {
    5
}

pub(super) fn default_cool_down() -> Duration {
    Duration::from_secs(30)
}
