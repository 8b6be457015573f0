//! The alert rules as pure functions of the stored numbers: a flow's baseline (the same hour of
//! past weeks, else a trailing average) and the conditions that hold now. Whatever the database
//! holds is loaded by `alerts`; nothing here does I/O, so the rules are tested on their own.

use std::collections::HashMap;
use std::time::Duration;

/// Seconds in a week: hour-of-week baselines look this far back per sample.
const WEEK: i64 = 7 * 24 * 3600;
/// Past weeks an hour-of-week baseline averages at most.
pub(crate) const MAX_WEEKS: i64 = 8;
/// Weeks needed before the hour-of-week baseline replaces the trailing one.
const MIN_WEEKS: usize = 2;
/// Buckets a trailing baseline needs before it is trusted: one or two buckets are too noisy to
/// raise anything from.
const MIN_TRAILING: usize = 3;

/// The rules, as they name alerts (`<rule>:<subject>`) and label `switchyard_alerts_open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Rule {
    VolumeDrop,
    VolumeSpike,
    ErrorRate,
    Freshness,
    DlqGrowth,
    SchemaDrift,
    IdentityConflicts,
    /// Deliver paused a flow (its destination answered 410), until an operator resumes it.
    FlowPaused,
    /// A destination's OAuth2 refresh fails, or its refresh token expires soon.
    Credentials,
}

impl Rule {
    pub(crate) const ALL: [Rule; 9] = [
        Self::VolumeDrop,
        Self::VolumeSpike,
        Self::ErrorRate,
        Self::Freshness,
        Self::DlqGrowth,
        Self::SchemaDrift,
        Self::IdentityConflicts,
        Self::FlowPaused,
        Self::Credentials,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::VolumeDrop => "volume_drop",
            Self::VolumeSpike => "volume_spike",
            Self::ErrorRate => "error_rate",
            Self::Freshness => "freshness",
            Self::DlqGrowth => "dlq_growth",
            Self::SchemaDrift => "schema_drift",
            Self::IdentityConflicts => "identity_conflicts",
            Self::FlowPaused => "flow_paused",
            Self::Credentials => "credentials",
        }
    }

    pub(crate) fn severity(self) -> &'static str {
        match self {
            Self::ErrorRate | Self::Freshness | Self::FlowPaused | Self::Credentials => "critical",
            Self::VolumeDrop | Self::VolumeSpike | Self::DlqGrowth | Self::IdentityConflicts => {
                "warning"
            }
            Self::SchemaDrift => "info",
        }
    }

    /// The runbook section saying what to do.
    pub(crate) fn runbook(self) -> &'static str {
        match self {
            Self::VolumeDrop => "docs/runbook.md#volume-drop",
            Self::VolumeSpike => "docs/runbook.md#volume-spike",
            Self::ErrorRate => "docs/runbook.md#error-rate-above-its-baseline",
            Self::Freshness => "docs/runbook.md#freshness-sla-breached",
            Self::DlqGrowth => "docs/runbook.md#dead-letters-are-growing",
            Self::SchemaDrift => "docs/runbook.md#schema-drift",
            Self::IdentityConflicts => "docs/runbook.md#an-identity-conflict-needs-review",
            Self::FlowPaused => "docs/runbook.md#a-flow-is-paused",
            Self::Credentials => "docs/runbook.md#destination-credentials-failing-or-expiring",
        }
    }
}

/// A condition that holds now: an alert to open, or to keep open.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    /// `<rule>:<subject>`, e.g. `volume_drop:flow=contacts`.
    pub id: String,
    pub rule: Rule,
    /// Words and numbers only: flow, source and object names, counts, field paths — never a
    /// value from a record.
    pub summary: String,
}

/// The flow an alert id is about (`volume_drop:flow=contacts` → `contacts`), if it is about one:
/// alert ids are built in [`Finding::new`] and taken apart here only.
pub(crate) fn flow_of(alert_id: &str) -> Option<&str> {
    alert_id.split_once(":flow=").map(|(_, flow)| flow)
}

impl Finding {
    fn new(rule: Rule, subject: &str, summary: String) -> Self {
        Self {
            id: format!("{}:{subject}", rule.as_str()),
            rule,
            summary,
        }
    }
}

/// One bucket of a flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub received: i64,
    pub delivered: i64,
    pub failed: i64,
    pub dead_lettered: i64,
}

impl Counts {
    fn errors(self) -> i64 {
        self.failed + self.dead_lettered
    }
}

/// The thresholds of `monitor.alerts`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    pub bucket_secs: i64,
    pub trailing: u32,
    pub deviation: f64,
    pub min_volume: f64,
    pub dlq_growth: u64,
}

/// What the rules know about one flow.
#[derive(Debug)]
pub(crate) struct FlowView<'a> {
    pub name: &'a str,
    /// Start of the flow's first bucket ever: it is partial (traffic began inside it), so no
    /// baseline uses it, and older slots are not "empty", just before the flow's time.
    pub first_bucket: Option<i64>,
    /// Buckets by start; a missing slot after `first_bucket` had no traffic.
    pub buckets: &'a HashMap<i64, Counts>,
    /// Unix time of the last delivery.
    pub last_delivered: Option<i64>,
    pub freshness_sla: Option<Duration>,
}

impl FlowView<'_> {
    fn at(&self, start: i64) -> Counts {
        self.buckets.get(&start).copied().unwrap_or_default()
    }

    /// Whether a slot is a whole bucket of the flow's time (after its first, partial one).
    fn known(&self, start: i64) -> bool {
        self.first_bucket.is_some_and(|first| start > first)
    }
}

/// A flow's expected numbers for one bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Baseline {
    /// Events received per bucket.
    pub volume: f64,
    /// Failed and dead-lettered per received event.
    pub error_rate: f64,
    /// In words, for summaries: "same hour of 3 past weeks", "trailing 24 buckets".
    pub basis: String,
}

/// The starts of the slots a baseline for bucket `evaluated` may use: the same hour of up to
/// [`MAX_WEEKS`] past weeks (hourly buckets only) and the trailing buckets.
pub(crate) fn baseline_slots(evaluated: i64, th: &Thresholds) -> Vec<i64> {
    let mut slots: Vec<i64> = (1..=i64::from(th.trailing))
        .map(|i| evaluated - i * th.bucket_secs)
        .collect();
    if th.bucket_secs == 3600 {
        slots.extend((1..=MAX_WEEKS).map(|k| evaluated - k * WEEK));
    }
    slots
}

/// The baseline for bucket `evaluated`: the mean of the same hour-of-week over past weeks when at
/// least two are known (hourly buckets only), else the mean of the trailing buckets; `None` while
/// too little is known.
pub(crate) fn baseline(view: &FlowView<'_>, evaluated: i64, th: &Thresholds) -> Option<Baseline> {
    let weekly: Vec<i64> = if th.bucket_secs == 3600 {
        (1..=MAX_WEEKS)
            .map(|k| evaluated - k * WEEK)
            .filter(|s| view.known(*s))
            .collect()
    } else {
        Vec::new()
    };
    let (slots, basis) = if weekly.len() >= MIN_WEEKS {
        let basis = format!("same hour of {} past weeks", weekly.len());
        (weekly, basis)
    } else {
        let trailing: Vec<i64> = (1..=i64::from(th.trailing))
            .map(|i| evaluated - i * th.bucket_secs)
            .filter(|s| view.known(*s))
            .collect();
        if trailing.len() < MIN_TRAILING {
            return None;
        }
        let basis = format!("mean of the {} buckets before", trailing.len());
        (trailing, basis)
    };
    let (received, errors) = slots.iter().fold((0_i64, 0_i64), |(r, e), s| {
        let c = view.at(*s);
        (r + c.received, e + c.errors())
    });
    #[allow(clippy::cast_precision_loss)] // event counts are far below 2^52
    let (volume, error_rate) = (
        received as f64 / slots.len() as f64,
        if received > 0 {
            errors as f64 / received as f64
        } else {
            0.0
        },
    );
    Some(Baseline {
        volume,
        error_rate,
        basis,
    })
}

/// The bucket the volume and error-rate rules judge at `now`: the newest one that ended at least
/// `settle` ago (a bucket still filling would always look like a drop).
pub(crate) fn evaluated_bucket(now: i64, bucket_secs: i64) -> i64 {
    let settle = (bucket_secs / 2).min(30);
    let settled = now - settle;
    settled - settled.rem_euclid(bucket_secs) - bucket_secs
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// Every flow rule's findings for one flow at `now` (unix seconds).
pub(crate) fn evaluate_flow(view: &FlowView<'_>, now: i64, th: &Thresholds) -> Vec<Finding> {
    let mut found = Vec::new();
    let subject = format!("flow={}", view.name);
    let evaluated = evaluated_bucket(now, th.bucket_secs);
    let when = crate::clock::utc(evaluated);
    if let (true, Some(base)) = (view.known(evaluated), baseline(view, evaluated, th)) {
        let seen = view.at(evaluated);
        if base.volume >= th.min_volume && base.volume > 0.0 {
            found.extend(volume(
                &format!("flow {} received {} events", view.name, seen.received),
                &subject,
                seen,
                &base,
                &when,
                th,
            ));
            if seen.received > 0 {
                #[allow(clippy::cast_precision_loss)]
                let rate = seen.errors() as f64 / seen.received as f64;
                if rate > base.error_rate + th.deviation {
                    found.push(Finding::new(
                        Rule::ErrorRate,
                        &subject,
                        format!(
                            "flow {}: {} failed or dead-lettered attempts per 100 received events in the bucket from {when} ({} of {}), baseline {} ({})",
                            view.name,
                            (rate * 100.0).round(),
                            seen.errors(),
                            seen.received,
                            (base.error_rate * 100.0).round(),
                            base.basis
                        ),
                    ));
                }
            }
        }
    }
    if let Some(sla) = view.freshness_sla {
        // A flow that never delivered is as stale as its first report is old.
        let since = view.last_delivered.or(view.first_bucket);
        if let Some(since) = since {
            let age = u64::try_from(now - since).unwrap_or(0);
            if age > sla.as_secs() {
                let last = view.last_delivered.map_or_else(
                    || "nothing delivered yet".to_owned(),
                    |t| format!("last delivery {}", crate::clock::utc(t)),
                );
                found.push(Finding::new(
                    Rule::Freshness,
                    &subject,
                    format!(
                        "flow {} has delivered nothing for {} (SLA {}); {last}",
                        view.name,
                        humantime::format_duration(Duration::from_secs(age)),
                        humantime::format_duration(sla)
                    ),
                ));
            }
        }
    }
    // Dead letters of the current bucket or the one before, so the alert does not flap at each
    // bucket boundary.
    let current = now - now.rem_euclid(th.bucket_secs);
    let dead = view
        .at(current)
        .dead_lettered
        .max(view.at(current - th.bucket_secs).dead_lettered);
    if u64::try_from(dead).unwrap_or(0) > th.dlq_growth {
        found.push(Finding::new(
            Rule::DlqGrowth,
            &subject,
            format!(
                "flow {}: {dead} changes dead-lettered in one bucket (threshold {}); see `switchyard admin dlq list --stage deliver --key {}`",
                view.name, th.dlq_growth, view.name
            ),
        ));
    }
    found
}

/// A volume drop or spike against `base`, if the bucket strays more than the deviation.
fn volume(
    what: &str,
    subject: &str,
    seen: Counts,
    base: &Baseline,
    when: &str,
    th: &Thresholds,
) -> Option<Finding> {
    #[allow(clippy::cast_precision_loss)]
    let change = (seen.received as f64 - base.volume) / base.volume;
    let (rule, side) = if change < -th.deviation {
        (Rule::VolumeDrop, "below")
    } else if change > th.deviation {
        (Rule::VolumeSpike, "above")
    } else {
        return None;
    };
    Some(Finding::new(
        rule,
        subject,
        format!(
            "{what} in the bucket from {when}, {} {side} its baseline of {:.1} ({})",
            percent(change.abs()),
            base.volume,
            base.basis
        ),
    ))
}

/// The per-source volume rule at `now`: the golden changes the flows picked up whose event came
/// from the source (`view.name`), against the source's own baseline, with the same deviation
/// and minimum volume as a flow's. A source going quiet shows here even while the flows it
/// feeds still get changes from others.
pub(crate) fn evaluate_source(view: &FlowView<'_>, now: i64, th: &Thresholds) -> Option<Finding> {
    let evaluated = evaluated_bucket(now, th.bucket_secs);
    if !view.known(evaluated) {
        return None;
    }
    let base = baseline(view, evaluated, th)?;
    if base.volume < th.min_volume || base.volume <= 0.0 {
        return None;
    }
    let seen = view.at(evaluated);
    volume(
        &format!(
            "source {}: {} changes from its events reached the flows",
            view.name, seen.received
        ),
        &format!("source={}", view.name),
        seen,
        &base,
        &crate::clock::utc(evaluated),
        th,
    )
}

/// A schema-drift notice still within its quiet period.
pub(crate) fn drift(
    source: &str,
    path: &str,
    change: &str,
    event_type: &str,
    last_seen: i64,
) -> Finding {
    Finding::new(
        Rule::SchemaDrift,
        &format!("source={source},path={path}"),
        format!(
            "{source} payloads ({event_type}) changed shape: {change} at {path}; last notice {}",
            crate::clock::utc(last_seen)
        ),
    )
}

/// A condition deliver reported (see `status`), as stored with its subject and summary.
pub(crate) fn status(rule: Rule, subject: &str, summary: String) -> Finding {
    Finding::new(rule, subject, summary)
}

/// Open identity conflicts of one object.
pub(crate) fn conflicts(object: &str, open: i64) -> Finding {
    Finding::new(
        Rule::IdentityConflicts,
        &format!("object={object}"),
        format!(
            "{open} open identity conflict(s) between {object} records wait for review (`switchyard admin conflicts --object {object}`)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TH: Thresholds = Thresholds {
        bucket_secs: 10,
        trailing: 4,
        deviation: 0.2,
        min_volume: 10.0,
        dlq_growth: 1,
    };

    fn received(n: i64) -> Counts {
        Counts {
            received: n,
            delivered: n,
            ..Counts::default()
        }
    }

    fn view(buckets: &HashMap<i64, Counts>) -> FlowView<'_> {
        FlowView {
            name: "contacts",
            first_bucket: buckets.keys().min().copied(),
            buckets,
            last_delivered: None,
            freshness_sla: None,
        }
    }

    /// `now` such that bucket `start` is the one evaluated.
    fn judging(start: i64) -> i64 {
        start + 2 * TH.bucket_secs
    }

    #[test]
    fn the_bucket_judged_is_the_last_settled_one() {
        assert_eq!(evaluated_bucket(1000, 10), 980);
        assert_eq!(evaluated_bucket(1006, 10), 990);
        assert_eq!(evaluated_bucket(7200 + 31, 3600), 3600);
        assert_eq!(evaluated_bucket(7200 + 29, 3600), 0);
    }

    #[test]
    fn a_thirty_percent_drop_alerts_and_a_steady_flow_does_not() {
        // The first bucket is partial and ignored; then four steady buckets of 20.
        let mut buckets: HashMap<i64, Counts> = (0..5)
            .map(|i| (i * 10, received(if i == 0 { 3 } else { 20 })))
            .collect();
        buckets.insert(50, received(19));
        assert!(evaluate_flow(&view(&buckets), judging(50), &TH).is_empty());
        buckets.insert(50, received(14));
        let found = evaluate_flow(&view(&buckets), judging(50), &TH);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, "volume_drop:flow=contacts");
        assert!(
            found[0].summary.contains("30% below its baseline of 20.0"),
            "{}",
            found[0].summary
        );
        buckets.insert(50, received(30));
        assert_eq!(
            evaluate_flow(&view(&buckets), judging(50), &TH)[0].rule,
            Rule::VolumeSpike
        );
    }

    #[test]
    fn a_source_drop_names_the_source_and_a_quiet_source_raises_nothing() {
        let mut buckets: HashMap<i64, Counts> = (0..5)
            .map(|i| (i * 10, received(if i == 0 { 3 } else { 20 })))
            .collect();
        buckets.insert(50, received(14));
        let mut v = view(&buckets);
        v.name = "hubspot";
        let found = evaluate_source(&v, judging(50), &TH).expect("a drop");
        assert_eq!(found.id, "volume_drop:source=hubspot");
        assert!(
            found.summary.contains("source hubspot: 14 changes")
                && found.summary.contains("30% below its baseline of 20.0"),
            "{}",
            found.summary
        );
        buckets.insert(50, received(19));
        assert_eq!(evaluate_source(&view(&buckets), judging(50), &TH), None);
        let quiet: HashMap<i64, Counts> = (0..6)
            .map(|i| (i * 10, received(if i == 5 { 1 } else { 5 })))
            .collect();
        assert_eq!(evaluate_source(&view(&quiet), judging(50), &TH), None);
    }

    #[test]
    fn a_young_flow_or_a_quiet_one_raises_nothing() {
        // Two whole buckets only: too little to trust.
        let buckets: HashMap<i64, Counts> = [
            (0, received(5)),
            (10, received(20)),
            (20, received(20)),
            (30, received(2)),
        ]
        .into();
        assert!(evaluate_flow(&view(&buckets), judging(30), &TH).is_empty());
        // Under min_volume.
        let buckets: HashMap<i64, Counts> = (0..6).map(|i| (i * 10, received(5))).collect();
        let mut quiet = buckets.clone();
        quiet.insert(50, received(1));
        assert!(evaluate_flow(&view(&quiet), judging(50), &TH).is_empty());
    }

    #[test]
    fn missing_buckets_after_the_first_count_as_silence() {
        let buckets: HashMap<i64, Counts> = (0..5).map(|i| (i * 10, received(20))).collect();
        let found = evaluate_flow(&view(&buckets), judging(50), &TH);
        assert_eq!(found[0].id, "volume_drop:flow=contacts");
        assert!(found[0].summary.contains("received 0 events"));
    }

    #[test]
    fn an_error_spike_alerts_above_the_baseline_rate() {
        let mut buckets: HashMap<i64, Counts> = (0..5).map(|i| (i * 10, received(20))).collect();
        buckets.insert(
            50,
            Counts {
                received: 20,
                failed: 30,
                dead_lettered: 2,
                ..Counts::default()
            },
        );
        let found = evaluate_flow(&view(&buckets), judging(50), &TH);
        let ids: Vec<&str> = found.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["error_rate:flow=contacts"]);
        // Dead letters count in the bucket still filling (and the one before).
        buckets.insert(
            judging(50),
            Counts {
                dead_lettered: 2,
                ..Counts::default()
            },
        );
        let found = evaluate_flow(&view(&buckets), judging(50), &TH);
        assert_eq!(found[1].id, "dlq_growth:flow=contacts");
        buckets.remove(&judging(50));
        // A rate within deviation points of the baseline's is normal.
        buckets.insert(
            50,
            Counts {
                received: 20,
                failed: 3,
                ..Counts::default()
            },
        );
        assert!(evaluate_flow(&view(&buckets), judging(50), &TH).is_empty());
    }

    #[test]
    fn hourly_buckets_use_the_same_hour_of_past_weeks_once_two_are_known() {
        let th = Thresholds {
            bucket_secs: 3600,
            trailing: 24,
            ..TH
        };
        let now_bucket = 10 * WEEK;
        let mut buckets: HashMap<i64, Counts> = HashMap::new();
        // The flow began (partially) an hour before the earliest week compared.
        buckets.insert(now_bucket - 3 * WEEK - 3600, received(1));
        // Busy Monday mornings, quiet otherwise.
        for k in 1..=3 {
            buckets.insert(now_bucket - k * WEEK, received(100));
        }
        for i in 1..=24 {
            buckets.insert(now_bucket - i * 3600, received(10));
        }
        buckets.insert(now_bucket, received(100));
        let v = view(&buckets);
        let base = baseline(&v, now_bucket, &th).expect("a baseline");
        assert!((base.volume - 100.0).abs() < 1e-9, "{base:?}");
        assert_eq!(base.basis, "same hour of 3 past weeks");
        assert!(evaluate_flow(&v, now_bucket + 3600 + 31, &th).is_empty());
    }

    #[test]
    fn every_rule_names_a_runbook_section_that_exists() {
        let runbook = include_str!("../../../docs/runbook.md");
        // GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.
        let anchors: Vec<String> = runbook
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(|h| {
                h.to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect()
            })
            .collect();
        for rule in Rule::ALL {
            let anchor = rule
                .runbook()
                .strip_prefix("docs/runbook.md#")
                .expect("a runbook link");
            assert!(
                anchors.iter().any(|a| a == anchor),
                "{}: no section #{anchor} in docs/runbook.md",
                rule.as_str()
            );
        }
    }

    #[test]
    fn freshness_counts_from_the_last_delivery_or_the_first_report() {
        let buckets: HashMap<i64, Counts> = [(100, Counts::default())].into();
        let mut v = view(&buckets);
        v.freshness_sla = Some(Duration::from_secs(60));
        assert!(evaluate_flow(&v, 150, &TH).is_empty());
        let found = evaluate_flow(&v, 170, &TH);
        assert_eq!(found[0].id, "freshness:flow=contacts");
        assert!(found[0].summary.contains("nothing delivered yet"));
        v.last_delivered = Some(165);
        assert!(evaluate_flow(&v, 170, &TH).is_empty());
    }
}
