//! Sources: the systems that send webhooks to ingest, and the APIs transform reads from.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::secrets::{self, SecretRef};
use super::*;

/// Kinds of webhook senders ingest understands; each verifies as its vendor documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    StandardWebhooks,
    Hubspot,
    Stripe,
    Shopify,
    Quickbooks,
    Xero,
    Mailchimp,
    Klaviyo,
    Salesforce,
}

impl SourceKind {
    /// The name used in config files, subjects and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::Hubspot => "hubspot",
            Self::Stripe => "stripe",
            Self::Shopify => "shopify",
            Self::Quickbooks => "quickbooks",
            Self::Xero => "xero",
            Self::Mailchimp => "mailchimp",
            Self::Klaviyo => "klaviyo",
            Self::Salesforce => "salesforce",
        }
    }

    /// Whether the kind needs a signing secret (Salesforce outbound messages carry none).
    pub fn needs_secret(self) -> bool {
        !matches!(self, Self::Salesforce)
    }

    /// Whether the kind's webhooks carry ids, not records, so transform reads the record from the
    /// vendor's API (`sources[].api`) before mapping it.
    pub fn is_thin(self) -> bool {
        matches!(self, Self::Hubspot | Self::Quickbooks | Self::Xero)
    }

    /// The vendor's API host, for kinds with thin events.
    pub fn default_api_base_url(self) -> Option<&'static str> {
        match self {
            Self::Hubspot => Some("https://api.hubapi.com"),
            Self::Quickbooks => Some("https://quickbooks.api.intuit.com"),
            Self::Xero => Some("https://api.xero.com"),
            _ => None,
        }
    }

    /// The vendor's OAuth2 token endpoint, for kinds with thin events.
    pub fn default_token_url(self) -> Option<&'static str> {
        match self {
            Self::Hubspot => Some("https://api.hubapi.com/oauth/v3/token"),
            Self::Quickbooks => Some("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
            Self::Xero => Some("https://identity.xero.com/connect/token"),
            _ => None,
        }
    }

    /// Reads per second that stay inside the vendor's published quota: HubSpot 100 per 10 s
    /// (private and public apps), QuickBooks Online 500 per minute per company, Xero 60 per
    /// minute per organisation.
    pub fn default_api_rate_per_second(self) -> Option<u32> {
        match self {
            Self::Hubspot => Some(10),
            Self::Quickbooks => Some(8),
            Self::Xero => Some(1),
            _ => None,
        }
    }
}

/// A system that sends webhooks to ingest at `/v1/webhooks/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    /// Names of environment variables that hold the signing secrets (for Mailchimp: the URL
    /// token). Two may be live at once so a secret can be rotated without downtime.
    #[serde(default)]
    pub secret_env: Vec<SecretRef>,
    /// HubSpot: the URL HubSpot calls, as configured in the app (part of the v3 signature).
    /// Without it the URL is rebuilt from `X-Forwarded-Proto`/`Host` and the request path.
    #[serde(default)]
    pub public_url: Option<HttpUrl>,
    /// Salesforce: the 18-character id of the organisation whose outbound messages are accepted.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// How far a signed timestamp may be from now.
    #[serde(with = "humantime_serde", default = "default_tolerance")]
    pub tolerance: Duration,
    /// HubSpot, QuickBooks and Xero: how transform reads the records their thin events point at.
    #[serde(default)]
    pub api: Option<SourceApiConfig>,
}

/// A source's API, which transform reads records from (thin events carry only ids). Either a
/// static bearer token (`access_token_env`, e.g. a HubSpot private-app token) or OAuth2 with a
/// refresh token (`client_id_env`, `client_secret_env`, `refresh_token_env`), or both: the static
/// token is used until the API refuses it, then refreshed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceApiConfig {
    /// The API host; the vendor's real one by default (see [`SourceKind::default_api_base_url`]).
    #[serde(default)]
    pub base_url: Option<HttpUrl>,
    /// The OAuth2 token endpoint; the vendor's by default.
    #[serde(default)]
    pub token_url: Option<HttpUrl>,
    /// Names of the environment variables holding the OAuth2 client id, client secret and the
    /// first refresh token (a newer, rotated one is kept in transform's database and wins).
    #[serde(default)]
    pub client_id_env: Option<SecretRef>,
    #[serde(default)]
    pub client_secret_env: Option<SecretRef>,
    #[serde(default)]
    pub refresh_token_env: Option<SecretRef>,
    /// Name of the environment variable holding a bearer token to use as is.
    #[serde(default)]
    pub access_token_env: Option<SecretRef>,
    /// Reads per second (a token bucket); defaults match the vendor's published quota.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Per request, token refreshes included.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
}

impl SourceApiConfig {
    /// The API host to read from.
    pub fn base_url(&self, kind: SourceKind) -> &str {
        self.base_url
            .as_ref()
            .map(HttpUrl::as_str)
            .or(kind.default_api_base_url())
            .unwrap_or_default()
    }

    /// The OAuth2 token endpoint.
    pub fn token_url(&self, kind: SourceKind) -> &str {
        self.token_url
            .as_ref()
            .map(HttpUrl::as_str)
            .or(kind.default_token_url())
            .unwrap_or_default()
    }

    /// Reads per second.
    pub fn rate_per_second(&self, kind: SourceKind) -> u32 {
        self.rate_per_second
            .or(kind.default_api_rate_per_second())
            .unwrap_or(1)
    }

    /// Whether OAuth2 refresh is configured (client id, client secret and refresh token).
    pub fn refreshes(&self) -> bool {
        self.client_id_env.is_some()
            && self.client_secret_env.is_some()
            && self.refresh_token_env.is_some()
    }
}

pub(super) fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

impl SourceConfig {
    /// The webhook secrets, once resolved (several while one is rotated).
    pub fn secrets(&self) -> Vec<&SecretString> {
        self.secret_env
            .iter()
            .filter_map(SecretRef::value)
            .collect()
    }
}

impl SourceApiConfig {
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

    /// The static bearer token, once resolved.
    pub fn access_token(&self) -> Option<&SecretString> {
        secrets::value(&self.access_token_env)
    }
}
