//! Consuming: a guard around each delivered message that naks when dropped unsettled, and the
//! loops that feed a durable pull consumer to a handler until shutdown — one message at a time,
//! several at once, in batches, or on lanes that keep each key's messages in order.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use futures::{FutureExt as _, StreamExt as _};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::settle::{BatchHandler, Handler, Outcome, Settler, logged};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabel {
    consumer: String,
}

type Timing = Family<ConsumerLabel, Histogram, fn() -> Histogram>;

fn timing() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Each hop's share of the end-to-end latency, per durable consumer of one service (its
/// [`Bus`](super::Bus) holds them, its runtime serves them on `/metrics`): how long a message
/// waited in its stream before the service took it, and how long the service then held it.
#[derive(Debug, Clone)]
pub struct ConsumeMetrics {
    wait: Timing,
    handling: Timing,
}

impl Default for ConsumeMetrics {
    fn default() -> Self {
        Self {
            wait: Family::new_with_constructor(timing),
            handling: Family::new_with_constructor(timing),
        }
    }
}

impl ConsumeMetrics {
    /// Registers `switchyard_consume_wait_seconds` and `switchyard_consume_handling_seconds`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "consume_wait",
            "Time from JetStream storing a message to a consumer taking it (first deliveries), by durable consumer",
            Unit::Seconds,
            self.wait.clone(),
        );
        registry.register_with_unit(
            "consume_handling",
            "Time from a consumer taking a message to settling it (ack, nak or term), by durable consumer",
            Unit::Seconds,
            self.handling.clone(),
        );
    }

    /// Times `durable`'s messages from now on, under this service's metrics.
    pub(super) fn track(&self, durable: &str) {
        let label = ConsumerLabel {
            consumer: durable.to_owned(),
        };
        let timings = Timings {
            wait: self.wait.get_or_create(&label).clone(),
            handling: self.handling.get_or_create(&label).clone(),
        };
        TRACKED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(label.consumer, timings);
    }
}

/// One consumer's two histograms.
#[derive(Debug, Clone)]
struct Timings {
    wait: Histogram,
    handling: Histogram,
}

/// The histograms of every durable consumer a bus of this process created, by name: the consume
/// loops are handed a bare consumer and find its timings here, once per pull.
static TRACKED: LazyLock<Mutex<HashMap<String, Timings>>> = LazyLock::new(Mutex::default);

/// `durable`'s timings; a consumer no bus created (a tool's) is timed into the void.
fn timings_of(durable: &str) -> Timings {
    TRACKED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(durable)
        .cloned()
        .unwrap_or_else(|| Timings {
            wait: timing(),
            handling: timing(),
        })
}

/// One delivered message. The consume loops settle it (see [`Settler`]) with
/// [`ack`](Self::ack) once its side effect is committed or [`nak`](Self::nak) to retry; dropping
/// it unsettled naks it, so a panic never strands a message until its ack wait runs out.
#[derive(Debug)]
pub struct Delivery {
    msg: Option<jetstream::Message>,
    attempt: u64,
    stream_sequence: u64,
    span: tracing::Span,
    /// When the consumer took the message, and where the time until it is settled goes.
    taken: std::time::Instant,
    handling: Histogram,
}

impl Delivery {
    /// Wraps a pulled message, with its `consume` span already joined to the trace context the
    /// publisher sent along.
    fn new(msg: jetstream::Message, stage: &'static str, durable: &str, timings: &Timings) -> Self {
        let (attempt, stream_sequence, stored) = msg
            .info()
            .map(|i| {
                (
                    u64::try_from(i.delivered).unwrap_or(1),
                    i.stream_sequence,
                    Some(std::time::SystemTime::from(i.published)),
                )
            })
            .unwrap_or((1, 0, None));
        if attempt == 1
            && let Some(stored) = stored
        {
            let waited = stored.elapsed().unwrap_or_default();
            timings.wait.observe(waited.as_secs_f64());
        }
        let mut delivery = Self {
            msg: Some(msg),
            attempt,
            stream_sequence,
            span: tracing::Span::none(),
            taken: std::time::Instant::now(),
            handling: timings.handling.clone(),
        };
        delivery.span = tracing::info_span!(
            "consume",
            otel.kind = "consumer",
            otel.name = format!("{stage} process"),
            messaging.system = "nats",
            messaging.operation = "process",
            messaging.destination.name = delivery.subject(),
            messaging.message.id = delivery.msg_id().unwrap_or_default(),
            messaging.consumer.group.name = %durable,
            attempt,
        );
        crate::telemetry::adopt_context(&delivery.span, delivery.headers());
        delivery
    }

    /// This message's `consume` span (a child of the publisher's trace context): work done for
    /// this message alone — its publishes above all, which carry the trace on — runs inside it.
    /// The loops enter it for their handler; a batch handler enters each message's span itself.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    fn message(&self) -> &async_nats::Message {
        match &self.msg {
            Some(m) => &m.message,
            None => unreachable!("a settled delivery is consumed by value"),
        }
    }

    /// The subject the message was published on.
    pub fn subject(&self) -> &str {
        self.message().subject.as_str()
    }

    /// The message body.
    pub fn payload(&self) -> &[u8] {
        &self.message().payload
    }

    /// The message headers.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.message().headers.as_ref()
    }

    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()?.get(name).map(|v| v.as_str())
    }

    /// The publisher's `Nats-Msg-Id`, if any.
    pub fn msg_id(&self) -> Option<&str> {
        self.header(super::MSG_ID)
    }

    /// Which delivery of this message this is (1 for the first).
    pub fn attempt(&self) -> u64 {
        self.attempt
    }

    /// The message's sequence in its stream: unique and stable across redeliveries.
    pub fn stream_sequence(&self) -> u64 {
        self.stream_sequence
    }

    /// When JetStream stored the message (the same on every redelivery).
    pub fn published(&self) -> Option<std::time::SystemTime> {
        let info = self.msg.as_ref()?.info().ok()?;
        Some(std::time::SystemTime::from(info.published))
    }

    async fn settle(mut self, kind: AckKind) -> Result<(), async_nats::Error> {
        match self.msg.take() {
            Some(msg) => {
                self.handling.observe(self.taken.elapsed().as_secs_f64());
                msg.ack_with(kind).await
            }
            None => Ok(()),
        }
    }

    /// Acknowledges: the side effect is committed and the message is done.
    pub(super) async fn ack(self) -> Result<(), async_nats::Error> {
        self.settle(AckKind::Ack).await
    }

    /// Asks for redelivery, after `delay` when given.
    pub(super) async fn nak(self, delay: Option<Duration>) -> Result<(), async_nats::Error> {
        self.settle(AckKind::Nak(delay)).await
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(msg) = self.msg.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                if let Err(error) = msg.ack_with(AckKind::Nak(None)).await {
                    tracing::warn!(%error, "nak of an unsettled message failed; it is redelivered after its ack wait");
                }
            });
        }
    }
}

/// Feeds `consumer`'s messages to `handler` one at a time until `shutdown` is cancelled, and
/// settles each as the handler decides. The message in hand is finished before returning;
/// messages pulled but not yet handled are left unacknowledged and come back to another replica
/// (or this one after restart).
pub async fn run_consumer<H: Handler>(
    consumer: jetstream::consumer::PullConsumer,
    settler: Settler,
    batch: usize,
    shutdown: CancellationToken,
    handler: Arc<H>,
) {
    run_consumer_concurrently(consumer, settler, batch, 1, shutdown, handler).await;
}

/// Like [`run_consumer`], with up to `concurrency` messages in hand at once — for stages whose
/// handling is safe in any order (transform's output order is re-established downstream: dedupe
/// serialises records sharing a key with database locks and orders their changes by source time).
/// Each message is still settled after its own side effect is committed; on shutdown the
/// messages in hand are finished first.
pub async fn run_consumer_concurrently<H: Handler>(
    consumer: jetstream::consumer::PullConsumer,
    settler: Settler,
    batch: usize,
    concurrency: usize,
    shutdown: CancellationToken,
    handler: Arc<H>,
) {
    let durable = consumer.cached_info().name.clone();
    let timings = timings_of(&durable);
    let concurrency = concurrency.max(1);
    let (settler, handler) = (&settler, &*handler);
    let mut in_hand = futures::stream::FuturesUnordered::new();
    'outer: while !shutdown.is_cancelled() {
        let Some(mut messages) = open_pull(
            &consumer,
            &durable,
            batch,
            Some(Duration::from_secs(5)),
            Duration::from_secs(30),
            &shutdown,
        )
        .await
        else {
            break;
        };
        loop {
            if in_hand.len() >= concurrency {
                in_hand.next().await;
                continue;
            }
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'outer,
                Some(()) = in_hand.next(), if !in_hand.is_empty() => continue,
                next = messages.next() => next,
            };
            match next {
                None => continue 'outer,
                Some(Err(error)) => {
                    if pull_failed(&error, &durable, &shutdown).await {
                        break 'outer;
                    }
                }
                Some(Ok(msg)) => {
                    let delivery = Delivery::new(msg, settler.stage(), &durable, &timings);
                    let span = delivery.span().clone();
                    in_hand.push(Box::pin(handled(settler, handler, delivery)).instrument(span));
                }
            }
        }
    }
    // What is in hand finishes (and is settled) before the consumer stops.
    while in_hand.next().await.is_some() {}
    tracing::info!(consumer = %durable, "consumer stopped");
}

/// Handles one message and settles it as its handler decided.
async fn handled<H: Handler>(settler: &Settler, handler: &H, delivery: Delivery) {
    let outcome = handler.handle(&delivery).await;
    settler.settle(handler, delivery, outcome).await;
}

/// How long a batch that holds a message waits for more to arrive before it is handed over: long
/// enough to gather what the server is already sending, short enough to add no latency worth the
/// name when traffic is light.
const BATCH_LINGER: Duration = Duration::from_millis(2);

/// Like [`run_consumer_concurrently`], for stages that handle messages a batch at a time (dedupe
/// resolves a batch in one transaction): the messages available together, up to `batch` of them,
/// are handed to `handler` at once (once a message is in hand, what arrives within a couple of
/// milliseconds joins it; a full batch goes at once), with up to `concurrency` batches in hand.
/// The handler answers an outcome for every message of its batch, and each is settled in its own
/// `consume` span, joined to its publisher's trace exactly as with the other loops; the handler
/// runs inside a `consume batch` span linked to them. On shutdown the batches in hand are
/// finished first.
pub async fn run_batch_consumer<H: BatchHandler>(
    consumer: jetstream::consumer::PullConsumer,
    settler: Settler,
    batch: usize,
    concurrency: usize,
    shutdown: CancellationToken,
    handler: Arc<H>,
) {
    let durable = consumer.cached_info().name.clone();
    let timings = timings_of(&durable);
    let batch = batch.max(1);
    let concurrency = concurrency.max(1);
    let stage = settler.stage();
    let (settler, handler) = (&settler, &*handler);
    let mut in_hand = futures::stream::FuturesUnordered::new();
    'outer: while !shutdown.is_cancelled() {
        // Pull for every batch that may be in hand: the client asks for more once half of one pull
        // has arrived, so a pull of a single batch would leave the other batches waiting.
        let Some(mut messages) = open_pull(
            &consumer,
            &durable,
            batch.saturating_mul(concurrency),
            Some(Duration::from_secs(5)),
            Duration::from_secs(30),
            &shutdown,
        )
        .await
        else {
            break;
        };
        loop {
            if in_hand.len() >= concurrency {
                in_hand.next().await;
                continue;
            }
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'outer,
                Some(()) = in_hand.next(), if !in_hand.is_empty() => continue,
                next = messages.next() => next,
            };
            let mut deliveries = match next {
                None => continue 'outer,
                Some(Err(error)) => {
                    if pull_failed(&error, &durable, &shutdown).await {
                        break 'outer;
                    }
                    continue;
                }
                Some(Ok(msg)) => vec![Delivery::new(msg, stage, &durable, &timings)],
            };
            let linger = tokio::time::Instant::now() + BATCH_LINGER;
            let mut ended = false;
            while deliveries.len() < batch {
                match tokio::time::timeout_at(linger, messages.next()).await {
                    Ok(Some(Ok(msg))) => {
                        deliveries.push(Delivery::new(msg, stage, &durable, &timings))
                    }
                    // What is gathered goes now; the error is met again on the next pull.
                    Ok(Some(Err(error))) => {
                        tracing::warn!(%error, consumer = %durable, "pull consumer error");
                        break;
                    }
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let span = tracing::info_span!(
                parent: None,
                "consume batch",
                otel.kind = "consumer",
                otel.name = format!("{stage} process batch"),
                messaging.system = "nats",
                messaging.operation = "process",
                messaging.consumer.group.name = %durable,
                messaging.batch.message_count = deliveries.len(),
            );
            // The batch is its own unit of work, linked to each message's trace rather than
            // parented by one of them.
            for delivery in &deliveries {
                span.follows_from(delivery.span());
            }
            // Boxed: handlers hold database transactions, too big to inline here.
            in_hand.push(Box::pin(handled_batch(settler, handler, deliveries)).instrument(span));
            if ended {
                continue 'outer;
            }
        }
    }
    // What is in hand finishes (and acknowledges) before the consumer stops.
    while in_hand.next().await.is_some() {}
    tracing::info!(consumer = %durable, "consumer stopped");
}

/// Handles a batch and settles each of its messages as the handler decided, each in its span.
async fn handled_batch<H: BatchHandler>(settler: &Settler, handler: &H, deliveries: Vec<Delivery>) {
    let mut outcomes = handler.handle_batch(&deliveries).await.into_iter();
    let settling = deliveries.into_iter().map(|delivery| {
        // A handler that answered too few outcomes leaves the rest to be retried.
        let outcome = outcomes.next().unwrap_or(Outcome::Defer { after: None });
        let span = delivery.span().clone();
        settler.settle_plain(delivery, outcome).instrument(span)
    });
    futures::future::join_all(settling).await;
}

/// Feeds `consumer`'s messages to `lanes` lanes, each handling its messages one at a time, in
/// order: `key` picks a message's lane, so messages with the same key (deliver: one golden
/// record's changes) reach their handler in stream order while other keys' messages proceed on
/// the other lanes. Each lane holds at most `depth` messages waiting behind the one in hand; a
/// message for a full lane holds the pull until that lane frees a place, so what is pulled but
/// not handled stays bounded (`pull` buffered, `lanes × (depth + 1)` in the lanes).
///
/// The pull runs without idle heartbeats: it legitimately pauses while a lane is full (a slow
/// destination), and a heartbeat timer would then report "missed idle heartbeat" and stall the
/// pull. Short pull requests (`expires` of 10 s, re-issued by the client when one goes
/// unanswered) stand in for them. Each message is settled as its handler decided once handled;
/// on shutdown the lanes finish what they hold, and messages pulled but not yet in a lane are
/// naked so they come back at once rather than after their ack wait.
#[allow(clippy::too_many_arguments)] // one loop's knobs, passed once
pub async fn run_laned_consumer<K, H>(
    consumer: jetstream::consumer::PullConsumer,
    settler: Settler,
    pull: usize,
    lanes: usize,
    depth: usize,
    shutdown: CancellationToken,
    key: K,
    handler: Arc<H>,
) where
    K: Fn(&Delivery) -> u64,
    H: Handler,
{
    let durable = consumer.cached_info().name.clone();
    let timings = timings_of(&durable);
    let lanes = lanes.max(1);
    let stage = settler.stage();
    let (queues, workers): (Vec<_>, Vec<_>) = (0..lanes)
        .map(|_| {
            let (queue, mut inbox) = tokio::sync::mpsc::channel::<Delivery>(depth.max(1));
            let (settler, handler) = (settler.clone(), handler.clone());
            let worker = tokio::spawn(async move {
                while let Some(delivery) = inbox.recv().await {
                    let span = delivery.span().clone();
                    handled(&settler, &*handler, delivery)
                        .instrument(span)
                        .await;
                }
            });
            (queue, worker)
        })
        .collect();
    let lane_count = u64::try_from(lanes).unwrap_or(1);
    'outer: while !shutdown.is_cancelled() {
        let Some(mut messages) = open_pull(
            &consumer,
            &durable,
            pull.max(1),
            None,
            Duration::from_secs(10),
            &shutdown,
        )
        .await
        else {
            break;
        };
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    // Pulled but not started: back to the server now, not after the ack wait.
                    while let Some(Some(Ok(msg))) = messages.next().now_or_never() {
                        logged(msg.ack_with(AckKind::Nak(None)).await);
                    }
                    break 'outer;
                }
                next = messages.next() => next,
            };
            match next {
                None => continue 'outer,
                Some(Err(error)) => {
                    if pull_failed(&error, &durable, &shutdown).await {
                        break 'outer;
                    }
                }
                Some(Ok(msg)) => {
                    let delivery = Delivery::new(msg, stage, &durable, &timings);
                    let lane = usize::try_from(key(&delivery) % lane_count).unwrap_or(0);
                    let queue = &queues[lane];
                    match queue.try_send(delivery) {
                        Ok(()) => {}
                        Err(tokio::sync::mpsc::error::TrySendError::Full(delivery)) => {
                            // Order within the lane matters more than the other lanes' pace.
                            // A send fails only once the worker is gone (it panicked); the
                            // delivery then drops unsettled, which naks it.
                            let _ = queue.send(delivery).await;
                        }
                        Err(tokio::sync::mpsc::error::TrySendError::Closed(delivery)) => {
                            drop(delivery);
                        }
                    }
                }
            }
        }
    }
    // What the lanes hold finishes (and acknowledges) before the consumer stops.
    drop(queues);
    futures::future::join_all(workers).await;
    tracing::info!(consumer = %durable, "consumer stopped");
}

/// Opens a pull of up to `batch` messages per request (with idle heartbeats when given), trying
/// again every second while the server refuses; `None` once shut down.
async fn open_pull(
    consumer: &jetstream::consumer::PullConsumer,
    durable: &str,
    batch: usize,
    heartbeat: Option<Duration>,
    expires: Duration,
    shutdown: &CancellationToken,
) -> Option<jetstream::consumer::pull::Stream> {
    while !shutdown.is_cancelled() {
        let mut pull = consumer
            .stream()
            .max_messages_per_batch(batch)
            .expires(expires);
        if let Some(heartbeat) = heartbeat {
            pull = pull.heartbeat(heartbeat);
        }
        match pull.messages().await {
            Ok(messages) => return Some(messages),
            Err(error) => {
                tracing::warn!(%error, consumer = %durable, "cannot pull messages; retrying");
                if wait_or_cancelled(shutdown, Duration::from_secs(1)).await {
                    return None;
                }
            }
        }
    }
    None
}

/// Logs a failed pull and pauses before the next; true when shutdown came first.
async fn pull_failed(
    error: &impl std::fmt::Display,
    durable: &str,
    shutdown: &CancellationToken,
) -> bool {
    tracing::warn!(%error, consumer = %durable, "pull consumer error");
    wait_or_cancelled(shutdown, Duration::from_millis(200)).await
}

/// Waits for `delay`; true when shutdown came first.
async fn wait_or_cancelled(shutdown: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(delay) => false,
    }
}
