//! HubSpot and Salesforce: what each request looks like (path, method, headers, body), and that
//! changes of the same record update it in place — HubSpot by email, domain or deal id,
//! Salesforce by the external-id field holding the golden id, or by its own id when the record was
//! born in the org.

use prost::Message as _;
use serde_json::json;
use switchyard_chassis::bus::StreamKind;
use switchyard_integration_tests::vendor_apis::{Connector, Fault, Request, VendorApis};
use switchyard_proto::v1::{DeliveryOutcome, DeliveryResult};

use super::{
    assert_no_problems, contact, destination, event, flow, lines, money, send, start, statuses,
};

fn find<'a>(requests: &'a [Request], method: &str, path: &str) -> Vec<&'a Request> {
    requests
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

#[tokio::test]
async fn hubspot_upserts_contacts_by_email_and_companies_by_domain_and_patches_or_creates_deals() {
    let c = Connector::Hubspot;
    let apis = VendorApis::start().await;
    // The portal has deal 8001 already: the `demo` source reports this portal's deals.
    apis.seed(
        c,
        "deals",
        "8001",
        json!({"id": "8001", "properties": {"dealname": "Acme renewal", "dealstage": "appointmentscheduled"}}),
    );
    let pipeline = start(
        &[
            destination(
                &apis,
                c,
                "crm",
                ", source_system: demo, tax_id_property: tax_id",
            ),
            destination(&apis, c, "crm-other", ""),
        ],
        &[
            flow("hs-contacts", "contact", "crm", ""),
            flow("hs-companies", "company", "crm", ""),
            flow("hs-deals", "deal", "crm", ""),
            flow("hs-other-deals", "deal", "crm-other", ""),
        ],
    )
    .await;
    let jane = json!({"first_name": "Jane", "last_name": "Doe", "phone": "+44 20 7946 0958",
        "company": "Acme Ltd", "job_title": "CTO", "lifecycle_stage": "customer"});
    send(
        &pipeline,
        "c1",
        &contact("crm-1", "Jane@Example.com", 1, jane),
    )
    .await;
    send(
        &pipeline,
        "co1",
        &event(
            "company",
            2,
            json!({"id": "co-1", "name": "Acme Ltd", "domain": "acme.co.uk", "country": "gb", "tax_id": "GB 123 456 789"}),
        ),
    )
    .await;
    let deal = |stage: &str, second| {
        event(
            "deal",
            second,
            json!({"id": "8001", "name": "Acme renewal", "stage": stage, "amount": money(150_000), "close_date": "2026-01-31"}),
        )
    };
    send(&pipeline, "d1", &deal("won", 3)).await;

    let seen = apis.requests(c);
    for request in &seen {
        assert_eq!(request.bearer(), Some(c.first_access_token().as_str()));
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    let upserts = find(&seen, "POST", "/crm/v3/objects/contacts/batch/upsert");
    assert_eq!(upserts.len(), 1, "{:?}", lines(&seen));
    assert_eq!(
        upserts[0].body,
        json!({"inputs": [{"idProperty": "email", "id": "jane@example.com", "properties": {
            "email": "jane@example.com", "firstname": "Jane", "lastname": "Doe", "phone": "+442079460958",
            "company": "Acme Ltd", "jobtitle": "CTO", "lifecyclestage": "customer"}}]})
    );
    let companies = find(&seen, "POST", "/crm/v3/objects/companies/batch/upsert");
    assert_eq!(
        companies[0].body,
        json!({"inputs": [{"idProperty": "domain", "id": "acme.co.uk", "properties": {
            "name": "Acme Ltd", "domain": "acme.co.uk", "country": "GB", "tax_id": "GB123456789"}}]})
    );
    // The portal's own deal is patched by its id, stages mapped back to HubSpot's.
    let patches = find(&seen, "PATCH", "/crm/v3/objects/deals/8001");
    assert_eq!(patches.len(), 1, "{:?}", lines(&seen));
    assert_eq!(
        patches[0].body,
        json!({"properties": {"dealname": "Acme renewal", "dealstage": "closedwon", "amount": "1500.00", "closedate": "2026-01-31"}})
    );
    // Another portal has no id for it: created once…
    let creates = find(&seen, "POST", "/crm/v3/objects/deals");
    assert_eq!(creates.len(), 1, "{:?}", lines(&seen));
    assert_eq!(creates[0].status, 201);
    assert_eq!(creates[0].body["properties"]["pipeline"], "default");
    let created = apis
        .records(c, "deals")
        .into_keys()
        .find(|id| id != "8001")
        .expect("a created deal");

    // …then every change updates the same records.
    send(&pipeline, "d2", &deal("lost", 4)).await;
    let jane_again = json!({"first_name": "Jane", "last_name": "Doe", "job_title": "CEO"});
    send(
        &pipeline,
        "c2",
        &contact("crm-1", "jane@example.com", 5, jane_again),
    )
    .await;
    let seen = apis.requests(c);
    let patches = find(&seen, "PATCH", "/crm/v3/objects/deals/8001");
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[1].body["properties"]["dealstage"], "closedlost");
    let other = find(&seen, "PATCH", &format!("/crm/v3/objects/deals/{created}"));
    assert_eq!(
        other.len(),
        1,
        "the created deal is updated, not created again"
    );
    assert_eq!(find(&seen, "POST", "/crm/v3/objects/deals").len(), 1);
    assert_eq!(apis.records(c, "deals").len(), 2);
    // The id the other portal gave the deal joined dedupe's crosswalk, beside the source's own.
    let linked: bool = pipeline
        .db()
        .await
        .query_one(
            "SELECT a.golden_id = b.golden_id FROM crosswalk a, crosswalk b \
             WHERE a.system = 'demo' AND a.object = 'deal' AND a.external_id = '8001' \
             AND b.system = 'crm-other' AND b.object = 'deal' AND b.external_id = $1",
            &[&created],
        )
        .await
        .expect("both crosswalk rows")
        .get(0);
    assert!(
        linked,
        "the created deal's id leads to the same golden deal"
    );
    let contacts = apis.records(c, "contacts");
    assert_eq!(contacts.len(), 1, "upserted by email: {contacts:?}");
    assert_eq!(
        contacts["jane@example.com"]["properties"]["jobtitle"],
        "CEO"
    );
    assert_no_problems(&apis);
    pipeline.finish().await;
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36 && text.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn hubspot_deals_upserted_by_a_unique_property_survive_a_lost_answer() {
    let c = Connector::Hubspot;
    let apis = VendorApis::start().await;
    let pipeline = start(
        &[destination(
            &apis,
            c,
            "crm",
            ", deal_id_property: switchyard_id",
        )],
        &[flow("hs-deals", "deal", "crm", "")],
    )
    .await;
    // HubSpot creates the deal but its answer never arrives (deliver times out): the retry is
    // the same upsert by the golden id, so it finds that deal instead of creating another.
    apis.fail_next(c, Fault::Hang);
    let deal = |stage: &str, second| {
        event(
            "deal",
            second,
            json!({"id": "d-77", "name": "Beta rollout", "stage": stage, "amount": money(90_000)}),
        )
    };
    send(&pipeline, "d1", &deal("qualified", 1)).await;
    let seen = apis.requests(c);
    let upserts = find(&seen, "POST", "/crm/v3/objects/deals/batch/upsert");
    assert_eq!(upserts.len(), 2, "the lost answer, then the retry");
    assert_eq!(
        upserts[0].body, upserts[1].body,
        "the retry is the same upsert"
    );
    let golden = upserts[0].body["inputs"][0]["id"]
        .as_str()
        .expect("golden id");
    assert_eq!(
        upserts[0].body["inputs"][0],
        json!({"idProperty": "switchyard_id", "id": golden, "properties": {
            "dealname": "Beta rollout", "dealstage": "qualifiedtobuy", "amount": "900.00",
            "pipeline": "default", "switchyard_id": golden}})
    );
    assert!(find(&seen, "POST", "/crm/v3/objects/deals").is_empty());
    let deals = apis.records(c, "deals");
    assert_eq!(deals.len(), 1, "one deal after the lost answer: {deals:?}");
    let (id, _) = deals.iter().next().expect("the deal");

    // The id HubSpot gave was kept: the next change patches that deal.
    send(&pipeline, "d2", &deal("won", 2)).await;
    let seen = apis.requests(c);
    let patches = find(&seen, "PATCH", &format!("/crm/v3/objects/deals/{id}"));
    assert_eq!(patches.len(), 1, "the won stage patched onto the same deal");
    assert_eq!(patches[0].body["properties"]["dealstage"], "closedwon");
    assert_eq!(apis.records(c, "deals").len(), 1);
    assert_no_problems(&apis);
    pipeline.finish().await;
}

#[tokio::test]
async fn salesforce_upserts_by_external_id_sends_only_the_flows_fields_and_retries_a_failed_refresh()
 {
    let c = Connector::Salesforce;
    let apis = VendorApis::start().await;
    let pipeline = start(
        &[destination(&apis, c, "org", "")],
        &[
            flow(
                "sf-contacts",
                "contact",
                "org",
                ", fields: [email, last_name, country]",
            ),
            flow("sf-companies", "company", "org", ""),
            flow("sf-deals", "deal", "org", ""),
        ],
    )
    .await;
    let grace = json!({"first_name": "Grace", "last_name": "Hopper", "phone": "+1 201 555 0142",
        "job_title": "Rear Admiral", "country": "us"});
    send(
        &pipeline,
        "c1",
        &contact("crm-7", "grace@example.com", 1, grace),
    )
    .await;
    send(
        &pipeline,
        "co1",
        &event("company", 2, json!({"id": "co-1", "name": "Acme Ltd", "domain": "acme.co.uk", "industry": "Manufacturing", "country": "gb"})),
    )
    .await;
    send(
        &pipeline,
        "d1",
        &event("deal", 3, json!({"id": "d-1", "name": "Acme renewal", "stage": "won", "amount": money(150_000), "close_date": "2026-01-31"})),
    )
    .await;

    let seen = apis.requests(c);
    assert_eq!(statuses(&seen), [201, 201, 201], "{:?}", lines(&seen));
    let by = |sobject: &str| {
        let prefix = format!("/services/data/v61.0/sobjects/{sobject}/Switchyard_Id__c/");
        let found: Vec<&Request> = seen
            .iter()
            .filter(|r| r.path.starts_with(&prefix))
            .collect();
        assert_eq!(found.len(), 1, "{sobject}: {:?}", lines(&seen));
        assert!(is_uuid(&found[0].path[prefix.len()..]), "{}", found[0].path);
        found[0].clone()
    };
    let contact_request = by("Contact");
    assert_eq!(contact_request.method, "PATCH");
    assert_eq!(
        contact_request.bearer(),
        Some(c.first_access_token().as_str())
    );
    assert_eq!(
        contact_request.body,
        json!({"Email": "grace@example.com", "LastName": "Hopper", "MailingCountry": "US"}),
        "only the flow's fields: no first name, phone or title"
    );
    assert_eq!(
        by("Account").body,
        json!({"Name": "Acme Ltd", "Website": "acme.co.uk", "Industry": "Manufacturing", "BillingCountry": "GB"})
    );
    assert_eq!(
        by("Opportunity").body,
        json!({"Name": "Acme renewal", "StageName": "Closed Won", "Amount": 1500.0, "CloseDate": "2026-01-31"})
    );

    // The token is refused and the first refresh fails (the token endpoint is down): a
    // transient failure, retried; the next attempt refreshes and writes.
    apis.fail_next(c, Fault::RevokeToken);
    apis.fail_next_refresh(c, 500);
    let again = json!({"first_name": "Grace", "last_name": "Murray Hopper"});
    send(
        &pipeline,
        "c2",
        &contact("crm-7", "grace@example.com", 4, again),
    )
    .await;
    let seen = apis.requests(c);
    let later: Vec<&Request> = seen[3..].iter().collect();
    assert_eq!(
        later.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 401, 200],
        "refused, refused again after the failed refresh, then written"
    );
    assert_eq!(later[2].path, contact_request.path, "the same record");
    assert_eq!(later[2].bearer(), Some("salesforce-access-1"));
    assert_eq!(apis.refreshes(c), 1);
    let records = apis.records(c, "Contact");
    assert_eq!(records.len(), 1);
    assert_eq!(
        records.values().next().expect("contact")["LastName"],
        "Murray Hopper"
    );
    let failed: Vec<DeliveryResult> = pipeline
        .stream_messages(StreamKind::Ops)
        .await
        .iter()
        .filter_map(|m| DeliveryResult::decode(m.payload.as_ref()).ok())
        .filter(|r| r.flow == "sf-contacts" && r.outcome == i32::from(DeliveryOutcome::Failed))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].reason.contains("token refresh")
            && failed[0].reason.contains("500")
            && !failed[0].reason.contains("salesforce-access"),
        "{}",
        failed[0].reason
    );
    assert_no_problems(&apis);
    pipeline.finish().await;
}

/// A contact born in the Salesforce org (its Salesforce id is the source's id, the destination's
/// `source_system`): updated by that id and tagged with the golden id, never upserted into a
/// second record; its next change goes to the same record.
#[tokio::test]
async fn salesforce_updates_the_record_born_there_by_its_id() {
    let c = Connector::Salesforce;
    let apis = VendorApis::start().await;
    const BORN: &str = "003000000000777";
    apis.seed(
        c,
        "Contact",
        BORN,
        json!({"Id": BORN, "LastName": "Hopper", "Email": "grace@example.com"}),
    );
    let pipeline = start(
        &[destination(&apis, c, "org", ", source_system: demo")],
        &[flow("sf-contacts", "contact", "org", "")],
    )
    .await;
    let grace = |last: &str, second| {
        contact(
            BORN,
            "grace@example.com",
            second,
            json!({"first_name": "Grace", "last_name": last}),
        )
    };
    send(&pipeline, "c1", &grace("Hopper", 1)).await;
    send(&pipeline, "c2", &grace("Murray Hopper", 2)).await;

    let seen = apis.requests(c);
    let by_id = format!("PATCH /services/data/v61.0/sobjects/Contact/{BORN}");
    assert_eq!(
        lines(&seen),
        [by_id.clone(), by_id],
        "updated where it is, twice; never upserted by the external id"
    );
    assert_eq!(statuses(&seen), [204, 204]);
    let golden = seen[0].body["Switchyard_Id__c"]
        .as_str()
        .expect("golden id");
    assert!(is_uuid(golden), "{golden}");
    let contacts = apis.records(c, "Contact");
    assert_eq!(contacts.len(), 1, "no second record: {contacts:?}");
    let record = &contacts[golden];
    assert_eq!(record["Id"], BORN);
    assert_eq!(record["LastName"], "Murray Hopper");
    assert_no_problems(&apis);
    pipeline.finish().await;
}
