//! Tests for parsing and validating flow maps: positions, field paths and messages.

use super::*;

const MINIMAL: &str = "\
systems:
  - name: shop
    kind: shopify
    category: e-commerce
    licence_per_month: 39
  - name: books
    kind: quickbooks
    category: accounting
    licence_per_month: 30
flows:
  - from: shop
    to: books
    objects: [order]
    direction: one-way
    frequency: daily
    volume_per_week: 200
    minutes_per_record: 10
";

fn problems(text: &str) -> Vec<Problem> {
    FlowMap::parse(text, "map.yaml")
        .expect_err("invalid")
        .problems
}

#[test]
fn a_minimal_map_parses_with_default_assumptions() {
    let map = FlowMap::parse(MINIMAL, "map.yaml").expect("valid");
    assert_eq!(map.assumptions.hourly_rate, 35.0);
    assert_eq!(map.assumptions.weeks_per_month, 52.0 / 12.0);
    assert_eq!(map.flows[0].display_name(), "shop-to-books");
    assert_eq!(map.flows[0].objects, vec![Object::Order]);
    assert_eq!(map.systems[0].category, Category::ECommerce);
}

#[test]
fn categories_accept_the_issue_spelling() {
    let text = MINIMAL.replace("category: accounting", "category: CRM");
    let map = FlowMap::parse(&text, "map.yaml").expect("valid");
    assert_eq!(map.systems[1].category, Category::Crm);
}

#[test]
fn a_wrong_type_names_line_column_and_field() {
    let text = MINIMAL.replace("volume_per_week: 200", "volume_per_week: lots");
    let p = problems(&text);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].field, "flows[0].volume_per_week");
    assert_eq!(p[0].line, Some(16));
    assert_eq!(p[0].column, Some(22));
    assert!(p[0].message.contains("invalid type"), "{}", p[0].message);
    assert!(!p[0].message.contains("at line"), "{}", p[0].message);
}

#[test]
fn an_unknown_object_lists_the_allowed_ones() {
    let text = MINIMAL.replace("[order]", "[orders]");
    let p = problems(&text);
    assert_eq!(p[0].field, "flows[0].objects[0]");
    assert_eq!(p[0].line, Some(13));
    assert!(p[0].message.contains("`orders`"), "{}", p[0].message);
    assert!(p[0].message.contains("invoice"), "{}", p[0].message);
}

#[test]
fn a_missing_field_is_named() {
    let text = MINIMAL.replace("    minutes_per_record: 10\n", "");
    let p = problems(&text);
    assert_eq!(p[0].field, "flows[0]");
    assert!(
        p[0].message.contains("missing field `minutes_per_record`"),
        "{}",
        p[0].message
    );
    assert_eq!(p[0].line, Some(11));
}

#[test]
fn an_unknown_field_is_refused() {
    let text = MINIMAL.replace("    licence_per_month: 39\n", "    licence: 39\n");
    let p = problems(&text);
    assert_eq!(p[0].field, "systems[0].licence");
    assert!(
        p[0].message.contains("unknown field `licence`"),
        "{}",
        p[0].message
    );
}

#[test]
fn a_yaml_syntax_error_has_a_position() {
    let p = problems("systems:\n  - name: a\n    kind: \"unterminated\n");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(4));
    assert_eq!(p[0].field, "systems[0].kind");
    assert!(
        p[0].message.contains("unexpected end of stream"),
        "{}",
        p[0].message
    );
}

#[test]
fn every_semantic_problem_is_reported_at_its_line() {
    let text = MINIMAL
        .replace("to: books", "to: bookz")
        .replace("minutes_per_record: 10", "minutes_per_record: -3")
        .replace(
            "licence_per_month: 30",
            "licence_per_month: 30\n    # a comment",
        );
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0].field, "flows[0].to");
    assert!(p[0].message.contains("no system is named \"bookz\""));
    assert_eq!(p[0].line, Some(13));
    assert_eq!(p[0].column, Some(9));
    assert_eq!(p[1].field, "flows[0].minutes_per_record");
    assert_eq!(p[1].line, Some(18));
    let shown = FlowMap::parse(&text, "map.yaml")
        .expect_err("invalid")
        .to_string();
    assert!(
        shown.contains("map.yaml: line 13, column 9: flows[0].to: no system is named"),
        "{shown}"
    );
}

#[test]
fn weights_must_add_up_to_100() {
    let text = format!("assumptions:\n  weights:\n    time_saved: 50\n{MINIMAL}");
    let p = problems(&text);
    assert_eq!(p[0].field, "assumptions.weights");
    assert!(p[0].message.contains("add up to 120"), "{}", p[0].message);
    assert_eq!(p[0].line, Some(3));
}

#[test]
fn consolidation_needs_two_known_systems() {
    let text = format!("{MINIMAL}consolidation:\n  - systems: [shop, ghost]\n");
    let p = problems(&text);
    assert_eq!(p[0].field, "consolidation[0].systems[1]");
    assert_eq!(p[0].line, Some(19));
}
