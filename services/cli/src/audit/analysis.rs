//! Per-flow numbers: ROI, the weighted scorecard, the change a flow needs, payback, and the
//! ranking that picks the pilots. Every score keeps the sentence that explains it.

use serde::Serialize;

use super::model::{Category, Direction, Flow, FlowMap, Frequency, Object, Weights};
use super::overlap::{self, Overlap};

/// Vendors Switchyard has a connector for today (ingest's source kinds), without punctuation.
pub const CONNECTORS: [&str; 9] = [
    "standard-webhooks",
    "hubspot",
    "stripe",
    "shopify",
    "quickbooks",
    "xero",
    "mailchimp",
    "klaviyo",
    "salesforce",
];

/// The connector (source kind) for a system's `kind`, if Switchyard has one.
pub fn connector(kind: &str) -> Option<&'static str> {
    let squash = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let wanted = squash(kind);
    CONNECTORS.into_iter().find(|c| squash(c) == wanted)
}

/// Paybacks at or under this many days are flagged.
pub const QUICK_PAYBACK_DAYS: f64 = 60.0;
/// Points taken off a flow's score per unit of change when ranking pilots.
pub const POINTS_PER_CHANGE: f64 = 5.0;

/// Inputs the arithmetic uses, after the map and the command line are combined.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Settings {
    pub hourly_rate: f64,
    pub setup_hourly_rate: f64,
    pub weeks_per_month: f64,
    pub weights: Weights,
    pub pilots: usize,
}

/// The time and money a flow's manual re-keying costs.
#[derive(Debug, Clone, Serialize)]
pub struct Roi {
    pub hours_per_week: f64,
    pub hours_per_month_exact: f64,
    /// Rounded to the whole hour: the estimate is no finer than its inputs.
    pub hours_per_month: f64,
    pub value_per_month: f64,
    /// Half the monthly value: what the flow justifies spending on software.
    pub software_budget_per_month: f64,
}

/// Hours and money saved per month by automating `volume_per_week` records of `minutes` each.
pub fn roi(volume_per_week: f64, minutes: f64, s: &Settings) -> Roi {
    let hours_per_week = volume_per_week * minutes / 60.0;
    let hours_per_month_exact = hours_per_week * s.weeks_per_month;
    let hours_per_month = hours_per_month_exact.round();
    let value_per_month = hours_per_month * s.hourly_rate;
    Roi {
        hours_per_week,
        hours_per_month_exact,
        hours_per_month,
        value_per_month,
        software_budget_per_month: value_per_month / 2.0,
    }
}

/// One scorecard line.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub name: &'static str,
    pub weight: f64,
    /// 0 to 5.
    pub score: u8,
    /// weight × score ÷ 5: this criterion's share of the 0–100 total.
    pub points: f64,
    pub derived: String,
}

/// How much has to change before the flow can run, in units.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub units: u32,
    pub reasons: Vec<String>,
}

/// When the estimated setup cost is recovered.
#[derive(Debug, Clone, Serialize)]
pub struct Payback {
    pub setup_hours: Option<f64>,
    pub setup_cost: f64,
    pub setup_cost_basis: &'static str,
    pub value_per_week: f64,
    pub weeks: Option<f64>,
    pub days: Option<f64>,
    pub within_60_days: bool,
}

/// Everything the audit says about one flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowAnalysis {
    pub rank: usize,
    pub name: String,
    pub from: String,
    pub to: String,
    pub objects: Vec<Object>,
    pub direction: Direction,
    pub frequency: Frequency,
    pub volume_per_week: f64,
    pub minutes_per_record: f64,
    pub owner: Option<String>,
    pub roi: Roi,
    pub scorecard: Vec<Criterion>,
    pub score: f64,
    pub change: Change,
    /// score − 5 × change units: the pilot ranking prefers the least change.
    pub rank_score: f64,
    pub payback: Payback,
    pub pilot: bool,
}

/// The whole audit.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub business: Option<String>,
    pub settings: Settings,
    pub overlaps: Vec<Overlap>,
    /// Ranked best first.
    pub flows: Vec<FlowAnalysis>,
    /// Names of the chosen pilot flows, best first.
    pub pilots: Vec<String>,
    pub total_hours_per_month: f64,
    pub total_value_per_month: f64,
}

/// Analyses a validated map.
pub fn analyse(map: &FlowMap, s: &Settings) -> Audit {
    let mut flows: Vec<FlowAnalysis> = map.flows.iter().map(|f| flow(map, f, s)).collect();
    flows.sort_by(|a, b| {
        b.rank_score
            .total_cmp(&a.rank_score)
            .then(a.change.units.cmp(&b.change.units))
            .then(b.roi.value_per_month.total_cmp(&a.roi.value_per_month))
            .then(a.name.cmp(&b.name))
    });
    let mut pilots = Vec::new();
    for (i, f) in flows.iter_mut().enumerate() {
        f.rank = i + 1;
        // A flow that saves no time is no pilot, however well it scores elsewhere.
        if pilots.len() < s.pilots && f.roi.hours_per_month_exact > 0.0 {
            f.pilot = true;
            pilots.push(f.name.clone());
        }
    }
    Audit {
        business: map.business.clone(),
        settings: *s,
        overlaps: overlap::overlaps(map),
        total_hours_per_month: flows.iter().map(|f| f.roi.hours_per_month).sum(),
        total_value_per_month: flows.iter().map(|f| f.roi.value_per_month).sum(),
        flows,
        pilots,
    }
}

fn flow(map: &FlowMap, f: &Flow, s: &Settings) -> FlowAnalysis {
    let roi = roi(f.volume_per_week, f.minutes_per_record, s);
    let scorecard = scorecard(map, f, &roi, &s.weights);
    let score = scorecard.iter().map(|c| c.points).sum::<f64>();
    let change = change(map, f);
    let payback = payback(map, f, &roi, s);
    FlowAnalysis {
        rank: 0,
        name: f.display_name(),
        from: f.from.clone(),
        to: f.to.clone(),
        objects: f.objects.clone(),
        direction: f.direction,
        frequency: f.frequency,
        volume_per_week: f.volume_per_week,
        minutes_per_record: f.minutes_per_record,
        owner: f.owner().map(str::to_owned),
        rank_score: score - POINTS_PER_CHANGE * f64::from(change.units),
        roi,
        scorecard,
        score,
        change,
        payback,
        pilot: false,
    }
}

fn band(value: f64, limits: [f64; 4]) -> u8 {
    if value <= 0.0 {
        return 0;
    }
    1 + limits.iter().filter(|l| value >= **l).count() as u8
}

/// Scores each criterion 0–5 and weighs it.
pub fn scorecard(map: &FlowMap, f: &Flow, roi: &Roi, w: &Weights) -> Vec<Criterion> {
    // Scored on the week's hours, so how a month is counted (weeks_per_month) changes the money
    // shown, never the ranking.
    let time = band(roi.hours_per_week, [2.0, 5.0, 10.0, 20.0]);
    let time_why = format!(
        "{:.1} h/week saved, {:.1} h/month (bands per week: <2 h 1, <5 h 2, <10 h 3, <20 h 4, 20 h+ 5)",
        roi.hours_per_week, roi.hours_per_month_exact
    );
    let (errors, errors_why) = match f.error_rate_percent {
        Some(rate) => {
            let per_week = f.volume_per_week * rate / 100.0;
            (
                band(per_week, [1.0, 3.0, 10.0, 25.0]),
                format!(
                    "{rate} % of {} records/week ≈ {per_week:.1} errors/week avoided (bands: <1 1, <3 2, <10 3, <25 4, 25+ 5)",
                    f.volume_per_week
                ),
            )
        }
        None => (
            2,
            "error rate unknown: scored 2 of 5 (neutral); add error_rate_percent".to_owned(),
        ),
    };
    let (best, revenue) = f
        .objects
        .iter()
        .map(|o| (*o, object_revenue(*o)))
        .max_by_key(|(_, score)| *score)
        .unwrap_or((Object::Contact, 0));
    let revenue_why = format!(
        "carries {}: {} (invoice/order 5, deal 4, lead 3, contact 2, company/product 1)",
        best.as_str(),
        match best {
            Object::Invoice | Object::Order => "money is booked and collected sooner",
            Object::Deal => "won deals reach billing without waiting",
            Object::Lead => "leads are followed up while warm",
            _ => "indirect revenue effect",
        }
    );
    let mut ends = vec![f.to.as_str()];
    if f.direction == Direction::TwoWay {
        ends.push(f.from.as_str());
    }
    let (risk_end, risk) = ends
        .iter()
        .filter_map(|n| map.system(n))
        .map(|s| (s, category_risk(s.category)))
        .max_by_key(|(_, r)| *r)
        .map_or(("?".to_owned(), 2), |(s, r)| (s.name.clone(), r));
    let risk_category = map
        .system(&risk_end)
        .map_or(Category::Other, |s| s.category);
    let risk_why = format!(
        "writes to {risk_end} ({}): {} (accounting/ERP 5, e-commerce 4, CRM/marketing 3, other 2)",
        risk_category.label(),
        match risk_category {
            Category::Accounting | Category::Erp =>
                "a mistyped financial record is a cash and audit risk",
            Category::ECommerce => "wrong stock or prices reach customers",
            Category::Marketing => "wrong consent or unsubscribes are a legal risk",
            Category::Crm => "wrong customer data misleads sales",
            Category::Other => "limited blast radius",
        }
    );
    let freq = match f.frequency {
        Frequency::RealTime => 4,
        Frequency::Hourly => 3,
        Frequency::Daily => 2,
    };
    let two_way = u8::from(f.direction == Direction::TwoWay);
    let ux = (freq + two_way).min(5);
    let ux_why = format!(
        "{} needed{} (real-time 4, hourly 3, daily 2; +1 two-way)",
        match f.frequency {
            Frequency::RealTime => "real-time",
            Frequency::Hourly => "hourly",
            Frequency::Daily => "daily",
        },
        if two_way == 1 {
            ", both teams see one record"
        } else {
            ""
        }
    );
    [
        ("time_saved", w.time_saved, time, time_why),
        ("error_reduction", w.error_reduction, errors, errors_why),
        ("revenue_impact", w.revenue_impact, revenue, revenue_why),
        ("risk_reduction", w.risk_reduction, risk, risk_why),
        ("user_experience", w.user_experience, ux, ux_why),
    ]
    .into_iter()
    .map(|(name, weight, score, derived)| Criterion {
        name,
        weight,
        score,
        points: weight * f64::from(score) / 5.0,
        derived,
    })
    .collect()
}

fn object_revenue(o: Object) -> u8 {
    match o {
        Object::Invoice | Object::Order => 5,
        Object::Deal => 4,
        Object::Lead => 3,
        Object::Contact => 2,
        Object::Company | Object::Product => 1,
    }
}

fn category_risk(c: Category) -> u8 {
    match c {
        Category::Accounting | Category::Erp => 5,
        Category::ECommerce => 4,
        Category::Crm | Category::Marketing => 3,
        Category::Other => 2,
    }
}

/// The ends of a flow whose vendor Switchyard has no connector for.
pub fn unconnected_ends<'m>(map: &'m FlowMap, f: &'m Flow) -> Vec<&'m str> {
    [f.from.as_str(), f.to.as_str()]
        .into_iter()
        .filter(|n| map.system(n).is_some_and(|s| connector(&s.kind).is_none()))
        .collect()
}

/// Units of change: two-way +2, each object after the first +1, each end without a connector +1,
/// no owner +1.
pub fn change(map: &FlowMap, f: &Flow) -> Change {
    let mut reasons = Vec::new();
    let mut units = 0;
    if f.direction == Direction::TwoWay {
        units += 2;
        reasons.push("two-way sync (+2)".to_owned());
    }
    let extra = f.objects.len().saturating_sub(1) as u32;
    if extra > 0 {
        units += extra;
        reasons.push(format!("{} objects (+{extra})", f.objects.len()));
    }
    for end in unconnected_ends(map, f) {
        units += 1;
        reasons.push(format!("no connector for {end} yet (+1)"));
    }
    if f.owner().is_none() {
        units += 1;
        reasons.push("nobody owns it today (+1)".to_owned());
    }
    Change { units, reasons }
}

/// Setup hours: 12 base, +12 two-way, +4 per extra object, +8 per end without a connector.
pub fn setup_hours(map: &FlowMap, f: &Flow) -> f64 {
    let mut hours = 12.0;
    if f.direction == Direction::TwoWay {
        hours += 12.0;
    }
    hours += 4.0 * f.objects.len().saturating_sub(1) as f64;
    hours += 8.0 * unconnected_ends(map, f).len() as f64;
    hours
}

fn payback(map: &FlowMap, f: &Flow, roi: &Roi, s: &Settings) -> Payback {
    let (setup_hours, setup_cost, basis) = match f.setup_cost {
        Some(cost) => (None, cost, "stated in the map"),
        None => {
            let h = setup_hours(map, f);
            (Some(h), h * s.setup_hourly_rate, "estimated")
        }
    };
    // Payback counts real weeks of re-keying avoided, whatever the month convention is.
    let value_per_week = roi.hours_per_week * s.hourly_rate;
    let weeks = if setup_cost <= 0.0 {
        Some(0.0)
    } else if value_per_week > 0.0 {
        Some(setup_cost / value_per_week)
    } else {
        None
    };
    let days = weeks.map(|w| w * 7.0);
    Payback {
        setup_hours,
        setup_cost,
        setup_cost_basis: basis,
        value_per_week,
        weeks,
        days,
        within_60_days: days.is_some_and(|d| d <= QUICK_PAYBACK_DAYS),
    }
}

#[cfg(test)]
#[path = "analysis_tests.rs"]
mod tests;
