//! The one retry policy of the project (on `backon`): start-up connections and the delays
//! between redeliveries of a failed message.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder, Retryable as _};

/// Retries `op` with exponential back-off for about half a minute: long enough for a service to
/// start alongside NATS or PostgreSQL, short enough that a wrong URL fails visibly.
pub async fn startup<F, Fut, T, E>(op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    op.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(3))
            .with_max_times(12)
            .with_jitter(),
    )
    .notify(
        |error, delay| tracing::warn!(%error, ?delay, "start-up dependency not ready; retrying"),
    )
    .await
}

/// Delays between redeliveries of a message whose side effect failed transiently.
#[derive(Debug, Clone, Copy)]
pub struct RedeliveryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(300),
        }
    }
}

impl RedeliveryPolicy {
    /// The delay before delivery `attempt + 1`, after `attempt` failed (1-based), with jitter,
    /// never shorter than what the other side asked for (`Retry-After`).
    pub fn delay(&self, attempt: u64, at_least: Option<Duration>) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        let computed = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(index)
            .unwrap_or(self.max);
        match at_least {
            Some(floor) => computed.max(floor).min(self.max.max(floor)),
            None => computed,
        }
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past is no
/// delay.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn delays_grow_and_respect_retry_after_and_the_cap() {
        let policy = RedeliveryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let first = policy.delay(1, None);
        assert!(
            first >= Duration::from_millis(100) && first <= Duration::from_millis(200),
            "{first:?}"
        );
        let fourth = policy.delay(4, None);
        assert!(fourth >= Duration::from_millis(800), "{fourth:?}");
        assert!(policy.delay(40, None) <= Duration::from_secs(4));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
