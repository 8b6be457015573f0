//! Salesforce outbound messages: SOAP envelopes holding up to 100 notifications. Salesforce signs
//! nothing, so the organisation id must match the configured one; each notification becomes one
//! event keyed by its notification id, and the answer is the SOAP `Ack` Salesforce waits for.

use axum::http::Method;
use quick_xml::Reader;
use quick_xml::events::Event as Xml;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq as _;
use switchyard_chassis::signing::SignatureError;

use super::{Event, Incoming, Parsed, Reply, Source, require_content_type};
use crate::IngestError;

/// The answer Salesforce expects; anything else and it retries the message for 24 hours.
pub const ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
);

#[derive(Debug, Default)]
struct Notification {
    id: String,
    object: String,
    fields: Map<String, Value>,
}

#[derive(Debug, Default)]
struct Message {
    organization_id: String,
    action_id: String,
    notifications: Vec<Notification>,
}

pub(super) fn accept(source: &Source, request: &Incoming<'_>) -> Result<Parsed, IngestError> {
    if request.method != Method::POST {
        return Err(IngestError::MethodNotAllowed);
    }
    require_content_type(request, &["text/xml", "application/soap+xml"])?;
    let message = parse(request.body)?;
    let expected = source.organization_id.as_deref().unwrap_or_default();
    // 15- and 18-character forms of one id share their first 15 characters.
    let (a, b) = (prefix15(expected), prefix15(&message.organization_id));
    if a.is_empty() || !bool::from(a.as_bytes().ct_eq(b.as_bytes())) {
        return Err(SignatureError::NoMatch.into());
    }
    let events = message
        .notifications
        .into_iter()
        .map(|n| {
            let body = json!({
                "organizationId": message.organization_id,
                "actionId": message.action_id,
                "notificationId": n.id,
                "object": n.object,
                "fields": n.fields,
            });
            Event {
                vendor_id: n.id,
                event_type: format!("{}.outbound_message", n.object.to_ascii_lowercase()),
                body: serde_json::to_vec(&body).unwrap_or_default(),
            }
        })
        .collect();
    Ok(Parsed {
        events,
        reply: Reply::SoapAck,
    })
}

fn prefix15(id: &str) -> &str {
    id.get(..15).unwrap_or(id)
}

fn parse(body: &[u8]) -> Result<Message, IngestError> {
    let bad =
        |why: String| IngestError::Malformed(format!("not a Salesforce outbound message: {why}"));
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut message = Message::default();
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<Notification> = None;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Xml::Start(start) => {
                let name = start.local_name().as_ref().to_owned();
                if name == "Notification" {
                    current = Some(Notification::default());
                }
                if name == "sObject"
                    && let Some(n) = current.as_mut()
                {
                    n.object = start
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == "type")
                        .map(|a| a.value.rsplit(':').next().unwrap_or_default().to_owned())
                        .unwrap_or_default();
                }
                stack.push(name);
                text.clear();
            }
            Xml::Text(t) => text.push_str(&t.xml10_content()),
            Xml::CData(c) => text.push_str(&c.into_inner()),
            Xml::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match &*r {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    },
                };
                if let Some(c) = resolved {
                    text.push(c);
                }
            }
            Xml::End(_) => {
                let name = stack.pop().unwrap_or_default();
                let parent = stack.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (Some("notifications"), "OrganizationId") => {
                        message.organization_id = text.trim().to_owned()
                    }
                    (Some("notifications"), "ActionId") => {
                        message.action_id = text.trim().to_owned()
                    }
                    (Some("Notification"), "Id") => {
                        if let Some(n) = current.as_mut() {
                            n.id = text.trim().to_owned();
                        }
                    }
                    (Some("sObject"), field) => {
                        if let Some(n) = current.as_mut() {
                            n.fields
                                .insert(field.to_owned(), Value::String(text.trim().to_owned()));
                        }
                    }
                    (_, "Notification") => {
                        let n = current.take().unwrap_or_default();
                        if n.id.is_empty() {
                            return Err(bad("a notification has no Id".to_owned()));
                        }
                        message.notifications.push(n);
                    }
                    _ => {}
                }
                text.clear();
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    if message.organization_id.is_empty() {
        return Err(bad("no OrganizationId".to_owned()));
    }
    Ok(message)
}
