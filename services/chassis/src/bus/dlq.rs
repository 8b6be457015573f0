//! What a dead letter says about its failure (an [`ErrorClass`] from a closed set, the
//! destination, the start of its answer), and reading the DLQ stream by filter, page by page,
//! for the admin API's list and replay.

use std::time::SystemTime;

use async_nats::jetstream;
use switchyard_proto::Message as _;
use switchyard_proto::v1::DeadLetter;

use super::{BusError, Names, StreamKind};

/// The most of a destination's answer a dead letter keeps.
pub const RESPONSE_BODY_LIMIT: usize = 512;

/// Why a message was dead-lettered, as one of a closed set of names an operator can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The destination answered 5xx on every attempt.
    ServerError,
    /// 429 on every attempt.
    RateLimited,
    /// No answer in time (or 408).
    Timeout,
    /// No connection to the destination.
    Connection,
    /// A 4xx other than 401/403/408/410/429: the request itself is wrong.
    ClientError,
    /// 401/403, or the credentials could not be refreshed.
    Auth,
    /// 410: the destination no longer exists (the flow pauses).
    Gone,
    /// Too old to be worth delivering any more.
    MaxAge,
    /// Attempts ran out on a failure of our own side (database, bus).
    Exhausted,
    /// The record breaks its data contract.
    ContractViolation,
    /// The message is not the protobuf it should be.
    Undecodable,
    /// The mapping could not turn the event into a canonical object.
    Mapping,
    /// Decodable but not acceptable (a missing id, a malformed command).
    Invalid,
    /// A failure of ours that no class above describes.
    Internal,
}

impl ErrorClass {
    pub const ALL: [Self; 14] = [
        Self::ServerError,
        Self::RateLimited,
        Self::Timeout,
        Self::Connection,
        Self::ClientError,
        Self::Auth,
        Self::Gone,
        Self::MaxAge,
        Self::Exhausted,
        Self::ContractViolation,
        Self::Undecodable,
        Self::Mapping,
        Self::Invalid,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerError => "server_error",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::ClientError => "client_error",
            Self::Auth => "auth",
            Self::Gone => "gone",
            Self::MaxAge => "max_age",
            Self::Exhausted => "exhausted",
            Self::ContractViolation => "contract_violation",
            Self::Undecodable => "undecodable",
            Self::Mapping => "mapping",
            Self::Invalid => "invalid",
            Self::Internal => "internal",
        }
    }

    /// The class named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The class of an HTTP refusal (a status ≥ 400).
    pub fn of_status(status: u16) -> Self {
        match status {
            401 | 403 => Self::Auth,
            408 => Self::Timeout,
            410 => Self::Gone,
            429 => Self::RateLimited,
            500..=599 => Self::ServerError,
            _ => Self::ClientError,
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a stage says about a failure when it dead-letters a message (or would, once its
/// attempts run out); the message itself (payload, headers, subject, attempts) comes from the
/// delivery, and the stage from the [`Settler`](super::Settler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Flow (deliver) or source (transform, dedupe).
    pub key: String,
    pub class: ErrorClass,
    pub reason: String,
    /// The destination's HTTP status, 0 when none.
    pub http_status: u16,
    /// The flow's destination (deliver only).
    pub destination: String,
    /// The destination's answer; trimmed to [`RESPONSE_BODY_LIMIT`] when stored.
    pub response_body: String,
}

impl Failure {
    pub fn new(key: impl Into<String>, class: ErrorClass, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            class,
            reason: reason.into(),
            http_status: 0,
            destination: String::new(),
            response_body: String::new(),
        }
    }

    /// A transient failure of the stage's own (database, bus): once the attempts run out it is
    /// dead-lettered as [`ErrorClass::Exhausted`].
    pub fn transient(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(key, ErrorClass::Exhausted, reason)
    }

    #[must_use]
    pub fn status(mut self, http_status: u16) -> Self {
        self.http_status = http_status;
        self
    }

    #[must_use]
    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = destination.into();
        self
    }

    #[must_use]
    pub fn response_body(mut self, body: impl Into<String>) -> Self {
        self.response_body = body.into();
        self
    }
}

/// At most `limit` bytes of `text`, cut at a character boundary.
pub fn trim_to(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Which dead letters a list or replay is about; an empty field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub stage: String,
    pub key: String,
    pub destination: String,
    pub error_class: String,
    /// Failed at or after.
    pub since: Option<SystemTime>,
    /// Failed before.
    pub until: Option<SystemTime>,
}

impl Filter {
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let failed_at = letter
            .failed_at
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        (self.stage.is_empty() || letter.stage == self.stage)
            && (self.key.is_empty() || letter.key == self.key)
            && (self.destination.is_empty() || letter.destination == self.destination)
            && (self.error_class.is_empty() || letter.error_class == self.error_class)
            && self.since.is_none_or(|since| failed_at >= since)
            && self.until.is_none_or(|until| failed_at < until)
    }
}

/// One page of dead letters matching `filter`, in DLQ order, after sequence `after`: at most
/// `limit` of them, and the sequence to continue after (`None` when the stream has no more).
/// Messages that are gone (expired, purged) or not dead letters are passed over.
pub async fn page(
    client: &async_nats::Client,
    names: &Names,
    filter: &Filter,
    after: u64,
    limit: usize,
) -> Result<(Vec<(u64, DeadLetter)>, Option<u64>), BusError> {
    page_through(client, names, filter, after, limit, u64::MAX).await
}

/// [`page`], reading no further than sequence `through`.
pub(super) async fn page_through(
    client: &async_nats::Client,
    names: &Names,
    filter: &Filter,
    after: u64,
    limit: usize,
    through: u64,
) -> Result<(Vec<(u64, DeadLetter)>, Option<u64>), BusError> {
    let (stream, state) = dlq_state(client, names).await?;
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok((out, None));
    }
    let start = state.first_sequence.max(after.saturating_add(1));
    for sequence in start..=state.last_sequence.min(through) {
        if out.len() >= limit.max(1) {
            // Stopped early: the rest is read from here on the next page.
            return Ok((out, Some(sequence - 1)));
        }
        let Ok(stored) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let Ok(letter) = DeadLetter::decode(stored.payload.as_ref()) else {
            continue;
        };
        if filter.matches(&letter) {
            out.push((sequence, letter));
        }
    }
    Ok((out, None))
}

/// The DLQ stream's last sequence now (0 when it never held a message).
pub(super) async fn last_sequence(
    client: &async_nats::Client,
    names: &Names,
) -> Result<u64, BusError> {
    Ok(dlq_state(client, names).await?.1.last_sequence)
}

/// The DLQ stream, and what it holds now.
async fn dlq_state(
    client: &async_nats::Client,
    names: &Names,
) -> Result<(jetstream::stream::Stream, jetstream::stream::State), BusError> {
    let js = jetstream::new(client.clone());
    let unavailable = |e: String| BusError::Stream {
        stream: names.stream(StreamKind::Dlq),
        reason: e,
    };
    let mut stream = js
        .get_stream(names.stream(StreamKind::Dlq))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let state = stream
        .info()
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .state
        .clone();
    Ok((stream, state))
}

/// The dead letter at `sequence`.
pub async fn get(
    client: &async_nats::Client,
    names: &Names,
    sequence: u64,
) -> Result<DeadLetter, BusError> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_stream(names.stream(StreamKind::Dlq))
        .await
        .map_err(|e| BusError::Publish(e.to_string()))?;
    let stored = stream
        .get_raw_message(sequence)
        .await
        .map_err(|e| BusError::Publish(format!("dead letter {sequence}: {e}")))?;
    DeadLetter::decode(stored.payload.as_ref())
        .map_err(|e| BusError::Publish(format!("dead letter {sequence} is not a DeadLetter: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_by_name() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::parse(class.as_str()), Some(class));
        }
        assert_eq!(ErrorClass::parse("nope"), None);
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(ErrorClass::of_status(500), ErrorClass::ServerError);
        assert_eq!(ErrorClass::of_status(503), ErrorClass::ServerError);
        assert_eq!(ErrorClass::of_status(429), ErrorClass::RateLimited);
        assert_eq!(ErrorClass::of_status(401), ErrorClass::Auth);
        assert_eq!(ErrorClass::of_status(410), ErrorClass::Gone);
        assert_eq!(ErrorClass::of_status(400), ErrorClass::ClientError);
        assert_eq!(ErrorClass::of_status(422), ErrorClass::ClientError);
    }

    #[test]
    fn trimming_keeps_whole_characters() {
        assert_eq!(trim_to("abc", 512), "abc");
        // "é" is two bytes: a cut in its middle steps back before it.
        assert_eq!(trim_to("aé", 2), "a");
        assert_eq!(trim_to(&"x".repeat(600), 512).len(), 512);
    }

    #[test]
    fn filters_match_every_field_they_name() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        let letter = DeadLetter {
            stage: "deliver".into(),
            key: "a".into(),
            destination: "hook".into(),
            error_class: "server_error".into(),
            failed_at: Some(switchyard_proto::timestamp(at)),
            ..Default::default()
        };
        assert!(Filter::default().matches(&letter));
        let f = |f: Filter| f.matches(&letter);
        assert!(f(Filter {
            key: "a".into(),
            error_class: "server_error".into(),
            ..Default::default()
        }));
        assert!(!f(Filter {
            key: "b".into(),
            ..Default::default()
        }));
        assert!(!f(Filter {
            destination: "other".into(),
            ..Default::default()
        }));
        assert!(!f(Filter {
            error_class: "client_error".into(),
            ..Default::default()
        }));
        assert!(f(Filter {
            since: Some(at),
            until: Some(at + std::time::Duration::from_secs(1)),
            ..Default::default()
        }));
        assert!(!f(Filter {
            until: Some(at),
            ..Default::default()
        }));
        assert!(!f(Filter {
            since: Some(at + std::time::Duration::from_secs(1)),
            ..Default::default()
        }));
    }
}
