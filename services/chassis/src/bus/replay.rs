//! Replaying a dead letter: its original message goes back to its original subject, under a new
//! `Nats-Msg-Id` (the original id would be dropped as a duplicate within JetStream's window), so the
//! current mapping, contract or destination handles it again. Every stage after it is idempotent.

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use prost::Message as _;
use switchyard_proto::v1::DeadLetter;

use super::{BusError, MSG_ID, Names, StreamKind};

/// Republishes the dead letter at `sequence` of the DLQ stream; returns the subject it went to.
pub async fn replay_dead_letter(
    client: &async_nats::Client,
    names: &Names,
    sequence: u64,
) -> Result<String, BusError> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_stream(names.stream(StreamKind::Dlq))
        .await
        .map_err(|e| BusError::Publish(e.to_string()))?;
    let stored = stream
        .get_raw_message(sequence)
        .await
        .map_err(|e| BusError::Publish(format!("dead letter {sequence}: {e}")))?;
    let letter = DeadLetter::decode(stored.payload.as_ref()).map_err(|e| {
        BusError::Publish(format!("dead letter {sequence} is not a DeadLetter: {e}"))
    })?;
    let mut headers = HeaderMap::new();
    for (name, value) in &letter.original_headers {
        if name != MSG_ID {
            headers.insert(name.as_str(), value.as_str());
        }
    }
    headers.insert(
        MSG_ID,
        format!("replay:{}:{sequence}", names.prefix()).as_str(),
    );
    let ack = js
        .publish_with_headers(
            letter.original_subject.clone(),
            headers,
            Bytes::from(letter.payload),
        )
        .await
        .map_err(|e| BusError::Publish(e.to_string()))?;
    ack.await.map_err(|e| BusError::Publish(e.to_string()))?;
    tracing::info!(sequence, subject = %letter.original_subject, stage = %letter.stage, "dead letter replayed");
    Ok(letter.original_subject)
}
