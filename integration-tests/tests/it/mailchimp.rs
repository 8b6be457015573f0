//! A "new lead with consent → Mailchimp audience member" flow against a mock of Mailchimp's
//! Marketing API built from its published spec (`testdata/vendor/specs/mailchimp`): only matching
//! changes are written, each as an idempotent PUT by subscriber hash with a body the spec accepts.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use base64::Engine as _;
use serde_json::{Value, json};
use switchyard_chassis::testkit;
use switchyard_integration_tests::vendor_apis::schema::Spec;
use switchyard_integration_tests::vendor_apis::{CLIENT_ID, CLIENT_SECRET, Connector, VendorApis};
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
    /// `POST …/members/{hash}/tags` requests: (subscriber hash, body).
    tag_posts: Arc<Mutex<Vec<(String, Value)>>>,
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

/// `POST /lists/{listId}/members/{subscriberHash}/tags`: the body held against the spec's
/// `MemberTags`; an address that is not a member is a 404, as Mailchimp answers; 204 otherwise.
async fn post_tags(
    State(mock): State<Mock>,
    Path((list, hash)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let spec = Spec::load("specs/mailchimp/marketing-lists-members.trimmed.json");
    let mut problems = spec.check(spec.schema("MemberTags"), &body, "body");
    if list != LIST {
        problems.push(format!("unknown list {list}"));
    }
    mock.tag_posts
        .lock()
        .expect("lock")
        .push((hash.clone(), body.clone()));
    if !problems.is_empty() {
        mock.problems.lock().expect("lock").extend(problems.clone());
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"title": "Invalid Resource", "detail": problems.join("; ")})),
        );
    }
    let mut members = mock.members.lock().expect("lock");
    let Some(member) = members.get_mut(&hash) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"title": "Resource Not Found", "status": 404})),
        );
    };
    for tag in body["tags"].as_array().into_iter().flatten() {
        let name = tag["name"].clone();
        let tags = member["tags"].as_array().cloned().unwrap_or_default();
        let mut tags: Vec<Value> = tags.into_iter().filter(|t| *t != name).collect();
        if tag["status"] == "active" {
            tags.push(name);
        }
        member["tags"] = Value::Array(tags);
    }
    (StatusCode::NO_CONTENT, Json(Value::Null))
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

/// Paid invoices of the `demo` source: the deal deliver created in HubSpot (from a won deal with
/// no HubSpot id) is moved to the flow's stage with one PATCH of the id deliver kept, and the
/// paying customer's Mailchimp member gets the nurture tag — once, however often the invoice is
/// sent; an open invoice does nothing.
#[tokio::test]
async fn a_paid_invoice_tags_its_customer_and_moves_the_deal_deliver_created_in_hubspot() {
    let mock = Mock {
        schema: Arc::new(Some(put_schema())),
        ..Mock::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/3.0", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/3.0/lists/{list}/members/{hash}", put(put_member))
        .route("/3.0/lists/{list}/members/{hash}/tags", post(post_tags))
        .with_state(mock.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let apis = VendorApis::start().await;
    let crm = Connector::Hubspot;
    let when = ", when: { status: paid }";
    let flows = [
        crate::connectors::flow("deals-to-crm", "deal", "crm", ""),
        crate::connectors::flow(
            "paid-invoices-win-deals",
            "invoice",
            "crm",
            &format!("{when}, deal_stage: contractsent"),
        ),
        crate::connectors::flow(
            "paid-invoices-nurture",
            "invoice",
            "mailchimp",
            &format!("{when}, tag: customer-paid"),
        ),
    ];
    let pipeline = Pipeline::start(Options {
        extra_destinations: [
            crate::connectors::destination(&apis, crm, "crm", ""),
            format!(
                "  - {{ name: mailchimp, kind: mailchimp, url: \"{base}\", list_id: {LIST}, secret_env: MC_API_KEY }}"
            ),
        ]
        .join("\n"),
        extra_flows: flows.join("\n"),
        // What `connectors::destination` names for HubSpot, and Mailchimp's key (test values).
        extra_env: vec![
            ("VA_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
            ("VA_CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
            ("VA_HUBSPOT_SECRET".to_owned(), crm.first_access_token()),
            ("VA_HUBSPOT_REFRESH".to_owned(), crm.first_refresh_token()),
            ("MC_API_KEY".to_owned(), API_KEY.to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let send = |id: &'static str, event: Value| {
        let pipeline = &pipeline;
        async move { crate::connectors::send(pipeline, id, &event).await }
    };
    send(
        "c1",
        crate::connectors::contact("crm-9", "Kim@Example.com", 1, json!({"first_name": "Kim"})),
    )
    .await;
    send(
        "d1",
        crate::connectors::event(
            "deal",
            2,
            json!({"id": "deal-9", "name": "Tents", "stage": "won", "amount": crate::connectors::money(5_000)}),
        ),
    )
    .await;
    let created = apis.records(crm, "deals");
    assert_eq!(created.len(), 1, "deliver created the deal in HubSpot");
    let deal_id = created.keys().next().expect("deal id").clone();
    let invoice = |status: &str, second: u32| {
        crate::connectors::event(
            "invoice",
            second,
            json!({"id": "inv-9", "invoice_number": "INV-9", "status": status,
                   "total": crate::connectors::money(5_000), "customer_id": "crm-9", "deal_id": "deal-9"}),
        )
    };
    send("i-open", invoice("open", 3)).await;
    assert!(
        mock.tag_posts.lock().expect("lock").is_empty(),
        "an open invoice tags no one"
    );
    assert_eq!(apis.requests(crm).len(), 1, "an open invoice moves no deal");
    send("i-paid", invoice("paid", 4)).await;
    send("i-paid", invoice("paid", 4)).await;
    send("i-paid-again", invoice("paid", 4)).await;

    let seen = apis.requests(crm);
    assert_eq!(
        crate::connectors::lines(&seen),
        [
            "POST /crm/v3/objects/deals".to_owned(),
            format!("PATCH /crm/v3/objects/deals/{deal_id}")
        ]
    );
    assert_eq!(
        seen[1].body,
        json!({"properties": {"dealstage": "contractsent"}})
    );
    crate::connectors::assert_no_problems(&apis);
    assert_eq!(
        mock.problems.lock().expect("lock").clone(),
        Vec::<String>::new(),
        "every request matched the spec"
    );
    let hash = format!("{:x}", md5::compute(b"kim@example.com"));
    let tags = mock.tag_posts.lock().expect("lock").clone();
    assert_eq!(
        tags,
        [(
            hash.clone(),
            json!({"tags": [{"name": "customer-paid", "status": "active"}]})
        )],
        "one tag write"
    );
    let puts = mock.puts.lock().expect("lock").clone();
    assert_eq!(
        puts,
        [json!({"email_address": "kim@example.com", "status_if_new": "transactional"})],
        "the member is put with its email only, never subscribed by a purchase"
    );
    let members = mock.members.lock().expect("lock").clone();
    assert_eq!(members[&hash]["tags"], json!(["customer-paid"]));
    pipeline.finish().await;
}
