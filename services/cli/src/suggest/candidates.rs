//! Candidates: every path scored for a contract field (name and value, money built from an amount
//! and its currency), the pick among them, and the hint when none is good enough.

use std::fmt::Write as _;

use serde_json::Value;
use switchyard_proto::contracts::FieldRule;

use super::checker::Checker;
use super::evidence::{Kind, code, evidence, is_empty, kind_of};
use super::names::{name_match, tokens};
use super::proposal::{Part, Pick, spec_json};
use super::sampling::Node;
use super::{MAX_PATHS, NAME_WEIGHT, OUTSIDE_PENALTY, THRESHOLD, VALUE_WEIGHT};

/// A scored candidate path for one field.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub path: String,
    pub depth: usize,
    pub name: f64,
    pub value: f64,
    pub score: f64,
    pub transforms: Vec<&'static str>,
    pub parts: Vec<Part>,
    pub why: String,
}

pub(super) fn by_score(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.depth.cmp(&b.depth))
        .then_with(|| a.path.cmp(&b.path))
}

fn within(path: &str, root: &str) -> bool {
    root.is_empty() || path.starts_with(&format!("{root}."))
}

pub(super) fn is_ancestor_or_self(ancestor: &str, path: &str) -> bool {
    ancestor == path || within(path, ancestor)
}

/// Every candidate for a contract field, best first (including those under the threshold).
pub(crate) fn candidates(
    field: &str,
    rule: &FieldRule,
    sample: &Value,
    nodes: &[Node],
    root: &str,
    checker: &Checker,
) -> Vec<Candidate> {
    let kind = kind_of(field, rule);
    let mut out = if kind == Kind::Money {
        money_candidates(field, rule, sample, nodes, root, checker)
    } else {
        Vec::new()
    };
    for node in nodes.iter().filter(|n| kind.accepts(&n.value)) {
        let name = name_match(field, &node.names);
        let mut value = evidence(kind, field, rule, &node.value, name.split, checker);
        // An email is distinctive enough to propose without a name match, at low confidence.
        let distinctive = kind == Kind::Email && value.score >= 1.0;
        if name.score < 0.3 && !distinctive {
            continue;
        }
        let name_score = if distinctive {
            name.score.max(0.25)
        } else {
            name.score
        };
        if value.score > -1.0
            && !is_empty(&node.value)
            && let Err(problem) = checker.dry_run(field, rule, &node.value, &value.transforms)
        {
            // A path whose sample value breaks the contract would dead-letter every event: never
            // proposed. Phones are the exception: the dry run's region may not be the deployment's.
            let (floor, note) = match kind {
                Kind::Phone => (value.score, "; after e164 (region US) "),
                _ => (-1.0, "; "),
            };
            value.score = value.score.min(floor);
            let _ = write!(value.why, "{note}{problem}");
        }
        let mut score = NAME_WEIGHT * name_score + VALUE_WEIGHT * value.score;
        let mut why = format!("{}; {}", name.why, value.why);
        if !within(&node.path, root) {
            score -= OUTSIDE_PENALTY;
            let _ = write!(why, "; outside the record ({root})");
        }
        out.push(Candidate {
            path: node.path.clone(),
            depth: node.depth(),
            name: name_score,
            value: value.score,
            score: score.clamp(0.0, 0.99),
            transforms: value.transforms,
            parts: Vec::new(),
            why,
        });
    }
    out.sort_by(by_score);
    out
}

/// Money built from an amount and the nearest currency code (`object:` with `minor_units`), when
/// this build's mapping language can do it: decimals are major units (`minor_units` converts
/// them), integers are taken as minor units already (Stripe's way; the evidence says so).
fn money_candidates(
    field: &str,
    rule: &FieldRule,
    sample: &Value,
    nodes: &[Node],
    root: &str,
    checker: &Checker,
) -> Vec<Candidate> {
    if !checker.features.money {
        return Vec::new();
    }
    let mut out = Vec::new();
    for node in nodes {
        let name = name_match(field, &node.names);
        if name.score < 0.3 {
            continue;
        }
        let (mut value, why, transforms): (f64, &str, &[&'static str]) = match &node.value {
            Value::Number(n) if n.is_i64() || n.is_u64() => (
                0.6,
                "value is an integer: taken as minor units already (check)",
                &[],
            ),
            Value::Number(_) => (
                0.9,
                "value is a decimal amount: minor_units converts it",
                &["minor_units"],
            ),
            Value::String(s) if is_decimal(s) => (
                0.9,
                "value is a decimal amount as text: minor_units converts it",
                &["minor_units"],
            ),
            Value::String(s)
                if checker.features.integer
                    && !s.trim().is_empty()
                    && s.trim().bytes().all(|b| b.is_ascii_digit()) =>
            {
                (
                    0.5,
                    "value is a whole number as text: taken as minor units (check)",
                    &["integer"],
                )
            }
            _ => continue,
        };
        let Some(currency) = nearest_currency(node, nodes, checker) else {
            continue;
        };
        let parts = vec![
            Part {
                name: "minor_units",
                path: node.path.clone(),
                transforms: transforms.to_vec(),
            },
            Part {
                name: "currency",
                path: currency.path.clone(),
                transforms: vec!["trim", "uppercase"],
            },
        ];
        let mut why = format!(
            "{}; {why}; currency {} at {}",
            name.why,
            code(currency.value.as_str().unwrap_or_default()),
            currency.path
        );
        let built = checker.resolve(&spec_json(&[], &[], &parts), sample);
        let verdict = match built {
            Ok(Some(money)) => checker
                .satisfies(field, rule, money)
                .map_err(|problem| format!("the contract says: {problem}")),
            Ok(None) => Ok(()),
            Err(problem) => Err(format!("the transforms fail: {problem}")),
        };
        if let Err(problem) = verdict {
            value = -1.0;
            let _ = write!(why, "; {problem}");
        }
        let mut score = NAME_WEIGHT * name.score + VALUE_WEIGHT * value;
        if !within(&node.path, root) {
            score -= OUTSIDE_PENALTY;
            let _ = write!(why, "; outside the record ({root})");
        }
        out.push(Candidate {
            path: node.path.clone(),
            depth: node.depth(),
            name: name.score,
            value,
            score: score.clamp(0.0, 0.99),
            transforms: Vec::new(),
            parts,
            why,
        });
    }
    out
}

/// A decimal amount as text: `110.00`, `-5.5`.
pub(super) fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix('-').unwrap_or(s);
    s.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

fn is_currency_node(node: &Node, checker: &Checker) -> bool {
    node.names
        .last()
        .is_some_and(|k| tokens(k).iter().any(|t| t == "currency"))
        && node.value.as_str().is_some_and(|s| checker.is_currency(s))
}

/// The currency code closest to an amount: the longest shared path, then the shallowest.
fn nearest_currency<'a>(amount: &Node, nodes: &'a [Node], checker: &Checker) -> Option<&'a Node> {
    nodes
        .iter()
        .filter(|n| is_currency_node(n, checker))
        .max_by_key(|n| {
            let common = n
                .path
                .split('.')
                .zip(amount.path.split('.'))
                .take_while(|(a, b)| a == b)
                .count();
            (
                common,
                std::cmp::Reverse(n.depth()),
                std::cmp::Reverse(n.path.clone()),
            )
        })
}

/// The best candidate above the threshold, with other paths that name the field just as well
/// and take the same transforms (the first non-empty one wins at run time).
pub(super) fn pick(candidates: &[Candidate]) -> Option<Pick> {
    let best = candidates.first().filter(|c| c.score >= THRESHOLD)?;
    let mut paths = vec![best.path.clone()];
    for other in &candidates[1..] {
        if paths.len() >= MAX_PATHS {
            break;
        }
        if best.parts.is_empty()
            && other.parts.is_empty()
            && other.score >= THRESHOLD
            && other.transforms == best.transforms
            && other.name >= 0.9
            && other.name >= best.name - 0.05
            && other.value >= 0.0
        {
            paths.push(other.path.clone());
        }
    }
    // The record's own field first (the first non-empty path wins at run time): by name, then
    // depth; the confidence and evidence stay the best candidate's.
    let rank = |path: &String| {
        let i = candidates.iter().position(|c| &c.path == path).unwrap_or(0);
        let c = &candidates[i];
        (
            std::cmp::Reverse((c.name * 100.0).round() as i64),
            c.depth,
            i,
        )
    };
    paths.sort_by_key(rank);
    let mut why = best.why.clone();
    if paths[0] != best.path {
        let _ = write!(why, " (at {})", best.path);
    }
    Some(Pick {
        paths,
        transforms: best.transforms.clone(),
        parts: best.parts.clone(),
        confidence: best.score,
        why,
    })
}

/// Money fields need `{minor_units, currency}`; when no proposal could build it (no currency
/// code found, or a mapping language without `object:`), say where the amount and the currency
/// are, for the person writing it by hand.
pub(super) fn money_hint(field: &str, nodes: &[Node], checker: &Checker) -> Option<String> {
    let amount = nodes
        .iter()
        .filter(|n| {
            n.value.is_number()
                || n.value
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<f64>().is_ok())
        })
        .map(|n| (n, name_match(field, &n.names).score))
        .filter(|(_, score)| *score >= 0.5)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.depth().cmp(&a.0.depth())))?
        .0;
    let currency = nearest_currency(amount, nodes, checker);
    let minor = if amount.value.is_i64() {
        "an integer (minor units?)"
    } else {
        "a decimal (major units)"
    };
    Some(match currency {
        Some(c) => format!(
            "amount at {} ({minor}), currency at {} ({}); build {{minor_units, currency}} by hand",
            amount.path,
            c.path,
            code(c.value.as_str().unwrap_or_default())
        ),
        None => format!(
            "amount at {} ({minor}), but no currency code in the sample",
            amount.path
        ),
    })
}
