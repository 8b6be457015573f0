//! The built-in mappings against the vendors' published samples and canonical payloads.

use serde_json::{Value, json};
use switchyard_chassis::testkit::{vendor_file, vendor_json};
use switchyard_proto::contracts;

use super::{Context, Registry};

fn registry() -> Registry {
    let contracts = contracts::built_in().expect("contracts");
    Registry::load(None, &contracts).expect("built-in mappings load")
}

fn ctx() -> Context {
    Context::new(phonenumber::country::Id::US)
}

/// A published sample under `testdata/vendor/samples`.
fn vendor(path: &str) -> Value {
    vendor_json(&format!("samples/{path}"))
}

#[test]
fn the_canonical_json_of_standard_webhooks_senders_maps_field_by_field() {
    let payload = json!({"type": "contact.created", "timestamp": "2026-11-27T10:00:00Z",
        "data": {"id": 42, "email": "  Jane.Doe@Example.COM ", "name": "Jane van Doe", "phone": "020 7946 0958", "marketing_consent": true, "country": "gb"}});
    let mapping = registry()
        .find("standard-webhooks", "contact.created")
        .cloned()
        .expect("mapping");
    let mapped = mapping.apply(&payload, &ctx()).expect("mapped");
    assert_eq!(mapped.record_id, "42");
    assert_eq!(mapped.occurred_at.as_deref(), Some("2026-11-27T10:00:00Z"));
    assert_eq!(
        Value::Object(mapped.record),
        json!({"email": "jane.doe@example.com", "first_name": "Jane van", "last_name": "Doe", "phone": "+442079460958", "marketing_consent": true, "country": "GB"})
    );
}

#[test]
fn a_national_phone_is_read_in_the_records_own_country_or_left_for_dedupe() {
    let mapping = registry()
        .find("standard-webhooks", "contact.created")
        .cloned()
        .expect("mapping");
    let phone = |phone: &str, country: Option<&str>| {
        let mut data = json!({"id": 7, "email": "p@example.com", "phone": phone});
        if let Some(country) = country {
            data["country"] = json!(country);
        }
        let payload = json!({"type": "contact.created", "data": data});
        let mapped = mapping.apply(&payload, &ctx()).expect("mapped");
        mapped.record["phone"].clone()
    };
    // The default region here is the US; the record's country decides.
    assert_eq!(phone("01 23 45 67 89", Some("FR")), json!("+33123456789"));
    assert_eq!(
        phone("(11) 91234-5678", Some("BR")),
        json!("+5511912345678")
    );
    assert_eq!(phone("+49 1511 6989129", None), json!("+4915116989129"));
    // National and no country: kept as written; dedupe reads it in its default region.
    assert_eq!(phone("(201) 555-0123", None), json!("(201) 555-0123"));
}

#[test]
fn stripe_customers_map_and_the_fixture_without_email_is_caught_by_the_contract() {
    let mut event = vendor("stripe/customer.created.derived-from-fixtures.json");
    let mapping = registry()
        .find("stripe", "customer.created")
        .cloned()
        .expect("mapping");
    let contract = contracts::built_in()
        .expect("contracts")
        .into_iter()
        .find(|c| c.id() == "contact/v1")
        .expect("contact");
    let mut mapped = mapping.apply(&event, &ctx()).expect("mapped");
    assert_eq!(mapped.record_id, "cus_QXg1o8vcGmoR32");
    assert_eq!(mapped.occurred_at.as_deref(), Some("2009-02-13T23:31:30Z"));
    let problems = contract
        .apply(&mut mapped.record)
        .expect_err("the fixture has no email");
    assert_eq!(problems, vec!["contact.email: required".to_owned()]);

    event["data"]["object"]["email"] = json!("Ada@Example.org");
    event["data"]["object"]["name"] = json!("Ada Lovelace");
    let mut mapped = mapping.apply(&event, &ctx()).expect("mapped");
    contract.apply(&mut mapped.record).expect("valid");
    assert_eq!(mapped.record["email"], "ada@example.org");
    assert_eq!(mapped.record["first_name"], "Ada");
    assert_eq!(mapped.record["lifecycle_stage"], "customer");
}

#[test]
fn mailchimp_forms_map_with_consent_only_for_subscriptions() {
    let subscribe = json!({"type": "subscribe", "fired_at": "2009-03-26 21:35:57",
        "data": {"id": "8a25ff1d98", "email": "api@mailchimp.com", "merges": {"EMAIL": "api@mailchimp.com", "FNAME": "MailChimp", "LNAME": "API"}}});
    let mapping = registry()
        .find("mailchimp", "subscribe")
        .cloned()
        .expect("mapping");
    let mapped = mapping.apply(&subscribe, &ctx()).expect("mapped");
    assert_eq!(mapped.occurred_at.as_deref(), Some("2009-03-26T21:35:57Z"));
    assert_eq!(mapped.record["marketing_consent"], true);
    assert_eq!(mapped.record["first_name"], "MailChimp");
    let upemail = json!({"type": "upemail", "fired_at": "2009-03-26 22:15:09",
        "data": {"new_id": "51aa6d5d12", "new_email": "api+new@mailchimp.com", "old_email": "api+old@mailchimp.com"}});
    let mapped = mapping.apply(&upemail, &ctx()).expect("mapped");
    assert_eq!(
        (mapped.record_id.as_str(), mapped.record["email"].as_str()),
        ("51aa6d5d12", Some("api+new@mailchimp.com"))
    );
    assert!(
        !mapped.record.contains_key("marketing_consent"),
        "an address change says nothing about consent"
    );
}

#[test]
fn unknown_events_have_no_mapping_and_broken_files_are_refused() {
    let registry = registry();
    assert!(registry.find("stripe", "charge.refunded").is_none());
    assert!(
        registry.find("mailchimp", "campaign").is_none(),
        "a campaign send is not about a person"
    );
    let contracts = contracts::built_in().expect("contracts");
    let dir = std::env::temp_dir().join(format!("sy-mappings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("bad.yaml"), "name: x\nsource_kind: stripe\nevent_types: [a]\ncontract: contact/v1\nrecord_id: { paths: [id] }\nfields:\n  fax: { paths: [fax] }\n").expect("write");
    let err = Registry::load(Some(&dir), &contracts).expect_err("unknown field");
    assert!(
        err.to_string()
            .contains("fields.fax: not a field of contact/v1"),
        "{err}"
    );
    std::fs::write(dir.join("bad.yaml"), "name: stripe-customer\nsource_kind: stripe\nevent_types: [customer.created]\ncontract: contact/v1\nrecord_id: { paths: [data.object.id] }\nfields:\n  email: { paths: [data.object.email] }\n").expect("write");
    let overridden = Registry::load(Some(&dir), &contracts).expect("override");
    assert_eq!(
        overridden
            .find("stripe", "customer.created")
            .map(|m| m.fields.len()),
        Some(1),
        "the user's file replaced the built-in one"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Applies the built-in mapping for (kind, event type) and the contract it names.
fn canonical(kind: &str, event_type: &str, payload: &Value) -> (String, Value) {
    let mapping = registry()
        .find(kind, event_type)
        .cloned()
        .unwrap_or_else(|| panic!("a mapping for {kind} {event_type}"));
    assert!(mapping.applies_to(payload), "{kind} {event_type} applies");
    let contract = contracts::built_in()
        .expect("contracts")
        .into_iter()
        .find(|c| c.id() == mapping.contract)
        .expect("contract");
    let mut mapped = mapping
        .apply(payload, &ctx())
        .unwrap_or_else(|p| panic!("{kind} {event_type}: {p:?}"));
    contract
        .apply(&mut mapped.record)
        .unwrap_or_else(|p| panic!("{kind} {event_type} breaks {}: {p:?}", mapping.contract));
    (mapped.record_id, Value::Object(mapped.record))
}

/// An object from Stripe's published fixtures (`specs/stripe/fixtures3.json`).
fn stripe_fixture(name: &str) -> Value {
    let all = vendor_json("specs/stripe/fixtures3.json");
    all["resources"][name].clone()
}

#[test]
fn stripe_invoices_and_products_from_the_published_fixtures() {
    let mut invoice = stripe_fixture("invoice");
    invoice["status"] = json!("paid");
    invoice["amount_paid"] = json!(1000);
    let event = json!({"id": "evt_1", "type": "invoice.paid", "created": 1_721_954_054, "data": {"object": invoice}});
    let (id, record) = canonical("stripe", "invoice.paid", &event);
    assert_eq!(id, "in_1Pgc6tB7WZ01zgkWu9fdqL6I");
    assert_eq!(
        record["invoice_number"], "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
        "a draft number stands in"
    );
    assert_eq!(record["status"], "paid");
    assert_eq!(record["customer_id"], "cus_QXg1o8vcGmoR32");
    assert_eq!(
        record["total"],
        json!({"minor_units": 1000, "currency": "USD"})
    );
    assert_eq!(record["issued_at"], "2009-02-13");
    assert_eq!(
        record["line_items"][0]["total"],
        json!({"minor_units": 1000, "currency": "USD"})
    );
    assert_eq!(record["line_items"][0]["quantity"], 1);

    let event = json!({"id": "evt_2", "type": "product.created", "created": 1, "data": {"object": stripe_fixture("product")}});
    let (id, record) = canonical("stripe", "product.created", &event);
    assert_eq!(id, "prod_QXg1hqf4jFNsqG");
    assert_eq!(
        (
            record["sku"].as_str(),
            record["name"].as_str(),
            record["active"].as_bool()
        ),
        (Some("prod_QXg1hqf4jFNsqG"), Some("T-shirt"), Some(true))
    );
}

#[test]
fn xero_sales_invoices_from_the_accounting_spec_example_and_bills_left_alone() {
    // The example response of GET /Invoices/{InvoiceID} in Xero's published OpenAPI spec.
    let file = vendor_file("specs/xero/xero_accounting.yaml");
    let spec: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&file).expect("spec")).expect("yaml");
    let example = &spec["paths"]["/Invoices/{InvoiceID}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["example"];
    let mut record = example["Invoices"][0].clone();
    let thin = json!({"resourceId": record["InvoiceID"], "eventCategory": "INVOICE", "eventType": "UPDATE"});
    let (id, canonical_record) = canonical(
        "xero",
        "invoice.update",
        &json!({"event": thin, "record": record}),
    );
    assert_eq!(id, "a03ffcd2-5d91-4c7e-b483-318584e9e439");
    assert_eq!(canonical_record["invoice_number"], "INV-0006");
    assert_eq!(canonical_record["status"], "paid");
    assert_eq!(
        canonical_record["customer_id"],
        "430fa14a-f945-44d3-9f97-5df5e28441b8"
    );
    assert_eq!(canonical_record["issued_at"], "2019-03-07");
    assert_eq!(canonical_record["due_at"], "2019-03-13");
    assert_eq!(canonical_record["total"]["minor_units"], 14_806_276);
    assert_eq!(canonical_record["line_items"][0]["sku"], "123");
    assert_eq!(canonical_record["line_items"][0]["quantity"], 1);
    record["Type"] = json!("ACCPAY");
    let bill = registry()
        .find("xero", "invoice.update")
        .cloned()
        .expect("mapping");
    assert!(
        !bill.applies_to(&json!({"event": thin, "record": record})),
        "a bill is not a customer invoice"
    );
}

#[test]
fn quickbooks_invoices_items_and_sales_receipts_hydrated() {
    // Shapes from Intuit's QuickBooks Online v3 API reference (Invoice, Item, SalesReceipt).
    let invoice = json!({"Id": "130", "DocNumber": "1037", "TxnDate": "2026-11-02", "DueDate": "2026-12-02",
    "TotalAmt": 362.07, "Balance": 0, "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
    "CustomerRef": {"value": "58", "name": "Sonnenschein Family Store"},
    "TxnTaxDetail": {"TotalTax": 26.82},
    "MetaData": {"CreateTime": "2026-11-02T13:15:36-07:00", "LastUpdatedTime": "2026-11-03T09:00:00-07:00"},
    "Line": [
        {"Id": "1", "LineNum": 1, "Amount": 275.0, "Description": "Rock Fountain", "DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {"ItemRef": {"value": "5", "name": "Rock Fountain"}, "UnitPrice": 275, "Qty": 1, "TaxCodeRef": {"value": "TAX"}}},
        {"Id": "2", "LineNum": 2, "Amount": 60.25, "Description": "Pump", "DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {"ItemRef": {"value": "11", "name": "Pump"}, "UnitPrice": 12.05, "Qty": 5}},
        {"Amount": 335.25, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    ]});
    let payload = json!({"event": {"realmId": "1185883450", "entity": {"name": "Invoice", "id": "130", "operation": "Update"}}, "record": invoice});
    let (id, record) = canonical("quickbooks", "invoice.update", &payload);
    assert_eq!(id, "130");
    assert_eq!(
        (record["invoice_number"].as_str(), record["status"].as_str()),
        (Some("1037"), Some("paid"))
    );
    assert_eq!(
        record["total"],
        json!({"minor_units": 36207, "currency": "USD"})
    );
    assert_eq!(record["tax"]["minor_units"], 2682);
    let lines = record["line_items"].as_array().expect("lines");
    assert_eq!(lines.len(), 2, "the subtotal line is not a line item");
    assert_eq!(
        (lines[1]["sku"].as_str(), lines[1]["quantity"].as_i64()),
        (Some("PUMP"), Some(5))
    );
    assert_eq!(lines[1]["unit_price"]["minor_units"], 1205);

    let mut open = payload.clone();
    open["record"]["Balance"] = json!(100.5);
    assert_eq!(
        canonical("quickbooks", "qbo.invoice.updated.v1", &open).1["status"],
        "open"
    );

    let item = json!({"event": {}, "record": {"Id": "5", "Name": "Rock Fountain", "Sku": "rf-01 ", "Description": "Rock Fountain", "Active": true, "UnitPrice": 275, "Type": "Inventory",
        "MetaData": {"LastUpdatedTime": "2026-11-01T10:00:00-07:00"}}});
    let (_, record) = canonical("quickbooks", "item.create", &item);
    assert_eq!(
        (
            record["sku"].as_str(),
            record["unit_price"]["minor_units"].as_i64()
        ),
        (Some("RF-01"), Some(27500))
    );

    let mut receipt = payload.clone();
    receipt["record"]["DocNumber"] = json!("1003");
    let (_, record) = canonical("quickbooks", "salesreceipt.create", &receipt);
    assert_eq!(
        (record["order_number"].as_str(), record["status"].as_str()),
        (Some("1003"), Some("paid"))
    );
    assert_eq!(record["placed_at"], "2026-11-02T20:15:36Z");
}

#[test]
fn shopify_orders_and_products() {
    // Shapes from Shopify's orders/create and products/create webhook reference.
    let order = json!({"id": 820982911946154508_u64, "name": "#9999", "order_number": 1234, "email": "jon@example.com",
        "created_at": "2026-11-27T09:00:00-05:00", "processed_at": "2026-11-27T09:00:01-05:00", "updated_at": "2026-11-27T09:05:00-05:00",
        "currency": "USD", "total_price": "403.00", "subtotal_price": "393.00", "total_tax": "0.00",
        "financial_status": "paid", "fulfillment_status": null, "cancelled_at": null,
        "customer": {"id": 115310627314723954_u64, "email": "john@example.com"},
        "line_items": [{"id": 866550311766439020_u64, "variant_id": 808950810, "title": "IPod Nano - 8GB", "quantity": 1, "sku": "IPOD2008PINK", "price": "199.00",
            "price_set": {"shop_money": {"amount": "199.00", "currency_code": "USD"}}}]});
    let (id, record) = canonical("shopify", "orders.create", &order);
    assert_eq!(id, "820982911946154508");
    assert_eq!(
        (record["order_number"].as_str(), record["status"].as_str()),
        (Some("#9999"), Some("paid"))
    );
    assert_eq!(record["customer_id"], "115310627314723954");
    assert_eq!(record["placed_at"], "2026-11-27T14:00:01Z");
    assert_eq!(
        record["total"],
        json!({"minor_units": 40300, "currency": "USD"})
    );
    assert_eq!(
        record["line_items"][0]["unit_price"],
        json!({"minor_units": 19900, "currency": "USD"})
    );
    let mut cancelled = order.clone();
    cancelled["cancelled_at"] = json!("2026-11-28T10:00:00-05:00");
    assert_eq!(
        canonical("shopify", "orders.cancelled", &cancelled).1["status"],
        "cancelled"
    );

    let product = json!({"id": 632910392, "title": "IPod Nano - 8GB", "body_html": "<p>It's the small iPod.</p>", "status": "active",
        "updated_at": "2026-11-27T09:00:00-05:00", "variants": [{"id": 808950810, "sku": "ipod2008pink", "price": "199.00"}]});
    let (_, record) = canonical("shopify", "products.create", &product);
    assert_eq!(
        (record["sku"].as_str(), record["active"].as_bool()),
        (Some("IPOD2008PINK"), Some(true))
    );
    assert_eq!(
        record["unit_price"],
        json!({"minor_units": 19900, "currency": "USD"})
    );
}

/// HubSpot's opt-out property withdraws consent; "not opted out" is no consent, so it says
/// nothing.
#[test]
fn a_hubspot_contact_opted_out_of_all_email_withdraws_marketing_consent() {
    let contact = |optout: Option<&str>| {
        let mut properties = json!({"email": "BCooper@Biglytics.net", "firstname": "Bryan"});
        if let Some(optout) = optout {
            properties["hs_email_optout"] = json!(optout);
        }
        let payload = json!({"event": {"objectId": 1246965, "subscriptionType": "contact.propertyChange"},
            "record": {"id": "1246965", "properties": properties, "updatedAt": "2026-11-27T10:00:00.000Z"}});
        canonical("hubspot", "contact.propertyChange", &payload).1
    };
    let out = contact(Some("true"));
    assert_eq!(out["marketing_consent"], json!(false));
    assert_eq!(
        out["consent_source"],
        "hubspot: unsubscribed from all email"
    );
    for unknown in [contact(Some("false")), contact(None)] {
        assert!(
            unknown.get("marketing_consent").is_none() && unknown.get("consent_source").is_none(),
            "{unknown}"
        );
    }
}

/// A Salesforce lead's "Email Opt Out" withdraws consent; a lead is a contact at stage `lead`.
#[test]
fn a_salesforce_lead_that_opted_out_of_email_withdraws_marketing_consent() {
    let lead = |optout: &str| {
        let payload = json!({"object": "Lead", "fields": {"Id": "00Q000000000001AAA", "Email": "Sam@Example.org",
            "LastName": "Lee", "Company": "Acme", "LeadSource": "Webinar", "HasOptedOutOfEmail": optout,
            "LastModifiedDate": "2026-11-27T09:00:00.000Z"}});
        canonical("salesforce", "lead.outbound_message", &payload).1
    };
    let out = lead("true");
    assert_eq!(
        (
            out["lifecycle_stage"].as_str(),
            out["marketing_consent"].as_bool()
        ),
        (Some("lead"), Some(false))
    );
    assert_eq!(out["consent_source"], "salesforce: email opt out");
    let unknown = lead("false");
    assert!(unknown.get("marketing_consent").is_none(), "{unknown}");
}

#[test]
fn hubspot_companies_and_deals_hydrated_and_salesforce_opportunities() {
    // CRM v3 object reads, as HubSpot's API reference shows them.
    let company = json!({"event": {"objectId": 512, "eventType": "company.creation"}, "record": {"id": "512", "properties":
        {"name": "Biglytics", "domain": "Biglytics.NET", "industry": "Technology", "country": "us"}, "updatedAt": "2026-11-27T10:00:00.000Z"}});
    let (id, record) = canonical("hubspot", "company.creation", &company);
    assert_eq!(id, "512");
    assert_eq!(
        record,
        json!({"name": "Biglytics", "domain": "biglytics.net", "industry": "Technology", "country": "US"})
    );
    let deal = json!({"event": {"objectId": 77}, "record": {"id": "77", "properties":
        {"dealname": "Big deal", "dealstage": "closedwon", "amount": "1500.00", "deal_currency_code": "eur", "closedate": "2026-11-30T12:00:00Z"}}});
    let (_, record) = canonical("hubspot", "deal.propertychange", &deal);
    assert_eq!(
        record,
        json!({"name": "Big deal", "stage": "won", "amount": {"minor_units": 150000, "currency": "EUR"}, "close_date": "2026-11-30"})
    );
    let no_amount = json!({"event": {}, "record": {"id": "78", "properties": {"dealname": "Early", "dealstage": "qualifiedtobuy"}}});
    assert!(
        canonical("hubspot", "deal.creation", &no_amount)
            .1
            .get("amount")
            .is_none(),
        "no amount, no money"
    );

    let opportunity = json!({"object": "Opportunity", "fields": {"Id": "006000000000001AAA", "Name": "Acme - 200 units", "StageName": "Closed Won",
        "Amount": "25000.5", "CloseDate": "2026-11-30", "AccountId": "001000000000001AAA", "LastModifiedDate": "2026-11-27T09:00:00.000Z"}});
    let (_, record) = canonical("salesforce", "opportunity.outbound_message", &opportunity);
    assert_eq!(
        (record["stage"].as_str(), record["company_id"].as_str()),
        (Some("won"), Some("001000000000001AAA"))
    );
    assert_eq!(
        record["amount"],
        json!({"minor_units": 2500050, "currency": "USD"})
    );
}

#[test]
fn mailchimp_unsubscribes_and_cleaned_addresses_withdraw_consent() {
    let fields = vendor("mailchimp/cleaned.form-fields.json");
    // Ingest nests the form's `data[...]` keys; the same nesting here.
    let cleaned = json!({"type": fields["type"], "fired_at": fields["fired_at"], "data": {"email": fields["data[email]"], "reason": fields["data[reason]"]}});
    let (id, record) = canonical("mailchimp", "cleaned", &cleaned);
    assert_eq!(
        id, "api+cleaned@mailchimp.com",
        "no member id: the address stands in"
    );
    assert_eq!(record["marketing_consent"], false);
}

#[test]
fn decimal_amounts_become_minor_units_exactly() {
    use super::transforms::resolve;
    let spec = |t: &str| -> super::FieldSpec {
        serde_yaml_ng::from_str(&format!("{{ paths: [a], transforms: [{t}] }}")).expect("spec")
    };
    let run = |t: &str, v: Value| resolve(&spec(t), &json!({"a": v}), &ctx());
    assert_eq!(run("minor_units", json!("19.99")), Ok(Some(json!(1999))));
    assert_eq!(run("minor_units", json!(0.1)), Ok(Some(json!(10))));
    assert_eq!(
        run("minor_units", json!(148062.76)),
        Ok(Some(json!(14806276)))
    );
    assert_eq!(
        run("{ minor_units: 0 }", json!("1500")),
        Ok(Some(json!(1500)))
    );
    assert!(
        run("minor_units", json!("1.999")).is_err(),
        "a third decimal is refused, not rounded"
    );
    assert!(run("minor_units", json!("ten")).is_err());
    assert_eq!(
        run("date", json!("2026-11-27T23:30:00-05:00")),
        Ok(Some(json!("2026-11-28")))
    );
}

#[test]
fn names_are_joined_from_their_parts() {
    use super::transforms::resolve;
    let spec: super::FieldSpec =
        serde_yaml_ng::from_str("{ join: [first, middle, last], transforms: [trim] }")
            .expect("spec");
    let run = |v: Value| resolve(&spec, &v, &ctx());
    assert_eq!(
        run(json!({"first": " Ada ", "middle": "", "last": "Lovelace"})),
        Ok(Some(json!("Ada Lovelace")))
    );
    assert_eq!(run(json!({"last": "Hopper"})), Ok(Some(json!("Hopper"))));
    assert_eq!(run(json!({})), Ok(None));
    let dashed: super::FieldSpec =
        serde_yaml_ng::from_str("{ join: [a, b], separator: \"-\" }").expect("spec");
    assert_eq!(
        resolve(&dashed, &json!({"a": "GB", "b": 42}), &ctx()),
        Ok(Some(json!("GB-42")))
    );
}

#[test]
fn a_stripe_invoice_names_its_deal_in_metadata_and_a_canonical_one_in_deal_id() {
    let mut invoice = stripe_fixture("invoice");
    invoice["metadata"] = json!({"deal_id": " 58213 "});
    let event = json!({"id": "evt_3", "type": "invoice.paid", "created": 1_721_954_054, "data": {"object": invoice}});
    assert_eq!(
        canonical("stripe", "invoice.paid", &event).1["deal_id"],
        "58213"
    );
    // No metadata key, no deal (the fixture's metadata is empty).
    let event = json!({"id": "evt_4", "type": "invoice.paid", "created": 1, "data": {"object": stripe_fixture("invoice")}});
    assert!(
        canonical("stripe", "invoice.paid", &event)
            .1
            .get("deal_id")
            .is_none()
    );
    let event = json!({"type": "invoice.updated", "timestamp": "2026-11-27T10:00:00Z", "data": {
        "id": "inv-1", "invoice_number": "INV-1", "status": "paid", "customer_id": "crm-1", "deal_id": 58213,
        "total": {"minor_units": 100, "currency": "USD"}}});
    assert_eq!(
        canonical("standard-webhooks", "invoice.updated", &event).1["deal_id"],
        "58213"
    );
}
