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
use switchyard_chassis::deadpool_postgres::{Pool, Transaction};
use tokio::sync::Notify;

use crate::clock::{system_time, unix};
use crate::rules::{self, Finding, FlowView, Rule, Thresholds};
use crate::store::{self, StoreError};

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
        let locked = store::alerts::try_lock_evaluation(&tx).await?;
        let mut changed = 0;
        if locked {
            let findings = self.findings(&tx, unix(now)).await?;
            for finding in &findings {
                changed += store::alerts::open(&tx, finding, now).await?;
            }
            let holding: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
            changed += store::alerts::resolve_all_but(&tx, &holding, now).await?;
        }
        let open = store::alerts::open_per_rule(&tx).await?;
        tx.commit().await?;
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
    async fn findings(&self, tx: &Transaction<'_>, now: i64) -> Result<Vec<Finding>, StoreError> {
        let th = self.thresholds();
        let evaluated = rules::evaluated_bucket(now, th.bucket_secs);
        let current = now - now.rem_euclid(th.bucket_secs);
        let mut slots = rules::baseline_slots(evaluated, &th);
        slots.extend([evaluated, current, current - th.bucket_secs]);
        let slots: Vec<SystemTime> = slots.into_iter().map(system_time).collect();
        let first = store::alerts::first_flow_buckets(tx).await?;
        let buckets = store::alerts::flow_buckets_at(tx, &slots).await?;
        let fresh = store::reports::last_delivered(tx).await?;
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
        for d in store::alerts::drift_since(tx, quiet_since).await? {
            findings.push(rules::drift(
                &d.source,
                &d.path,
                &d.change,
                &d.event_type,
                d.last_seen,
            ));
        }
        for (object, open) in store::alerts::open_conflicts_per_object(tx).await? {
            findings.push(rules::conflicts(&object, open));
        }
        findings.extend(crate::status::findings(tx).await?);
        // Two rules never find the same id, but keep the invariant obvious.
        let mut seen = HashSet::new();
        findings.retain(|f| seen.insert(f.id.clone()));
        Ok(findings)
    }
}

/// The per-source volume rule for every source that ever reported (`source_buckets`).
async fn source_findings(
    tx: &Transaction<'_>,
    slots: &[SystemTime],
    now: i64,
    th: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let first = store::alerts::first_source_buckets(tx).await?;
    let buckets = store::alerts::source_buckets_at(tx, slots).await?;
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
