//! Stripe customers: `GET /v1/customers` (the list, filtered by `email` exactly as Stripe's API
//! reference documents it: case-sensitive, `limit` 1–100, default 10, in a `list` object with
//! `has_more`), `POST /v1/customers` and `POST /v1/customers/{id}`, form-encoded, answered
//! with the customer object of Stripe's published fixtures (`fixtures3.json`) carrying the values
//! sent. Parameters must be fields of that object; an `Idempotency-Key` seen before gets the
//! saved answer with `Idempotent-Replayed: true`.

use serde_json::{Value, json};

use super::{Connector, Incoming, Inner, Reply, remember, replay, vendor_error};

pub(super) fn handle(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Stripe;
    let fixture = inner.specs().stripe_customer.clone();
    let segments: Vec<&str> = req.path.trim_start_matches("/v1/").split('/').collect();
    let id = match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["customers"]) => return list(inner, req),
        ("POST", ["customers"]) => None,
        ("POST", ["customers", id]) => Some((*id).to_owned()),
        _ => {
            inner.problem(c, format!("unexpected {} {}", req.method, req.path));
            return vendor_error(c, 404, "Unrecognized request URL");
        }
    };
    let mut problems = Vec::new();
    if req.header("content-type") != Some("application/x-www-form-urlencoded") {
        problems.push("body is not application/x-www-form-urlencoded".to_owned());
    }
    let key = req.header("idempotency-key").unwrap_or_default().to_owned();
    if key.is_empty() || key.len() > 255 {
        problems.push(format!(
            "Idempotency-Key {key:?}: every write needs one of at most 255 characters"
        ));
    }
    let params = req.body.as_object().cloned().unwrap_or_default();
    for name in params.keys() {
        // `address[country]` is the `country` of the customer's `address` object.
        let (field, sub) = match name.split_once('[') {
            Some((field, rest)) => (field, Some(rest.trim_end_matches(']'))),
            None => (name.as_str(), None),
        };
        let known = match (fixture.get(field), sub) {
            (Some(_), None) => true,
            (Some(Value::Object(map)), Some(sub)) => field == "metadata" || map.contains_key(sub),
            _ => false,
        };
        if !known || matches!(field, "id" | "object" | "created" | "livemode") {
            problems.push(format!("{name} is not a parameter of a customer"));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            inner.problem(c, p.clone());
        }
        return vendor_error(c, 400, &problems.join("; "));
    }
    if let Some(reply) = replay(inner, c, &key, &req.body) {
        return reply;
    }
    let next = inner.id();
    let table = inner.table(c, "customers");
    let mut customer = match &id {
        Some(id) => match table.get(id) {
            Some(customer) => customer.clone(),
            None => {
                let mut reply = vendor_error(c, 404, &format!("No such customer: '{id}'"));
                reply.body["error"]["code"] = json!("resource_missing");
                reply.body["error"]["param"] = json!("id");
                return reply;
            }
        },
        None => {
            let mut customer = fixture;
            customer["id"] = json!(format!("cus_Test{next:010}"));
            customer["created"] = json!(1_767_607_200);
            customer
        }
    };
    for (name, value) in &params {
        match name.split_once('[') {
            Some((field, rest)) => customer[field][rest.trim_end_matches(']')] = value.clone(),
            None => customer[name.as_str()] = value.clone(),
        }
    }
    let customer_id = customer["id"].as_str().unwrap_or_default().to_owned();
    table.insert(customer_id, customer.clone());
    let reply = Reply::new(200, customer);
    remember(inner, c, &key, &req.body, &reply);
    reply
}

/// `GET /v1/customers`: the customers with the `email` given (all of them without one), newest
/// first, at most `limit`.
fn list(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Stripe;
    let limit = match req.query.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => {
            inner.problem(c, "limit must be an integer from 1 to 100".to_owned());
            return vendor_error(c, 400, "Invalid integer: limit");
        }
    };
    let email = req.query.get("email");
    let mut found: Vec<Value> = inner
        .table(c, "customers")
        .values()
        .filter(|customer| email.is_none_or(|e| customer["email"].as_str() == Some(e.as_str())))
        .cloned()
        .collect();
    found.sort_by_key(|customer| std::cmp::Reverse(customer["created"].as_i64()));
    let has_more = found.len() > limit;
    found.truncate(limit);
    Reply::new(
        200,
        json!({"object": "list", "url": "/v1/customers", "has_more": has_more, "data": found}),
    )
}
