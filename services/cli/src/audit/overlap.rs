//! Overlapping systems (two CRMs, two invoicing tools), the three decision questions per pair,
//! and the rule: integrate unless at least two answers are "yes".

use std::collections::BTreeSet;

use serde::Serialize;

use super::model::{Category, ConsolidationFacts, FlowMap, Object, System};

/// A question answered yes at or above this share of the same job.
pub const SAME_JOB_PERCENT: f64 = 70.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    Yes,
    No,
    Unknown,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Stated in the map's `consolidation` section.
    Stated,
    /// Worked out from the systems and flows.
    FromMap,
    /// The map cannot answer it.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub id: &'static str,
    pub question: &'static str,
    pub answer: Answer,
    pub basis: Basis,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Recommendation {
    Integrate,
    Consolidate,
}

/// Two systems doing the same kind of job.
#[derive(Debug, Clone, Serialize)]
pub struct Overlap {
    pub category: Category,
    pub systems: [String; 2],
    pub licence_per_month: [f64; 2],
    /// The cheaper licence: what consolidating saves at the least, whichever system stays.
    pub licence_at_stake_per_month: f64,
    pub licence_at_stake_per_year: f64,
    pub questions: Vec<Question>,
    pub yes: usize,
    pub unknown: usize,
    pub recommendation: Recommendation,
    /// When consolidating: the system to keep (the one more flows touch).
    pub keep: Option<String>,
    /// True when the unanswered questions could still turn the recommendation.
    pub could_change: bool,
}

/// Every overlapping pair, in map order.
pub fn overlaps(map: &FlowMap) -> Vec<Overlap> {
    let mut out = Vec::new();
    for (i, a) in map.systems.iter().enumerate() {
        for b in &map.systems[i + 1..] {
            if a.category == b.category && a.category != Category::Other {
                out.push(pair(map, a, b));
            }
        }
    }
    out
}

/// The integrate/consolidate rule: consolidate only when at least two answers are yes.
pub fn recommend(answers: &[Answer]) -> Recommendation {
    if answers.iter().filter(|a| **a == Answer::Yes).count() >= 2 {
        Recommendation::Consolidate
    } else {
        Recommendation::Integrate
    }
}

fn objects_of(map: &FlowMap, name: &str) -> BTreeSet<Object> {
    map.flows
        .iter()
        .filter(|f| f.from == name || f.to == name)
        .flat_map(|f| f.objects.iter().copied())
        .collect()
}

fn flows_touching(map: &FlowMap, name: &str) -> usize {
    map.flows
        .iter()
        .filter(|f| f.from == name || f.to == name)
        .count()
}

fn pair(map: &FlowMap, a: &System, b: &System) -> Overlap {
    let facts = map.consolidation.iter().find(|c| {
        let s = &c.systems;
        s.len() == 2 && ((s[0] == a.name && s[1] == b.name) || (s[0] == b.name && s[1] == a.name))
    });
    let at_stake = a.licence_per_month.min(b.licence_per_month);
    let questions = vec![
        same_job(map, a, b, facts),
        switching_pays(at_stake * 12.0, facts),
        lacks_capacity(map, facts),
    ];
    let answers: Vec<Answer> = questions.iter().map(|q| q.answer).collect();
    let yes = answers.iter().filter(|a| **a == Answer::Yes).count();
    let unknown = answers.iter().filter(|a| **a == Answer::Unknown).count();
    let recommendation = recommend(&answers);
    let keep = (recommendation == Recommendation::Consolidate).then(|| {
        // Keep the system more flows depend on; on a tie keep the cheaper licence.
        let (fa, fb) = (flows_touching(map, &a.name), flows_touching(map, &b.name));
        if fa > fb || (fa == fb && a.licence_per_month <= b.licence_per_month) {
            a.name.clone()
        } else {
            b.name.clone()
        }
    });
    Overlap {
        category: a.category,
        systems: [a.name.clone(), b.name.clone()],
        licence_per_month: [a.licence_per_month, b.licence_per_month],
        licence_at_stake_per_month: at_stake,
        licence_at_stake_per_year: at_stake * 12.0,
        questions,
        yes,
        unknown,
        recommendation,
        keep,
        could_change: yes < 2 && yes + unknown >= 2,
    }
}

fn same_job(map: &FlowMap, a: &System, b: &System, facts: Option<&ConsolidationFacts>) -> Question {
    let question = "Do they do at least 70 % the same job?";
    let answer = |share: f64| {
        if share >= SAME_JOB_PERCENT {
            Answer::Yes
        } else {
            Answer::No
        }
    };
    if let Some(p) = facts.and_then(|f| f.same_job_percent) {
        return Question {
            id: "same_job",
            question,
            answer: answer(p),
            basis: Basis::Stated,
            reason: format!("stated: {p} % the same job"),
        };
    }
    let (oa, ob) = (objects_of(map, &a.name), objects_of(map, &b.name));
    if oa.is_empty() || ob.is_empty() {
        let idle = if oa.is_empty() { &a.name } else { &b.name };
        return Question {
            id: "same_job",
            question,
            answer: Answer::Unknown,
            basis: Basis::Missing,
            reason: format!(
                "no flow touches {idle}, so the map cannot tell what it is used for; add consolidation.same_job_percent"
            ),
        };
    }
    let common: Vec<&str> = oa.intersection(&ob).map(|o| o.as_str()).collect();
    let all = oa.union(&ob).count();
    let share = 100.0 * common.len() as f64 / all as f64;
    Question {
        id: "same_job",
        question,
        answer: answer(share),
        basis: Basis::FromMap,
        reason: format!(
            "their flows carry {} of {all} object types in common ({}) = {share:.0} %",
            common.len(),
            if common.is_empty() {
                "none".to_owned()
            } else {
                common.join(", ")
            }
        ),
    }
}

fn switching_pays(saving_12_months: f64, facts: Option<&ConsolidationFacts>) -> Question {
    let question = "Does switching save more in 12 months than migration + retraining cost?";
    let migration = facts.and_then(|f| f.migration_cost);
    let retraining = facts.and_then(|f| f.retraining_cost);
    let known = migration.unwrap_or(0.0) + retraining.unwrap_or(0.0);
    let saving = super::report::money(saving_12_months);
    let (answer, basis, reason) = match (migration, retraining) {
        (Some(_), Some(_)) => (
            if saving_12_months > known {
                Answer::Yes
            } else {
                Answer::No
            },
            Basis::Stated,
            format!(
                "12 months of the cheaper licence {saving} vs migration + retraining {}",
                super::report::money(known)
            ),
        ),
        // One cost alone can already settle it: savings cannot beat a part of the cost.
        (Some(_), None) | (None, Some(_)) if known >= saving_12_months => (
            Answer::No,
            Basis::Stated,
            format!(
                "the stated cost {} alone is at least the 12-month saving {saving}",
                super::report::money(known)
            ),
        ),
        _ => (
            Answer::Unknown,
            Basis::Missing,
            format!(
                "the map has no migration and retraining cost; yes if together they stay under {saving} (12 months of the cheaper licence)"
            ),
        ),
    };
    Question {
        id: "switching_pays",
        question,
        answer,
        basis,
        reason,
    }
}

fn lacks_capacity(map: &FlowMap, facts: Option<&ConsolidationFacts>) -> Question {
    // Asked so that "yes" argues for consolidation, like the other two: a team that cannot
    // look after several integrations is better served by fewer systems.
    let question = "Is the capability to maintain several integrations missing?";
    let id = "lacks_integration_capacity";
    if let Some(can) = facts.and_then(|f| f.can_maintain_integrations) {
        return Question {
            id,
            question,
            answer: if can { Answer::No } else { Answer::Yes },
            basis: Basis::Stated,
            reason: format!(
                "stated: the team {} maintain several integrations",
                if can { "can" } else { "cannot" }
            ),
        };
    }
    let unowned: Vec<String> = map
        .flows
        .iter()
        .filter(|f| f.owner().is_none())
        .map(|f| f.display_name())
        .collect();
    let (answer, basis, reason) = if map.flows.is_empty() {
        (
            Answer::Unknown,
            Basis::Missing,
            "the map has no flows; add consolidation.can_maintain_integrations".to_owned(),
        )
    } else if unowned.is_empty() {
        (
            Answer::Unknown,
            Basis::Missing,
            "every flow has an owner, but the map cannot tell whether they have time to run integrations; add consolidation.can_maintain_integrations".to_owned(),
        )
    } else {
        (
            Answer::Yes,
            Basis::FromMap,
            format!(
                "{} of {} flows without an owner today ({})",
                unowned.len(),
                map.flows.len(),
                unowned.join(", ")
            ),
        )
    };
    Question {
        id,
        question,
        answer,
        basis,
        reason,
    }
}

#[cfg(test)]
#[path = "overlap_tests.rs"]
mod tests;
