//! Monitor's settings: the admin API, the dashboard, retention and alerting.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::secrets::{self, SecretRef};
use super::*;

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
    pub read_token_env: Option<SecretRef>,
    /// Environment variable holding the bearer token for operators (replay, and every read).
    pub operator_token_env: Option<SecretRef>,

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

    pub(super) fn retention_problems(&self, nats: &NatsConfig) -> Vec<String> {
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
    pub webhook_secret_env: Option<SecretRef>,

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

    pub(super) fn problems(&self) -> Vec<String> {
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

impl MonitorConfig {
    /// The read-only admin token, once resolved.
    pub fn read_token(&self) -> Option<&SecretString> {
        secrets::value(&self.read_token_env)
    }

    /// The operator admin token, once resolved.
    pub fn operator_token(&self) -> Option<&SecretString> {
        secrets::value(&self.operator_token_env)
    }
}

impl AlertsConfig {
    /// The alert webhook's signing secret, once resolved.
    pub fn webhook_secret(&self) -> Option<&SecretString> {
        secrets::value(&self.webhook_secret_env)
    }
}
