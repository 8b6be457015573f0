//! Each pipeline service's own settings: ingest, transform, dedupe and deliver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Ingest: the webhook listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    /// Bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// A header section larger than this (names and values as sent) is refused with 431 before
    /// the body is read.
    pub max_header_bytes: usize,
    /// When any stage behind ingest (transform, dedupe, a flow's deliver consumer) lags this many
    /// messages behind, new webhooks get 429 with `Retry-After` so throughput holds instead of
    /// collapsing. 0 turns the check off.
    pub max_lag: u64,
    /// How long accepted event ids are remembered in PostgreSQL, beyond JetStream's window.
    #[serde(with = "humantime_serde")]
    pub dedupe_retention: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9101)),
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_lag: 100_000,
            dedupe_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Transform: mappings and data contracts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    pub ops_listen: SocketAddr,
    /// A directory of the user's own mapping files (`*.yaml`); a file whose `name` matches a
    /// built-in mapping replaces it.
    pub mappings_dir: Option<PathBuf>,
    /// A directory of the user's own contract files (`<object>.v<N>.yaml`).
    pub contracts_dir: Option<PathBuf>,
}

impl Default for TransformConfig {
    fn default() -> Self {
        Self {
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9102)),
            mappings_dir: None,
            contracts_dir: None,
        }
    }
}

/// Dedupe: identity resolution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupeConfig {
    pub ops_listen: SocketAddr,
    /// ISO 3166-1 alpha-2 region assumed for phone numbers written without a country code.
    pub default_region: String,
}

impl Default for DedupeConfig {
    fn default() -> Self {
        Self {
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9103)),
            default_region: "US".to_owned(),
        }
    }
}

/// Deliver: outbound calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverConfig {
    pub ops_listen: SocketAddr,
}

impl Default for DeliverConfig {
    fn default() -> Self {
        Self {
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9104)),
        }
    }
}
