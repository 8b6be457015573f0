//! Replaying dead letters: each original message goes back to its original subject, under a new
//! `Nats-Msg-Id` (the original id would be dropped as a duplicate within JetStream's window), so the
//! current mapping, contract or destination handles it again. Every stage after it is idempotent.
//!
//! A deliver-stage letter is a flow's, but its subject (the golden stream's) is consumed by every
//! flow on that object: the replay carries [`REPLAY_FLOW`] naming its flow, and the other flows
//! ack it without delivering. The replay's id is stable per letter (`replay:<prefix>:<sequence>`),
//! so replaying the same letter twice within the duplicate window publishes it once; after the
//! window, deliver's record of delivered changes keeps the destination from seeing it twice.

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use switchyard_proto::v1::DeadLetter;

use super::dlq::{self, Filter};
use super::{BusError, DELIVER_STAGE, MSG_ID, Names, REPLAY_FLOW};

/// Dead letters read per round trip while replaying by filter.
const PAGE: usize = 500;

/// What a replay by filter did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Letters that matched the filter.
    pub matched: u64,
    /// Republished now.
    pub replayed: u64,
    /// Dropped by JetStream as a repeat of a replay within its duplicate window.
    pub already_replayed: u64,
}

/// Republishes `letter` (DLQ sequence `sequence`); returns whether JetStream dropped it as a
/// duplicate of an earlier replay.
async fn republish(
    js: &jetstream::Context,
    names: &Names,
    sequence: u64,
    letter: &DeadLetter,
) -> Result<bool, BusError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &letter.original_headers {
        if name != MSG_ID && name != REPLAY_FLOW {
            headers.insert(name.as_str(), value.as_str());
        }
    }
    headers.insert(
        MSG_ID,
        format!("replay:{}:{sequence}", names.prefix()).as_str(),
    );
    if letter.stage == DELIVER_STAGE {
        headers.insert(REPLAY_FLOW, letter.key.as_str());
    }
    let ack = js
        .publish_with_headers(
            letter.original_subject.clone(),
            headers,
            Bytes::from(letter.payload.clone()),
        )
        .await
        .map_err(|e| BusError::Publish(e.to_string()))?;
    let ack = ack.await.map_err(|e| BusError::Publish(e.to_string()))?;
    tracing::info!(
        sequence,
        subject = %letter.original_subject,
        stage = %letter.stage,
        duplicate = ack.duplicate,
        "dead letter replayed"
    );
    Ok(ack.duplicate)
}

/// Republishes the dead letter at `sequence` of the DLQ stream; returns the subject it went to.
pub async fn replay_dead_letter(
    client: &async_nats::Client,
    names: &Names,
    sequence: u64,
) -> Result<String, BusError> {
    let letter = dlq::get(client, names, sequence).await?;
    let js = jetstream::new(client.clone());
    republish(&js, names, sequence, &letter).await?;
    Ok(letter.original_subject)
}

/// Republishes every dead letter matching `filter` (the whole stream as it is when the call
/// starts, page by page), in DLQ order. Stops at the first failure to publish: what was replayed before it stays replayed,
/// and running the same replay again skips those as repeats.
pub async fn replay_dead_letters(
    client: &async_nats::Client,
    names: &Names,
    filter: &Filter,
) -> Result<Replayed, BusError> {
    let js = jetstream::new(client.clone());
    // Letters dead-lettered while this runs (a replay failing again, say) wait for the next
    // replay: reading on would replay them in a loop.
    let through = dlq::last_sequence(client, names).await?;
    let mut done = Replayed::default();
    let mut after = 0;
    loop {
        let (letters, next) =
            dlq::page_through(client, names, filter, after, PAGE, through).await?;
        for (sequence, letter) in &letters {
            done.matched += 1;
            if republish(&js, names, *sequence, letter).await? {
                done.already_replayed += 1;
            } else {
                done.replayed += 1;
            }
        }
        match next {
            Some(next) => after = next,
            None => return Ok(done),
        }
    }
}
