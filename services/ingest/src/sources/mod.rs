//! Source kinds: how each vendor signs its webhooks, what a genuine request looks like, and how
//! its payload splits into one event per change. Every check runs on the raw body, compares in
//! constant time, and accepts any of the source's live secrets (so secrets rotate without downtime).

mod json_kinds;
mod mailchimp;
mod salesforce;

pub use salesforce::ACK as SALESFORCE_ACK;

use axum::http::{HeaderMap, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;
use switchyard_chassis::config::{SourceConfig, SourceKind};
use switchyard_chassis::signing::{SignatureError, SigningKey};

use crate::IngestError;

type HmacSha256 = hmac::Hmac<Sha256>;

/// A request as the vendor sent it.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub method: &'a Method,
    /// The full URL the vendor called (HubSpot signs it).
    pub url: String,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The token segment after the source name (`/v1/webhooks/{source}/{token}`), if any.
    pub path_token: Option<&'a str>,
    /// Milliseconds since the Unix epoch.
    pub now_ms: i64,
}

impl Incoming<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One change, ready for the RAW stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The vendor's id for this event (stable across the vendor's retries).
    pub vendor_id: String,
    /// Dotted, lower-case, e.g. `contact.creation`, `customers.create`.
    pub event_type: String,
    /// The event alone (one element of a batch), as JSON.
    pub body: Vec<u8>,
}

/// How to answer a request whose events were all stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// JSON with the event ids.
    Json,
    /// 200 with an empty body (Xero expects exactly this, also for its handshake).
    Empty,
    /// The SOAP `Ack` envelope, without which Salesforce retries for 24 hours.
    SoapAck,
}

/// What a verified request holds.
#[derive(Debug)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub reply: Reply,
}

/// A configured source with its decoded secrets.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    /// Raw secret bytes (vendor HMAC keys, or the Mailchimp URL token).
    secrets: Vec<SecretString>,
    /// Standard Webhooks keys (`whsec_` decoded).
    whsec: Vec<SigningKey>,
    tolerance_ms: i64,
    public_url: Option<String>,
    organization_id: Option<String>,
}

impl Source {
    /// Builds the source from its configuration (secrets already resolved).
    pub fn new(config: &SourceConfig) -> Result<Self, String> {
        let whsec = if config.kind == SourceKind::StandardWebhooks {
            config
                .secrets()
                .into_iter()
                .map(SigningKey::from_secret)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sources: {}: {e}", config.name))?
        } else {
            Vec::new()
        };
        Ok(Self {
            name: config.name.clone(),
            kind: config.kind,
            secrets: config.secrets().into_iter().cloned().collect(),
            whsec,
            tolerance_ms: i64::try_from(config.tolerance.as_millis()).unwrap_or(300_000),
            public_url: config.public_url.as_ref().map(|u| u.as_str().to_owned()),
            organization_id: config.organization_id.clone(),
        })
    }

    /// Verifies the request and splits it into events.
    pub fn accept(&self, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
        match self.kind {
            SourceKind::Mailchimp => return mailchimp::accept(self, request),
            SourceKind::Salesforce => return salesforce::accept(self, request),
            _ => {}
        }
        if request.method != Method::POST {
            return Err(IngestError::MethodNotAllowed);
        }
        require_content_type(request, &["application/json", "+json"])?;
        json_kinds::accept(self, request)
    }

    fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.secrets.iter().map(|s| s.expose_secret().as_bytes())
    }

    /// True when `candidate` is the HMAC-SHA256 of `parts` under any live secret.
    fn hmac_matches(&self, parts: &[&[u8]], candidate: &[u8]) -> bool {
        self.keys().any(|key| {
            let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
                return false;
            };
            for part in parts {
                mac.update(part);
            }
            mac.verify_slice(candidate).is_ok()
        })
    }

    /// Checks a base64 HMAC header.
    fn check_b64(
        &self,
        header: Option<&str>,
        name: &'static str,
        parts: &[&[u8]],
    ) -> Result<(), SignatureError> {
        let value = header.ok_or(SignatureError::MissingHeader(name))?;
        let candidate = B64
            .decode(value.trim())
            .map_err(|_| SignatureError::NoMatch)?;
        if self.hmac_matches(parts, &candidate) {
            Ok(())
        } else {
            Err(SignatureError::NoMatch)
        }
    }

    /// Checks a timestamp (milliseconds) against the tolerance, in both directions.
    fn check_time(&self, at_ms: i64, now_ms: i64) -> Result<(), SignatureError> {
        if (now_ms - at_ms).abs() > self.tolerance_ms {
            Err(SignatureError::StaleTimestamp)
        } else {
            Ok(())
        }
    }
}

/// Refuses a request whose content type is not one of `accepted` (415).
fn require_content_type(request: &Incoming<'_>, accepted: &[&str]) -> Result<(), IngestError> {
    let content_type = request
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let ok = accepted.iter().any(|a| {
        if let Some(suffix) = a.strip_prefix('+') {
            media.ends_with(&format!("+{suffix}"))
        } else {
            media == *a
        }
    });
    if ok {
        Ok(())
    } else {
        Err(IngestError::UnsupportedMediaType(if media.is_empty() {
            "none".to_owned()
        } else {
            media.to_owned()
        }))
    }
}

/// A vendor's event type as a dotted lower-case name (`customers/create` → `customers.create`).
fn dotted(raw: &str) -> String {
    let lowered = raw.trim().to_ascii_lowercase().replace(['/', ':'], ".");
    if lowered.is_empty() {
        "unknown".to_owned()
    } else {
        lowered
    }
}

#[cfg(test)]
mod tests;
