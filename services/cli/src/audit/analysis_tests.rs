//! Tests for the ROI arithmetic, the scorecard, the pilot ranking and payback.

use super::*;

const EXAMPLE: &str = include_str!("../../../../config/flowmap.example.yaml");

fn settings(weights: Weights) -> Settings {
    Settings {
        hourly_rate: 35.0,
        setup_hourly_rate: 60.0,
        weeks_per_month: 1.0,
        weights,
        pilots: 3,
    }
}

fn example() -> FlowMap {
    FlowMap::parse(EXAMPLE, "flowmap.example.yaml").expect("the example map is valid")
}

fn by_name<'a>(a: &'a Audit, name: &str) -> &'a FlowAnalysis {
    a.flows
        .iter()
        .find(|f| f.name == name)
        .expect("flow exists")
}

#[test]
fn the_issue_example_200_orders_a_week_at_10_minutes() {
    let r = roi(200.0, 10.0, &settings(Weights::default()));
    assert!((r.hours_per_week - 33.333).abs() < 0.001);
    assert_eq!(r.hours_per_month, 33.0);
    assert_eq!(r.value_per_month, 1155.0);
    assert_eq!(r.software_budget_per_month, 577.5);
}

#[test]
fn calendar_weeks_per_month_multiplies_the_weekly_hours() {
    let s = Settings {
        weeks_per_month: 52.0 / 12.0,
        ..settings(Weights::default())
    };
    let r = roi(200.0, 10.0, &s);
    assert!((r.hours_per_month_exact - 144.444).abs() < 0.001);
    assert_eq!(r.hours_per_month, 144.0);
    assert_eq!(r.value_per_month, 5040.0);
}

#[test]
fn hours_round_to_the_nearest_whole_hour_before_pricing() {
    let s = settings(Weights::default());
    // 25 × 15 ÷ 60 = 6.25 h → 6 h → $210; 150 × 3 ÷ 60 = 7.5 h → 8 h → $280.
    assert_eq!(roi(25.0, 15.0, &s).value_per_month, 210.0);
    assert_eq!(roi(150.0, 3.0, &s).value_per_month, 280.0);
    assert_eq!(roi(0.0, 15.0, &s).value_per_month, 0.0);
}

#[test]
fn bands_count_the_limits_reached() {
    let limits = [2.0, 5.0, 10.0, 20.0];
    assert_eq!(band(0.0, limits), 0);
    assert_eq!(band(1.9, limits), 1);
    assert_eq!(band(2.0, limits), 2);
    assert_eq!(band(9.99, limits), 3);
    assert_eq!(band(33.3, limits), 5);
}

#[test]
fn connectors_match_the_kind_loosely() {
    assert_eq!(connector("HubSpot"), Some("hubspot"));
    assert_eq!(connector("Standard Webhooks"), Some("standard-webhooks"));
    assert_eq!(connector("pipedrive"), None);
}

#[test]
fn each_criterion_is_scored_and_weighed() {
    let a = analyse(&example(), &settings(Weights::default()));
    let f = by_name(&a, "shop-orders-to-books");
    let scores: Vec<(&str, u8, f64)> = f
        .scorecard
        .iter()
        .map(|c| (c.name, c.score, c.points))
        .collect();
    assert_eq!(
        scores,
        vec![
            ("time_saved", 5, 30.0),
            ("error_reduction", 3, 12.0),
            ("revenue_impact", 5, 25.0),
            ("risk_reduction", 5, 15.0),
            ("user_experience", 2, 4.0),
        ]
    );
    assert_eq!(f.score, 86.0);
    assert!(f.scorecard[1].derived.contains("8.0 errors/week"));
    let unknown = by_name(&a, "shop-customers-to-crm");
    assert_eq!(unknown.scorecard[1].score, 2);
    assert!(unknown.scorecard[1].derived.contains("unknown"));
}

#[test]
fn the_ranking_prefers_the_least_change() {
    let a = analyse(&example(), &settings(Weights::default()));
    let order: Vec<&str> = a.flows.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "shop-orders-to-books",
            "won-deals-to-invoices",
            "shop-customers-to-crm",
            "crm-to-newsletter",
            "crm-sync",
        ]
    );
    // crm-sync scores above two pilots but needs the most change: two-way, two objects, no
    // pipedrive connector, no owner.
    let sync = by_name(&a, "crm-sync");
    assert_eq!(sync.score, 65.0);
    assert_eq!(sync.change.units, 5);
    assert_eq!(sync.rank_score, 40.0);
    assert!(!sync.pilot);
    assert_eq!(
        a.pilots,
        vec![
            "shop-orders-to-books",
            "won-deals-to-invoices",
            "shop-customers-to-crm"
        ]
    );
    assert_eq!(a.total_hours_per_month, 56.0);
    assert_eq!(a.total_value_per_month, 1960.0);
}

#[test]
fn weights_change_the_ranking() {
    let only_experience = Weights {
        time_saved: 0.0,
        error_reduction: 0.0,
        revenue_impact: 0.0,
        risk_reduction: 0.0,
        user_experience: 100.0,
    };
    let a = analyse(&example(), &settings(only_experience));
    // Hourly beats daily (3 vs 2 of 5); the two-way sync scores 3 (daily + 1) but loses 25 for
    // its change; among the daily flows at 40 the larger monthly value breaks the tie.
    assert_eq!(a.flows[0].name, "shop-customers-to-crm");
    assert_eq!(a.flows[0].score, 60.0);
    let sync = by_name(&a, "crm-sync");
    assert_eq!((sync.score, sync.rank_score), (60.0, 35.0));
    let order: Vec<&str> = a.flows.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "shop-customers-to-crm",
            "shop-orders-to-books",
            "crm-to-newsletter",
            "won-deals-to-invoices",
            "crm-sync",
        ]
    );
}

#[test]
fn payback_counts_real_weeks_and_flags_sixty_days() {
    let a = analyse(&example(), &settings(Weights::default()));
    let orders = &by_name(&a, "shop-orders-to-books").payback;
    assert_eq!(orders.setup_hours, Some(12.0));
    assert_eq!(orders.setup_cost, 720.0);
    let weeks = orders.weeks.expect("pays back");
    assert!((weeks - 720.0 / (200.0 * 10.0 / 60.0 * 35.0)).abs() < 1e-9);
    assert!(orders.within_60_days);
    let sync = &by_name(&a, "crm-sync").payback;
    // 12 base + 12 two-way + 4 second object + 8 pipedrive without a connector.
    assert_eq!(sync.setup_hours, Some(36.0));
    assert_eq!(sync.setup_cost, 2160.0);
    assert!((sync.weeks.expect("pays back") - 2160.0 / 175.0).abs() < 1e-9);
    assert!(!sync.within_60_days);
}

#[test]
fn a_stated_setup_cost_wins_and_a_flow_saving_nothing_is_no_pilot() {
    let text = EXAMPLE
        .replace(
            "    owner: Dana (bookkeeper)\n\n  - name: shop-customers",
            "    owner: Dana (bookkeeper)\n    setup_cost: 7000\n\n  - name: shop-customers",
        )
        .replace("volume_per_week: 150", "volume_per_week: 0");
    let map = FlowMap::parse(&text, "m.yaml").expect("valid");
    let a = analyse(&map, &settings(Weights::default()));
    let orders = &by_name(&a, "shop-orders-to-books").payback;
    assert_eq!(orders.setup_hours, None);
    assert_eq!(orders.setup_cost, 7000.0);
    // 7000 / 1166.67 per week = 6 weeks = 42 days.
    assert!((orders.days.expect("pays back") - 42.0).abs() < 1e-9);
    assert!(orders.within_60_days);
    let idle = by_name(&a, "shop-customers-to-crm");
    assert!(!idle.pilot);
    assert_eq!(idle.payback.weeks, None);
    assert!(!a.pilots.contains(&"shop-customers-to-crm".to_owned()));
    assert_eq!(a.pilots.len(), 3);
}

#[test]
fn how_a_month_is_counted_changes_the_money_not_the_ranking() {
    let week = analyse(&example(), &settings(Weights::default()));
    let calendar = analyse(
        &example(),
        &Settings {
            weeks_per_month: 52.0 / 12.0,
            ..settings(Weights::default())
        },
    );
    let scores = |a: &Audit| -> Vec<(String, f64)> {
        a.flows
            .iter()
            .map(|f| (f.name.clone(), f.rank_score))
            .collect()
    };
    assert_eq!(scores(&week), scores(&calendar));
    assert_eq!(week.pilots, calendar.pilots);
    assert_eq!(calendar.total_hours_per_month, 243.0);
    assert_eq!(calendar.total_value_per_month, 8505.0);
}
