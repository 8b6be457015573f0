//! The structured ids Switchyard's messages carry, built and taken apart here only: a change's id
//! (`<golden id>:<version>`) and the `Nats-Msg-Id` of each kind of message, which JetStream uses
//! to drop a repeat. Nothing else formats or splits them, and no SQL reads them by position.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// One version of one golden record: the id of its change (`GoldenChange.change_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChangeId {
    pub golden: Uuid,
    pub version: i64,
}

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.golden, self.version)
    }
}

/// A text that is not the id it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a {1}")]
pub struct BadId(pub String, pub &'static str);

impl FromStr for ChangeId {
    type Err = BadId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadId(text.to_owned(), "change id (<golden id>:<version>)");
        let (golden, version) = text.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            golden: golden.parse().map_err(|_| bad())?,
            version: version.parse().map_err(|_| bad())?,
        })
    }
}

/// The `Nats-Msg-Id` of each kind of message: the same message published twice has the same id,
/// so JetStream keeps it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgId<'a> {
    /// Transform's canonical object of a raw event.
    Canonical {
        event_id: &'a str,
    },
    /// A golden change.
    Golden(ChangeId),
    /// A conflict notice: the event's first pair, or (with `other`) each further pair.
    Conflict {
        event_id: &'a str,
        other: Option<Uuid>,
    },
    /// A near-duplicate raised for review, once per pair (ids in order).
    Review {
        a: Uuid,
        b: Uuid,
    },
    /// An operator's identity command, and dedupe's result of it.
    Command {
        command_id: &'a str,
    },
    CommandResult {
        command_id: &'a str,
    },
}

impl fmt::Display for MsgId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Canonical { event_id } => write!(f, "canonical:{event_id}"),
            Self::Golden(change) => write!(f, "golden:{change}"),
            Self::Conflict {
                event_id,
                other: None,
            } => write!(f, "conflict:{event_id}"),
            Self::Conflict {
                event_id,
                other: Some(other),
            } => write!(f, "conflict:{event_id}:{other}"),
            Self::Review { a, b } => write!(f, "review:{a}:{b}"),
            Self::Command { command_id } => write!(f, "command:{command_id}"),
            Self::CommandResult { command_id } => write!(f, "result:{command_id}"),
        }
    }
}

impl MsgId<'_> {
    /// The review id of two records, whichever comes first.
    pub fn review(x: Uuid, y: Uuid) -> MsgId<'static> {
        let (a, b) = if x < y { (x, y) } else { (y, x) };
        MsgId::Review { a, b }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_as_they_were_written() {
        let golden = Uuid::now_v7();
        let change = ChangeId { golden, version: 7 };
        assert_eq!(change.to_string().parse::<ChangeId>(), Ok(change));
        assert_eq!(
            MsgId::Golden(change).to_string(),
            format!("golden:{golden}:7")
        );
        assert!("nope".parse::<ChangeId>().is_err());
        assert!(format!("{golden}:x").parse::<ChangeId>().is_err());
        let (x, y) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(MsgId::review(y, x), MsgId::review(x, y));
        assert_eq!(
            MsgId::Conflict {
                event_id: "demo:e1",
                other: Some(x)
            }
            .to_string(),
            format!("conflict:demo:e1:{x}")
        );
    }
}
