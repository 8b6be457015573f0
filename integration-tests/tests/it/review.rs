//! Every kind of identity review reaches operators through the real pipeline: keys of one record
//! pointing at two and at three records, a phone shared by a different email, a near-duplicate
//! with its evidence, a company whose domain and tax id disagree — all listed by the admin API a
//! page at a time and by `switchyard admin conflicts`, none merged; an operator keeps a pair
//! apart (audited), a read-only token cannot.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_integration_tests::{
    ADMIN_OPERATOR_TOKEN, ADMIN_READ_TOKEN, Options, Pipeline, with_token,
};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{Conflict, KeepApartRequest, ListAuditRequest, ListConflictsRequest};
use tonic::transport::Channel;

use crate::dlq::cli;

const WAIT: Duration = Duration::from_secs(30);

async fn send(pipeline: &Pipeline, id: &str, kind: &str, minute: u32, data: Value) {
    let body =
        json!({"type": kind, "timestamp": format!("2026-11-27T10:{minute:02}:00Z"), "data": data});
    let (status, answer) = pipeline.send(id, &body).await;
    assert_eq!(status, 200, "{id}: {answer}");
}

/// Every conflict, following the pages (`page` per call).
async fn all_pages(
    client: &mut AdminClient<Channel>,
    kind: &str,
    page: u32,
) -> (Vec<Conflict>, usize) {
    let (mut all, mut pages, mut before_id) = (Vec::new(), 0, 0);
    loop {
        let listed = client
            .list_conflicts(with_token(
                ListConflictsRequest {
                    limit: page,
                    before_id,
                    kind: kind.into(),
                    ..Default::default()
                },
                ADMIN_READ_TOKEN,
            ))
            .await
            .expect("listed")
            .into_inner();
        pages += 1;
        all.extend(listed.conflicts);
        before_id = listed.next_before_id;
        if before_id == 0 {
            return (all, pages);
        }
    }
}

#[tokio::test]
async fn every_kind_of_review_reaches_operators_and_none_is_merged() {
    let pipeline = Pipeline::start(Options::default()).await;
    // Three people, then one record whose source id, email and phone point at all three.
    send(
        &pipeline,
        "r1",
        "contact.created",
        0,
        json!({"id": "crm-r1", "email": "r1@example.com"}),
    )
    .await;
    send(
        &pipeline,
        "r2",
        "contact.created",
        1,
        json!({"id": "crm-r2", "email": "r2@example.com"}),
    )
    .await;
    send(
        &pipeline,
        "r3",
        "contact.created",
        2,
        json!({"id": "crm-r3", "email": "r3@example.com", "phone": "+44 113 496 0826"}),
    )
    .await;
    // A household line: another email on a phone someone already has.
    send(
        &pipeline,
        "h1",
        "contact.created",
        3,
        json!({"id": "crm-h1", "email": "h1@example.com", "phone": "+49 1511 6989129"}),
    )
    .await;
    // A near-duplicate: one letter of the email swapped, nothing else in common.
    send(&pipeline, "n1", "contact.created", 4,
        json!({"id": "crm-n1", "email": "jane.doe@acme.example", "first_name": "Jane", "last_name": "Doe"})).await;
    // A company by its domain, another by its tax id.
    send(
        &pipeline,
        "c1",
        "company.created",
        5,
        json!({"id": "co-1", "name": "Acme", "domain": "acme.co.uk"}),
    )
    .await;
    send(
        &pipeline,
        "c2",
        "company.created",
        6,
        json!({"id": "co-2", "name": "Acme Ltd", "tax_id": "GB123456789", "country": "GB"}),
    )
    .await;
    pipeline.wait_drained(WAIT).await;
    send(&pipeline, "w1", "contact.updated", 10,
        json!({"id": "crm-r1", "email": "r2@example.com", "phone": "0113 496 0826", "country": "GB"})).await;
    send(&pipeline, "h2", "contact.created", 11,
        json!({"id": "shop-h2", "email": "h2@example.com", "phone": "01511 6989129", "country": "DE"})).await;
    send(
        &pipeline,
        "n2",
        "contact.created",
        12,
        json!({"id": "web-n2", "email": "jane.deo@acme.example"}),
    )
    .await;
    send(&pipeline, "c3", "company.updated", 13,
        json!({"id": "erp-c3", "name": "ACME", "domain": "https://www.acme.co.uk", "tax_id": "GB 123 456 789", "country": "GB"})).await;
    pipeline.wait_drained(WAIT).await;

    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    // Two at a time, so the pages are followed.
    let (all, pages) = all_pages(&mut client, "", 2).await;
    assert_eq!(pages, 3, "{all:#?}");
    let kinds: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|c| (c.object.as_str(), c.kind.as_str(), c.event_id.as_str()))
        .collect();
    for expected in [
        ("contact", "keys_disagree", "demo:w1"),
        ("contact", "phone_shared", "demo:h2"),
        ("contact", "near_duplicate", "demo:n2"),
        ("company", "keys_disagree", "demo:c3"),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    // The record pointing at three: both pairs, not only the first.
    let w1: Vec<&Conflict> = all.iter().filter(|c| c.event_id == "demo:w1").collect();
    assert_eq!(w1.len(), 2, "{w1:#?}");
    assert_eq!(all.len(), 5, "{kinds:?}");
    let ids: HashSet<u64> = all.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), all.len(), "pages neither overlap nor repeat");

    // The near-duplicate says why, without the values.
    let (near, _) = all_pages(&mut client, "near_duplicate", 100).await;
    assert_eq!(near.len(), 1);
    assert_eq!(
        near[0].evidence,
        vec!["email local parts 1 edit apart on the same domain".to_owned()]
    );
    assert!(!format!("{near:?}").contains("jane"), "{near:?}");

    // None was merged: every record is still its own golden record.
    let db = pipeline.db().await;
    let goldens: i64 = db
        .query_one(
            "SELECT count(*) FROM golden_contacts WHERE merged_into IS NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(goldens, 7, "r1 r2 r3 h1 h2 n1 n2");

    // The CLI lists the same, every page.
    let (ok, text) = cli(&pipeline, ADMIN_READ_TOKEN, &["conflicts"]).await;
    assert!(ok, "{text}");
    assert!(text.contains("5 shown"), "{text}");
    for kind in ["keys_disagree", "phone_shared", "near_duplicate"] {
        assert!(text.contains(kind), "{kind} in {text}");
    }

    // Kept apart by an operator, never by a read-only token; audited; closed.
    let id = near[0].id;
    let denied = client
        .keep_apart(with_token(
            KeepApartRequest {
                id,
                reason: String::new(),
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect_err("read-only");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let (ok, text) = cli(
        &pipeline,
        ADMIN_OPERATOR_TOKEN,
        &[
            "keep-apart",
            &id.to_string(),
            "--reason",
            "two Janes, checked",
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert!(
        text.contains("kept apart by operator: two Janes, checked"),
        "{text}"
    );
    let (open, _) = {
        let listed = client
            .list_conflicts(with_token(
                ListConflictsRequest {
                    open_only: true,
                    ..Default::default()
                },
                ADMIN_READ_TOKEN,
            ))
            .await
            .expect("listed")
            .into_inner();
        (listed.conflicts, listed.next_before_id)
    };
    assert_eq!(open.len(), 4);
    assert!(open.iter().all(|c| c.id != id));
    let audit = client
        .list_audit(with_token(
            ListAuditRequest { limit: 100 },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("audit")
        .into_inner()
        .entries;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "identity.keep_apart" && e.target == format!("conflict:{id}")),
        "{audit:?}"
    );

    // The dashboard's review: the same entries, and an operator's keep-apart through its
    // confirmation page.
    let dashboard = pipeline.dashboard_url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let cookie = crate::monitoring::session(&http, &dashboard, ADMIN_OPERATOR_TOKEN).await;
    let page = |path: String| {
        http.get(format!("{dashboard}{path}"))
            .header("cookie", cookie.clone())
            .send()
    };
    let text = |r: reqwest::Response| async move {
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    let (status, review) = text(
        page("/conflicts?kind=phone_shared".to_owned())
            .await
            .expect("page"),
    )
    .await;
    assert_eq!(status, 200, "{review}");
    let shared = all
        .iter()
        .find(|c| c.kind == "phone_shared")
        .expect("the phone-shared pair");
    assert!(review.contains("phone shared, email differs"), "{review}");
    assert!(review.contains(&shared.golden_b), "{review}");
    assert!(
        !review.contains("near-duplicate</td>"),
        "filtered by kind: {review}"
    );
    let (status, confirm) = text(
        page(format!("/conflicts/{}/keep-apart", shared.id))
            .await
            .expect("page"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(confirm.contains("stay two people"), "{confirm}");
    let kept = http
        .post(format!("{dashboard}/conflicts/{}/keep-apart", shared.id))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("confirm=yes")
        .send()
        .await
        .expect("keep apart");
    assert_eq!(kept.status().as_u16(), 303, "back to the review");
    let (_, after) = text(
        page("/conflicts?kind=phone_shared&all=true".to_owned())
            .await
            .expect("page"),
    )
    .await;
    assert!(
        after.contains("closed: kept apart by operator: dashboard review"),
        "{after}"
    );
    pipeline.finish().await;
}
