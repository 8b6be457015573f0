//! One typed configuration, loaded in layers: defaults → YAML file → environment → validation.
//!
//! Library code never reads the process environment: callers pass an [`Env`] snapshot, so tests
//! can load a config with their own secrets and the binaries pass `std::env::vars()`.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Environment variables the loader looks at (a snapshot, see [`Env::from_process`]).
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The current process environment; call this only at the edges (main, tests).
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// An environment made of the given pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config is not valid YAML for Switchyard: {0}")]
    Parse(String),
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

/// The whole Switchyard configuration (one file for all five services).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Prefix for every stream, subject and consumer name, so tenants and tests never collide.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub nats: NatsConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub transform: TransformConfig,
    #[serde(default)]
    pub dedupe: DedupeConfig,
    #[serde(default)]
    pub deliver: DeliverConfig,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    #[serde(default)]
    pub flows: Vec<FlowConfig>,
}

fn default_prefix() -> String {
    "switchyard".to_owned()
}

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
    /// Name of the environment variable holding the password (`NATS_PASSWORD` always wins).
    pub password_env: Option<String>,
    /// The password, resolved from the environment at load time; never in the file.
    #[serde(skip)]
    pub password: Option<SecretString>,
    /// A NATS `.creds` file (JWT + NKey seed), for servers run in decentralised (operator) mode.
    pub creds_file: Option<PathBuf>,
    /// TLS towards the server.
    pub tls: NatsTlsConfig,
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
            password: None,
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
    pub pool_size: usize,
    /// With `sslmode=require`: the CA that signed the server's certificate. Then the certificate
    /// and host name are verified; without it the connection is encrypted but the server is not
    /// authenticated (libpq's `require`).
    pub ca_file: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("host=127.0.0.1 user=postgres dbname=switchyard"),
            pool_size: 16,
            ca_file: None,
        }
    }
}

fn de_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
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

/// Monitor: health, and the admin API behind the `switchyard` CLI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    pub ops_listen: SocketAddr,
    /// The admin gRPC API.
    pub admin_listen: SocketAddr,
    /// The HTML dashboard (same tokens as the admin API); not served when unset.
    pub dashboard_listen: Option<SocketAddr>,
    /// Environment variable holding the bearer token for read-only admin access.
    pub read_token_env: Option<String>,
    /// Environment variable holding the bearer token for operators (replay, and every read).
    pub operator_token_env: Option<String>,
    #[serde(skip)]
    pub read_token: Option<SecretString>,
    #[serde(skip)]
    pub operator_token: Option<SecretString>,
    /// Volume buckets, baselines, alert rules and the daily report.
    pub alerts: AlertsConfig,
    /// How long flow and source volume buckets are kept. Must exceed the hour-of-week
    /// baseline's look-back (8 weeks) and the trailing window, or baselines lose their history.
    #[serde(with = "humantime_serde")]
    pub bucket_retention: Duration,
    /// How long the ids of counted delivery reports are remembered (`counted_reports`, what
    /// keeps a redelivered report from being counted twice). Must exceed how long a report can
    /// come back: JetStream's duplicate window and the OPS stream's retention (`nats.retention`),
    /// since a report still in the stream can be delivered again (redelivery after a lost ack, a
    /// recreated consumer reading the stream anew). Unset: twice that, at least 14 days
    /// ([`MonitorConfig::report_ids_kept`]), so raising `nats.retention` never breaks it.
    #[serde(default, with = "humantime_serde")]
    pub report_retention: Option<Duration>,
    /// How often old buckets and report ids are pruned.
    #[serde(with = "humantime_serde")]
    pub prune_every: Duration,
    /// How often every stage's consumer lag and the dead letters per flow/source are read from
    /// JetStream for `/metrics`.
    #[serde(with = "humantime_serde")]
    pub backlog_every: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9105)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9190)),
            dashboard_listen: None,
            read_token_env: None,
            operator_token_env: None,
            read_token: None,
            operator_token: None,
            alerts: AlertsConfig::default(),
            bucket_retention: Duration::from_secs(90 * 24 * 3600),
            report_retention: None,
            prune_every: Duration::from_secs(3600),
            backlog_every: Duration::from_secs(15),
        }
    }
}

impl MonitorConfig {
    /// The hour-of-week baseline looks back this far (monitor's `rules::MAX_WEEKS`).
    const BASELINE_LOOK_BACK: Duration = Duration::from_secs(8 * 7 * 24 * 3600);

    /// How long counted report ids are kept: `report_retention`, else twice the time a report
    /// can come back (the OPS stream's retention, the duplicate window), at least 14 days.
    pub fn report_ids_kept(&self, nats: &NatsConfig) -> Duration {
        self.report_retention.unwrap_or_else(|| {
            (nats.retention.max(nats.duplicate_window) * 2).max(Duration::from_secs(14 * 24 * 3600))
        })
    }

    fn retention_problems(&self, nats: &NatsConfig) -> Vec<String> {
        let mut problems = Vec::new();
        let trailing = self
            .alerts
            .bucket
            .saturating_mul(self.alerts.trailing_buckets.saturating_add(1));
        let needed = Self::BASELINE_LOOK_BACK.max(trailing) + self.alerts.bucket;
        if self.bucket_retention <= needed {
            problems.push(format!(
                "monitor.bucket_retention: must exceed the baselines' look-back of {} (8 weeks of hour-of-week history, or the trailing buckets)",
                humantime_serde::re::humantime::format_duration(needed)
            ));
        }
        let horizon = nats.retention.max(nats.duplicate_window);
        if self.report_retention.is_some_and(|kept| kept <= horizon) {
            problems.push(format!(
                "monitor.report_retention: must exceed {} (nats.retention and nats.duplicate_window): a report still in the OPS stream can be delivered again",
                humantime_serde::re::humantime::format_duration(horizon)
            ));
        }
        if self.backlog_every.is_zero() {
            problems.push("monitor.backlog_every: must be greater than zero".to_owned());
        }
        if self.prune_every.is_zero() {
            problems.push("monitor.prune_every: must be greater than zero".to_owned());
        }
        problems
    }
}

/// Monitor's alerting: how volumes are bucketed and compared with their baselines, the rules'
/// thresholds, and the Slack-compatible webhook that gets alerts and the daily report.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// How often the rules are evaluated.
    #[serde(with = "humantime_serde")]
    pub evaluate_every: Duration,
    /// Width of the volume buckets baselines compare: `1h` deployed (then the same hour of past
    /// weeks is the baseline once two weeks are known); seconds in tests.
    #[serde(with = "humantime_serde")]
    pub bucket: Duration,
    /// Buckets averaged for the baseline while fewer than two past weeks are known.
    pub trailing_buckets: u32,
    /// How far a volume may stray from its baseline (0.2 = 20 %); also how many points an error
    /// rate may rise above the baseline's.
    pub deviation: f64,
    /// Baselines under this many events per bucket raise no volume or error-rate alert (too
    /// little traffic for a share to mean anything).
    pub min_volume: f64,
    /// Dead letters per bucket above which a flow's dead letters count as growing.
    pub dlq_growth: u64,
    /// How long a schema-drift alert stays open after the last notice for its field.
    #[serde(with = "humantime_serde")]
    pub drift_quiet: Duration,
    /// Slack-compatible incoming webhook for alerts and the daily report; none sent when unset.
    pub webhook_url: Option<String>,
    /// Environment variable holding the webhook URL instead (a Slack incoming-webhook URL is a
    /// credential in itself, so deployments keep it in a Secret); wins over `webhook_url`.
    pub webhook_url_env: Option<String>,
    /// Environment variable holding the `whsec_…` secret the webhook is signed with.
    pub webhook_secret_env: Option<String>,
    #[serde(skip)]
    pub webhook_secret: Option<SecretString>,
    /// Per webhook request.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// Time of day (UTC, `HH:MM`) the daily report is sent.
    pub report_at: String,
    /// Instead of daily at `report_at`: a report every this long, covering that long (tests).
    #[serde(with = "humantime_serde::option")]
    pub report_every: Option<Duration>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            evaluate_every: Duration::from_secs(60),
            bucket: Duration::from_secs(3600),
            trailing_buckets: 24,
            deviation: 0.2,
            min_volume: 10.0,
            dlq_growth: 1,
            drift_quiet: Duration::from_secs(24 * 3600),
            webhook_url: None,
            webhook_url_env: None,
            webhook_secret_env: None,
            webhook_secret: None,
            webhook_timeout: Duration::from_secs(10),
            report_at: "08:00".to_owned(),
            report_every: None,
        }
    }
}

impl AlertsConfig {
    /// `report_at` as seconds after midnight UTC.
    pub fn report_at_seconds(&self) -> Option<u64> {
        let (hours, minutes) = self.report_at.split_once(':')?;
        let (hours, minutes): (u64, u64) = (hours.parse().ok()?, minutes.parse().ok()?);
        (hours < 24 && minutes < 60).then_some(hours * 3600 + minutes * 60)
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.evaluate_every.is_zero() {
            problems.push("monitor.alerts.evaluate_every: must be greater than zero".to_owned());
        }
        if self.bucket < Duration::from_secs(1) || self.bucket.subsec_nanos() != 0 {
            problems.push("monitor.alerts.bucket: must be whole seconds, at least 1s".to_owned());
        }
        if self.trailing_buckets == 0 || self.trailing_buckets > 10_000 {
            problems
                .push("monitor.alerts.trailing_buckets: must be between 1 and 10000".to_owned());
        }
        if !(self.deviation.is_finite() && self.deviation > 0.0) {
            problems.push("monitor.alerts.deviation: must be a share above 0, e.g. 0.2".to_owned());
        }
        if !(self.min_volume.is_finite() && self.min_volume >= 0.0) {
            problems.push("monitor.alerts.min_volume: must be a number of 0 or more".to_owned());
        }
        match &self.webhook_url {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => problems
                .push("monitor.alerts.webhook_url: must start with http:// or https://".to_owned()),
            Some(_) if self.webhook_secret_env.is_none() => problems.push(
                "monitor.alerts.webhook_secret_env: name the variable holding the webhook's signing secret"
                    .to_owned(),
            ),
            _ => {}
        }
        if self.webhook_timeout.is_zero() {
            problems.push("monitor.alerts.webhook_timeout: must be greater than zero".to_owned());
        }
        if self.report_at_seconds().is_none() {
            problems.push(format!(
                "monitor.alerts.report_at: {:?} must be a UTC time of day such as \"08:00\"",
                self.report_at
            ));
        }
        // A report adds up whole buckets, so its period must hold a whole number of them.
        if self.report_every.is_some_and(|every| {
            every < self.bucket
                || every.subsec_nanos() != 0
                || every.as_secs() % self.bucket.as_secs().max(1) != 0
        }) {
            problems.push(
                "monitor.alerts.report_every: must be a whole multiple of monitor.alerts.bucket"
                    .to_owned(),
            );
        }
        problems
    }
}

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
    pub secret_env: Vec<String>,
    /// HubSpot: the URL HubSpot calls, as configured in the app (part of the v3 signature).
    /// Without it the URL is rebuilt from `X-Forwarded-Proto`/`Host` and the request path.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Salesforce: the 18-character id of the organisation whose outbound messages are accepted.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// How far a signed timestamp may be from now.
    #[serde(with = "humantime_serde", default = "default_tolerance")]
    pub tolerance: Duration,
    /// HubSpot, QuickBooks and Xero: how transform reads the records their thin events point at.
    #[serde(default)]
    pub api: Option<SourceApiConfig>,
    /// The secrets, resolved from the environment at load time.
    #[serde(skip)]
    pub secrets: Vec<SecretString>,
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
    pub base_url: Option<String>,
    /// The OAuth2 token endpoint; the vendor's by default.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Names of the environment variables holding the OAuth2 client id, client secret and the
    /// first refresh token (a newer, rotated one is kept in transform's database and wins).
    #[serde(default)]
    pub client_id_env: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub refresh_token_env: Option<String>,
    /// Name of the environment variable holding a bearer token to use as is.
    #[serde(default)]
    pub access_token_env: Option<String>,
    /// Reads per second (a token bucket); defaults match the vendor's published quota.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Per request, token refreshes included.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// The credentials, resolved from the environment at load time (transform only).
    #[serde(skip)]
    pub client_id: Option<SecretString>,
    #[serde(skip)]
    pub client_secret: Option<SecretString>,
    #[serde(skip)]
    pub refresh_token: Option<SecretString>,
    #[serde(skip)]
    pub access_token: Option<SecretString>,
}

impl SourceApiConfig {
    /// The API host to read from.
    pub fn base_url(&self, kind: SourceKind) -> &str {
        self.base_url
            .as_deref()
            .or(kind.default_api_base_url())
            .unwrap_or_default()
    }

    /// The OAuth2 token endpoint.
    pub fn token_url(&self, kind: SourceKind) -> &str {
        self.token_url
            .as_deref()
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

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

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
    pub url: String,
    /// Environment variable holding the signing secret (`whsec_…`), the API key, or a static
    /// bearer token.
    #[serde(default)]
    pub secret_env: Option<String>,
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
    pub token_url: Option<String>,
    #[serde(default)]
    pub client_id_env: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub refresh_token_env: Option<String>,
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
    #[serde(skip)]
    pub secret: Option<SecretString>,
    #[serde(skip)]
    pub client_id: Option<SecretString>,
    #[serde(skip)]
    pub client_secret: Option<SecretString>,
    #[serde(skip)]
    pub refresh_token: Option<SecretString>,
}

impl DestinationConfig {
    /// The endpoint or API base to write to: `url`, else the vendor's.
    pub fn base_url(&self) -> &str {
        if self.url.is_empty() {
            self.kind.default_url().unwrap_or_default()
        } else {
            &self.url
        }
    }

    /// The OAuth2 token endpoint.
    pub fn token_url(&self) -> &str {
        self.token_url
            .as_deref()
            .or(self.kind.default_token_url())
            .unwrap_or_default()
    }

    /// Whether OAuth2 refresh is configured (client id, client secret and refresh token).
    pub fn refreshes(&self) -> bool {
        self.client_id_env.is_some()
            && self.client_secret_env.is_some()
            && self.refresh_token_env.is_some()
    }
}

fn default_timeout() -> Duration {
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

fn default_breaker_failures() -> u32 {
    5
}

fn default_cool_down() -> Duration {
    Duration::from_secs(30)
}

/// Canonical object types a flow can be triggered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Lead,
    Contact,
    Company,
    Product,
    Deal,
    Order,
    Invoice,
}

impl ObjectType {
    /// The name used in subjects, contracts and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Contact => "contact",
            Self::Company => "company",
            Self::Product => "product",
            Self::Deal => "deal",
            Self::Order => "order",
            Self::Invoice => "invoice",
        }
    }

    /// The object's canonical fields, as its contract names them: what a flow's `fields` may
    /// list.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Lead => &[
                "email",
                "phone",
                "first_name",
                "last_name",
                "company_name",
                "lead_source",
                "status",
                "marketing_consent",
                "consent_source",
            ],
            Self::Contact => &[
                "email",
                "phone",
                "first_name",
                "last_name",
                "company_name",
                "job_title",
                "lifecycle_stage",
                "marketing_consent",
                "consent_source",
                "country",
            ],
            Self::Company => &["name", "domain", "tax_id", "industry", "country"],
            Self::Product => &[
                "sku",
                "name",
                "description",
                "unit_price",
                "active",
                "tax_rate_bp",
            ],
            Self::Deal => &[
                "name",
                "stage",
                "amount",
                "close_date",
                "line_items",
                "contact_id",
                "company_id",
            ],
            Self::Order => &[
                "order_number",
                "status",
                "total",
                "subtotal",
                "tax",
                "placed_at",
                "line_items",
                "customer_id",
            ],
            Self::Invoice => &[
                "invoice_number",
                "status",
                "total",
                "amount_paid",
                "issued_at",
                "due_at",
                "subtotal",
                "tax",
                "line_items",
                "customer_id",
                "deal_id",
            ],
        }
    }
}

/// Which golden-record changes trigger a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Created,
    Updated,
}

/// "When this kind of golden-record change happens, do this in that destination."
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    pub name: String,
    pub object: ObjectType,
    #[serde(default = "default_triggers")]
    pub on: Vec<Trigger>,
    pub destination: String,
    /// Attempts before a change is dead-lettered.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Delay before each retry; the last entry repeats. Jitter is added.
    #[serde(with = "humantime_serde::option", default)]
    pub retry_base: Option<Duration>,
    #[serde(with = "humantime_serde::option", default)]
    pub retry_max: Option<Duration>,
    /// Only changes whose golden record has these values go through, e.g.
    /// `{ lifecycle_stage: lead, marketing_consent: true }`; others are skipped (and counted).
    #[serde(default)]
    pub when: BTreeMap<String, serde_json::Value>,
    /// Minutes of manual re-keying one delivered record saves (from `switchyard audit`), so
    /// monitor can report realised value.
    #[serde(default, alias = "minutes_saved_per_event")]
    pub minutes_per_record: Option<f64>,
    /// Loaded hourly cost of that manual work, for the same report.
    #[serde(default)]
    pub hourly_cost: Option<f64>,
    /// Monitor alerts when the flow's last delivery is older than this (`30m`).
    #[serde(with = "humantime_serde::option", default)]
    pub freshness_sla: Option<Duration>,
    /// Data minimisation: when given, only these canonical fields (contract names, e.g. `email`,
    /// `first_name`, `country`) reach the destination; every other field is left out of the body.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Klaviyo: the list profiles with marketing consent are subscribed to; for invoices, the
    /// (post-sale nurture) list the paying customer's profile is added to.
    #[serde(default)]
    pub list_id: Option<String>,
    /// HubSpot, invoices: the deal stage the invoice's deal is moved to (default `closedwon`).
    #[serde(default)]
    pub deal_stage: Option<String>,
    /// Mailchimp, invoices: the tag the paying customer's audience member gets (e.g.
    /// `customer-paid`), for a post-sale nurture journey that starts on it.
    #[serde(default)]
    pub tag: Option<String>,
    /// A change older than this (since ingest received its cause) is dead-lettered instead of
    /// tried again: it bounds how long any change can keep retrying.
    #[serde(with = "humantime_serde", default = "default_max_age")]
    pub max_age: Duration,
}

fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_triggers() -> Vec<Trigger> {
    vec![Trigger::Created, Trigger::Updated]
}

fn default_attempts() -> u32 {
    8
}

/// Which secrets a process needs. Each service resolves only its own, so a deployed transform
/// never holds the webhook secrets, and only deliver holds the destinations' credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: `switchyard up`, `check-config`, tests.
    All,
    Ingest,
    Transform,
    Dedupe,
    Deliver,
    Monitor,
}

impl Scope {
    fn sources(self) -> bool {
        matches!(self, Self::All | Self::Ingest)
    }
    fn destinations(self) -> bool {
        matches!(self, Self::All | Self::Deliver)
    }
    fn admin_tokens(self) -> bool {
        matches!(self, Self::All | Self::Monitor)
    }
    /// The sources' API credentials: transform reads thin events' records with them.
    fn source_apis(self) -> bool {
        matches!(self, Self::All | Self::Transform)
    }
}

impl Config {
    /// Loads the file at `path`, then applies the environment and validates.
    pub fn load(path: &Path, env: &Env) -> Result<Self, ConfigError> {
        Self::load_for(path, env, Scope::All)
    }

    /// Like [`Config::load`], resolving only the secrets `scope` needs.
    pub fn load_for(path: &Path, env: &Env, scope: Scope) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_for(&text, env, scope)
    }

    /// Parses YAML text, then applies the environment and validates.
    pub fn from_yaml(text: &str, env: &Env) -> Result<Self, ConfigError> {
        Self::from_yaml_for(text, env, Scope::All)
    }

    /// Like [`Config::from_yaml`], resolving only the secrets `scope` needs.
    pub fn from_yaml_for(text: &str, env: &Env, scope: Scope) -> Result<Self, ConfigError> {
        let mut config: Config =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.apply_env(env, scope)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &Env, scope: Scope) -> Result<(), ConfigError> {
        if let Some(url) = env.get("NATS_URL") {
            self.nats.url = url.to_owned();
        }
        if let Some(user) = env.get("NATS_USER") {
            self.nats.user = Some(user.to_owned());
        }
        let mut problems = Vec::new();
        // The password never comes from the file: `NATS_PASSWORD`, else the variable it names.
        self.nats.password = match (env.get("NATS_PASSWORD"), &self.nats.password_env) {
            (Some(password), _) => Some(SecretString::from(password.to_owned())),
            (None, Some(var)) => match env.get(var) {
                Some(password) => Some(SecretString::from(password.to_owned())),
                None => {
                    problems.push(format!(
                        "nats.password_env: environment variable {var} is not set"
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        if let Some(url) = env.get("DATABASE_URL") {
            self.database.url = SecretString::from(url.to_owned());
        }
        if let Some(prefix) = env.get("SWITCHYARD_PREFIX") {
            self.prefix = prefix.to_owned();
        }
        if let Some(endpoint) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.telemetry.otlp_endpoint = Some(endpoint.to_owned());
        }
        if let Some(filter) = env.get("RUST_LOG") {
            self.telemetry.log_filter = filter.to_owned();
        }
        for (i, source) in self.sources.iter_mut().enumerate() {
            source.secrets.clear();
            if let Some(api) = source.api.as_mut() {
                for (field, var, slot) in [
                    ("client_id_env", &api.client_id_env, &mut api.client_id),
                    (
                        "client_secret_env",
                        &api.client_secret_env,
                        &mut api.client_secret,
                    ),
                    (
                        "refresh_token_env",
                        &api.refresh_token_env,
                        &mut api.refresh_token,
                    ),
                    (
                        "access_token_env",
                        &api.access_token_env,
                        &mut api.access_token,
                    ),
                ] {
                    *slot = None;
                    let Some(var) = var.as_ref().filter(|_| scope.source_apis()) else {
                        continue;
                    };
                    match env.get(var) {
                        Some(value) => *slot = Some(SecretString::from(value.to_owned())),
                        None => problems.push(format!(
                            "sources[{i}].api.{field}: environment variable {var} is not set"
                        )),
                    }
                }
            }
            if !scope.sources() {
                continue;
            }
            for (j, var) in source.secret_env.iter().enumerate() {
                match env.get(var) {
                    Some(value) => source.secrets.push(SecretString::from(value.to_owned())),
                    None => problems.push(format!(
                        "sources[{i}].secret_env[{j}]: environment variable {var} is not set"
                    )),
                }
            }
        }
        for (i, dest) in self.destinations.iter_mut().enumerate() {
            for (field, var, slot) in [
                ("secret_env", &dest.secret_env, &mut dest.secret),
                ("client_id_env", &dest.client_id_env, &mut dest.client_id),
                (
                    "client_secret_env",
                    &dest.client_secret_env,
                    &mut dest.client_secret,
                ),
                (
                    "refresh_token_env",
                    &dest.refresh_token_env,
                    &mut dest.refresh_token,
                ),
            ] {
                *slot = None;
                let Some(var) = var.as_ref().filter(|_| scope.destinations()) else {
                    continue;
                };
                match env.get(var) {
                    Some(value) => *slot = Some(SecretString::from(value.to_owned())),
                    None => problems.push(format!(
                        "destinations[{i}].{field}: environment variable {var} is not set"
                    )),
                }
            }
        }
        for (field, var, slot) in [
            (
                "monitor.read_token_env",
                &self.monitor.read_token_env,
                &mut self.monitor.read_token,
            ),
            (
                "monitor.operator_token_env",
                &self.monitor.operator_token_env,
                &mut self.monitor.operator_token,
            ),
            (
                "monitor.alerts.webhook_secret_env",
                &self.monitor.alerts.webhook_secret_env,
                &mut self.monitor.alerts.webhook_secret,
            ),
        ] {
            if let Some(var) = var.as_ref().filter(|_| scope.admin_tokens()) {
                match env.get(var) {
                    Some(value) => *slot = Some(SecretString::from(value.to_owned())),
                    None => {
                        problems.push(format!("{field}: environment variable {var} is not set"))
                    }
                }
            }
        }
        if let Some(var) = &self.monitor.alerts.webhook_url_env {
            // Monitor sends alerts; other services only need to know one is configured.
            match env.get(var) {
                Some(url) => self.monitor.alerts.webhook_url = Some(url.to_owned()),
                None if scope.admin_tokens() => problems.push(format!(
                    "monitor.alerts.webhook_url_env: environment variable {var} is not set"
                )),
                None => {}
            }
        }
        problems.extend(self.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Everything wrong with the configuration, each naming its field.
    fn problems(&self) -> Vec<String> {
        let mut problems = self.monitor.alerts.problems();
        problems.extend(self.monitor.retention_problems(&self.nats));
        if !is_token(&self.prefix) {
            problems.push(format!(
                "prefix: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                self.prefix
            ));
        }
        if self.nats.replicas == 0 || self.nats.replicas > 5 {
            problems.push("nats.replicas: must be between 1 and 5".to_owned());
        }
        if self.nats.publish_timeout.is_zero() {
            problems.push("nats.publish_timeout: must be greater than zero".to_owned());
        }
        if self.nats.password.is_some() && self.nats.user.is_none() {
            problems.push("nats.user: a NATS password is set but no user (NATS_USER)".to_owned());
        }
        if self.nats.user.is_some() && self.nats.creds_file.is_some() {
            problems.push(
                "nats.creds_file: use either a .creds file or a user and password, not both"
                    .to_owned(),
            );
        }
        if self.nats.tls.cert_file.is_some() != self.nats.tls.key_file.is_some() {
            problems.push(
                "nats.tls: cert_file and key_file go together (mutual TLS needs both)".to_owned(),
            );
        }
        if self.database.pool_size == 0 {
            problems.push("database.pool_size: must be at least 1".to_owned());
        }
        if self.dedupe.default_region.len() != 2
            || !self
                .dedupe
                .default_region
                .bytes()
                .all(|b| b.is_ascii_uppercase())
        {
            problems.push(format!(
                "dedupe.default_region: {:?} must be an ISO 3166-1 alpha-2 code such as \"GB\"",
                self.dedupe.default_region
            ));
        }
        if self.ingest.max_body_bytes < 1024 {
            problems.push("ingest.max_body_bytes: must be at least 1024".to_owned());
        }
        if self.ingest.max_header_bytes < 1024 {
            problems.push("ingest.max_header_bytes: must be at least 1024".to_owned());
        }
        let mut names = HashSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            if !is_token(&source.name) {
                problems.push(format!(
                    "sources[{i}].name: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                    source.name
                ));
            }
            if !names.insert(source.name.as_str()) {
                problems.push(format!(
                    "sources[{i}].name: {:?} is used twice",
                    source.name
                ));
            }
            if source.secret_env.len() > 2
                || (source.secret_env.is_empty() && source.kind.needs_secret())
            {
                problems.push(format!(
                    "sources[{i}].secret_env: name one or two environment variables"
                ));
            }
            if let Some(api) = &source.api {
                problems.extend(api_problems(i, source.kind, api));
            }
            if source.kind == SourceKind::Salesforce
                && source
                    .organization_id
                    .as_deref()
                    .is_none_or(|id| id.len() != 15 && id.len() != 18)
            {
                problems.push(format!(
                    "sources[{i}].organization_id: a salesforce source needs its 15- or 18-character organisation id"
                ));
            }
        }
        let mut dest_names = HashSet::new();
        for (i, dest) in self.destinations.iter().enumerate() {
            if !is_token(&dest.name) {
                problems.push(format!(
                    "destinations[{i}].name: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                    dest.name
                ));
            }
            if !dest_names.insert(dest.name.as_str()) {
                problems.push(format!(
                    "destinations[{i}].name: {:?} is used twice",
                    dest.name
                ));
            }
            if dest.rate_per_second == Some(0) || dest.burst == Some(0) {
                problems.push(format!(
                    "destinations[{i}].rate_per_second/burst: must be at least 1 when given"
                ));
            }
            if dest.circuit_breaker.failures == 0 || dest.circuit_breaker.cool_down.is_zero() {
                problems.push(format!(
                    "destinations[{i}].circuit_breaker: failures and cool_down must be more than 0"
                ));
            }
            problems.extend(destination_problems(i, dest, &names));
        }
        let mut flow_names = HashSet::new();
        for (i, flow) in self.flows.iter().enumerate() {
            if !is_token(&flow.name) {
                problems.push(format!(
                    "flows[{i}].name: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                    flow.name
                ));
            }
            if !flow_names.insert(flow.name.as_str()) {
                problems.push(format!("flows[{i}].name: {:?} is used twice", flow.name));
            }
            if !dest_names.contains(flow.destination.as_str()) {
                problems.push(format!(
                    "flows[{i}].destination: no destination is named {:?}",
                    flow.destination
                ));
            }
            // Any field of the flow's object, as a dotted path (`total.currency`) or a contract
            // name (`marketing_consent`), resolved against the canonical message's descriptor.
            for (field, value) in &flow.when {
                match switchyard_proto::fields::resolve(flow.object.as_str(), field) {
                    Err(error) => {
                        problems.push(format!("flows[{i}].when.{field}: {error}"));
                    }
                    Ok(path) if !path.leaf.accepts(value) => problems.push(format!(
                        "flows[{i}].when.{field}: give {}, not {value}",
                        path.leaf.describe()
                    )),
                    Ok(_) => {}
                }
            }
            for (option, value) in [("deal_stage", &flow.deal_stage), ("tag", &flow.tag)] {
                if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                    problems.push(format!("flows[{i}].{option}: must not be empty when given"));
                }
            }
            // Post-sale nurture names its list or tag; without one the flow could only fail.
            let kind = self
                .destinations
                .iter()
                .find(|d| d.name == flow.destination)
                .map(|d| d.kind);
            match kind {
                Some(DestinationKind::Klaviyo)
                    if flow.object == ObjectType::Invoice && flow.list_id.is_none() =>
                {
                    problems.push(format!(
                        "flows[{i}].list_id: a klaviyo invoice flow adds paying customers to a list: name it"
                    ));
                }
                Some(DestinationKind::Mailchimp)
                    if flow.object == ObjectType::Invoice && flow.tag.is_none() =>
                {
                    problems.push(format!(
                        "flows[{i}].tag: a mailchimp invoice flow tags paying customers: name the tag"
                    ));
                }
                _ => {}
            }
            if flow.on.is_empty() {
                problems.push(format!("flows[{i}].on: name at least one trigger"));
            }
            let known = flow.object.fields();
            for field in flow.fields.iter().flatten() {
                if !known.contains(&field.as_str()) {
                    problems.push(format!(
                        "flows[{i}].fields: {field:?} is not a field of {} ({})",
                        flow.object.as_str(),
                        known.join(", ")
                    ));
                }
            }
            if flow.max_age.is_zero() {
                problems.push(format!("flows[{i}].max_age: must be more than 0"));
            }
            if flow.max_attempts == 0 || flow.max_attempts > 100 {
                problems.push(format!(
                    "flows[{i}].max_attempts: must be between 1 and 100"
                ));
            }
            for (field, value) in [
                ("minutes_per_record", flow.minutes_per_record),
                ("hourly_cost", flow.hourly_cost),
            ] {
                if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    problems.push(format!("flows[{i}].{field}: must be a number of 0 or more"));
                }
            }
        }
        problems
    }

    /// The source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The destination with this name.
    pub fn destination(&self, name: &str) -> Option<&DestinationConfig> {
        self.destinations.iter().find(|d| d.name == name)
    }
}

/// What is wrong with a source's `api` block.
fn api_problems(i: usize, kind: SourceKind, api: &SourceApiConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !kind.is_thin() {
        problems.push(format!(
            "sources[{i}].api: only hubspot, quickbooks and xero sources are read from their API ({} webhooks carry the record)",
            kind.as_str()
        ));
        return problems;
    }
    let oauth = [
        &api.client_id_env,
        &api.client_secret_env,
        &api.refresh_token_env,
    ];
    let named = oauth.iter().filter(|v| v.is_some()).count();
    if named != 0 && named != oauth.len() {
        problems.push(format!(
            "sources[{i}].api: OAuth2 refresh needs client_id_env, client_secret_env and refresh_token_env together"
        ));
    } else if named == 0 && api.access_token_env.is_none() {
        problems.push(format!(
            "sources[{i}].api: give access_token_env, or client_id_env, client_secret_env and refresh_token_env"
        ));
    }
    for (field, url) in [("base_url", &api.base_url), ("token_url", &api.token_url)] {
        if url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            problems.push(format!(
                "sources[{i}].api.{field}: must start with http:// or https://"
            ));
        }
    }
    if api.rate_per_second == Some(0) {
        problems.push(format!(
            "sources[{i}].api.rate_per_second: must be at least 1 when given"
        ));
    }
    if api.timeout.is_zero() {
        problems.push(format!(
            "sources[{i}].api.timeout: must be greater than zero"
        ));
    }
    problems
}

/// What is wrong with a destination: its URL, credentials and the keys its kind needs.
fn destination_problems(
    i: usize,
    dest: &DestinationConfig,
    sources: &HashSet<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let kind = dest.kind.as_str();
    let url = dest.base_url();
    if url.is_empty() {
        problems.push(format!(
            "destinations[{i}].url: a {kind} destination needs its URL"
        ));
    } else if !(url.starts_with("http://") || url.starts_with("https://")) {
        problems.push(format!(
            "destinations[{i}].url: must start with http:// or https://"
        ));
    }
    let oauth = [
        &dest.client_id_env,
        &dest.client_secret_env,
        &dest.refresh_token_env,
    ];
    let named = oauth.iter().filter(|v| v.is_some()).count();
    if dest.kind.takes_oauth() {
        if named != 0 && named != oauth.len() {
            problems.push(format!(
                "destinations[{i}]: OAuth2 refresh needs client_id_env, client_secret_env and refresh_token_env together"
            ));
        } else if named == 0 && dest.secret_env.is_none() {
            problems.push(format!(
                "destinations[{i}]: a {kind} destination needs secret_env (a bearer token), or client_id_env, client_secret_env and refresh_token_env"
            ));
        }
        if dest
            .token_url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            problems.push(format!(
                "destinations[{i}].token_url: must start with http:// or https://"
            ));
        }
    } else {
        if named != 0 || dest.token_url.is_some() {
            problems.push(format!(
                "destinations[{i}]: a {kind} destination takes no OAuth2 settings (secret_env holds its key)"
            ));
        }
        if dest.secret_env.is_none() {
            problems.push(format!(
                "destinations[{i}].secret_env: name the variable holding the {}",
                if dest.kind == DestinationKind::Webhook {
                    "signing secret"
                } else {
                    "API key"
                }
            ));
        }
    }
    if dest.kind == DestinationKind::Mailchimp && dest.list_id.as_deref().is_none_or(str::is_empty)
    {
        problems.push(format!(
            "destinations[{i}].list_id: a mailchimp destination needs its audience id"
        ));
    }
    for (field, value, kinds) in [
        (
            "realm_id",
            &dest.realm_id,
            &[DestinationKind::Quickbooks][..],
        ),
        ("item_id", &dest.item_id, &[DestinationKind::Quickbooks][..]),
        ("tenant_id", &dest.tenant_id, &[DestinationKind::Xero][..]),
        (
            "account_code",
            &dest.account_code,
            &[DestinationKind::Xero][..],
        ),
        (
            "external_id_field",
            &dest.external_id_field,
            &[DestinationKind::Salesforce][..],
        ),
        (
            "deal_id_property",
            &dest.deal_id_property,
            &[DestinationKind::Hubspot][..],
        ),
        (
            "tax_id_property",
            &dest.tax_id_property,
            &[DestinationKind::Hubspot][..],
        ),
    ] {
        match value {
            Some(_) if !kinds.contains(&dest.kind) => problems.push(format!(
                "destinations[{i}].{field}: only for {} destinations",
                kinds[0].as_str()
            )),
            // These end up in URL paths and headers: plain identifiers only.
            Some(v)
                if v.is_empty()
                    || v.len() > 64
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                problems.push(format!(
                    "destinations[{i}].{field}: {v:?} must be 1-64 letters, digits, '_' or '-'"
                ));
            }
            _ => {}
        }
    }
    if !matches!(
        dest.kind,
        DestinationKind::Quickbooks | DestinationKind::Xero
    ) && (!dest.items.is_empty() || !dest.tax_codes.is_empty())
    {
        problems.push(format!(
            "destinations[{i}]: items and tax_codes are only for quickbooks and xero destinations"
        ));
    }
    for (what, value) in dest
        .items
        .iter()
        .map(|(sku, v)| (format!("items.{sku}"), v))
        .chain(
            dest.tax_codes
                .iter()
                .map(|(bp, v)| (format!("tax_codes.{bp}"), v)),
        )
    {
        // Written into request bodies as vendor ids: plain identifiers only.
        if value.is_empty()
            || value.len() > 64
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        {
            problems.push(format!(
                "destinations[{i}].{what}: {value:?} must be 1-64 letters, digits, '_', '-', '.' or ':'"
            ));
        }
    }
    if dest.kind == DestinationKind::Quickbooks && dest.realm_id.is_none() {
        problems.push(format!(
            "destinations[{i}].realm_id: a quickbooks destination needs its company id"
        ));
    }
    if dest.kind == DestinationKind::Xero && dest.tenant_id.is_none() {
        problems.push(format!(
            "destinations[{i}].tenant_id: a xero destination needs its organisation's tenant id"
        ));
    }
    if let Some(system) = &dest.source_system {
        if matches!(
            dest.kind,
            DestinationKind::Webhook | DestinationKind::Mailchimp | DestinationKind::Klaviyo
        ) {
            problems.push(format!(
                "destinations[{i}].source_system: a {kind} destination is not written by id"
            ));
        } else if !sources.contains(system.as_str()) {
            problems.push(format!(
                "destinations[{i}].source_system: no source is named {system:?}"
            ));
        }
    }
    problems
}

/// Names that end up in subjects and stream names: no dots, wildcards or spaces.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const YAML: &str = r#"
prefix: t1
sources:
  - name: demo
    kind: standard-webhooks
    secret_env: [DEMO_SECRET]
destinations:
  - name: sink
    kind: webhook
    url: http://127.0.0.1:9000/hook
    secret_env: SINK_SECRET
flows:
  - name: contacts
    object: contact
    destination: sink
"#;

    fn env() -> Env {
        Env::from_pairs([
            ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("SINK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("NATS_URL", "nats://127.0.0.1:4999"),
        ])
    }

    #[test]
    fn environment_overrides_the_file_and_resolves_secrets() {
        let config = Config::from_yaml(YAML, &env()).expect("valid config");
        assert_eq!(config.nats.url, "nats://127.0.0.1:4999");
        assert_eq!(config.sources[0].secrets.len(), 1);
        assert_eq!(
            config.sources[0].secrets[0].expose_secret(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        );
        assert_eq!(config.flows[0].on, vec![Trigger::Created, Trigger::Updated]);
    }

    #[test]
    fn max_age_and_circuit_breaker_have_defaults_and_are_checked() {
        let config = Config::from_yaml(YAML, &env()).expect("valid config");
        assert_eq!(config.flows[0].max_age, Duration::from_secs(24 * 3600));
        let breaker = config.destinations[0].circuit_breaker;
        assert_eq!((breaker.failures, breaker.cool_down.as_secs()), (5, 30));
        let yaml = YAML
            .replace(
                "    destination: sink",
                "    destination: sink\n    max_age: 90s",
            )
            .replace(
                "    secret_env: SINK_SECRET",
                "    secret_env: SINK_SECRET\n    circuit_breaker: { failures: 3, cool_down: 2s }",
            );
        let config = Config::from_yaml(&yaml, &env()).expect("valid config");
        assert_eq!(config.flows[0].max_age, Duration::from_secs(90));
        let breaker = config.destinations[0].circuit_breaker;
        assert_eq!((breaker.failures, breaker.cool_down.as_secs()), (3, 2));
        let yaml = YAML
            .replace(
                "    destination: sink",
                "    destination: sink\n    max_age: 0s",
            )
            .replace(
                "    secret_env: SINK_SECRET",
                "    secret_env: SINK_SECRET\n    circuit_breaker: { failures: 0 }",
            );
        let text = Config::from_yaml(&yaml, &env())
            .expect_err("invalid")
            .to_string();
        assert!(text.contains("flows[0].max_age"), "{text}");
        assert!(text.contains("destinations[0].circuit_breaker"), "{text}");
    }

    #[test]
    fn every_problem_names_its_field() {
        let yaml = YAML
            .replace("prefix: t1", "prefix: T.1")
            .replace("destination: sink", "destination: nowhere");
        let err = Config::from_yaml(&yaml, &Env::default()).expect_err("invalid config");
        let text = err.to_string();
        assert!(text.contains("prefix: \"T.1\""), "{text}");
        assert!(
            text.contains("flows[0].destination: no destination is named \"nowhere\""),
            "{text}"
        );
        assert!(
            text.contains("sources[0].secret_env[0]: environment variable DEMO_SECRET is not set"),
            "{text}"
        );
        assert!(text.contains("destinations[0].secret_env"), "{text}");
    }

    #[test]
    fn each_service_resolves_only_its_own_secrets() {
        // Only the source secret is set: ingest loads, deliver (which needs the sink's) does not.
        let env = Env::from_pairs([("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);
        let ingest =
            Config::from_yaml_for(YAML, &env, Scope::Ingest).expect("ingest needs no sink secret");
        assert_eq!(ingest.sources[0].secrets.len(), 1);
        let transform =
            Config::from_yaml_for(YAML, &env, Scope::Transform).expect("transform needs none");
        assert!(
            transform.sources[0].secrets.is_empty(),
            "transform never holds webhook secrets"
        );
        let err = Config::from_yaml_for(YAML, &env, Scope::Deliver)
            .expect_err("deliver needs the sink's");
        assert!(
            err.to_string().contains("destinations[0].secret_env"),
            "{err}"
        );
    }

    #[test]
    fn api_credentials_go_to_transform_only_and_webhook_secrets_never_do() {
        let yaml = YAML.replace(
            "destinations:",
            r#"  - { name: crm, kind: hubspot, secret_env: [HS_SECRET], api: { access_token_env: HS_TOKEN, rate_per_second: 3 } }
  - name: books
    kind: quickbooks
    secret_env: [QB_VERIFIER]
    api: { client_id_env: QB_ID, client_secret_env: QB_SECRET, refresh_token_env: QB_REFRESH }
destinations:"#,
        );
        let webhook = [
            ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("HS_SECRET", "hubspot-client-secret"),
            ("QB_VERIFIER", "verifier"),
        ];
        let api = [
            ("HS_TOKEN", "pat-na1-test"),
            ("QB_ID", "client-id"),
            ("QB_SECRET", "client-secret"),
            ("QB_REFRESH", "refresh-1"),
        ];
        let ingest = Config::from_yaml_for(&yaml, &Env::from_pairs(webhook), Scope::Ingest)
            .expect("ingest needs no API credentials");
        let crm = ingest
            .source("crm")
            .and_then(|s| s.api.as_ref())
            .expect("api");
        assert!(crm.access_token.is_none(), "ingest never holds API tokens");
        let transform = Config::from_yaml_for(&yaml, &Env::from_pairs(api), Scope::Transform)
            .expect("transform needs no webhook secrets");
        assert!(transform.sources.iter().all(|s| s.secrets.is_empty()));
        let crm = transform.source("crm").expect("crm");
        let crm_api = crm.api.as_ref().expect("api");
        assert_eq!(
            crm_api.access_token.as_ref().map(|t| t.expose_secret()),
            Some("pat-na1-test")
        );
        assert_eq!(crm_api.base_url(crm.kind), "https://api.hubapi.com");
        assert_eq!(crm_api.rate_per_second(crm.kind), 3);
        let books = transform.source("books").expect("books");
        let books_api = books.api.as_ref().expect("api");
        assert!(books_api.refreshes());
        assert_eq!(books_api.rate_per_second(books.kind), 8);
        assert_eq!(
            books_api.token_url(books.kind),
            "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
        );
        assert!(!format!("{transform:?}").contains("refresh-1"));
        let err = Config::from_yaml_for(&yaml, &Env::from_pairs(webhook), Scope::Transform)
            .expect_err("transform needs the API credentials");
        assert!(
            err.to_string().contains(
                "sources[2].api.refresh_token_env: environment variable QB_REFRESH is not set"
            ),
            "{err}"
        );
    }

    #[test]
    fn only_thin_sources_take_an_api_block_and_it_must_say_how_to_authenticate() {
        let stripe = YAML.replace(
            "secret_env: [DEMO_SECRET]",
            "secret_env: [DEMO_SECRET]\n    api: { access_token_env: DEMO_SECRET }",
        );
        let err = Config::from_yaml(&stripe, &env()).expect_err("standard webhooks carry records");
        assert!(
            err.to_string().contains("sources[0].api: only hubspot"),
            "{err}"
        );
        let half = YAML.replace(
            "kind: standard-webhooks\n    secret_env: [DEMO_SECRET]",
            "kind: xero\n    secret_env: [DEMO_SECRET]\n    api: { client_id_env: DEMO_SECRET, rate_per_second: 0, base_url: api.xero.com }",
        );
        let err = Config::from_yaml(&half, &env()).expect_err("half an OAuth2 setup");
        let text = err.to_string();
        assert!(
            text.contains("client_id_env, client_secret_env and refresh_token_env together"),
            "{text}"
        );
        assert!(text.contains("sources[0].api.rate_per_second"), "{text}");
        assert!(
            text.contains("sources[0].api.base_url: must start with http"),
            "{text}"
        );
    }

    #[test]
    fn vendor_destinations_take_oauth_for_deliver_only_and_name_what_they_lack() {
        let yaml = YAML.replace(
            "flows:",
            r#"  - { name: crm, kind: hubspot, secret_env: HS_TOKEN, source_system: demo }
  - name: books
    kind: quickbooks
    realm_id: "9130357992221046"
    client_id_env: QB_ID
    client_secret_env: QB_SECRET
    refresh_token_env: QB_REFRESH
  - { name: sf, kind: salesforce, url: "https://example.my.salesforce.com", client_id_env: SF_ID, client_secret_env: SF_SECRET, refresh_token_env: SF_REFRESH }
flows:"#,
        )
        .replace(
            "destination: sink",
            "destination: sink
    fields: [email, first_name]",
        );
        let env = Env::from_pairs([
            ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("SINK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("HS_TOKEN", "pat-na1-test"),
            ("QB_ID", "client-id"),
            ("QB_SECRET", "client-secret"),
            ("QB_REFRESH", "refresh-1"),
            ("SF_ID", "client-id"),
            ("SF_SECRET", "client-secret"),
            ("SF_REFRESH", "refresh-1"),
        ]);
        let deliver = Config::from_yaml_for(&yaml, &env, Scope::Deliver).expect("valid");
        let books = deliver.destination("books").expect("books");
        assert!(books.refreshes());
        assert_eq!(
            books.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("refresh-1")
        );
        assert_eq!(books.base_url(), "https://quickbooks.api.intuit.com");
        assert_eq!(
            books.token_url(),
            "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
        );
        let sf = deliver.destination("sf").expect("sf");
        assert_eq!(
            sf.token_url(),
            "https://login.salesforce.com/services/oauth2/token"
        );
        assert_eq!(
            deliver.flows[0].fields.as_deref(),
            Some(&["email".to_owned(), "first_name".to_owned()][..])
        );
        assert!(!format!("{deliver:?}").contains("refresh-1"));
        let transform =
            Config::from_yaml_for(&yaml, &Env::default(), Scope::Transform).expect("no secrets");
        assert!(
            transform
                .destinations
                .iter()
                .all(|d| d.secret.is_none() && d.refresh_token.is_none()),
            "only deliver holds destination credentials"
        );

        let bad = yaml
            .replace("    realm_id: \"9130357992221046\"\n", "")
            .replace("refresh_token_env: SF_REFRESH", "tenant_id: a/b")
            .replace("source_system: demo", "source_system: nowhere")
            .replace("[email, first_name]", "[email, shoe_size]");
        let err = Config::from_yaml_for(&bad, &env, Scope::Deliver).expect_err("invalid");
        let text = err.to_string();
        for expected in [
            "destinations[2].realm_id: a quickbooks destination needs its company id",
            "destinations[3]: OAuth2 refresh needs client_id_env, client_secret_env and refresh_token_env together",
            "destinations[3].tenant_id: only for xero destinations",
            "destinations[1].source_system: no source is named \"nowhere\"",
            "flows[0].fields: \"shoe_size\" is not a field of contact",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
        let keyless = YAML.replace(
            "secret_env: SINK_SECRET",
            "token_url: \"https://x.example\"",
        );
        let err = Config::from_yaml(&keyless, &env).expect_err("a webhook needs its secret");
        let text = err.to_string();
        assert!(
            text.contains(
                "destinations[0].secret_env: name the variable holding the signing secret"
            ),
            "{text}"
        );
        assert!(
            text.contains("destinations[0]: a webhook destination takes no OAuth2 settings"),
            "{text}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let yaml = format!("{YAML}\nsurprise: 1\n");
        let err = Config::from_yaml(&yaml, &env()).expect_err("unknown field");
        assert!(err.to_string().contains("surprise"), "{err}");
    }

    #[test]
    fn flows_take_every_canonical_object_and_value_inputs() {
        let yaml = YAML.replace(
            "object: contact",
            "object: invoice\n    minutes_per_record: 10\n    hourly_cost: 35",
        );
        let config = Config::from_yaml(&yaml, &env()).expect("valid config");
        assert_eq!(config.flows[0].object, ObjectType::Invoice);
        assert_eq!(config.flows[0].object.as_str(), "invoice");
        assert_eq!(config.flows[0].minutes_per_record, Some(10.0));
        assert_eq!(config.flows[0].hourly_cost, Some(35.0));
        let bad = YAML.replace(
            "object: contact",
            "object: contact\n    minutes_per_record: -1\n    hourly_cost: .nan",
        );
        let err = Config::from_yaml(&bad, &env()).expect_err("negative minutes");
        let text = err.to_string();
        assert!(
            text.contains("flows[0].minutes_per_record: must be a number of 0 or more"),
            "{text}"
        );
        assert!(
            text.contains("flows[0].hourly_cost: must be a number of 0 or more"),
            "{text}"
        );
    }

    #[test]
    fn a_flow_when_names_fields_of_its_object_and_a_typo_fails_to_load() {
        let yaml = YAML.replace(
            "object: contact",
            "object: invoice\n    when: { status: paid, total.currency: EUR, deal_id: \"58213\" }\n    deal_stage: closedwon",
        );
        let config = Config::from_yaml(&yaml, &env()).expect("valid config");
        assert_eq!(config.flows[0].when.len(), 3);
        assert_eq!(config.flows[0].deal_stage.as_deref(), Some("closedwon"));
        let contact = YAML.replace(
            "object: contact",
            "object: contact\n    when: { lifecycle_stage: lead, marketing_consent: true, consent.marketing: true }",
        );
        Config::from_yaml(&contact, &env()).expect("contract names and paths both work");
        let bad = YAML.replace(
            "object: contact",
            "object: invoice\n    when: { stauts: paid, total: EUR, status: true, lifecycle_stage: lead }\n    tag: \" \"",
        );
        let text = Config::from_yaml(&bad, &env())
            .expect_err("unknown fields")
            .to_string();
        assert!(
            text.contains("flows[0].when.stauts: invoice has no field \"stauts\" (it has invoice_number, status"),
            "{text}"
        );
        assert!(
            text.contains("flows[0].when.total: total is a group of fields: name one of"),
            "{text}"
        );
        assert!(
            text.contains("flows[0].when.status: give a text, not true"),
            "{text}"
        );
        assert!(
            text.contains("flows[0].when.lifecycle_stage: invoice has no field"),
            "{text}"
        );
        assert!(text.contains("flows[0].tag: must not be empty"), "{text}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::from_yaml(YAML, &env()).expect("valid config");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{debug}"
        );
    }

    #[test]
    fn nats_credentials_come_from_the_environment() {
        let yaml = format!(
            "{YAML}\nnats:\n  user: from-file\n  password_env: FILE_NATS_PW\n  tls: {{ ca_file: /etc/ca.pem, required: true }}\n"
        );
        let mut pairs: Vec<(&str, &str)> = vec![
            ("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("SINK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("FILE_NATS_PW", "pw-from-named-var"),
        ];
        let config = Config::from_yaml(&yaml, &Env::from_pairs(pairs.clone())).expect("valid");
        assert_eq!(config.nats.user.as_deref(), Some("from-file"));
        assert_eq!(
            config.nats.password.as_ref().map(|p| p.expose_secret()),
            Some("pw-from-named-var")
        );
        assert!(config.nats.tls.required);
        assert!(!format!("{config:?}").contains("pw-from-named-var"));

        // Per-service variables win, so one shared file serves five users.
        pairs.extend([("NATS_USER", "ingest"), ("NATS_PASSWORD", "pw-ingest")]);
        let config = Config::from_yaml(&yaml, &Env::from_pairs(pairs)).expect("valid");
        assert_eq!(config.nats.user.as_deref(), Some("ingest"));
        assert_eq!(
            config.nats.password.as_ref().map(|p| p.expose_secret()),
            Some("pw-ingest")
        );

        let err = Config::from_yaml(&yaml, &env()).expect_err("named variable missing");
        assert!(
            err.to_string()
                .contains("nats.password_env: environment variable FILE_NATS_PW is not set"),
            "{err}"
        );
        let half_tls = format!("{YAML}\nnats: {{ tls: {{ cert_file: /c.pem }} }}\n");
        let err = Config::from_yaml(&half_tls, &env()).expect_err("cert without key");
        assert!(err.to_string().contains("nats.tls"), "{err}");
    }
}
