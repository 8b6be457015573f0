//! Tests for overlap detection, the three questions and the integrate/consolidate rule.

use super::*;

const EXAMPLE: &str = include_str!("../../../../config/flowmap.example.yaml");

fn overlaps_of(text: &str) -> Vec<Overlap> {
    overlaps(&FlowMap::parse(text, "m.yaml").expect("valid map"))
}

fn answers(o: &Overlap) -> Vec<Answer> {
    o.questions.iter().map(|q| q.answer).collect()
}

#[test]
fn integrate_unless_at_least_two_answers_are_yes() {
    use Answer::{No, Unknown, Yes};
    let cases = [
        ([No, No, No], Recommendation::Integrate),
        ([Yes, No, No], Recommendation::Integrate),
        ([Yes, Unknown, Unknown], Recommendation::Integrate),
        ([Yes, Yes, No], Recommendation::Consolidate),
        ([No, Yes, Yes], Recommendation::Consolidate),
        ([Yes, Unknown, Yes], Recommendation::Consolidate),
        ([Yes, Yes, Yes], Recommendation::Consolidate),
        ([Unknown, Unknown, Unknown], Recommendation::Integrate),
    ];
    for (given, expected) in cases {
        assert_eq!(recommend(&given), expected, "{given:?}");
    }
}

#[test]
fn the_example_crms_overlap_and_the_map_answers_what_it_can() {
    let found = overlaps_of(EXAMPLE);
    assert_eq!(found.len(), 1, "only the two CRMs share a category");
    let o = &found[0];
    assert_eq!(o.category, Category::Crm);
    assert_eq!(o.systems, ["hubspot".to_owned(), "pipedrive".to_owned()]);
    assert_eq!(o.licence_at_stake_per_month, 149.0);
    assert_eq!(o.licence_at_stake_per_year, 1788.0);
    assert_eq!(answers(o), vec![Answer::No, Answer::Unknown, Answer::Yes]);
    let bases: Vec<Basis> = o.questions.iter().map(|q| q.basis).collect();
    assert_eq!(bases, vec![Basis::FromMap, Basis::Missing, Basis::FromMap]);
    // hubspot carries contact and deal; pipedrive contact, deal and invoice: 2 of 3.
    assert!(
        o.questions[0].reason.contains("2 of 3"),
        "{}",
        o.questions[0].reason
    );
    assert!(
        o.questions[1].reason.contains("$1,788"),
        "{}",
        o.questions[1].reason
    );
    assert!(
        o.questions[2].reason.contains("crm-sync"),
        "{}",
        o.questions[2].reason
    );
    assert_eq!(o.recommendation, Recommendation::Integrate);
    assert!(o.could_change);
    assert_eq!(o.keep, None);
}

#[test]
fn stated_answers_win_and_two_yes_consolidate_onto_the_busier_system() {
    let text = format!(
        "{EXAMPLE}\nconsolidation:\n  - systems: [pipedrive, hubspot]\n    same_job_percent: 80\n    migration_cost: 1000\n    retraining_cost: 500\n    can_maintain_integrations: true\n"
    );
    let o = &overlaps_of(&text)[0];
    assert_eq!(answers(o), vec![Answer::Yes, Answer::Yes, Answer::No]);
    assert!(o.questions.iter().all(|q| q.basis == Basis::Stated));
    assert_eq!(o.recommendation, Recommendation::Consolidate);
    // hubspot is in three flows, pipedrive in two.
    assert_eq!(o.keep.as_deref(), Some("hubspot"));
    assert!(!o.could_change);
}

#[test]
fn one_stated_cost_above_the_saving_already_answers_no() {
    let text = format!(
        "{EXAMPLE}\nconsolidation:\n  - systems: [hubspot, pipedrive]\n    migration_cost: 5000\n"
    );
    let o = &overlaps_of(&text)[0];
    assert_eq!(o.questions[1].answer, Answer::No);
    let cheap = text.replace("migration_cost: 5000", "migration_cost: 100");
    assert_eq!(overlaps_of(&cheap)[0].questions[1].answer, Answer::Unknown);
}

#[test]
fn a_system_without_flows_cannot_be_compared_and_other_never_overlaps() {
    let text = EXAMPLE.replace(
        "systems:\n",
        "systems:\n  - name: zoho\n    kind: zoho\n    category: crm\n    licence_per_month: 20\n  - name: sheet\n    kind: sheets\n    category: other\n    licence_per_month: 0\n  - name: sheet2\n    kind: sheets\n    category: other\n    licence_per_month: 0\n",
    );
    let found = overlaps_of(&text);
    // zoho pairs with hubspot and pipedrive; the two `other` systems do not pair.
    assert_eq!(found.len(), 3);
    let zoho = found
        .iter()
        .find(|o| o.systems.contains(&"zoho".to_owned()))
        .expect("zoho overlaps");
    assert_eq!(zoho.questions[0].answer, Answer::Unknown);
    assert!(zoho.questions[0].reason.contains("no flow touches zoho"));
    assert_eq!(zoho.licence_at_stake_per_month, 20.0);
}
