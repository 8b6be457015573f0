//! A "new lead with consent → Mailchimp audience member" flow against a mock of Mailchimp's
//! Marketing API built from its published spec (`../shared/vendor/specs/mailchimp`): only matching
//! changes are written, each as an idempotent PUT by subscriber hash with a body the spec accepts.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use base64::Engine as _;
use serde_json::{Value, json};
use switchyard_chassis::testkit;
use switchyard_integration_tests::{Options, Pipeline};

const LIST: &str = "a6b5da1054";
const API_KEY: &str = "0123456789abcdef0123456789abcdef-us21";

/// What the spec says a `PUT /lists/{listId}/members/{subscriberHash}` body may hold.
struct PutSchema {
    required: Vec<String>,
    properties: HashSet<String>,
    statuses: Vec<String>,
}

fn put_schema() -> PutSchema {
    let file = testkit::vendor_file("specs/mailchimp/marketing-lists-members.trimmed.json");
    let spec: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("Mailchimp spec")).expect("json");
    let reference = spec["paths"]["/lists/{listId}/members/{subscriberHash}"]["put"]["requestBody"]
        ["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .expect("PUT body schema");
    let schema = &spec["components"]["schemas"][reference.rsplit('/').next().expect("name")];
    PutSchema {
        required: schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        properties: schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect(),
        statuses: schema["properties"]["status_if_new"]["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    }
}

#[derive(Clone, Default)]
struct Mock {
    members: Arc<Mutex<BTreeMap<String, Value>>>,
    puts: Arc<Mutex<Vec<Value>>>,
    problems: Arc<Mutex<Vec<String>>>,
    schema: Arc<Option<PutSchema>>,
}

async fn put_member(
    State(mock): State<Mock>,
    Path((list, hash)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut problems = Vec::new();
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("switchyard:{API_KEY}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected_auth.as_str()) {
        problems.push("missing or wrong API key".to_owned());
    }
    if list != LIST {
        problems.push(format!("unknown list {list}"));
    }
    let schema = mock.schema.as_ref().as_ref().expect("schema");
    let object = body.as_object().cloned().unwrap_or_default();
    for field in &schema.required {
        if !object.contains_key(field) {
            problems.push(format!("missing required {field}"));
        }
    }
    for field in object.keys() {
        if !schema.properties.contains(field) {
            problems.push(format!("{field} is not in the spec"));
        }
    }
    if !schema
        .statuses
        .iter()
        .any(|s| Some(s.as_str()) == body["status_if_new"].as_str())
    {
        problems.push(format!(
            "status_if_new {} is not allowed",
            body["status_if_new"]
        ));
    }
    let email = body["email_address"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    if format!("{:x}", md5::compute(email.as_bytes())) != hash {
        problems.push("the subscriber hash is not the MD5 of the lower-cased email".to_owned());
    }
    mock.puts.lock().expect("lock").push(body.clone());
    if !problems.is_empty() {
        mock.problems.lock().expect("lock").extend(problems.clone());
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"title": "Invalid Resource", "detail": problems.join("; ")})),
        );
    }
    let member = json!({"id": hash, "email_address": email, "status": body["status_if_new"], "merge_fields": body["merge_fields"]});
    mock.members
        .lock()
        .expect("lock")
        .insert(hash, member.clone());
    (StatusCode::OK, Json(member))
}

#[tokio::test]
async fn new_leads_with_consent_become_one_mailchimp_member_each() {
    let mock = Mock {
        schema: Arc::new(Some(put_schema())),
        ..Mock::default()
    };
    assert!(
        mock.schema
            .as_ref()
            .as_ref()
            .is_some_and(|s| s.required.contains(&"status_if_new".to_owned()))
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/3.0", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/3.0/lists/{list}/members/{hash}", put(put_member))
        .with_state(mock.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let pipeline = Pipeline::start(Options {
        extra_destinations: format!("  - {{ name: mailchimp, kind: mailchimp, url: \"{base}\", list_id: {LIST}, secret_env: MC_API_KEY }}"),
        extra_flows: "  - { name: leads-to-mailchimp, object: contact, destination: mailchimp, when: { lifecycle_stage: lead, marketing_consent: true }, retry_base: 50ms }".to_owned(),
        extra_env: vec![("MC_API_KEY".to_owned(), API_KEY.to_owned())],
        ..Options::default()
    })
    .await;
    let contact = |id: &str, email: &str, extra: Value| {
        let mut data = json!({"id": id, "email": email});
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        json!({"type": "contact.updated", "data": data})
    };
    let events = [
        (
            "lead-consent",
            contact(
                "crm-1",
                "Jane@Example.com",
                json!({"first_name": "Jane", "lifecycle_stage": "lead", "marketing_consent": true}),
            ),
        ),
        (
            "lead-no-consent",
            contact(
                "crm-2",
                "sam@example.com",
                json!({"first_name": "Sam", "lifecycle_stage": "lead", "marketing_consent": false}),
            ),
        ),
        (
            "customer",
            contact(
                "crm-3",
                "ola@example.com",
                json!({"first_name": "Ola", "lifecycle_stage": "customer", "marketing_consent": true}),
            ),
        ),
    ];
    for (id, event) in &events {
        assert_eq!(pipeline.send(id, event).await.0, 200);
    }
    pipeline.wait_drained(Duration::from_secs(30)).await;
    // Jane's name changes: the same member is updated, not duplicated.
    let update = contact(
        "crm-1",
        "jane@example.com",
        json!({"first_name": "Janet", "lifecycle_stage": "lead", "marketing_consent": true}),
    );
    assert_eq!(pipeline.send("lead-update", &update).await.0, 200);
    pipeline.wait_drained(Duration::from_secs(30)).await;

    assert_eq!(
        mock.problems.lock().expect("lock").clone(),
        Vec::<String>::new(),
        "every request matched the spec"
    );
    let puts = mock.puts.lock().expect("lock").clone();
    assert_eq!(
        puts.len(),
        2,
        "only the consenting lead, created then updated: {puts:#?}"
    );
    let members = mock.members.lock().expect("lock").clone();
    assert_eq!(members.len(), 1);
    let jane = members.values().next().expect("member");
    assert_eq!(jane["email_address"], "jane@example.com");
    assert_eq!(jane["status"], "subscribed");
    assert_eq!(jane["merge_fields"]["FNAME"], "Janet");
    let skipped =
        r#"switchyard_deliver_attempts_total{flow="leads-to-mailchimp",outcome="skipped"}"#;
    assert_eq!(
        pipeline
            .metric(switchyard_integration_tests::Service::Deliver, skipped)
            .await,
        Some(2.0)
    );
    pipeline.finish().await;
}
