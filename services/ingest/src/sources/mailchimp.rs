//! Mailchimp list webhooks: Mailchimp signs nothing, so the URL carries a secret token
//! (`/v1/webhooks/{source}/{token}`); its GET validation request is answered 200; bodies are
//! form-encoded (`data[merges][EMAIL]=…`) and become nested JSON.

use axum::http::Method;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use switchyard_chassis::signing::SignatureError;

use super::{Event, Incoming, Parsed, Reply, Source, dotted, require_content_type};
use crate::IngestError;

pub(super) fn accept(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    let token = request
        .path_token
        .ok_or(SignatureError::MissingHeader("url token"))?;
    let known = source.keys().fold(false, |found, key| {
        found | bool::from(key.ct_eq(token.as_bytes()))
    });
    if !known {
        return Err(SignatureError::NoMatch.into());
    }
    if request.method == Method::GET {
        // Mailchimp checks the URL with a GET before it saves the webhook.
        return Ok(Parsed {
            events: Vec::new(),
            reply: Reply::Empty,
        });
    }
    if request.method != Method::POST {
        return Err(IngestError::MethodNotAllowed);
    }
    require_content_type(request, &["application/x-www-form-urlencoded"])?;
    let payload = nest(form_urlencoded::parse(request.body));
    let kind = payload
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() {
        return Err(IngestError::Malformed("form has no type field".to_owned()));
    }
    // Mailchimp sends no event id; the same body retried is the same event.
    let id = hex::encode(Sha256::digest(request.body));
    let body = serde_json::to_vec(&Value::Object(payload.clone())).unwrap_or_default();
    Ok(Parsed {
        events: vec![Event {
            vendor_id: id,
            event_type: dotted(kind),
            body,
        }],
        reply: Reply::Json,
    })
}

/// `data[merges][EMAIL]=x` → `{"data": {"merges": {"EMAIL": "x"}}}`.
fn nest<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Map<String, Value> {
    let mut root = Map::new();
    for (key, value) in pairs {
        let path: Vec<&str> = key
            .split(['[', ']'])
            .filter(|segment| !segment.is_empty())
            .collect();
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut node = &mut root;
        for parent in parents {
            let entry = node
                .entry((*parent).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            node = match entry {
                Value::Object(next) => next,
                _ => unreachable!("made an object just above"),
            };
        }
        node.insert((*last).to_owned(), Value::String(value.into_owned()));
    }
    root
}

#[cfg(test)]
mod tests {
    #[test]
    fn bracketed_keys_nest() {
        let map = super::nest(form_urlencoded::parse(
            b"type=subscribe&data%5Bmerges%5D%5BEMAIL%5D=a%40b.c&data%5Bid%5D=1",
        ));
        assert_eq!(
            serde_json::Value::Object(map),
            serde_json::json!({"type": "subscribe", "data": {"id": "1", "merges": {"EMAIL": "a@b.c"}}})
        );
    }
}
