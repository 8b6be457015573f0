//! Name matching: keys split into words, then scored against a contract field (exact, synonym,
//! full name to split, shared words).

use super::vocabulary::{FULL_NAME_SCORE, FULL_NAMES, GENERIC_TOKENS, OVERLAP_FACTOR, SYNONYMS};

/// A name split into lower-case words: snake, kebab, camel and Pascal case, acronyms, digits.
pub(crate) fn tokens(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !current.is_empty() && i > 0 {
            let prev = chars[i - 1];
            let next = chars.get(i + 1);
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_alphabetic() != c.is_alphabetic())
                || (prev.is_uppercase()
                    && c.is_uppercase()
                    && next.is_some_and(|n| n.is_lowercase()));
            if boundary {
                out.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

pub(super) fn squash(name: &str) -> String {
    tokens(name).concat()
}

/// How well a path's names match a field's name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NameMatch {
    pub score: f64,
    pub why: String,
    /// Take the first or last name out of a full name.
    pub split: Option<Split>,
}

/// Which part of a full name a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    First,
    Last,
}

impl NameMatch {
    fn none() -> Self {
        Self {
            score: 0.0,
            why: "no name match".to_owned(),
            split: None,
        }
    }
}

fn synonym(field: &str, squashed: &str) -> Option<f64> {
    SYNONYMS
        .iter()
        .filter(|(f, aliases, _)| *f == field && aliases.contains(&squashed))
        .map(|(_, _, score)| *score)
        .reduce(f64::max)
}

fn weight(token: &str) -> f64 {
    if GENERIC_TOKENS.contains(&token) || token.bytes().all(|b| b.is_ascii_digit()) {
        0.3
    } else {
        1.0
    }
}

/// Weighted Dice overlap of two token sets, and the shared words; `None` when only generic
/// words (`id`, `name`…) are shared.
fn overlap(a: &[String], b: &[String]) -> Option<(f64, Vec<String>)> {
    let mut a: Vec<&String> = a.iter().collect();
    let mut b: Vec<&String> = b.iter().collect();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    let shared: Vec<String> = a
        .iter()
        .filter(|t| b.contains(t))
        .map(|t| (*t).clone())
        .collect();
    if !shared.iter().any(|t| weight(t) >= 1.0) {
        return None;
    }
    let sum = |ts: &[&String]| ts.iter().map(|t| weight(t)).sum::<f64>();
    let both = shared.iter().map(|t| weight(t)).sum::<f64>();
    Some((2.0 * both / (sum(&a) + sum(&b)), shared))
}

/// Scores the names along a path against a contract field: exact (1.0), a synonym, a full name
/// to split, or shared words; the key itself first, then the key with its parent
/// (`company.name` for `company_name`), which counts for 90 %.
pub(crate) fn name_match(field: &str, names: &[String]) -> NameMatch {
    let Some(key) = names.last() else {
        return NameMatch::none();
    };
    let field_tokens = tokens(field);
    let field_squashed = field_tokens.concat();
    let mut best = NameMatch::none();
    let mut consider = |m: NameMatch| {
        if m.score > best.score {
            best = m;
        }
    };
    let mut forms = vec![(key.clone(), 1.0)];
    if names.len() >= 2 {
        forms.push((format!("{}.{key}", names[names.len() - 2]), 0.9));
    }
    for (shown, factor) in forms {
        let toks: Vec<String> = shown.split('.').flat_map(tokens).collect();
        let squashed = toks.concat();
        if squashed == field_squashed {
            consider(NameMatch {
                score: factor,
                why: format!("name {shown:?} = {field}"),
                split: None,
            });
        }
        if let Some(score) = synonym(field, &squashed) {
            consider(NameMatch {
                score: score * factor,
                why: format!("name {shown:?} ~ {field}"),
                split: None,
            });
        }
        if factor >= 1.0 && FULL_NAMES.contains(&squashed.as_str()) {
            let split = match field {
                "first_name" => Some(Split::First),
                "last_name" => Some(Split::Last),
                _ => None,
            };
            if split.is_some() {
                consider(NameMatch {
                    score: FULL_NAME_SCORE,
                    why: format!("name {shown:?} is a full name (split at the last space)"),
                    split,
                });
            }
        }
        if let Some((dice, shared)) = overlap(&field_tokens, &toks) {
            consider(NameMatch {
                score: OVERLAP_FACTOR * dice * factor,
                why: format!("name {shown:?} shares {:?} with {field}", shared.join(" ")),
                split: None,
            });
        }
    }
    best
}
