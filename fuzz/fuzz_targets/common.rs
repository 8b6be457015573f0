//! What the fuzz targets share: sources built as ingest builds them, and genuine signatures the way
//! each vendor computes them, so a target can reach the parsers behind the verifiers.

#![allow(dead_code)] // each target uses part of it

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use secrecy::SecretString;
use switchyard_chassis::config::{SourceConfig, SourceKind};
use switchyard_chassis::signing::SigningKey;
use switchyard_ingest::sources::Source;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const KINDS: [SourceKind; 9] = [
    SourceKind::StandardWebhooks,
    SourceKind::Hubspot,
    SourceKind::Stripe,
    SourceKind::Shopify,
    SourceKind::Quickbooks,
    SourceKind::Xero,
    SourceKind::Mailchimp,
    SourceKind::Klaviyo,
    SourceKind::Salesforce,
];

/// A Standard Webhooks secret (`whsec_` + base64) and, for the others, a plain HMAC key.
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const KEY: &str = "fuzz-secret";
pub const ORG: &str = "00D000000000062EAA";
pub const URL: &str = "https://hub.example/v1/webhooks/s";
pub const NOW_MS: i64 = 1_795_000_000_000;

pub fn kind(index: u8) -> SourceKind {
    KINDS[usize::from(index) % KINDS.len()]
}

/// The source as ingest builds it from its configuration.
pub fn source(kind: SourceKind) -> Source {
    let mut config = SourceConfig {
        name: "s".to_owned(),
        kind,
        secret_env: vec!["X".to_owned()],
        tolerance: Duration::from_secs(300),
        secrets: Vec::new(),
        public_url: Some(URL.to_owned()),
        organization_id: Some(ORG.to_owned()),
        api: None,
    };
    let secret = if kind == SourceKind::StandardWebhooks {
        WHSEC
    } else {
        KEY
    };
    config.secrets = vec![SecretString::from(secret.to_owned())];
    Source::new(&config).expect("a fuzz source")
}

fn hmac(parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(KEY.as_bytes()).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
    }
}

/// The headers (and URL token) the vendor would send with `body`, genuinely signed.
pub fn signed(
    kind: SourceKind,
    body: &[u8],
    id: &str,
    topic: &str,
) -> (Method, HeaderMap, Option<String>) {
    let mut headers = HeaderMap::new();
    let seconds = NOW_MS / 1000;
    let json = "application/json";
    match kind {
        SourceKind::StandardWebhooks => {
            let key =
                SigningKey::from_secret(&SecretString::from(WHSEC.to_owned())).expect("whsec");
            for (name, value) in key.headers(id, seconds, body) {
                insert(&mut headers, name, &value);
            }
            insert(&mut headers, "content-type", json);
        }
        SourceKind::Hubspot => {
            let ts = NOW_MS.to_string();
            let sig = B64.encode(hmac(&[b"POST", URL.as_bytes(), body, ts.as_bytes()]));
            insert(&mut headers, "x-hubspot-signature-v3", &sig);
            insert(&mut headers, "x-hubspot-request-timestamp", &ts);
            insert(&mut headers, "content-type", json);
        }
        SourceKind::Stripe => {
            let t = seconds.to_string();
            let sig = hex::encode(hmac(&[t.as_bytes(), b".", body]));
            insert(&mut headers, "stripe-signature", &format!("t={t},v1={sig}"));
            insert(&mut headers, "content-type", json);
        }
        SourceKind::Shopify => {
            insert(
                &mut headers,
                "x-shopify-hmac-sha256",
                &B64.encode(hmac(&[body])),
            );
            insert(&mut headers, "x-shopify-webhook-id", id);
            insert(&mut headers, "x-shopify-topic", topic);
            insert(&mut headers, "content-type", json);
        }
        SourceKind::Quickbooks => {
            insert(&mut headers, "intuit-signature", &B64.encode(hmac(&[body])));
            insert(&mut headers, "content-type", json);
        }
        SourceKind::Xero => {
            insert(&mut headers, "x-xero-signature", &B64.encode(hmac(&[body])));
            insert(&mut headers, "content-type", json);
        }
        SourceKind::Klaviyo => {
            let ts = NOW_MS.to_string();
            insert(
                &mut headers,
                "klaviyo-signature",
                &hex::encode(hmac(&[body, ts.as_bytes()])),
            );
            insert(&mut headers, "klaviyo-timestamp", &ts);
            insert(&mut headers, "content-type", json);
        }
        SourceKind::Mailchimp => {
            insert(
                &mut headers,
                "content-type",
                "application/x-www-form-urlencoded",
            );
            return (Method::POST, headers, Some(KEY.to_owned()));
        }
        SourceKind::Salesforce => {
            insert(&mut headers, "content-type", "text/xml; charset=utf-8");
        }
    }
    (Method::POST, headers, None)
}
