//! Output: the proposal as a commented mapping file (YAML), its closing dry-run comment, and the
//! summary table for stderr.

use std::fmt::Write as _;

use switchyard_proto::contracts::Contract;

use super::proposal::{Pick, Proposal};

/// A YAML scalar: bare when plain and unambiguous, double-quoted otherwise.
pub(super) fn scalar(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn spec(pick: &Pick) -> String {
    if !pick.parts.is_empty() {
        let parts: Vec<String> = pick
            .parts
            .iter()
            .map(|part| {
                spec(&Pick {
                    paths: vec![part.path.clone()],
                    transforms: part.transforms.clone(),
                    parts: Vec::new(),
                    confidence: 0.0,
                    why: String::new(),
                })
            })
            .zip(&pick.parts)
            .map(|(spec, part)| format!("{}: {spec}", part.name))
            .collect();
        return format!("{{ object: {{ {} }} }}", parts.join(", "));
    }
    let paths: Vec<String> = pick.paths.iter().map(|p| scalar(p)).collect();
    if pick.transforms.is_empty() {
        format!("{{ paths: [{}] }}", paths.join(", "))
    } else {
        format!(
            "{{ paths: [{}], transforms: [{}] }}",
            paths.join(", "),
            pick.transforms.join(", ")
        )
    }
}

/// One line of a comment: no line breaks from names in the sample.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// The proposal as a commented mapping file.
pub(crate) fn render(p: &Proposal) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# PROPOSAL from `switchyard mappings suggest` ({} → {}): review every line before use.",
        one_line(&p.sample_label),
        p.contract
    );
    let _ = writeln!(
        y,
        "# Each guess comes from one sample, with its confidence (0.00–1.00) and the evidence."
    );
    let _ = writeln!(
        y,
        "# Nothing is deployed: fix what is wrong, fill in what is missing, then put the file in"
    );
    let _ = writeln!(
        y,
        "# transform.mappings_dir and run `switchyard contracts check --mappings DIR`."
    );
    let _ = writeln!(
        y,
        "# The record was found {}.",
        if p.root.is_empty() {
            "at the top of the payload".to_owned()
        } else {
            format!("at {}", p.root)
        }
    );
    let _ = writeln!(y, "name: {}", scalar(&p.name));
    let _ = writeln!(y, "source_kind: {}", scalar(&p.source_kind));
    let _ = write!(y, "event_types: [{}]", scalar(&p.event_type));
    match &p.event_type_origin {
        Some(origin) => {
            let _ = writeln!(y, "  # {}", one_line(origin));
        }
        None => y.push('\n'),
    }
    let _ = writeln!(y, "contract: {}", p.contract);
    match &p.record_id {
        Some(pick) => {
            let _ = writeln!(
                y,
                "record_id: {}  # {:.2}: {}",
                spec(pick),
                pick.confidence,
                one_line(&pick.why)
            );
        }
        None => {
            let _ = writeln!(
                y,
                "record_id: {{ paths: [TODO] }}  # TODO: no id at the top of the record; give the path of the record's id in the source"
            );
        }
    }
    match (&p.occurred_at, &p.occurred_at_hint) {
        (Some(pick), _) => {
            let _ = writeln!(
                y,
                "occurred_at: {}  # {:.2}: {}",
                spec(pick),
                pick.confidence,
                one_line(&pick.why)
            );
        }
        (None, hint) => {
            let _ = writeln!(
                y,
                "# occurred_at: no update or creation time found{}; transform uses the time of receipt",
                hint.as_ref()
                    .map(|h| format!(" ({})", one_line(h)))
                    .unwrap_or_default()
            );
        }
    }
    if p.fields.is_empty() {
        let _ = writeln!(y, "fields: {{}}");
    } else {
        let _ = writeln!(y, "fields:");
        for (field, pick) in &p.fields {
            let _ = writeln!(
                y,
                "  {field}: {}  # {:.2}: {}",
                spec(pick),
                pick.confidence,
                one_line(&pick.why)
            );
        }
    }
    if !p.missing.is_empty() {
        let _ = writeln!(y, "# Not found in the sample:");
        for m in &p.missing {
            let mut line = format!("#   {}", m.field);
            if m.required {
                line.push_str(" — REQUIRED: the contract rejects a record without it");
            } else if let Some(default) = &m.default {
                let _ = write!(line, " (the contract's default: {default})");
            }
            if let Some(hint) = &m.hint {
                let _ = write!(line, " — {}", one_line(hint));
            }
            let _ = writeln!(y, "{line}");
        }
    }
    y
}

/// The last comment of the file: what the proposal did with the sample.
pub(super) fn dry_run_comment(p: &Proposal, contract: &Contract, problems: &[String]) -> String {
    if problems.is_empty() {
        format!(
            "# Dry run on the sample: {} field(s) mapped; {} accepts the record.\n",
            p.fields.len(),
            contract.id()
        )
    } else {
        // Field names only: the messages carry sample values.
        let fields: Vec<&str> = problems
            .iter()
            .map(|problem| problem.split(':').next().unwrap_or_default())
            .collect();
        format!(
            "# Dry run on the sample: {} field(s) mapped; problems with {} (details on stderr).\n",
            p.fields.len(),
            fields.join(", ")
        )
    }
}

/// The table for stderr: field, first path, confidence; then the dry run's verdict.
pub(super) fn summary(p: &Proposal, contract: &Contract, problems: &[String]) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let shown = |pick: &Pick| {
        let first = pick.paths.first().cloned().unwrap_or_default();
        if pick.paths.len() > 1 {
            format!("{first} (+{})", pick.paths.len() - 1)
        } else {
            first
        }
    };
    let mut row = |field: &str, pick: Option<&Pick>, none: &str| {
        rows.push(match pick {
            Some(pick) => (
                field.to_owned(),
                shown(pick),
                format!("{:.2}", pick.confidence),
            ),
            None => (field.to_owned(), none.to_owned(), String::new()),
        });
    };
    row("record_id", p.record_id.as_ref(), "TODO (not found)");
    row(
        "occurred_at",
        p.occurred_at.as_ref(),
        "(not found: receipt time)",
    );
    for (field, rule) in &contract.fields {
        let none = if rule.required {
            "(not found; required)"
        } else {
            "(not found)"
        };
        row(field, p.fields.get(field), none);
    }
    let width = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let path_width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<path_width$}  confidence",
        "field", "path"
    );
    for (field, path, confidence) in rows {
        let line = format!("{field:<width$}  {path:<path_width$}  {confidence}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if problems.is_empty() {
        let _ = writeln!(
            out,
            "dry run on the sample: {} accepts the mapped record",
            contract.id()
        );
    } else {
        let _ = writeln!(out, "dry run on the sample: {}", problems.join("; "));
    }
    out
}
