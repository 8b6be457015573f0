//! A dead letter's original message as JSON, for `switchyard dlq show`: the message type follows
//! from the stage (and, where a stage consumes more than one, the key or subject), and the
//! contracts' compiled descriptors turn any of them into JSON without code per message.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, ReflectMessage as _, Value};
use serde_json::{Map, Value as Json, json};
use switchyard_proto::v1::DeadLetter;

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(switchyard_proto::FILE_DESCRIPTOR_SET).ok())
        .as_ref()
}

/// The protobuf type the letter's stage consumed from its subject, if Switchyard knows it.
fn message_type(letter: &DeadLetter) -> Option<&'static str> {
    let subject = letter.original_subject.as_str();
    Some(match letter.stage.as_str() {
        "deliver" => "switchyard.v1.GoldenChange",
        "transform" => "switchyard.v1.RawEvent",
        "dedupe" => match letter.key.as_str() {
            "deliver" => "switchyard.v1.CrosswalkLink",
            "admin" => "switchyard.v1.IdentityCommand",
            _ => "switchyard.v1.CanonicalObject",
        },
        "monitor" if subject.contains(".ops.delivery.") => "switchyard.v1.DeliveryResult",
        "monitor" if subject.contains(".ops.drift.") => "switchyard.v1.SchemaDrift",
        "monitor" if subject.contains(".ops.conflict.") && subject.ends_with(".command") => {
            "switchyard.v1.IdentityCommandResult"
        }
        "monitor" if subject.contains(".ops.conflict.") => "switchyard.v1.IdentityConflict",
        _ => return None,
    })
}

/// The letter's payload as (type name, pretty JSON), when it decodes as the message its stage
/// consumes; `None` when it does not (the caller shows its size only).
pub(crate) fn render(letter: &DeadLetter) -> Option<(String, String)> {
    let name = message_type(letter)?;
    let descriptor = pool()?.get_message_by_name(name)?;
    let message = DynamicMessage::decode(descriptor, letter.payload.as_slice()).ok()?;
    let text = serde_json::to_string_pretty(&message_json(&message)).ok()?;
    Some((name.to_owned(), text))
}

fn message_json(message: &DynamicMessage) -> Json {
    let descriptor = message.descriptor();
    if descriptor.full_name() == "google.protobuf.Timestamp" {
        let field = |name: &str| match message.get_field_by_name(name).as_deref() {
            Some(Value::I64(v)) => *v,
            Some(Value::I32(v)) => i64::from(*v),
            _ => 0,
        };
        let at = time::OffsetDateTime::from_unix_timestamp(field("seconds"))
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        return at.map_or(Json::Null, Json::String);
    }
    let mut out = Map::new();
    for (field, value) in message.fields() {
        out.insert(field.name().to_owned(), value_json(&field.kind(), value));
    }
    Json::Object(out)
}

fn value_json(kind: &Kind, value: &Value) -> Json {
    match value {
        Value::Bool(v) => json!(v),
        Value::I32(v) => json!(v),
        // 64-bit integers as strings, as protobuf's JSON mapping does (a double loses digits).
        Value::I64(v) => json!(v.to_string()),
        Value::U32(v) => json!(v),
        Value::U64(v) => json!(v.to_string()),
        Value::F32(v) => json!(v),
        Value::F64(v) => json!(v),
        Value::String(v) => json!(v),
        Value::Bytes(v) => json!(format!("<{} bytes>", v.len())),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(e) => e
                .get_value(*number)
                .map_or_else(|| json!(number), |v| json!(v.name())),
            _ => json!(number),
        },
        Value::Message(m) => message_json(m),
        Value::List(items) => Json::Array(items.iter().map(|v| value_json(kind, v)).collect()),
        Value::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut out = Map::new();
            for (key, value) in entries {
                let key = match key {
                    MapKey::Bool(k) => k.to_string(),
                    MapKey::I32(k) => k.to_string(),
                    MapKey::I64(k) => k.to_string(),
                    MapKey::U32(k) => k.to_string(),
                    MapKey::U64(k) => k.to_string(),
                    MapKey::String(k) => k.clone(),
                };
                out.insert(key, value_json(&value_kind, value));
            }
            Json::Object(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use switchyard_proto::v1::{ChangeKind, GoldenChange};

    use super::*;

    #[test]
    fn a_golden_change_renders_as_json_with_enum_names_and_times() {
        let change = GoldenChange {
            change_id: "c-1".into(),
            golden_id: "g-1".into(),
            object_type: "contact".into(),
            kind: ChangeKind::Updated.into(),
            changed_fields: vec!["email".into()],
            ..Default::default()
        };
        let letter = DeadLetter {
            stage: "deliver".into(),
            key: "a".into(),
            payload: change.encode_to_vec(),
            ..Default::default()
        };
        let (name, text) = render(&letter).expect("rendered");
        assert_eq!(name, "switchyard.v1.GoldenChange");
        let json: Json = serde_json::from_str(&text).expect("JSON");
        assert_eq!(json["change_id"], "c-1");
        assert_eq!(json["kind"], "CHANGE_KIND_UPDATED");
        assert_eq!(json["changed_fields"][0], "email");
    }

    #[test]
    fn an_unknown_stage_is_not_rendered() {
        let letter = DeadLetter {
            stage: "elsewhere".into(),
            payload: vec![1, 2, 3],
            ..Default::default()
        };
        assert!(render(&letter).is_none());
    }
}
