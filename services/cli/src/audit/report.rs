//! The readable terminal report (the JSON report is the same [`Audit`] serialised).

use std::fmt::Write as _;

use super::analysis::{Audit, FlowAnalysis, QUICK_PAYBACK_DAYS};
use super::overlap::{Answer, Basis, Overlap, Recommendation};

/// `$1,155`, `$577.50`: whole amounts without cents, others with two decimals.
pub fn money(amount: f64) -> String {
    let cents = (amount * 100.0).round() as i64;
    let (sign, cents) = if cents < 0 {
        ("-", -cents)
    } else {
        ("", cents)
    };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if cents % 100 == 0 {
        format!("{sign}${grouped}")
    } else {
        format!("{sign}${grouped}.{:02}", cents % 100)
    }
}

/// A number without a needless `.0`.
fn num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

/// Weeks per month to three places (4.333 for a calendar month), without a needless fraction.
fn weeks(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Renders the whole report as text.
pub fn render(a: &Audit) -> String {
    let mut out = String::new();
    let s = &a.settings;
    let _ = writeln!(
        out,
        "Integration audit{}",
        a.business
            .as_deref()
            .map(|b| format!(" — {b}"))
            .unwrap_or_default()
    );
    let w = &s.weights;
    let _ = writeln!(
        out,
        "Assumptions: {}/h loaded cost, setup at {}/h, {} week(s) of re-keying per month; weights: time {} %, errors {} %, revenue {} %, risk {} %, experience {} %",
        money(s.hourly_rate),
        money(s.setup_hourly_rate),
        weeks(s.weeks_per_month),
        num(w.time_saved),
        num(w.error_reduction),
        num(w.revenue_impact),
        num(w.risk_reduction),
        num(w.user_experience),
    );
    overlaps(&mut out, &a.overlaps);
    roi(&mut out, a);
    scorecards(&mut out, &a.flows);
    pilots(&mut out, a);
    out
}

fn overlaps(out: &mut String, overlaps: &[Overlap]) {
    let _ = writeln!(out, "\nOVERLAP");
    if overlaps.is_empty() {
        let _ = writeln!(
            out,
            "  No two systems share a category: nothing to consolidate."
        );
    }
    for o in overlaps {
        let _ = writeln!(
            out,
            "  {}: {} ({}/month) and {} ({}/month); licence at stake {}/month ({}/year)",
            o.category.label(),
            o.systems[0],
            money(o.licence_per_month[0]),
            o.systems[1],
            money(o.licence_per_month[1]),
            money(o.licence_at_stake_per_month),
            money(o.licence_at_stake_per_year),
        );
        for (i, q) in o.questions.iter().enumerate() {
            let answer = match q.answer {
                Answer::Yes => "yes",
                Answer::No => "no",
                Answer::Unknown => "unknown",
            };
            let basis = match q.basis {
                Basis::Stated => "stated",
                Basis::FromMap => "from the map",
                Basis::Missing => "the map cannot say",
            };
            let _ = writeln!(out, "    {}. {}", i + 1, q.question);
            let _ = writeln!(out, "       {answer} ({basis}): {}", q.reason);
        }
        let verdict = match (&o.recommendation, &o.keep) {
            (Recommendation::Consolidate, Some(keep)) => format!("CONSOLIDATE onto {keep}"),
            _ => "INTEGRATE".to_owned(),
        };
        let _ = writeln!(
            out,
            "    → {verdict}: {} of 3 answers are yes (consolidate only with 2 or more){}",
            o.yes,
            if o.could_change {
                "; the unanswered questions could still turn it to consolidate"
            } else {
                ""
            }
        );
    }
}

fn roi(out: &mut String, a: &Audit) {
    let _ = writeln!(
        out,
        "\nROI PER FLOW  (h/month = volume/week × minutes ÷ 60 × {} week(s)/month, rounded; value = h/month × {}/h)",
        weeks(a.settings.weeks_per_month),
        money(a.settings.hourly_rate)
    );
    let _ = writeln!(
        out,
        "  {:<30} {:>14} {:>8} {:>12} {:>16}",
        "flow", "volume × min", "h/month", "value/month", "software budget"
    );
    for f in &a.flows {
        let _ = writeln!(
            out,
            "  {:<30} {:>14} {:>8} {:>12} {:>16}",
            f.name,
            format!(
                "{}/wk × {}",
                num(f.volume_per_week),
                num(f.minutes_per_record)
            ),
            num(f.roi.hours_per_month),
            money(f.roi.value_per_month),
            money(f.roi.software_budget_per_month),
        );
    }
    let _ = writeln!(
        out,
        "  {:<30} {:>14} {:>8} {:>12} {:>16}",
        "total",
        "",
        num(a.total_hours_per_month),
        money(a.total_value_per_month),
        money(a.total_value_per_month / 2.0),
    );
    let _ = writeln!(
        out,
        "  Software budget = half the monthly value: what the saving justifies spending on tools."
    );
}

fn scorecards(out: &mut String, flows: &[FlowAnalysis]) {
    let _ = writeln!(
        out,
        "\nSCORECARD  (each criterion 0–5; points = weight × score ÷ 5; rank score = score − 5 per unit of change)"
    );
    for f in flows {
        let _ = writeln!(
            out,
            "  #{} {}  ({} → {}: {})  score {:.1}, change {}, rank score {:.1}{}",
            f.rank,
            f.name,
            f.from,
            f.to,
            f.objects
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            f.score,
            f.change.units,
            f.rank_score,
            if f.pilot { "  [PILOT]" } else { "" }
        );
        for c in &f.scorecard {
            let _ = writeln!(
                out,
                "     {:<16} {:>3} %  {}/5  {:>5.1}  {}",
                c.name,
                num(c.weight),
                c.score,
                c.points,
                c.derived
            );
        }
        if !f.change.reasons.is_empty() {
            let _ = writeln!(out, "     change: {}", f.change.reasons.join(", "));
        }
    }
}

fn pilots(out: &mut String, a: &Audit) {
    let _ = writeln!(
        out,
        "\nPILOTS AND PAYBACK  (setup ≈ 12 h, +12 two-way, +4 per extra object, +8 per end without a connector, × {}/h)",
        money(a.settings.setup_hourly_rate)
    );
    if a.pilots.is_empty() {
        let _ = writeln!(out, "  No flow saves time: no pilot to suggest.");
    }
    for f in a.flows.iter().filter(|f| f.pilot) {
        let p = &f.payback;
        let setup = match p.setup_hours {
            Some(h) => format!("{} ({} h, estimated)", money(p.setup_cost), num(h)),
            None => format!("{} (stated)", money(p.setup_cost)),
        };
        let payback = match (p.weeks, p.days) {
            (Some(w), Some(d)) => format!("pays back in {w:.1} weeks ({} days)", d.ceil()),
            _ => "never pays back (no time saved)".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}. {}: saves {}/month; setup {setup}; {payback}{}",
            a.pilots
                .iter()
                .position(|n| *n == f.name)
                .map_or(0, |i| i + 1),
            f.name,
            money(f.roi.value_per_month),
            if p.within_60_days {
                format!("  ✔ within {QUICK_PAYBACK_DAYS} days")
            } else {
                String::new()
            }
        );
    }
    let others: Vec<&FlowAnalysis> = a.flows.iter().filter(|f| !f.pilot).collect();
    if !others.is_empty() {
        let _ = writeln!(out, "  Later:");
        for f in others {
            let when = f
                .payback
                .weeks
                .map_or("never".to_owned(), |w| format!("{w:.1} weeks"));
            let _ = writeln!(
                out,
                "    {}: setup {}, payback {when}",
                f.name,
                money(f.payback.setup_cost)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nNext: `switchyard audit <map> --emit-config` writes a starter switchyard.yaml for the pilots and their data-contract checklist."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_cents_only_when_needed() {
        assert_eq!(money(1155.0), "$1,155");
        assert_eq!(money(577.5), "$577.50");
        assert_eq!(money(0.0), "$0");
        assert_eq!(money(1_234_567.891), "$1,234,567.89");
        assert_eq!(money(-42.0), "-$42");
    }

    #[test]
    fn numbers_drop_a_needless_fraction() {
        assert_eq!(num(33.0), "33");
        assert_eq!(num(4.333), "4.3");
        assert_eq!(weeks(52.0 / 12.0), "4.333");
        assert_eq!(weeks(1.0), "1");
        assert_eq!(weeks(4.5), "4.5");
    }
}
