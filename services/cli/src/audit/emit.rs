//! `--emit-config`: a starter `switchyard.yaml` for the chosen pilots, and the checklist of the
//! data contracts those flows need.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use switchyard_chassis::config::{Config, ConfigError, Env};

use super::analysis::{Audit, FlowAnalysis, connector};
use super::model::{Direction, FlowMap, Object, System};

/// The generated files' text and what they hold.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub config: String,
    pub checklist: String,
    /// Environment variables the config names for secrets.
    pub secret_envs: Vec<String>,
    pub sources: usize,
    pub destinations: usize,
    pub flows: usize,
}

/// A name that is valid in the product's config: 1–32 of a-z, 0-9, '-' and '_'.
pub fn token(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(32).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "system".to_owned()
    } else {
        out
    }
}

fn env_name(system: &str, role: &str) -> String {
    format!(
        "SWITCHYARD_{}_{role}_SECRET",
        token(system).to_ascii_uppercase().replace('-', "_")
    )
}

/// The unique key the contract matches records on (contact and company as in DESIGN.md).
fn unique_key(o: Object) -> &'static str {
    match o {
        Object::Contact => "normalised email + E.164 phone",
        Object::Company => "registrable domain + tax id",
        Object::Lead => "normalised email (proposed)",
        Object::Deal => "source system + deal id, via the crosswalk (proposed)",
        Object::Order => "source system + order number (proposed)",
        Object::Invoice => "issuing company + invoice number (proposed)",
        Object::Product => "SKU (proposed)",
    }
}

/// One delivery the config needs: records of `object` written to `to`, first seen in `from`.
struct Leg<'a> {
    flow: &'a FlowAnalysis,
    from: &'a System,
    to: &'a System,
    object: Object,
}

/// Builds the config and checklist for the audit's pilots.
pub fn emit(map: &FlowMap, audit: &Audit, map_name: &str) -> Emitted {
    let mut legs = Vec::new();
    for f in audit.flows.iter().filter(|f| f.pilot) {
        let (Some(a), Some(b)) = (map.system(&f.from), map.system(&f.to)) else {
            continue;
        };
        let mut ends = vec![(a, b)];
        if f.direction == Direction::TwoWay {
            ends.push((b, a));
        }
        for (from, to) in ends {
            for object in &f.objects {
                legs.push(Leg {
                    flow: f,
                    from,
                    to,
                    object: *object,
                });
            }
        }
    }
    let sources: BTreeMap<String, &System> =
        legs.iter().map(|l| (token(&l.from.name), l.from)).collect();
    let destinations: BTreeMap<String, &System> =
        legs.iter().map(|l| (token(&l.to.name), l.to)).collect();
    let mut secret_envs = Vec::new();
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Starter Switchyard configuration for the pilots chosen by `switchyard audit` from {map_name}.\n\
         # Check it with `switchyard check-config -c <this file>` once the secrets below are set.\n\
         # Each flow carries minutes_per_record and hourly_cost so monitor can report realised value.\n\
         # The data contracts these flows need are listed in the checklist written beside this file.\n\n\
         prefix: switchyard\n\nsources:"
    );
    for (name, s) in &sources {
        let var = env_name(&s.name, "SOURCE");
        match connector(&s.kind) {
            Some(kind) => {
                let _ = writeln!(
                    y,
                    "  # {} ({}): its webhooks post to /v1/webhooks/{name}.\n  - name: {name}\n    kind: {kind}\n    secret_env: [{var}]",
                    s.name,
                    s.category.label()
                );
                if kind == "salesforce" {
                    let _ = writeln!(
                        y,
                        "    # PLACEHOLDER: replace with your organisation's 18-character id.\n    organization_id: \"00D000000000000AAA\""
                    );
                }
            }
            None => {
                let _ = writeln!(
                    y,
                    "  # {} ({}): Switchyard has no {} verifier yet; send its events through a relay that\n  # signs them the Standard Webhooks way, to /v1/webhooks/{name}.\n  - name: {name}\n    kind: standard-webhooks\n    secret_env: [{var}]",
                    s.name,
                    s.category.label(),
                    s.kind
                );
            }
        }
        secret_envs.push(var);
    }
    let _ = writeln!(y, "\ndestinations:");
    for (name, s) in &destinations {
        let var = env_name(&s.name, "DESTINATION");
        let _ = writeln!(
            y,
            "  # {} ({}): no {} connector yet, so this is the generic signed webhook.\n  # PLACEHOLDER URL: point it at a relay that writes to {} before going live.\n  - name: {name}\n    kind: webhook\n    url: https://replace-me.invalid/switchyard/{name}\n    secret_env: {var}",
            s.name,
            s.category.label(),
            s.kind,
            s.name
        );
        secret_envs.push(var);
    }
    let _ = writeln!(y, "\nflows:");
    let mut used = BTreeMap::new();
    for leg in &legs {
        let base = token(&format!(
            "{}-to-{}-{}",
            leg.from.name,
            leg.to.name,
            leg.object.as_str()
        ));
        let count = used.entry(base.clone()).or_insert(0);
        *count += 1;
        let name = if *count == 1 {
            base
        } else {
            let suffix = format!("-{count}");
            format!("{}{suffix}", &base[..base.len().min(32 - suffix.len())])
        };
        let f = leg.flow;
        let _ = writeln!(
            y,
            "  # From audit flow {:?} (owner: {}): {}/week × {} min, ≈ {} h/month.\n  - name: {name}\n    object: {}\n    on: [created, updated]\n    destination: {}\n    minutes_per_record: {}\n    hourly_cost: {}",
            f.name,
            f.owner.as_deref().unwrap_or("nobody yet"),
            f.volume_per_week,
            f.minutes_per_record,
            f.roi.hours_per_month,
            leg.object.as_str(),
            token(&leg.to.name),
            f.minutes_per_record,
            audit.settings.hourly_rate
        );
    }
    let checklist = checklist(&legs, &sources, &destinations, &secret_envs, map_name);
    Emitted {
        config: y,
        checklist,
        secret_envs,
        sources: sources.len(),
        destinations: destinations.len(),
        flows: legs.len(),
    }
}

fn checklist(
    legs: &[Leg<'_>],
    sources: &BTreeMap<String, &System>,
    destinations: &BTreeMap<String, &System>,
    secret_envs: &[String],
    map_name: &str,
) -> String {
    let mut by_object: BTreeMap<Object, Vec<&Leg<'_>>> = BTreeMap::new();
    for leg in legs {
        by_object.entry(leg.object).or_default().push(leg);
    }
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Data contracts for the pilot flows\n\nWritten by `switchyard audit --emit-config` from {map_name}. Tick every item before a flow goes live."
    );
    for (object, legs) in &by_object {
        let _ = writeln!(c, "\n## {}\n", object.as_str());
        for leg in legs {
            let _ = writeln!(
                c,
                "- [ ] {} → {}: system of record for each field agreed (audit flow {:?})",
                leg.from.name, leg.to.name, leg.flow.name
            );
        }
        let owners: Vec<&str> = legs
            .iter()
            .filter_map(|l| l.flow.owner.as_deref())
            .collect();
        let _ = writeln!(
            c,
            "- [ ] Purpose written down; owner and change-approval path: {}\n\
             - [ ] Required fields, formats and validation rules\n\
             - [ ] Allowed enum values, versioned\n\
             - [ ] Unique key and matching logic: {}\n\
             - [ ] Create/update rules: which system may write which field\n\
             - [ ] Error handling and fallback defaults (what goes to the dead-letter queue)\n\
             - [ ] Sample payloads and test cases",
            if owners.is_empty() {
                "NOBODY YET, name an owner".to_owned()
            } else {
                owners.join(", ")
            },
            unique_key(*object)
        );
    }
    let _ = writeln!(c, "\n## Connectors and placeholders\n");
    for s in sources.values().filter(|s| connector(&s.kind).is_none()) {
        let _ = writeln!(
            c,
            "- [ ] Source {}: no {} verifier yet; it is configured as `standard-webhooks`, so its events need a signing relay",
            s.name, s.kind
        );
    }
    for s in destinations.values() {
        let _ = writeln!(
            c,
            "- [ ] Destination {}: `kind: webhook` with a PLACEHOLDER URL (https://replace-me.invalid/…); Switchyard has no {} connector yet, so point it at a relay that writes to {}",
            s.name, s.kind, s.name
        );
    }
    let _ = writeln!(c, "\n## Secrets to set (environment variables)\n");
    for var in secret_envs {
        let _ = writeln!(c, "- [ ] {var}");
    }
    c
}

/// Loads the emitted config with the product's own validation, secrets set to placeholders.
pub fn check(emitted: &Emitted) -> Result<Config, ConfigError> {
    let env = Env::from_pairs(emitted.secret_envs.iter().map(|v| {
        (
            v.clone(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        )
    }));
    Config::from_yaml(&emitted.config, &env)
}

#[cfg(test)]
#[path = "emit_tests.rs"]
mod tests;
