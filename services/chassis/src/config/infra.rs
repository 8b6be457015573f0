//! The infrastructure every service stands on: NATS JetStream, PostgreSQL, logs and traces.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::secrets::{self, SecretRef};

/// NATS JetStream connection and stream settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Overridden by `NATS_URL`.
    pub url: String,
    /// How long a publisher waits for JetStream's acknowledgement before giving up.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// JetStream's duplicate window for `Nats-Msg-Id`.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// How long events stay in the RAW, CANONICAL, GOLDEN and OPS streams.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long dead letters stay in the DLQ stream.
    #[serde(with = "humantime_serde")]
    pub dlq_retention: Duration,
    /// Stream replicas (3 on a cluster).
    pub replicas: usize,
    /// `file` (default) or `memory`.
    pub storage: StorageKind,
    /// User name for user/password authentication; overridden by `NATS_USER`. Each service should
    /// have its own (see `bus::permissions`), so deployments set it per service in the environment.
    pub user: Option<String>,
    /// The environment variable holding the password (`NATS_PASSWORD` always wins); never the
    /// password itself.
    pub password_env: Option<SecretRef>,
    /// A NATS `.creds` file (JWT + NKey seed), for servers run in decentralised (operator) mode.
    pub creds_file: Option<PathBuf>,
    /// TLS towards the server.
    pub tls: NatsTlsConfig,
}

impl NatsConfig {
    /// The password, resolved from the environment at load time.
    pub fn password(&self) -> Option<&SecretString> {
        secrets::value(&self.password_env)
    }
}

/// TLS settings for the NATS connection. A `tls://` URL or `required: true` insists on TLS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsTlsConfig {
    /// PEM bundle of the CAs that may sign the server's certificate (in addition to the system's).
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS; needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Refuse to talk to a server that does not offer TLS.
    pub required: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            publish_timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            retention: Duration::from_secs(7 * 24 * 3600),
            dlq_retention: Duration::from_secs(30 * 24 * 3600),
            replicas: 1,
            storage: StorageKind::File,
            user: None,
            password_env: None,
            creds_file: None,
            tls: NatsTlsConfig::default(),
        }
    }
}

/// JetStream storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    File,
    Memory,
}

/// PostgreSQL settings. The URL may hold a password, so it is only ever taken from
/// `DATABASE_URL` when it does; the file may name a password-less URL for local use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sslmode=require` in it turns TLS on (see `ca_file`); `disable`/`prefer` leave it off.
    #[serde(deserialize_with = "de_secret")]
    pub url: SecretString,
    pub pool_size: std::num::NonZeroUsize,
    /// With `sslmode=require`: the CA that signed the server's certificate. Then the certificate
    /// and host name are verified; without it the connection is encrypted but the server is not
    /// authenticated (libpq's `require`).
    pub ca_file: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("host=127.0.0.1 user=postgres dbname=switchyard"),
            pool_size: std::num::NonZeroUsize::new(16).unwrap_or(std::num::NonZeroUsize::MIN),
            ca_file: None,
        }
    }
}

pub(super) fn de_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

/// Log and trace settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `pretty` for people, `json` for log pipelines.
    pub log_format: LogFormat,
    /// An `EnvFilter` directive; overridden by `RUST_LOG`.
    pub log_filter: String,
    /// OTLP gRPC endpoint; set from `OTEL_EXPORTER_OTLP_ENDPOINT`. No export when unset.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}
