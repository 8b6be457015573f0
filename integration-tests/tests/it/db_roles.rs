//! The shipped `deploy/compose/postgres-init.sh` gives each service its own PostgreSQL role and
//! schema: the pipeline works end to end with them, and no service can touch another's tables
//! (monitor reads golden-record lineage through one function of dedupe's, nothing more).

use std::time::Duration;

use serde_json::json;
use switchyard_integration_tests::{Options, Pipeline, Service};
use tokio_postgres::error::SqlState;

#[tokio::test]
async fn each_service_runs_with_its_own_role_and_sees_only_its_own_tables() {
    let pipeline = Pipeline::start(Options {
        database_roles: true,
        ..Options::default()
    })
    .await;
    let event =
        json!({"type": "contact.created", "data": {"id": "crm-1", "email": "role@example.com"}});
    assert_eq!(pipeline.send("roles-1", &event).await.0, 200);
    pipeline.sink.wait_for(1, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    // Every service's tables landed in its own schema.
    let admin = pipeline.db().await;
    let golden: i64 = admin
        .query_one("SELECT count(*) FROM dedupe.golden_contacts", &[])
        .await
        .expect("dedupe's schema")
        .get(0);
    assert_eq!(golden, 1);
    // Ingest records accepted ids off the request path: wait for the row.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let accepted: i64 = admin
            .query_one("SELECT count(*) FROM ingest.accepted_events", &[])
            .await
            .expect("ingest's schema")
            .get(0);
        if accepted == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ingest never recorded the event id"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let roles = pipeline.database_roles.clone().expect("roles");
    let connect = |service: Service| {
        let url = roles.urls[&service].clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("service login");
            tokio::spawn(connection);
            client
        }
    };
    let ingest = connect(Service::Ingest).await;
    let own: i64 = ingest
        .query_one("SELECT count(*) FROM accepted_events", &[])
        .await
        .expect("ingest reads its own table")
        .get(0);
    assert_eq!(own, 1);
    for other in [
        "dedupe.golden_contacts",
        "deliver.deliveries",
        "monitor.audit_log",
        "transform.observed_shapes",
    ] {
        let denied = ingest
            .query_one(&format!("SELECT count(*) FROM {other}"), &[])
            .await
            .expect_err("another service's table");
        assert_eq!(
            denied.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "ingest reading {other}: {denied:?}"
        );
    }
    // Monitor reads a golden record's lineage through dedupe's one function, and nothing else
    // of dedupe's: no table, no write.
    let monitor = connect(Service::Monitor).await;
    let golden: String = admin
        .query_one("SELECT id::text FROM dedupe.golden_contacts", &[])
        .await
        .expect("the golden contact")
        .get(0);
    let lineage = monitor
        .query(
            "SELECT kind, system, source_id FROM dedupe.golden_lineage($1::text::uuid)",
            &[&golden],
        )
        .await
        .expect("monitor reads the lineage");
    assert!(
        lineage.iter().any(|r| r.get::<_, String>(0) == "source"
            && r.get::<_, String>(1) == "demo"
            && r.get::<_, String>(2) == "crm-1"),
        "the demo source record in the lineage"
    );
    for statement in [
        "SELECT count(*) FROM dedupe.golden_contacts",
        "SELECT count(*) FROM dedupe.crosswalk",
        "UPDATE dedupe.crosswalk SET golden_id = golden_id",
        "DELETE FROM dedupe.processed_events",
    ] {
        let denied = monitor
            .execute(statement, &[])
            .await
            .expect_err("monitor may not touch dedupe's tables");
        assert_eq!(
            denied.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "monitor: {statement}: {denied:?}"
        );
    }
    let deliver = connect(Service::Deliver).await;
    let denied = deliver
        .execute("UPDATE dedupe.golden_contacts SET first_name = 'x'", &[])
        .await
        .expect_err("deliver may not write dedupe's records");
    assert_eq!(
        denied.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{denied:?}"
    );
    let denied = deliver
        .batch_execute("CREATE TABLE public.sneaky (id int)")
        .await
        .expect_err("no tables outside its schema");
    assert_eq!(
        denied.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{denied:?}"
    );
    pipeline.finish().await;
}
