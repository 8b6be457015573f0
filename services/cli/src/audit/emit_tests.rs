//! Tests that the emitted config loads in the product and carries the value inputs.

use switchyard_chassis::config::ObjectType;

use super::*;
use crate::audit::analysis::{Settings, analyse};
use crate::audit::model::Weights;

/// name, object, destination, minutes per record, hourly cost.
type FlowRow<'a> = (&'a str, ObjectType, &'a str, Option<f64>, Option<f64>);

const EXAMPLE: &str = include_str!("../../../../config/flowmap.example.yaml");

fn audit_of(text: &str, pilots: usize) -> (FlowMap, Audit) {
    let map = FlowMap::parse(text, "m.yaml").expect("valid map");
    let s = Settings {
        hourly_rate: 35.0,
        setup_hourly_rate: 35.0,
        weeks_per_month: 1.0,
        weights: Weights::default(),
        pilots,
    };
    let audit = analyse(&map, &s);
    (map, audit)
}

#[test]
fn tokens_fit_the_products_naming_rules() {
    assert_eq!(token("QuickBooks Online"), "quickbooks-online");
    assert_eq!(token("  Shop / EU  "), "shop-eu");
    assert_eq!(token("!!!"), "system");
    let long = token("a-very-long-system-name-that-goes-on-and-on");
    assert!(long.len() <= 32 && !long.ends_with('-'), "{long}");
}

#[test]
fn the_example_pilots_become_a_valid_config() {
    let (map, audit) = audit_of(EXAMPLE, 3);
    let emitted = emit(&map, &audit, "flowmap.example.yaml");
    let config = check(&emitted).expect("passes the product's validation");
    let flows: Vec<FlowRow<'_>> = config
        .flows
        .iter()
        .map(|f| {
            (
                f.name.as_str(),
                f.object,
                f.destination.as_str(),
                f.minutes_per_record,
                f.hourly_cost,
            )
        })
        .collect();
    assert_eq!(
        flows,
        vec![
            (
                "shopify-to-quickbooks-order",
                ObjectType::Order,
                "quickbooks",
                Some(10.0),
                Some(35.0)
            ),
            (
                "pipedrive-to-quickbooks-invoice",
                ObjectType::Invoice,
                "quickbooks",
                Some(15.0),
                Some(35.0)
            ),
            (
                "shopify-to-hubspot-contact",
                ObjectType::Contact,
                "hubspot",
                Some(3.0),
                Some(35.0)
            ),
        ]
    );
    let sources: Vec<(&str, &str)> = config
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.kind.as_str()))
        .collect();
    // Pipedrive has no verifier, so it arrives as a Standard Webhooks sender.
    assert_eq!(
        sources,
        vec![("pipedrive", "standard-webhooks"), ("shopify", "shopify")]
    );
    assert!(
        config
            .destinations
            .iter()
            .all(|d| d.base_url().starts_with("https://replace-me.invalid/"))
    );
    assert_eq!(emitted.secret_envs.len(), 4);
    assert!(emitted.checklist.contains("## order"));
    assert!(emitted.checklist.contains("## invoice"));
    assert!(
        emitted
            .checklist
            .contains("Unique key and matching logic: normalised email + E.164 phone")
    );
    assert!(emitted.checklist.contains("PLACEHOLDER URL"));
}

#[test]
fn a_two_way_flow_writes_both_ways_and_every_object() {
    let (map, audit) = audit_of(EXAMPLE, 5);
    let emitted = emit(&map, &audit, "m.yaml");
    let config = check(&emitted).expect("valid");
    let names: Vec<&str> = config.flows.iter().map(|f| f.name.as_str()).collect();
    for name in [
        "pipedrive-to-hubspot-contact",
        "pipedrive-to-hubspot-deal",
        "hubspot-to-pipedrive-contact",
        "hubspot-to-pipedrive-deal",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(emitted.flows, 3 + 4 + 1);
    assert!(emitted.checklist.contains("NOBODY YET"));
}

#[test]
fn a_salesforce_source_gets_a_placeholder_organisation_id() {
    let text = EXAMPLE.replace("kind: pipedrive", "kind: salesforce");
    let (map, audit) = audit_of(&text, 3);
    let emitted = emit(&map, &audit, "m.yaml");
    let config = check(&emitted).expect("valid");
    let sf = config.source("pipedrive").expect("source");
    assert_eq!(sf.organization_id.as_deref(), Some("00D000000000000AAA"));
}
