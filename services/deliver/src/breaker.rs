//! A circuit breaker per destination, shared by every flow writing to it (like its token bucket):
//! after `failures` retryable failures in a row it opens for `cool_down`, during which deliver
//! does not call the destination at all; then one trial request goes through (half-open), and
//! its success closes the breaker while its failure opens it for another cool-down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use switchyard_chassis::config::{CircuitBreakerConfig, DestinationConfig};

/// Label of `deliver_circuit_open`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DestinationLabel {
    pub destination: String,
}

/// `deliver_circuit_open{destination}`: 1 while the breaker stops calls to the destination.
pub(crate) type OpenGauge = Family<DestinationLabel, Gauge>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` retryable failures in a row so far.
    Closed { failures: u32 },
    /// No calls until `until`.
    Open { until: Instant },
    /// One trial call is under way since `since`; the others wait.
    HalfOpen { since: Instant },
}

/// Whether a write may call the destination now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    Go,
    /// The breaker is open (or its trial is under way): try again after this long.
    Wait(Duration),
}

/// One destination's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: CircuitBreakerConfig,
    /// A trial that never reported back (its task was cancelled) stops blocking after this long.
    trial_timeout: Duration,
    state: Mutex<State>,
    gauge: Gauge,
}

impl Breaker {
    /// A closed breaker; `trial_timeout` is at least the destination's request timeout.
    pub fn new(config: CircuitBreakerConfig, trial_timeout: Duration, gauge: Gauge) -> Self {
        gauge.set(0);
        Self {
            config,
            trial_timeout,
            state: Mutex::new(State::Closed { failures: 0 }),
            gauge,
        }
    }

    /// The breaker for a destination's settings, its state shown on `gauge`.
    pub fn for_destination(config: &DestinationConfig, gauge: Gauge) -> Self {
        // A trial call may wait for a rate-limit token, then for the destination's timeout (and
        // an OAuth2 refresh with its own).
        Self::new(
            config.circuit_breaker,
            config.timeout * 3 + Duration::from_secs(5),
            gauge,
        )
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock still holds a valid state: every update is a single assignment.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks to call the destination at `now`.
    pub fn admit(&self, now: Instant) -> Admit {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Admit::Go,
            State::Open { until } if now < until => Admit::Wait(until - now),
            State::Open { .. } => {
                *state = State::HalfOpen { since: now };
                Admit::Go
            }
            State::HalfOpen { since } if now < since + self.trial_timeout => {
                // The others wait for the trial's outcome, a cool-down at most.
                Admit::Wait(self.config.cool_down.min(since + self.trial_timeout - now))
            }
            State::HalfOpen { .. } => {
                // The trial never reported back: this call is the new trial.
                *state = State::HalfOpen { since: now };
                Admit::Go
            }
        }
    }

    /// The destination answered (anything but a retryable failure): the breaker closes.
    pub fn success(&self) {
        *self.state() = State::Closed { failures: 0 };
        self.gauge.set(0);
    }

    /// A retryable failure (5xx, 408, 429, timeout, connection error) at `now`.
    pub fn failure(&self, now: Instant) {
        let mut state = self.state();
        let failures = match *state {
            State::Closed { failures } => failures.saturating_add(1),
            // The trial failed, or a call admitted before the breaker opened came back late.
            State::HalfOpen { .. } | State::Open { .. } => self.config.failures,
        };
        if failures >= self.config.failures {
            if !matches!(*state, State::Open { until } if until > now) {
                tracing::warn!(
                    failures,
                    cool_down = ?self.config.cool_down,
                    "circuit breaker open: the destination is not called until the cool-down ends"
                );
            }
            *state = State::Open {
                until: now + self.config.cool_down,
            };
            self.gauge.set(1);
        } else {
            *state = State::Closed { failures };
        }
    }
}

/// How many times each message was put back because the breaker was open. JetStream counts
/// those redeliveries like any other, so a flow subtracts them from `Delivery::attempt` to get
/// the attempts that really called the destination: waiting out an open breaker never uses up a
/// change's `max_attempts`. Kept in memory only (a restart forgets them, which can only make a
/// change give up earlier, never retry more often); `max_age` bounds how long any change waits.
#[derive(Debug, Default)]
pub(crate) struct Deferrals {
    by_sequence: Mutex<HashMap<u64, u64>>,
}

impl Deferrals {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.by_sequence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The message at stream `sequence` waits for the breaker once more.
    pub fn defer(&self, sequence: u64) {
        *self.map().entry(sequence).or_default() += 1;
    }

    /// Times the message was put back for the breaker.
    pub fn count(&self, sequence: u64) -> u64 {
        self.map().get(&sequence).copied().unwrap_or(0)
    }

    /// The message is settled (or retried for another reason): forget it.
    pub fn forget(&self, sequence: u64) {
        self.map().remove(&sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cool_down: u64) -> Breaker {
        Breaker::new(
            CircuitBreakerConfig {
                failures,
                cool_down: Duration::from_secs(cool_down),
            },
            Duration::from_secs(10),
            Gauge::default(),
        )
    }

    #[test]
    fn opens_after_consecutive_failures_and_lets_one_trial_through_after_the_cool_down() {
        let b = breaker(3, 30);
        let t0 = Instant::now();
        b.failure(t0);
        b.failure(t0);
        assert_eq!(b.admit(t0), Admit::Go, "two failures: still closed");
        assert_eq!(b.gauge.get(), 0);
        b.failure(t0);
        assert_eq!(b.gauge.get(), 1);
        assert_eq!(b.admit(t0), Admit::Wait(Duration::from_secs(30)));
        assert_eq!(
            b.admit(t0 + Duration::from_secs(20)),
            Admit::Wait(Duration::from_secs(10)),
            "the wait is what is left of the cool-down"
        );
        let after = t0 + Duration::from_secs(30);
        assert_eq!(b.admit(after), Admit::Go, "the trial");
        assert!(
            matches!(b.admit(after), Admit::Wait(_)),
            "only one trial at a time"
        );
        b.success();
        assert_eq!(b.gauge.get(), 0);
        assert_eq!(b.admit(after), Admit::Go);
    }

    #[test]
    fn a_failed_trial_opens_it_again_and_a_success_resets_the_count() {
        let b = breaker(2, 5);
        let t0 = Instant::now();
        b.failure(t0);
        b.success();
        b.failure(t0);
        assert_eq!(b.admit(t0), Admit::Go, "the success reset the count");
        b.failure(t0);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(b.admit(later), Admit::Go);
        b.failure(later);
        assert_eq!(b.admit(later), Admit::Wait(Duration::from_secs(5)));
        assert_eq!(b.gauge.get(), 1);
    }

    #[test]
    fn a_trial_that_never_reports_back_stops_blocking() {
        let b = breaker(1, 5);
        let t0 = Instant::now();
        b.failure(t0);
        let trial = t0 + Duration::from_secs(5);
        assert_eq!(b.admit(trial), Admit::Go);
        assert!(matches!(
            b.admit(trial + Duration::from_secs(9)),
            Admit::Wait(_)
        ));
        assert_eq!(b.admit(trial + Duration::from_secs(10)), Admit::Go);
    }

    #[test]
    fn deferrals_count_per_message_until_forgotten() {
        let d = Deferrals::default();
        d.defer(7);
        d.defer(7);
        d.defer(8);
        assert_eq!((d.count(7), d.count(8), d.count(9)), (2, 1, 0));
        d.forget(7);
        assert_eq!(d.count(7), 0);
    }
}
