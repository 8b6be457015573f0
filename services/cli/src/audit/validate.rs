//! Checks on a parsed flow map that its types alone cannot express: references between systems
//! and flows, ranges, duplicates and weights. Each problem names its field path.

use std::collections::{BTreeMap, BTreeSet};

use super::model::FlowMap;

impl FlowMap {
    /// Everything wrong that the types alone cannot catch, as (field path, message).
    pub(super) fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let a = &self.assumptions;
        positive(&mut out, "assumptions.hourly_rate", a.hourly_rate);
        positive(&mut out, "assumptions.weeks_per_month", a.weeks_per_month);
        if let Some(rate) = a.setup_hourly_rate {
            positive(&mut out, "assumptions.setup_hourly_rate", rate);
        }
        if let Some(problem) = a.weights.problem() {
            out.push(("assumptions.weights".to_owned(), problem));
        }
        if self.systems.is_empty() {
            out.push(("systems".to_owned(), "name at least one system".to_owned()));
        }
        let mut names = BTreeSet::new();
        for (i, s) in self.systems.iter().enumerate() {
            if s.name.trim().is_empty() {
                out.push((format!("systems[{i}].name"), "must not be empty".to_owned()));
            } else if !names.insert(s.name.as_str()) {
                out.push((
                    format!("systems[{i}].name"),
                    format!("{:?} is used twice", s.name),
                ));
            }
            non_negative(
                &mut out,
                &format!("systems[{i}].licence_per_month"),
                s.licence_per_month,
            );
        }
        let known = || names.iter().copied().collect::<Vec<_>>().join(", ");
        let mut flow_names = BTreeMap::new();
        for (i, f) in self.flows.iter().enumerate() {
            for (field, name) in [("from", &f.from), ("to", &f.to)] {
                if !names.contains(name.as_str()) {
                    out.push((
                        format!("flows[{i}].{field}"),
                        format!("no system is named {name:?} (systems: {})", known()),
                    ));
                }
            }
            if f.from == f.to {
                out.push((
                    format!("flows[{i}].to"),
                    "a flow must go to another system".to_owned(),
                ));
            }
            if let Some(earlier) = flow_names.insert(f.display_name(), i) {
                out.push((
                    format!("flows[{i}]"),
                    format!(
                        "flow {:?} is named like flows[{earlier}]; give one a `name`",
                        f.display_name()
                    ),
                ));
            }
            if f.objects.is_empty() {
                out.push((
                    format!("flows[{i}].objects"),
                    "name at least one object".to_owned(),
                ));
            }
            let distinct: BTreeSet<_> = f.objects.iter().collect();
            if distinct.len() != f.objects.len() {
                out.push((
                    format!("flows[{i}].objects"),
                    "an object is listed twice".to_owned(),
                ));
            }
            non_negative(
                &mut out,
                &format!("flows[{i}].volume_per_week"),
                f.volume_per_week,
            );
            non_negative(
                &mut out,
                &format!("flows[{i}].minutes_per_record"),
                f.minutes_per_record,
            );
            if let Some(rate) = f.error_rate_percent
                && !(0.0..=100.0).contains(&rate)
            {
                out.push((
                    format!("flows[{i}].error_rate_percent"),
                    format!("{rate} is not a percentage between 0 and 100"),
                ));
            }
            if let Some(cost) = f.setup_cost {
                non_negative(&mut out, &format!("flows[{i}].setup_cost"), cost);
            }
        }
        for (i, c) in self.consolidation.iter().enumerate() {
            let field = format!("consolidation[{i}].systems");
            match c.systems.as_slice() {
                [a, b] if a != b => {
                    for (j, name) in [a, b].into_iter().enumerate() {
                        if !names.contains(name.as_str()) {
                            out.push((
                                format!("{field}[{j}]"),
                                format!("no system is named {name:?} (systems: {})", known()),
                            ));
                        }
                    }
                }
                _ => out.push((field, "name exactly two different systems".to_owned())),
            }
            if let Some(p) = c.same_job_percent
                && !(0.0..=100.0).contains(&p)
            {
                out.push((
                    format!("consolidation[{i}].same_job_percent"),
                    format!("{p} is not a percentage between 0 and 100"),
                ));
            }
            for (name, value) in [
                ("migration_cost", c.migration_cost),
                ("retraining_cost", c.retraining_cost),
            ] {
                if let Some(v) = value {
                    non_negative(&mut out, &format!("consolidation[{i}].{name}"), v);
                }
            }
        }
        out
    }
}

fn non_negative(out: &mut Vec<(String, String)>, field: &str, value: f64) {
    if !value.is_finite() || value < 0.0 {
        out.push((field.to_owned(), format!("{value} must be 0 or more")));
    }
}

fn positive(out: &mut Vec<(String, String)>, field: &str, value: f64) {
    if !value.is_finite() || value <= 0.0 {
        out.push((field.to_owned(), format!("{value} must be more than 0")));
    }
}
