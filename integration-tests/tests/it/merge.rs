//! Identity conflicts through the admin API, and manual merge and un-merge of golden records:
//! a conflict listed with a read-only token, merged by an operator (never by a read-only token),
//! the merged record's source ids and keys leading to the survivor, the survivor's gaps filled
//! and delivered, everything undone by an un-merge, refusals answered with their reason, and
//! every operator action in the audit log.

use std::time::Duration;

use prost::Message as _;
use serde_json::{Value, json};
use switchyard_chassis::bus::StreamKind;
use switchyard_integration_tests::{
    ADMIN_OPERATOR_TOKEN, ADMIN_READ_TOKEN, Options, Pipeline, with_token,
};
use switchyard_proto::v1::admin_client::AdminClient;
use switchyard_proto::v1::{
    Conflict, GoldenChange, IdentityCommandReply, IdentityCommandResult, ListAuditRequest,
    ListConflictsRequest, MergeGoldenRequest, UnmergeGoldenRequest, canonical_object::Object,
};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(30);

async fn send_ok(pipeline: &Pipeline, id: &str, kind: &str, timestamp: &str, data: Value) {
    let body = json!({"type": kind, "timestamp": timestamp, "data": data});
    let (status, answer) = pipeline.send(id, &body).await;
    assert_eq!(status, 200, "{id}: {answer}");
}

/// The golden id a source id resolved to.
async fn golden_of(db: &tokio_postgres::Client, object: &str, external_id: &str) -> String {
    db.query_one(
        "SELECT golden_id::text FROM crosswalk WHERE object = $1 AND external_id = $2",
        &[&object, &external_id],
    )
    .await
    .unwrap_or_else(|e| panic!("{object} {external_id} is in the crosswalk: {e}"))
    .get(0)
}

/// The source ids linked to a golden record, sorted.
async fn linked(db: &tokio_postgres::Client, golden: &str) -> Vec<String> {
    db.query(
        "SELECT external_id FROM crosswalk WHERE golden_id::text = $1 ORDER BY 1",
        &[&golden],
    )
    .await
    .expect("crosswalk")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Golden changes caused by one identity command, oldest first.
async fn changes_of(pipeline: &Pipeline, command_id: &str) -> Vec<GoldenChange> {
    let cause = format!("command:{command_id}");
    pipeline
        .stream_messages(StreamKind::Golden)
        .await
        .iter()
        .filter_map(|m| GoldenChange::decode(m.payload.as_ref()).ok())
        .filter(|c| c.cause.as_ref().is_some_and(|e| e.event_id == cause))
        .collect()
}

/// Command results dedupe published on the OPS stream for one object.
async fn results(pipeline: &Pipeline, object: &str) -> Vec<IdentityCommandResult> {
    let subject = format!("{}.ops.conflict.{object}.command", pipeline.prefix);
    pipeline
        .stream_messages(StreamKind::Ops)
        .await
        .iter()
        .filter(|m| m.subject.as_str() == subject)
        .filter_map(|m| IdentityCommandResult::decode(m.payload.as_ref()).ok())
        .collect()
}

async fn conflicts(
    client: &mut AdminClient<Channel>,
    object: &str,
    open_only: bool,
) -> Vec<Conflict> {
    client
        .list_conflicts(with_token(
            ListConflictsRequest {
                object: object.into(),
                open_only,
                ..Default::default()
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("conflicts")
        .into_inner()
        .conflicts
}

async fn merge(
    client: &mut AdminClient<Channel>,
    object: &str,
    survivor: &str,
    merged: &str,
) -> IdentityCommandReply {
    client
        .merge_golden(with_token(
            MergeGoldenRequest {
                object: object.into(),
                survivor: survivor.into(),
                merged: merged.into(),
                reason: "same customer, checked with sales".into(),
            },
            ADMIN_OPERATOR_TOKEN,
        ))
        .await
        .expect("merge answered")
        .into_inner()
}

async fn unmerge(
    client: &mut AdminClient<Channel>,
    request: UnmergeGoldenRequest,
) -> IdentityCommandReply {
    client
        .unmerge_golden(with_token(request, ADMIN_OPERATOR_TOKEN))
        .await
        .expect("un-merge answered")
        .into_inner()
}

/// The result of a reply that must have come in time.
fn result(reply: &IdentityCommandReply) -> &IdentityCommandResult {
    assert!(!reply.pending, "dedupe answered within the wait");
    reply.result.as_ref().expect("a result")
}

#[tokio::test]
async fn a_contact_conflict_is_listed_merged_by_an_operator_and_unmerged() {
    let pipeline = Pipeline::start(Options::default()).await;
    let t = |minute: u32| format!("2026-11-27T10:{minute:02}:00Z");
    send_ok(&pipeline, "x1", "contact.created", &t(0),
        json!({"id": "crm-x", "email": "a@example.com", "phone": "+1 212 555 0100", "first_name": "Xavier"})).await;
    send_ok(&pipeline, "y1", "contact.created", &t(1),
        json!({"id": "crm-y", "email": "b@example.com", "first_name": "Yves", "job_title": "CTO", "company_name": "Example"})).await;
    pipeline.sink.wait_for(2, WAIT).await;
    // Y's email with X's phone, from a third system: which person is it? Recorded, not merged.
    send_ok(
        &pipeline,
        "z1",
        "contact.updated",
        &t(2),
        json!({"id": "shop-z", "email": "b@example.com", "phone": "(212) 555-0100"}),
    )
    .await;
    pipeline.wait_drained(WAIT).await;
    let db = pipeline.db().await;
    let (x, y) = (
        golden_of(&db, "contact", "crm-x").await,
        golden_of(&db, "contact", "crm-y").await,
    );

    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");
    let open = conflicts(&mut client, "contact", true).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (
            open[0].event_id.as_str(),
            &open[0].golden_a,
            &open[0].golden_b
        ),
        ("demo:z1", &y, &x),
        "golden_a: the email's record, golden_b: the phone's"
    );
    assert_eq!(
        open[0].detail,
        "email matched golden_a, phone matched golden_b; not merged"
    );
    assert!(open[0].resolved_at.is_none());
    assert!(
        conflicts(&mut client, "company", true).await.is_empty(),
        "filtered by object"
    );

    // A read-only token may look, never merge or un-merge.
    let denied = client
        .merge_golden(with_token(
            MergeGoldenRequest {
                object: "contact".into(),
                survivor: x.clone(),
                merged: y.clone(),
                reason: String::new(),
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect_err("read-only cannot merge");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let denied = client
        .unmerge_golden(with_token(
            UnmergeGoldenRequest {
                command_id: "anything".into(),
                ..Default::default()
            },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect_err("read-only cannot un-merge");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let missing = client
        .merge_golden(with_token(
            MergeGoldenRequest {
                object: "contact".into(),
                survivor: x.clone(),
                ..Default::default()
            },
            ADMIN_OPERATOR_TOKEN,
        ))
        .await
        .expect_err("the merged record is required");
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);

    // The operator merges Y into X.
    let reply = merge(&mut client, "contact", &x, &y).await;
    let merged = result(&reply).clone();
    assert!(merged.applied, "{}", merged.error);
    assert_eq!((&merged.survivor, &merged.merged), (&x, &y));
    assert_eq!(merged.merge_command_id, reply.command_id);
    assert_eq!(
        merged.filled_fields,
        ["company_name", "job_title"],
        "X's gaps filled from Y; X's own name kept"
    );
    assert_eq!(
        merged
            .moved_refs
            .iter()
            .map(|r| (r.system.as_str(), r.object.as_str(), r.id.as_str()))
            .collect::<Vec<_>>(),
        [("demo", "contact", "crm-y")]
    );
    assert_eq!(linked(&db, &x).await, ["crm-x", "crm-y"]);
    assert!(linked(&db, &y).await.is_empty());
    let row = db
        .query_one(
            "SELECT merged_into::text, email FROM golden_contacts WHERE id::text = $1",
            &[&y],
        )
        .await
        .expect("Y stays");
    assert_eq!(
        (row.get::<_, Option<String>>(0), row.get::<_, String>(1)),
        (Some(x.clone()), "b@example.com".to_owned()),
        "Y points at X and keeps its email, which now leads to X"
    );
    let row = db
        .query_one(
            "SELECT email, first_name, job_title, company_name, version FROM golden_contacts WHERE id::text = $1",
            &[&x],
        )
        .await
        .expect("X");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3),
            row.get::<_, i64>(4)
        ),
        (
            "a@example.com".to_owned(),
            "Xavier".to_owned(),
            "CTO".to_owned(),
            "Example".to_owned(),
            2
        )
    );
    let resolved: Option<std::time::SystemTime> = db
        .query_one(
            "SELECT resolved_at FROM identity_conflicts WHERE event_id = 'demo:z1'",
            &[],
        )
        .await
        .expect("conflict row")
        .get(0);
    assert!(resolved.is_some(), "dedupe's conflict row is resolved");
    let merges: i64 = db
        .query_one(
            "SELECT count(*) FROM identity_merges WHERE command_id = $1 AND kind = 'merge' \
             AND survivor::text = $2 AND merged::text = $3 AND undone_at IS NULL",
            &[&reply.command_id, &x, &y],
        )
        .await
        .expect("identity_merges")
        .get(0);
    assert_eq!(merges, 1);

    // The survivor's change is on the GOLDEN stream, and delivered.
    let changes = changes_of(&pipeline, &reply.command_id).await;
    assert_eq!(changes.len(), 1, "one change: the survivor's");
    assert_eq!(
        (changes[0].golden_id.as_str(), changes[0].version),
        (x.as_str(), 2)
    );
    assert_eq!(changes[0].changed_fields, ["company_name", "job_title"]);
    let mut refs: Vec<&str> = changes[0]
        .external_refs
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    refs.sort_unstable();
    assert_eq!(refs, ["crm-x", "crm-y"]);
    pipeline.sink.wait_for(3, WAIT).await;
    let delivered = pipeline.sink.received()[2].json();
    assert_eq!(delivered["type"], "contact.updated");
    assert_eq!(delivered["data"]["id"], x.as_str());
    assert_eq!(delivered["data"]["job_title"], "CTO");
    assert_eq!(delivered["data"]["email"], "a@example.com");

    pipeline.wait_drained(WAIT).await;
    assert!(conflicts(&mut client, "contact", true).await.is_empty());
    let all = conflicts(&mut client, "", false).await;
    assert_eq!(all.len(), 1);
    assert!(all[0].resolved_at.is_some());
    assert_eq!(all[0].resolved_by, reply.command_id);

    // Y's email, from a system that never saw Y before, now leads to X; X keeps its own email.
    send_ok(
        &pipeline,
        "y2",
        "contact.updated",
        &t(3),
        json!({"id": "web-7", "email": " B@example.com ", "lifecycle_stage": "customer"}),
    )
    .await;
    pipeline.sink.wait_for(4, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    assert_eq!(golden_of(&db, "contact", "web-7").await, x);
    let delivered = pipeline.sink.received()[3].json();
    assert_eq!(delivered["data"]["id"], x.as_str());
    assert_eq!(
        delivered["data"]["changed_fields"],
        json!(["lifecycle_stage"])
    );
    assert_eq!(
        delivered["data"]["email"], "a@example.com",
        "an alias never replaces the survivor's email"
    );

    // Refusals come back with their reason, and change nothing.
    let itself = merge(&mut client, "contact", &x, &x).await;
    assert!(!result(&itself).applied);
    assert!(
        result(&itself).error.contains("into itself"),
        "{}",
        result(&itself).error
    );
    let stranger = "0190f5c4-0000-7000-8000-000000000000";
    let unknown = merge(&mut client, "contact", &x, stranger).await;
    assert!(!result(&unknown).applied);
    assert!(
        result(&unknown)
            .error
            .contains(&format!("no golden contact {stranger}")),
        "{}",
        result(&unknown).error
    );
    let again = merge(&mut client, "contact", &x, &y).await;
    assert!(
        result(&again).error.contains("already merged into"),
        "{}",
        result(&again).error
    );

    // Un-merge: Y gets its source id back and X its gaps; both are re-announced.
    let reply_undo = unmerge(
        &mut client,
        UnmergeGoldenRequest {
            command_id: reply.command_id.clone(),
            reason: "different people after all".into(),
            ..Default::default()
        },
    )
    .await;
    let undone = result(&reply_undo).clone();
    assert!(undone.applied, "{}", undone.error);
    assert_eq!(undone.merge_command_id, reply.command_id);
    assert_eq!((&undone.survivor, &undone.merged), (&x, &y));
    assert_eq!(undone.filled_fields, ["company_name", "job_title"]);
    assert_eq!(undone.moved_refs.len(), 1);
    assert_eq!(linked(&db, &y).await, ["crm-y"]);
    assert_eq!(
        linked(&db, &x).await,
        ["crm-x", "web-7"],
        "what resolved to X meanwhile stays with X"
    );
    let row = db
        .query_one(
            "SELECT merged_into IS NULL FROM golden_contacts WHERE id::text = $1",
            &[&y],
        )
        .await
        .expect("Y");
    assert!(row.get::<_, bool>(0), "Y stands on its own again");
    let row = db
        .query_one(
            "SELECT job_title, company_name, lifecycle_stage FROM golden_contacts WHERE id::text = $1",
            &[&x],
        )
        .await
        .expect("X");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ),
        (String::new(), String::new(), "customer".to_owned()),
        "only what the merge filled is taken back"
    );
    let mut undo_changes: Vec<(String, i64, Vec<String>)> =
        changes_of(&pipeline, &reply_undo.command_id)
            .await
            .into_iter()
            .map(|c| (c.golden_id, c.version, c.changed_fields))
            .collect();
    undo_changes.sort();
    let mut expected = vec![
        (
            x.clone(),
            4,
            vec!["company_name".to_owned(), "job_title".to_owned()],
        ),
        (y.clone(), 2, Vec::new()),
    ];
    expected.sort();
    assert_eq!(undo_changes, expected, "both records announced again");
    pipeline.sink.wait_for(6, WAIT).await;

    let twice = unmerge(
        &mut client,
        UnmergeGoldenRequest {
            command_id: reply.command_id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        result(&twice).error.contains("already undone"),
        "{}",
        result(&twice).error
    );

    // Y's email leads to Y again.
    send_ok(
        &pipeline,
        "y3",
        "contact.updated",
        &t(4),
        json!({"id": "web-8", "email": "b@example.com", "last_name": "Martin"}),
    )
    .await;
    pipeline.sink.wait_for(7, WAIT).await;
    pipeline.wait_drained(WAIT).await;
    assert_eq!(golden_of(&db, "contact", "web-8").await, y);

    // Every command's result went out on the OPS stream, refusals included.
    let published = results(&pipeline, "contact").await;
    assert_eq!(
        published
            .iter()
            .map(|r| (r.command_id.as_str(), r.applied))
            .collect::<Vec<_>>(),
        [
            (reply.command_id.as_str(), true),
            (itself.command_id.as_str(), false),
            (unknown.command_id.as_str(), false),
            (again.command_id.as_str(), false),
            (reply_undo.command_id.as_str(), true),
            (twice.command_id.as_str(), false),
        ]
    );

    // Every operator call is in the audit log, with its target and reason.
    let audit = client
        .list_audit(with_token(
            ListAuditRequest { limit: 1000 },
            ADMIN_READ_TOKEN,
        ))
        .await
        .expect("audit")
        .into_inner()
        .entries;
    // Deliver's destination writes are audited too; this test is about operator calls.
    let audit: Vec<_> = audit
        .into_iter()
        .filter(|e| e.action != "destination.write")
        .collect();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .rev()
        .map(|e| (e.role.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("operator", "identity.merge"),
            ("operator", "identity.merge"),
            ("operator", "identity.merge"),
            ("operator", "identity.merge"),
            ("operator", "identity.unmerge"),
            ("operator", "identity.unmerge"),
        ],
        "refused calls are audited too; read-only and invalid calls are not actions"
    );
    let first = audit.last().expect("the merge");
    assert_eq!(first.target, format!("contact:{y}->{x}"));
    assert_eq!(
        first.detail,
        format!(
            "command {}: same customer, checked with sales",
            reply.command_id
        )
    );
    assert_eq!(audit[1].target, format!("merge:{}", reply.command_id));
    pipeline.finish().await;
}

#[tokio::test]
async fn two_companies_are_merged_with_their_keys_and_unmerged_by_pair() {
    let pipeline = Pipeline::start(Options::default()).await;
    let t = |minute: u32| format!("2026-11-27T10:{minute:02}:00Z");
    send_ok(
        &pipeline,
        "c1",
        "company.created",
        &t(0),
        json!({"id": "crm-1", "name": "Acme GmbH", "domain": "acme.co.uk"}),
    )
    .await;
    send_ok(&pipeline, "c2", "company.created", &t(1),
        json!({"id": "books-2", "name": "ACME", "website": "https://shop.acmestore.co.uk/", "tax_id": "DE 123 456 789", "country": "DE"})).await;
    send_ok(
        &pipeline,
        "p1",
        "contact.created",
        &t(2),
        json!({"id": "crm-p", "email": "p@example.com"}),
    )
    .await;
    pipeline.wait_drained(WAIT).await;
    let db = pipeline.db().await;
    let (acme, store) = (
        golden_of(&db, "company", "crm-1").await,
        golden_of(&db, "company", "books-2").await,
    );
    assert_ne!(acme, store);
    let person = golden_of(&db, "contact", "crm-p").await;
    let mut client = AdminClient::connect(pipeline.admin_url.clone())
        .await
        .expect("admin API");

    let across = merge(&mut client, "company", &acme, &person).await;
    assert!(!result(&across).applied);
    assert!(
        result(&across)
            .error
            .contains("is a contact, not a company"),
        "{}",
        result(&across).error
    );

    let reply = merge(&mut client, "company", &acme, &store).await;
    let merged = result(&reply);
    assert!(merged.applied, "{}", merged.error);
    assert_eq!(merged.filled_fields, ["tax_id", "country"]);
    assert_eq!(linked(&db, &acme).await, ["books-2", "crm-1"]);
    let keys: Vec<(String, String)> = db
        .query(
            "SELECT kind, golden_id::text FROM golden_keys WHERE object = 'company' ORDER BY kind, value",
            &[],
        )
        .await
        .expect("keys")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        keys.iter().all(|(_, golden)| *golden == acme),
        "the merged company's domain and tax id lead to the survivor: {keys:?}"
    );
    let changes = changes_of(&pipeline, &reply.command_id).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].golden_id, acme);
    let Some(Object::Company(company)) = changes[0].record.clone().and_then(|r| r.object) else {
        panic!("a company");
    };
    assert_eq!(
        (company.name.as_str(), company.domain.as_str()),
        ("Acme GmbH", "acme.co.uk"),
        "the survivor's own values stay"
    );
    assert!(!company.tax_id.is_empty());

    // A new system knows the company by the merged one's domain: it is the survivor.
    send_ok(
        &pipeline,
        "c3",
        "company.updated",
        &t(3),
        json!({"id": "erp-3", "name": "Acme GmbH", "domain": "acmestore.co.uk", "industry": "Retail"}),
    )
    .await;
    pipeline.wait_drained(WAIT).await;
    assert_eq!(golden_of(&db, "company", "erp-3").await, acme);

    let undo = unmerge(
        &mut client,
        UnmergeGoldenRequest {
            object: "company".into(),
            survivor: acme.clone(),
            merged: store.clone(),
            reason: "two companies".into(),
            ..Default::default()
        },
    )
    .await;
    let undone = result(&undo);
    assert!(undone.applied, "{}", undone.error);
    assert_eq!(undone.merge_command_id, reply.command_id);
    assert_eq!(undone.filled_fields, ["tax_id", "country"]);
    assert_eq!(linked(&db, &store).await, ["books-2"]);
    assert_eq!(linked(&db, &acme).await, ["crm-1", "erp-3"]);
    let store_keys: i64 = db
        .query_one(
            "SELECT count(*) FROM golden_keys WHERE golden_id::text = $1",
            &[&store],
        )
        .await
        .expect("keys")
        .get(0);
    assert_eq!(store_keys, 2, "domain and tax id back with their company");
    let announced: Vec<String> = changes_of(&pipeline, &undo.command_id)
        .await
        .into_iter()
        .map(|c| c.golden_id)
        .collect();
    assert_eq!(announced.len(), 2);
    assert!(announced.contains(&acme) && announced.contains(&store));
    let row = db
        .query_one(
            "SELECT merged_into IS NULL FROM golden_records WHERE id::text = $1",
            &[&store],
        )
        .await
        .expect("store");
    assert!(row.get::<_, bool>(0));
    pipeline.finish().await;
}
