//! The generated NATS permissions (`bus::permissions`) let each service do its job and nothing
//! else: a private nats-server with one user per service runs one event end to end, and then each
//! user is refused what belongs to another service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchyard_chassis::async_nats;
use switchyard_chassis::bus::permissions::{self, Service as NatsService};
use switchyard_chassis::testkit::{self, PrivateNats};
use switchyard_integration_tests::{FLOW, NatsUsers, Options, Pipeline, Service};

fn harness_service(service: NatsService) -> Service {
    match service {
        NatsService::Ingest => Service::Ingest,
        NatsService::Transform => Service::Transform,
        NatsService::Dedupe => Service::Dedupe,
        NatsService::Deliver => Service::Deliver,
        NatsService::Monitor => Service::Monitor,
    }
}

fn password_var(service: NatsService) -> String {
    format!("SY_{}_PASSWORD", service.as_str().to_uppercase())
}

/// Connects as `user` the way the service does (same client name, so the same private inbox) and
/// collects the server's error messages, which is how NATS reports a refused publish or subscribe.
async fn connect_as(
    url: &str,
    prefix: &str,
    service: NatsService,
    password: &str,
) -> (async_nats::Client, Arc<Mutex<Vec<String>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    let client = async_nats::ConnectOptions::with_user_and_password(
        service.as_str().to_owned(),
        password.to_owned(),
    )
    .custom_inbox_prefix(permissions::inbox_prefix(prefix, &service.client_name()))
    .event_callback(move |event| {
        let sink = sink.clone();
        async move {
            if let async_nats::Event::ServerError(error) = event {
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(error.to_string().to_lowercase());
            }
        }
    })
    .connect(url)
    .await
    .expect("service user connects");
    (client, errors)
}

/// Waits until the server has refused something on `subject`.
async fn refused(errors: &Arc<Mutex<Vec<String>>>, subject: &str) -> bool {
    let subject = subject.to_lowercase();
    for _ in 0..100 {
        let seen = errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|e| e.contains("permissions violation") && e.contains(&subject));
        if seen {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn each_service_user_can_do_its_job_and_nothing_else() {
    let prefix = testkit::unique("perm");
    let mut env: Vec<(String, String)> = Vec::new();
    let mut users = HashMap::new();
    for service in NatsService::ALL {
        let password = testkit::unique("pw");
        env.push((password_var(service), password.clone()));
        users.insert(
            harness_service(service),
            (service.as_str().to_owned(), password),
        );
    }
    let admin_password = testkit::unique("pw");
    env.push(("SY_ADMIN_PASSWORD".to_owned(), admin_password.clone()));
    // Exactly what a hand-run server gets from the docs, plus an unrestricted user for the
    // harness's own checks (stream contents, consumer lag, clean-up), which connect without
    // credentials and so become that user.
    let auth = format!(
        "no_auth_user: admin\nauthorization {{\n  users = [\n{}    {{ user: admin, password: $SY_ADMIN_PASSWORD }}\n  ]\n}}\n",
        permissions::server_users(&prefix, &[FLOW], password_var)
    );
    let nats = PrivateNats::start_with_config(&auth, &env)
        .await
        .expect("private nats-server with per-service users");

    // The job: one webhook travels through all five services, each under its own user.
    let pipeline = Pipeline::start(Options {
        nats_users: Some(NatsUsers {
            prefix: prefix.clone(),
            url: nats.url.clone(),
            users: users.clone(),
        }),
        ..Options::default()
    })
    .await;
    let body =
        json!({"type": "contact.updated", "data": {"id": "crm-1", "email": "perm@example.com"}});
    let (status, answer) = pipeline.send("perm_1", &body).await;
    assert_eq!(status, 200, "{answer}");
    pipeline.sink.wait_for(1, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    assert_eq!(pipeline.flow_count("delivered").await, Some(1.0));

    // Nothing else: each user is refused what belongs to another stage.
    let password = |s: NatsService| users[&harness_service(s)].1.clone();
    let (ingest, errors) = connect_as(
        &nats.url,
        &prefix,
        NatsService::Ingest,
        &password(NatsService::Ingest),
    )
    .await;
    let golden = format!("{prefix}.golden.x");
    ingest
        .publish(golden.clone(), "forged".into())
        .await
        .expect("publish is sent");
    assert!(
        refused(&errors, &golden).await,
        "ingest published to {golden}"
    );
    let canonical = format!("{prefix}.canonical.>");
    let _sub = ingest
        .subscribe(canonical.clone())
        .await
        .expect("subscribe is sent");
    assert!(
        refused(&errors, &canonical).await,
        "ingest subscribed to {canonical}"
    );
    let _inboxes = ingest
        .subscribe("_INBOX.>")
        .await
        .expect("subscribe is sent");
    assert!(
        refused(&errors, "_INBOX.>").await,
        "ingest may read every inbox"
    );
    let pull = format!(
        "$JS.API.CONSUMER.MSG.NEXT.{}_RAW.{prefix}-transform",
        prefix.to_uppercase()
    );
    ingest
        .publish(pull.clone(), "1".into())
        .await
        .expect("publish is sent");
    assert!(
        refused(&errors, &pull).await,
        "ingest pulled transform's messages"
    );

    let (deliver, errors) = connect_as(
        &nats.url,
        &prefix,
        NatsService::Deliver,
        &password(NatsService::Deliver),
    )
    .await;
    let raw = format!("{prefix}.raw.demo.contact.updated");
    deliver
        .publish(raw.clone(), "forged".into())
        .await
        .expect("publish is sent");
    assert!(refused(&errors, &raw).await, "deliver published to {raw}");
    let other_flow = format!("{prefix}.ops.delivery.someone-else");
    deliver
        .publish(other_flow.clone(), "x".into())
        .await
        .expect("publish is sent");
    assert!(
        refused(&errors, &other_flow).await,
        "deliver reported for another flow"
    );

    let (monitor, errors) = connect_as(
        &nats.url,
        &prefix,
        NatsService::Monitor,
        &password(NatsService::Monitor),
    )
    .await;
    let forged = format!("{prefix}.dlq.deliver.{FLOW}");
    monitor
        .publish(forged.clone(), "forged".into())
        .await
        .expect("publish is sent");
    assert!(
        refused(&errors, &forged).await,
        "monitor forged deliver's dead letter"
    );
    let delete = format!("$JS.API.STREAM.DELETE.{}_OPS", prefix.to_uppercase());
    monitor
        .publish(delete.clone(), "".into())
        .await
        .expect("publish is sent");
    assert!(
        refused(&errors, &delete).await,
        "monitor may delete a stream"
    );

    let (transform, errors) = connect_as(
        &nats.url,
        &prefix,
        NatsService::Transform,
        &password(NatsService::Transform),
    )
    .await;
    let dlq = format!("{prefix}.dlq.deliver.{FLOW}");
    transform
        .publish(dlq.clone(), "forged".into())
        .await
        .expect("publish is sent");
    assert!(
        refused(&errors, &dlq).await,
        "transform wrote deliver's dead letters"
    );
    let steal = format!("_INBOX.{prefix}.switchyard-dedupe.>");
    let _steal = transform
        .subscribe(steal.clone())
        .await
        .expect("subscribe is sent");
    assert!(
        refused(&errors, &steal).await,
        "transform read dedupe's inbox"
    );

    // A wrong password gets no connection at all.
    let wrong = async_nats::ConnectOptions::with_user_and_password("ingest".into(), "wrong".into())
        .max_reconnects(Some(1))
        .connect(&nats.url)
        .await;
    assert!(wrong.is_err(), "a wrong password connected");

    // The forgeries reached no stream: GOLDEN holds the one real change only.
    assert_eq!(
        pipeline
            .stream_messages(switchyard_chassis::bus::StreamKind::Golden)
            .await
            .len(),
        1
    );
    pipeline.finish().await;
    drop(nats);
}
