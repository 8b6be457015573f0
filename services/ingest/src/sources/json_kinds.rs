//! The JSON senders: Standard Webhooks, HubSpot, Stripe, Shopify, QuickBooks Online, Xero and
//! Klaviyo — each one's signature scheme and batch shape as its vendor documents it.

use serde_json::Value;
use switchyard_chassis::config::SourceKind;
use switchyard_chassis::signing::{self, SignatureError};

use super::{Event, Incoming, Parsed, Reply, Source, dotted};
use crate::IngestError;

pub(super) fn accept(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    match source.kind {
        SourceKind::StandardWebhooks => standard_webhooks(source, request),
        SourceKind::Hubspot => hubspot(source, request),
        SourceKind::Stripe => stripe(source, request),
        SourceKind::Shopify => shopify(source, request),
        SourceKind::Quickbooks => quickbooks(source, request),
        SourceKind::Xero => xero(source, request),
        SourceKind::Klaviyo => klaviyo(source, request),
        SourceKind::Mailchimp | SourceKind::Salesforce => {
            Err(IngestError::Malformed("not a JSON source".to_owned()))
        }
    }
}

fn json(body: &[u8]) -> Result<Value, IngestError> {
    serde_json::from_slice(body).map_err(|e| IngestError::MalformedJson(e.to_string()))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn one(vendor_id: String, event_type: String, body: &[u8]) -> Parsed {
    Parsed {
        events: vec![Event {
            vendor_id,
            event_type,
            body: body.to_vec(),
        }],
        reply: Reply::Json,
    }
}

/// One event per element of a vendor's batch: the id at `id_key` (required), the type at the
/// first of `type_keys` present.
fn batch(
    items: &[Value],
    id_key: &str,
    type_keys: &[&str],
    what: &str,
) -> Result<Vec<Event>, IngestError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let vendor_id = item
                .get(id_key)
                .and_then(text)
                .ok_or_else(|| IngestError::Malformed(format!("{what} {i} has no {id_key}")))?;
            let kind = type_keys
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str))
                .unwrap_or("unknown");
            Ok(Event {
                vendor_id,
                event_type: dotted(kind),
                body: element(item),
            })
        })
        .collect()
}

fn element(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// `webhook-id`/`webhook-timestamp`/`webhook-signature`, `v1,` HMAC-SHA256 over
/// `id.timestamp.body` with the base64 key of a `whsec_` secret.
fn standard_webhooks(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    signing::verify(
        &source.whsec,
        request.header(signing::HEADER_ID),
        request.header(signing::HEADER_TIMESTAMP),
        request.header(signing::HEADER_SIGNATURE),
        request.body,
        request.now_ms / 1000,
        source.tolerance_ms / 1000,
    )?;
    // The whole body is parsed as transform will parse it: a lighter parse of `type` alone let
    // through what serde_json does not check in the fields it skips — invalid UTF-8, numbers out of
    // range (both found by the ingest_parse fuzzer) — and transform then met a body that is not
    // JSON. Refused here, at the edge, with a 400.
    let payload = json(request.body)?;
    let event_type = match payload.get("type") {
        _ if !payload.is_object() => {
            return Err(IngestError::MalformedJson(
                "the payload must be a JSON object with a string `type`".to_owned(),
            ));
        }
        Some(Value::String(kind)) => kind.clone(),
        None | Some(Value::Null) => "unknown".to_owned(),
        Some(_) => {
            return Err(IngestError::MalformedJson(
                "the payload must be a JSON object with a string `type`".to_owned(),
            ));
        }
    };
    let id = request
        .header(signing::HEADER_ID)
        .unwrap_or_default()
        .to_owned();
    Ok(one(id, event_type, request.body))
}

/// `X-HubSpot-Signature-v3`: base64 HMAC-SHA256 over method + URI + body + timestamp (ms, in
/// `X-HubSpot-Request-Timestamp`), 5-minute tolerance. The body is an array of events.
fn hubspot(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    const SIG: &str = "x-hubspot-signature-v3";
    const TS: &str = "x-hubspot-request-timestamp";
    let ts = request
        .header(TS)
        .ok_or(SignatureError::MissingHeader(TS))?;
    let ts_ms: i64 = ts
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    source.check_time(ts_ms, request.now_ms)?;
    let url = source
        .public_url
        .clone()
        .unwrap_or_else(|| request.url.clone());
    source.check_b64(
        request.header(SIG),
        SIG,
        &[
            request.method.as_str().as_bytes(),
            url.as_bytes(),
            request.body,
            ts.trim().as_bytes(),
        ],
    )?;
    let payload = json(request.body)?;
    let items = payload.as_array().ok_or_else(|| {
        IngestError::MalformedJson("a HubSpot payload is an array of events".to_owned())
    })?;
    // Live v3 deliveries say subscriptionType; the documentation example says eventType.
    let events = batch(
        items,
        "eventId",
        &["subscriptionType", "eventType"],
        "event",
    )?;
    Ok(Parsed {
        events,
        reply: Reply::Json,
    })
}

/// `Stripe-Signature: t=…,v1=…[,v1=…]`: hex HMAC-SHA256 over `t.body` keyed with the whole
/// endpoint secret (`whsec_…` included); any v1 may match; 300 s tolerance.
fn stripe(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    const SIG: &str = "stripe-signature";
    let header = request
        .header(SIG)
        .ok_or(SignatureError::MissingHeader(SIG))?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.to_owned()),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::BadTimestamp)?;
    let secs: i64 = t.parse().map_err(|_| SignatureError::BadTimestamp)?;
    source.check_time(secs.saturating_mul(1000), request.now_ms)?;
    let parts: [&[u8]; 3] = [t.as_bytes(), b".", request.body];
    if !candidates.iter().any(|c| source.hmac_matches(&parts, c)) {
        return Err(SignatureError::NoMatch.into());
    }
    let payload = json(request.body)?;
    let id = payload
        .get("id")
        .and_then(text)
        .ok_or_else(|| IngestError::Malformed("event has no id".to_owned()))?;
    let kind = payload
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    Ok(one(id, dotted(kind), request.body))
}

/// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body; id from `X-Shopify-Webhook-Id`
/// (or `X-Shopify-Event-Id`), topic from `X-Shopify-Topic`.
fn shopify(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    const SIG: &str = "x-shopify-hmac-sha256";
    source.check_b64(request.header(SIG), SIG, &[request.body])?;
    json(request.body)?;
    let id = request
        .header("x-shopify-webhook-id")
        .or_else(|| request.header("x-shopify-event-id"))
        .ok_or_else(|| IngestError::Malformed("missing X-Shopify-Webhook-Id".to_owned()))?;
    let topic = request.header("x-shopify-topic").unwrap_or("unknown");
    Ok(one(id.to_owned(), dotted(topic), request.body))
}

/// `intuit-signature`: base64 HMAC-SHA256 of the body keyed with the verifier token. Both the
/// classic `eventNotifications` form and the CloudEvents array form; one event per entity change.
fn quickbooks(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    const SIG: &str = "intuit-signature";
    source.check_b64(request.header(SIG), SIG, &[request.body])?;
    let payload = json(request.body)?;
    let mut events = Vec::new();
    if let Some(items) = payload.as_array() {
        events = batch(items, "id", &["type"], "cloud event")?;
    } else if let Some(notifications) = payload.get("eventNotifications").and_then(Value::as_array)
    {
        for notification in notifications {
            let realm = notification
                .get("realmId")
                .and_then(text)
                .unwrap_or_default();
            let entities = notification
                .pointer("/dataChangeEvent/entities")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for entity in entities {
                let field = |k: &str| entity.get(k).and_then(text).unwrap_or_default();
                let (name, op) = (field("name"), field("operation"));
                // The classic form has no event id: realm, entity, operation and its change time
                // identify one change, and stay the same when Intuit retries.
                let id = format!(
                    "{realm}:{name}:{}:{op}:{}",
                    field("id"),
                    field("lastUpdated")
                );
                let body = serde_json::json!({ "realmId": realm, "entity": entity });
                events.push(Event {
                    vendor_id: id,
                    event_type: dotted(&format!("{name}.{op}")),
                    body: element(&body),
                });
            }
        }
    } else {
        return Err(IngestError::Malformed(
            "neither eventNotifications nor a CloudEvents array".to_owned(),
        ));
    }
    Ok(Parsed {
        events,
        reply: Reply::Json,
    })
}

/// `x-xero-signature`: base64 HMAC-SHA256 of the body keyed with the webhook key. The
/// intent-to-receive handshake is a signed request with no events; every answer has an empty body.
fn xero(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    const SIG: &str = "x-xero-signature";
    source.check_b64(request.header(SIG), SIG, &[request.body])?;
    let payload = json(request.body)?;
    let items = payload
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            IngestError::MalformedJson("a Xero payload has an events array".to_owned())
        })?;
    let events = items
        .iter()
        .map(|item| {
            let field = |k: &str| item.get(k).and_then(text).unwrap_or_default();
            // Xero events carry no id of their own; these fields identify one change.
            let id = format!(
                "{}:{}:{}:{}:{}",
                field("tenantId"),
                field("eventCategory"),
                field("resourceId"),
                field("eventType"),
                field("eventDateUtc")
            );
            Event {
                vendor_id: id,
                event_type: dotted(&format!(
                    "{}.{}",
                    field("eventCategory"),
                    field("eventType")
                )),
                body: element(item),
            }
        })
        .collect();
    Ok(Parsed {
        events,
        reply: Reply::Empty,
    })
}

/// `Klaviyo-Signature`: hex HMAC-SHA256 over the body followed by `Klaviyo-Timestamp`, keyed with
/// the webhook secret; the body's `data` holds one item per event, each with an `external_id`.
fn klaviyo(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    const SIG: &str = "klaviyo-signature";
    const TS: &str = "klaviyo-timestamp";
    let ts = request
        .header(TS)
        .ok_or(SignatureError::MissingHeader(TS))?
        .trim();
    source.check_time(
        parse_time_ms(ts).ok_or(SignatureError::BadTimestamp)?,
        request.now_ms,
    )?;
    let sig = request
        .header(SIG)
        .ok_or(SignatureError::MissingHeader(SIG))?;
    let candidate = hex::decode(sig.trim()).map_err(|_| SignatureError::NoMatch)?;
    if !source.hmac_matches(&[request.body, ts.as_bytes()], &candidate) {
        return Err(SignatureError::NoMatch.into());
    }
    let payload = json(request.body)?;
    let items = payload
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            IngestError::MalformedJson("a Klaviyo payload has a data array".to_owned())
        })?;
    let events = batch(items, "external_id", &["topic"], "data")?;
    Ok(Parsed {
        events,
        reply: Reply::Json,
    })
}

/// Unix seconds, unix milliseconds or RFC 3339, as milliseconds.
fn parse_time_ms(raw: &str) -> Option<i64> {
    if let Ok(n) = raw.parse::<i64>() {
        // Ten digits are seconds until the year 2286.
        return Some(if n < 100_000_000_000 {
            n.saturating_mul(1000)
        } else {
            n
        });
    }
    let at =
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}
