//! Alert state: on a timer, loads what the rules need (buckets, freshness, drift notices, open
//! identity conflicts), evaluates them (`rules`), opens an alert for each new finding and
//! resolves each open alert whose condition cleared — one open alert per id, so nothing is raised
//! twice — and keeps `switchyard_alerts_open{rule}` current. Opened and resolved alerts wait in
//! the `alerts` table until `notify` has delivered them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use switchyard_chassis::CancellationToken;
use switchyard_chassis::config::{AlertsConfig, FlowConfig};
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::Alert;
use tokio::sync::Notify;

use crate::clock::{system_time, unix};
use crate::rules::{self, Counts, Finding, FlowView, Rule, Thresholds};
use crate::store::StoreError;

/// Only one replica evaluates at a time (a transaction-scoped advisory lock; PostgreSQL scopes
/// it to the database, so tenants and tests sharing a server do not contend).
const EVALUATION_LOCK: i64 = 0x5357_4d4f_4e41_4c54; // "SWMONALT"

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

/// `switchyard_alerts_open{rule}`.
#[derive(Debug, Clone)]
pub(crate) struct AlertMetrics {
    open: Family<RuleLabel, Gauge>,
}

impl AlertMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let open = Family::<RuleLabel, Gauge>::default();
        registry.register("alerts_open", "Alerts open now, per rule", open.clone());
        for rule in Rule::ALL {
            drop(open.get_or_create(&RuleLabel {
                rule: rule.as_str().to_owned(),
            }));
        }
        Self { open }
    }
}

/// Evaluates the rules on a timer.
#[derive(Debug)]
pub(crate) struct Evaluator {
    pub pool: Pool,
    pub config: AlertsConfig,
    pub flows: Vec<FlowConfig>,
    pub metrics: AlertMetrics,
    /// Woken when an alert opened or resolved, so it is sent at once.
    pub notifier: Arc<Notify>,
}

impl Evaluator {
    fn thresholds(&self) -> Thresholds {
        Thresholds {
            bucket_secs: i64::try_from(self.config.bucket.as_secs().max(1)).unwrap_or(3600),
            trailing: self.config.trailing_buckets,
            deviation: self.config.deviation,
            min_volume: self.config.min_volume,
            dlq_growth: self.config.dlq_growth,
        }
    }

    /// Evaluates every `evaluate_every` until shutdown.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.evaluate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.evaluate(SystemTime::now()).await {
                tracing::warn!(%error, "alert rules not evaluated; trying again next round");
            }
        }
    }

    /// One round: evaluate, open and resolve, update the gauge.
    pub(crate) async fn evaluate(&self, now: SystemTime) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&EVALUATION_LOCK])
            .await?
            .get(0);
        let mut changed = 0;
        if locked {
            let findings = self.findings(&tx, unix(now)).await?;
            for finding in &findings {
                changed += tx
                    .execute(
                        "INSERT INTO alerts (id, rule, severity, summary, runbook, opened_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (id) WHERE resolved_at IS NULL DO NOTHING",
                        &[
                            &finding.id,
                            &finding.rule.as_str(),
                            &finding.rule.severity(),
                            &finding.summary,
                            &finding.rule.runbook(),
                            &now,
                        ],
                    )
                    .await?;
            }
            let holding: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
            changed += tx
                .execute(
                    "UPDATE alerts SET resolved_at = $2 \
                     WHERE resolved_at IS NULL AND NOT (id = ANY($1))",
                    &[&holding, &now],
                )
                .await?;
        }
        let open = tx
            .query(
                "SELECT rule, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY rule",
                &[],
            )
            .await?;
        tx.commit().await?;
        let open: HashMap<String, i64> = open.iter().map(|r| (r.get(0), r.get(1))).collect();
        for rule in Rule::ALL {
            self.metrics
                .open
                .get_or_create(&RuleLabel {
                    rule: rule.as_str().to_owned(),
                })
                .set(open.get(rule.as_str()).copied().unwrap_or(0));
        }
        if changed > 0 {
            self.notifier.notify_one();
        }
        Ok(())
    }

    /// Every condition that holds at `now`.
    async fn findings(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        now: i64,
    ) -> Result<Vec<Finding>, StoreError> {
        let th = self.thresholds();
        let evaluated = rules::evaluated_bucket(now, th.bucket_secs);
        let current = now - now.rem_euclid(th.bucket_secs);
        let mut slots = rules::baseline_slots(evaluated, &th);
        slots.extend([evaluated, current, current - th.bucket_secs]);
        let slots: Vec<SystemTime> = slots.into_iter().map(system_time).collect();
        let first: HashMap<String, i64> = tx
            .query(
                "SELECT flow, extract(epoch FROM min(bucket_start))::int8 FROM flow_buckets GROUP BY flow",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let buckets = buckets_at(tx, "flow_buckets", "flow", &slots).await?;
        let fresh: HashMap<String, i64> = tx
            .query(
                "SELECT flow, extract(epoch FROM last_delivered_at)::int8 FROM flow_freshness",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut findings = Vec::new();
        let none = HashMap::new();
        for flow in &self.flows {
            let view = FlowView {
                name: &flow.name,
                first_bucket: first.get(&flow.name).copied(),
                buckets: buckets.get(&flow.name).unwrap_or(&none),
                last_delivered: fresh.get(&flow.name).copied(),
                freshness_sla: flow.freshness_sla,
            };
            findings.extend(rules::evaluate_flow(&view, now, &th));
        }
        findings.extend(source_findings(tx, &slots, now, &th).await?);
        let quiet_since = system_time(
            now - i64::try_from(self.config.drift_quiet.as_secs()).unwrap_or(i64::MAX / 2),
        );
        for r in tx
            .query(
                "SELECT source, path, change, event_type, extract(epoch FROM last_seen_at)::int8 \
                 FROM drift_notices WHERE last_seen_at > $1 ORDER BY source, path",
                &[&quiet_since],
            )
            .await?
        {
            findings.push(rules::drift(
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
            ));
        }
        for r in tx
            .query(
                "SELECT object, count(*) FROM conflicts WHERE resolved_at IS NULL GROUP BY object ORDER BY object",
                &[],
            )
            .await?
        {
            findings.push(rules::conflicts(r.get(0), r.get(1)));
        }
        findings.extend(crate::status::findings(tx).await?);
        // Two rules never find the same id, but keep the invariant obvious.
        let mut seen = HashSet::new();
        findings.retain(|f| seen.insert(f.id.clone()));
        Ok(findings)
    }
}

/// The counts of `table` (`flow_buckets` keyed by `flow`, `source_buckets` by `source`) in the
/// buckets starting at `slots`, by key and bucket start (Unix seconds).
async fn buckets_at(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    key: &str,
    slots: &[SystemTime],
) -> Result<HashMap<String, HashMap<i64, Counts>>, StoreError> {
    let mut buckets: HashMap<String, HashMap<i64, Counts>> = HashMap::new();
    let sql = format!(
        "SELECT {key}, extract(epoch FROM bucket_start)::int8, received, delivered, failed, \
         dead_lettered FROM {table} WHERE bucket_start = ANY($1)"
    );
    for r in tx.query(&sql, &[&slots]).await? {
        buckets.entry(r.get(0)).or_default().insert(
            r.get(1),
            Counts {
                received: r.get(2),
                delivered: r.get(3),
                failed: r.get(4),
                dead_lettered: r.get(5),
            },
        );
    }
    Ok(buckets)
}

/// The per-source volume rule for every source that ever reported (`source_buckets`).
async fn source_findings(
    tx: &tokio_postgres::Transaction<'_>,
    slots: &[SystemTime],
    now: i64,
    th: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let first: Vec<(String, i64)> = tx
        .query(
            "SELECT source, extract(epoch FROM min(bucket_start))::int8 FROM source_buckets \
             GROUP BY source ORDER BY source",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let buckets = buckets_at(tx, "source_buckets", "source", slots).await?;
    let none = HashMap::new();
    Ok(first
        .iter()
        .filter_map(|(source, first)| {
            let view = FlowView {
                name: source,
                first_bucket: Some(*first),
                buckets: buckets.get(source).unwrap_or(&none),
                last_delivered: None,
                freshness_sla: None,
            };
            rules::evaluate_source(&view, now, th)
        })
        .collect())
}

/// Keeps a schema-drift notice: the latest per source and path.
pub(crate) async fn store_drift(
    pool: &Pool,
    drift: &switchyard_proto::v1::SchemaDrift,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let at = drift
        .detected_at
        .and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now);
    client
        .execute(
            "INSERT INTO drift_notices (source, path, event_type, change, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, path) DO UPDATE SET \
             event_type = EXCLUDED.event_type, change = EXCLUDED.change, \
             last_seen_at = GREATEST(drift_notices.last_seen_at, EXCLUDED.last_seen_at)",
            &[
                &drift.source,
                &drift.path,
                &drift.event_type,
                &drift.change,
                &at,
            ],
        )
        .await?;
    Ok(())
}

/// Alerts, newest first, optionally only the open ones.
pub(crate) async fn list(
    pool: &Pool,
    open_only: bool,
    limit: i64,
) -> Result<Vec<Alert>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, rule, severity, summary, runbook, opened_at, resolved_at FROM alerts \
             WHERE (NOT $1 OR resolved_at IS NULL) ORDER BY opened_at DESC, id LIMIT $2",
            &[&open_only, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Alert {
            id: r.get(0),
            rule: r.get(1),
            severity: r.get(2),
            summary: r.get(3),
            runbook: r.get(4),
            opened_at: Some(switchyard_proto::timestamp(r.get(5))),
            resolved_at: r
                .get::<_, Option<SystemTime>>(6)
                .map(switchyard_proto::timestamp),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;
    use switchyard_chassis::config::{Config, Env};

    const BASE: &str = "destinations: [{ name: sink, kind: webhook, url: \"http://127.0.0.1:1/h\", secret_env: SINK }]\n";

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let mut pairs = vec![("SINK", "whsec_c2VjcmV0")];
        pairs.extend_from_slice(env);
        Config::from_yaml(&format!("{BASE}{yaml}"), &Env::from_pairs(pairs))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn alert_settings_have_defaults_and_resolve_the_webhook_secret() {
        let config = load(
            "flows: [{ name: c, object: contact, destination: sink }]\n",
            &[],
        )
        .expect("valid");
        let alerts = &config.monitor.alerts;
        assert_eq!(alerts.evaluate_every, std::time::Duration::from_secs(60));
        assert_eq!(alerts.bucket, std::time::Duration::from_secs(3600));
        assert_eq!((alerts.deviation, alerts.min_volume), (0.2, 10.0));
        assert_eq!(alerts.report_at_seconds(), Some(8 * 3600));
        assert!(alerts.webhook_url.is_none() && config.flows[0].freshness_sla.is_none());

        let config = load(
            "monitor: { alerts: { webhook_url: \"https://hooks.example/x\", webhook_secret_env: HOOK, bucket: 2s, report_every: 4s } }\n\
             flows: [{ name: c, object: contact, destination: sink, freshness_sla: 30m, minutes_saved_per_event: 10, hourly_cost: 35 }]\n",
            &[("HOOK", "whsec_aG9vaw==")],
        )
        .expect("valid");
        let secret = config.monitor.alerts.webhook_secret().expect("resolved");
        assert_eq!(secret.expose_secret(), "whsec_aG9vaw==");
        assert_eq!(
            config.flows[0].freshness_sla,
            Some(std::time::Duration::from_secs(1800))
        );
        assert_eq!(config.flows[0].minutes_per_record, Some(10.0));
    }

    #[test]
    fn the_webhook_url_may_come_from_the_environment_and_retention_outlives_baselines() {
        let config = load(
            "monitor: { alerts: { webhook_url_env: HOOK_URL, webhook_secret_env: HOOK } }\n",
            &[
                ("HOOK_URL", "https://hooks.example/T0/B0/x"),
                ("HOOK", "whsec_aG9vaw=="),
            ],
        )
        .expect("valid");
        assert_eq!(
            config.monitor.alerts.webhook_url.as_deref(),
            Some("https://hooks.example/T0/B0/x")
        );
        assert_eq!(
            config.monitor.bucket_retention,
            std::time::Duration::from_secs(90 * 24 * 3600)
        );
        assert_eq!(
            config.monitor.report_ids_kept(&config.nats),
            std::time::Duration::from_secs(14 * 24 * 3600)
        );
        let config = load("nats: { retention: 30d }\n", &[]).expect("valid");
        assert_eq!(
            config.monitor.report_ids_kept(&config.nats),
            std::time::Duration::from_secs(60 * 24 * 3600),
            "twice the OPS stream's retention"
        );
        let error = load(
            "monitor: { bucket_retention: 30d, report_retention: 7d, alerts: { webhook_url_env: NOPE, webhook_secret_env: HOOK } }\n",
            &[("HOOK", "whsec_aG9vaw==")],
        )
        .expect_err("too short, and an unset variable");
        for field in [
            "monitor.bucket_retention",
            "monitor.report_retention",
            "monitor.alerts.webhook_url_env: environment variable NOPE is not set",
        ] {
            assert!(error.contains(field), "{field} in {error}");
        }
    }

    #[test]
    fn bad_alert_settings_name_their_field() {
        let error = load(
            "monitor: { alerts: { webhook_url: \"ftp://x\", deviation: 0, report_at: \"25:00\", bucket: 3s, report_every: 4s } }\n",
            &[],
        )
        .expect_err("invalid");
        for field in [
            "monitor.alerts.webhook_url",
            "monitor.alerts.deviation",
            "monitor.alerts.report_at",
            "monitor.alerts.report_every",
        ] {
            assert!(error.contains(field), "{field} in {error}");
        }
        let error = load("monitor: { alerts: { webhook_url: \"https://x\" } }\n", &[])
            .expect_err("a webhook needs its secret");
        assert!(
            error.contains("monitor.alerts.webhook_secret_env"),
            "{error}"
        );
        let error = load(
            "monitor: { alerts: { webhook_url: \"https://x\", webhook_secret_env: NOPE } }\n",
            &[],
        )
        .expect_err("unset variable");
        assert!(error.contains("NOPE is not set"), "{error}");
    }
}
