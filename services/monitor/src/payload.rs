//! A dead letter's original message as JSON, for `switchyard dlq show`: the message type follows
//! from the stage (and, where a stage consumes more than one, the key or subject), and the
//! contracts' compiled descriptors turn any of them into JSON without code per message.

use switchyard_proto::json::to_json;
use switchyard_proto::v1::DeadLetter;

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
    let json = to_json(name, letter.payload.as_slice())?;
    let text = serde_json::to_string_pretty(&json).ok()?;
    Some((name.to_owned(), text))
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use serde_json::Value as Json;
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
