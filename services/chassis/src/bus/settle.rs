//! Settling: a handler says what became of its message (an [`Outcome`]); the consume loop alone
//! carries it out through the stage's [`Settler`] — ack, nak after the policy's delay, or store
//! the dead letter and then ack — counting attempts against the stage's policy. So "attempts left
//! → retry, else dead-letter" is decided in one place, and no handler can forget to settle.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Bus, Delivery, Failure};
use crate::retry::RedeliveryPolicy;

/// What a handler decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The side effect is committed (or there was none to make): the message is done.
    Ack,
    /// A failed attempt worth repeating: redelivered after the policy's delay (never sooner than
    /// `after`, a vendor's `Retry-After`) while the stage's attempts last, then dead-lettered
    /// with `failure`, its reason prefixed "gave up after N attempts".
    Retry {
        failure: Failure,
        after: Option<Duration>,
    },
    /// Back later, without it counting as a failed attempt (an open circuit breaker, a report
    /// that could not be published after the work was done): after `after`, else the policy's
    /// delay for this delivery.
    Defer { after: Option<Duration> },
    /// Cannot succeed as things stand: dead-lettered with its reason, then acked.
    DeadLetter(Failure),
}

impl Outcome {
    /// A failed attempt, retried after the policy's delay.
    pub fn retry(failure: Failure) -> Self {
        Self::Retry {
            failure,
            after: None,
        }
    }
}

/// What the settler is about to do, told to [`Handler::before`] so a stage can add its own step.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// The message is about to be acked.
    Ack,
    /// A failed attempt; the message is about to be redelivered.
    Retry { failure: &'a Failure, attempt: u64 },
    /// The dead letter is stored; the message is about to be acked.
    DeadLettered { failure: &'a Failure, attempt: u64 },
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Acked,
    /// Naked, to come back after the delay.
    Redelivered(Duration),
    DeadLettered,
}

/// A stage's handler of single messages.
pub trait Handler: Send + Sync + 'static {
    /// Decides what becomes of `delivery`, after making its side effect (if any) durable.
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Outcome> + Send;

    /// The attempts `delivery` has used, counted against the policy: every delivery, unless the
    /// stage knows some were no attempt (deliver's waits for an open circuit breaker).
    fn attempts(&self, delivery: &Delivery) -> u64 {
        delivery.attempt()
    }

    /// Runs before the settler acks or naks (deliver reports the outcome to monitor here). An
    /// error turns an ack into a redelivery, so the step is repeated; before a retry it is only
    /// logged.
    fn before(
        &self,
        delivery: &Delivery,
        step: Step<'_>,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = (delivery, step);
        async { Ok(()) }
    }
}

/// A stage's handler of batches (dedupe resolves a batch in one transaction).
pub trait BatchHandler: Send + Sync + 'static {
    /// One outcome per delivery, in their order.
    fn handle_batch(&self, deliveries: &[Delivery]) -> impl Future<Output = Vec<Outcome>> + Send;
}

/// Carries out outcomes for one stage (deliver: one flow): its dead letters, its redelivery
/// delays and how many attempts a message gets. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Settler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: Bus,
    stage: &'static str,
    policy: RedeliveryPolicy,
    max_attempts: u64,
}

impl Settler {
    pub fn new(bus: Bus, stage: &'static str, policy: RedeliveryPolicy, max_attempts: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                bus,
                stage,
                policy,
                max_attempts: max_attempts.max(1),
            }),
        }
    }

    /// The stage whose messages these are.
    pub fn stage(&self) -> &'static str {
        self.inner.stage
    }

    /// Settles one message of a single-message handler, with its attempts and its step.
    pub async fn settle<H: Handler>(
        &self,
        handler: &H,
        delivery: Delivery,
        outcome: Outcome,
    ) -> Settled {
        let attempt = handler.attempts(&delivery);
        self.carry_out(delivery, outcome, attempt, Some(handler))
            .await
    }

    /// Settles one message of a batch.
    pub async fn settle_plain(&self, delivery: Delivery, outcome: Outcome) -> Settled {
        let attempt = delivery.attempt();
        self.carry_out::<Plain>(delivery, outcome, attempt, None)
            .await
    }

    async fn carry_out<H: Handler>(
        &self,
        delivery: Delivery,
        outcome: Outcome,
        attempt: u64,
        handler: Option<&H>,
    ) -> Settled {
        let Inner {
            bus,
            stage,
            policy,
            max_attempts,
        } = &*self.inner;
        let before = async |delivery: &Delivery, step: Step<'_>| match handler {
            Some(handler) => handler.before(delivery, step).await,
            None => Ok(()),
        };
        let failure = match outcome {
            Outcome::Ack => {
                if let Err(error) = before(&delivery, Step::Ack).await {
                    tracing::warn!(%error, "not acked: the step before failed; will retry");
                    return self.nak(delivery, policy.delay(attempt, None)).await;
                }
                return ack(delivery).await;
            }
            Outcome::Defer { after } => {
                let delay = after.unwrap_or_else(|| policy.delay(attempt, None));
                return self.nak(delivery, delay).await;
            }
            Outcome::Retry { failure, after } if attempt < *max_attempts => {
                tracing::warn!(reason = %failure.reason, attempt, "attempt failed; will retry");
                let step = Step::Retry {
                    failure: &failure,
                    attempt,
                };
                if let Err(error) = before(&delivery, step).await {
                    tracing::warn!(%error, "the step before a retry failed");
                }
                return self.nak(delivery, policy.delay(attempt, after)).await;
            }
            Outcome::Retry { mut failure, .. } => {
                failure.reason = format!("gave up after {attempt} attempts: {}", failure.reason);
                failure
            }
            Outcome::DeadLetter(failure) => failure,
        };
        tracing::warn!(reason = %failure.reason, class = %failure.class, attempt, "dead-lettered");
        if let Err(error) = bus.dead_letter(&delivery, stage, &failure).await {
            // Never dropped: the message comes back and is dead-lettered then.
            tracing::warn!(%error, "dead letter not stored; the message will be redelivered");
            return self.nak(delivery, policy.delay(attempt, None)).await;
        }
        let step = Step::DeadLettered {
            failure: &failure,
            attempt,
        };
        if let Err(error) = before(&delivery, step).await {
            // The dead letter is stored once (its id is the message's), however often this runs.
            tracing::warn!(%error, "dead-lettered, but the step after failed; will retry");
            return self.nak(delivery, policy.delay(attempt, None)).await;
        }
        ack(delivery).await;
        Settled::DeadLettered
    }

    async fn nak(&self, delivery: Delivery, delay: Duration) -> Settled {
        logged(delivery.nak(Some(delay)).await);
        Settled::Redelivered(delay)
    }
}

async fn ack(delivery: Delivery) -> Settled {
    logged(delivery.ack().await);
    Settled::Acked
}

/// Logs a failed ack or nak: the message comes back after its ack wait, and every stage is
/// idempotent, so a lost ack costs time, not correctness.
pub(super) fn logged(result: Result<(), async_nats::Error>) {
    if let Err(error) = result {
        tracing::warn!(%error, "ack/nak not sent; the message will be redelivered");
    }
}

/// The handler of a batch's messages as far as settling goes: no steps of its own.
struct Plain;

impl Handler for Plain {
    async fn handle(&self, _: &Delivery) -> Outcome {
        Outcome::Ack
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::bus::{ConsumerSpec, DeadLetterFilter, ErrorClass, StreamKind, run_consumer};
    use crate::config::NatsConfig;

    /// Answers by payload, and remembers every attempt and every step it was told of.
    #[derive(Default)]
    struct Scripted {
        attempts: Mutex<BTreeMap<String, Vec<u64>>>,
        steps: Mutex<Vec<String>>,
    }

    impl Handler for Scripted {
        async fn handle(&self, delivery: &Delivery) -> Outcome {
            let payload = String::from_utf8_lossy(delivery.payload()).into_owned();
            self.attempts
                .lock()
                .expect("lock")
                .entry(payload.clone())
                .or_default()
                .push(delivery.attempt());
            match payload.as_str() {
                "fails" => Outcome::retry(Failure::transient("src", "database down")),
                "refused" => {
                    Outcome::DeadLetter(Failure::new("src", ErrorClass::Invalid, "no such thing"))
                }
                "waits" if delivery.attempt() == 1 => Outcome::Defer {
                    after: Some(Duration::from_millis(20)),
                },
                _ => Outcome::Ack,
            }
        }

        async fn before(&self, delivery: &Delivery, step: Step<'_>) -> Result<(), String> {
            let payload = String::from_utf8_lossy(delivery.payload()).into_owned();
            let step = match step {
                Step::Ack => "ack".to_owned(),
                Step::Retry { attempt, .. } => format!("retry {attempt}"),
                Step::DeadLettered { failure, .. } => format!("dead-lettered {}", failure.class),
            };
            self.steps
                .lock()
                .expect("lock")
                .push(format!("{payload}: {step}"));
            // The step after the first dead letter of "refused" fails: it must come back.
            if payload == "refused" && delivery.attempt() == 1 && step.starts_with("dead") {
                return Err("report not published".to_owned());
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn outcomes_are_acked_retried_deferred_or_dead_lettered_by_the_policy() {
        let prefix = crate::testkit::unique("settle");
        let config = NatsConfig {
            url: crate::testkit::nats_url(),
            ..NatsConfig::default()
        };
        let bus = Bus::connect(&config, &prefix, "test").await.expect("bus");
        bus.ensure_streams().await.expect("streams");
        let consumer = bus
            .consumer(&ConsumerSpec {
                stream: StreamKind::Raw,
                name: "settle-test".to_owned(),
                filter: bus.names().stream_subjects(StreamKind::Raw),
                max_deliver: -1,
                ack_wait: Duration::from_secs(30),
                batch: 16,
            })
            .await
            .expect("consumer");
        for (n, payload) in ["ok", "fails", "refused", "waits"].iter().enumerate() {
            bus.publish(
                bus.names().raw("src", "thing"),
                &format!("m{n}"),
                Default::default(),
                bytes::Bytes::from_static(payload.as_bytes()),
            )
            .await
            .expect("publish");
        }
        let policy = RedeliveryPolicy {
            base: Duration::from_millis(10),
            max: Duration::from_millis(40),
        };
        let settler = Settler::new(bus.clone(), "transform", policy, 3);
        let handler = Arc::new(Scripted::default());
        let shutdown = crate::CancellationToken::new();
        let running = tokio::spawn(run_consumer(
            consumer.clone(),
            settler,
            16,
            shutdown.clone(),
            handler.clone(),
        ));
        // Done when nothing is pending or waiting for an ack any more.
        let mut consumer = consumer;
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let info = consumer.info().await.expect("info");
                let letters = crate::bus::dead_letters_page(
                    bus.client(),
                    bus.names(),
                    &DeadLetterFilter::default(),
                    0,
                    10,
                )
                .await
                .map(|(letters, _)| letters.len())
                .unwrap_or(0);
                if info.num_pending == 0 && info.num_ack_pending == 0 && letters == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every message settled");
        shutdown.cancel();
        running.await.expect("loop");

        let attempts = handler.attempts.lock().expect("lock").clone();
        assert_eq!(attempts["ok"], [1]);
        assert_eq!(
            attempts["fails"],
            [1, 2, 3],
            "three attempts, then the dead letter"
        );
        assert_eq!(
            attempts["refused"],
            [1, 2],
            "back once: the step after failed"
        );
        assert_eq!(attempts["waits"], [1, 2]);
        let steps = handler.steps.lock().expect("lock").clone();
        assert!(steps.contains(&"fails: retry 2".to_owned()), "{steps:?}");
        assert!(!steps.contains(&"fails: retry 3".to_owned()), "{steps:?}");
        assert!(steps.contains(&"fails: dead-lettered exhausted".to_owned()));
        assert!(steps.contains(&"waits: ack".to_owned()));

        let (letters, _) = crate::bus::dead_letters_page(
            bus.client(),
            bus.names(),
            &DeadLetterFilter::default(),
            0,
            10,
        )
        .await
        .expect("dead letters");
        let mut letters: Vec<_> = letters
            .into_iter()
            .map(|(_, l)| (String::from_utf8_lossy(&l.payload).into_owned(), l))
            .collect();
        letters.sort_by(|a, b| a.0.cmp(&b.0));
        let [(fails, exhausted), (refused, invalid)] = &letters[..] else {
            panic!("one dead letter each for the two failures: {letters:?}");
        };
        assert_eq!((fails.as_str(), refused.as_str()), ("fails", "refused"));
        assert_eq!(exhausted.reason, "gave up after 3 attempts: database down");
        assert_eq!(
            (
                exhausted.stage.as_str(),
                exhausted.key.as_str(),
                exhausted.error_class.as_str()
            ),
            ("transform", "src", "exhausted")
        );
        assert_eq!(exhausted.attempts, 3);
        assert_eq!(
            (invalid.reason.as_str(), invalid.error_class.as_str()),
            ("no such thing", "invalid")
        );
        crate::testkit::delete_streams(&config.url, &prefix).await;
    }
}
