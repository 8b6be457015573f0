//! Klaviyo: profiles imported (created, then updated by email) with the spec's headers and body,
//! and a contact's new marketing consent subscribed to the flow's list once — never again on a
//! later edit, which would lift an unsubscribe made in Klaviyo since.

use serde_json::json;
use switchyard_integration_tests::vendor_apis::{Connector, KLAVIYO_KEY, Request, VendorApis};

use super::{assert_no_problems, contact, destination, flow, lines, send, start};

const LIST: &str = "Y6nRLr";

#[tokio::test]
async fn klaviyo_imports_profiles_and_subscribes_new_consent_to_the_flows_list_once() {
    let c = Connector::Klaviyo;
    let apis = VendorApis::start().await;
    let pipeline = start(
        &[destination(&apis, c, "marketing", "")],
        &[flow(
            "kl-contacts",
            "contact",
            "marketing",
            &format!(", list_id: {LIST}"),
        )],
    )
    .await;
    let ada = |title: &str| {
        json!({"first_name": "Ada", "last_name": "Lovelace", "phone": "+44 20 7946 0958",
            "company": "Analytical Engines", "job_title": title, "country": "gb",
            "marketing_consent": true, "consent_source": "signup form"})
    };
    send(
        &pipeline,
        "a1",
        &contact("crm-1", "ada@example.com", 1, ada("Mathematician")),
    )
    .await;
    send(
        &pipeline,
        "b1",
        &contact(
            "crm-2",
            "bob@example.com",
            2,
            json!({"first_name": "Bob", "marketing_consent": false}),
        ),
    )
    .await;
    // Ada's title changes; her consent does not.
    send(
        &pipeline,
        "a2",
        &contact("crm-1", "ada@example.com", 3, ada("Countess")),
    )
    .await;

    let seen = apis.requests(c);
    for request in &seen {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Klaviyo-API-Key {KLAVIYO_KEY}").as_str())
        );
        assert_eq!(request.header("revision"), Some("2026-07-15"));
        assert_eq!(
            request.header("content-type"),
            Some("application/vnd.api+json")
        );
        assert_eq!(request.header("accept"), Some("application/vnd.api+json"));
        assert_eq!(request.method, "POST");
    }
    let of = |path: &str| -> Vec<&Request> { seen.iter().filter(|r| r.path == path).collect() };
    let imports = of("/api/profile-import");
    assert_eq!(
        imports.iter().map(|r| r.status).collect::<Vec<_>>(),
        [201, 201, 200],
        "Ada created, Bob created, Ada updated: {:?}",
        lines(&seen)
    );
    assert_eq!(
        imports[0].body,
        json!({"data": {"type": "profile", "attributes": {
            "email": "ada@example.com", "phone_number": "+442079460958", "first_name": "Ada",
            "last_name": "Lovelace", "organization": "Analytical Engines", "title": "Mathematician",
            "location": {"country": "United Kingdom of Great Britain and Northern Ireland"}}}})
    );
    let subscriptions = of("/api/profile-subscription-bulk-create-jobs");
    assert_eq!(
        subscriptions.len(),
        1,
        "only Ada's new consent: {:?}",
        lines(&seen)
    );
    assert_eq!(subscriptions[0].status, 202);
    assert_eq!(
        subscriptions[0].body,
        json!({"data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {
                "custom_source": "signup form",
                "profiles": {"data": [{"type": "profile", "attributes": {
                    "email": "ada@example.com",
                    "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}}]},
            },
            "relationships": {"list": {"data": {"type": "list", "id": LIST}}},
        }})
    );
    let profiles = apis.records(c, "profiles");
    assert_eq!(profiles.len(), 2);
    assert_eq!(
        profiles["ada@example.com"]["attributes"]["title"],
        "Countess"
    );
    assert_eq!(apis.records(c, "subscriptions").len(), 1);
    assert_no_problems(&apis);
    pipeline.finish().await;
}
