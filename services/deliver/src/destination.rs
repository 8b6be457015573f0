//! A configured destination: its connector behind one `write` call, the token bucket shared by
//! every flow writing to it, and its circuit breaker.

use std::num::NonZeroU32;
use std::sync::Arc;

use switchyard_chassis::bus::Bus;
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::deadpool_postgres::Pool;

use crate::breaker::Breaker;
use crate::connectors::{self, Connector, SendError, Write, Written};

/// A token bucket shared by every flow writing to one destination.
pub type Limiter = governor::DefaultDirectRateLimiter;

/// The limiter for a destination's configured rate, if it has one.
pub fn limiter(config: &DestinationConfig) -> Option<Arc<Limiter>> {
    let rate = NonZeroU32::new(config.rate_per_second?)?;
    let burst = config.burst.and_then(NonZeroU32::new).unwrap_or(rate);
    Some(Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(rate).allow_burst(burst),
    )))
}

/// A configured destination, shared by every flow writing to it.
#[derive(Debug)]
pub struct Destination {
    connector: Box<dyn Connector>,
    limiter: Option<Arc<Limiter>>,
    /// Stops calls while the destination keeps failing (see `breaker`); flows consult it.
    breaker: Breaker,
}

impl Destination {
    /// The connector for `config`; OAuth2 destinations start from the tokens kept in `pool`.
    pub async fn new(
        config: &DestinationConfig,
        limiter: Option<Arc<Limiter>>,
        pool: &Pool,
        bus: &Bus,
    ) -> Result<Self, String> {
        Ok(Self {
            connector: connectors::connect(config, pool, bus).await?,
            limiter,
            breaker: Breaker::for_destination(config, Default::default()),
        })
    }

    /// The same destination with `breaker` (whose gauge is registered) instead of its own.
    pub(crate) fn with_breaker(mut self, breaker: Breaker) -> Self {
        self.breaker = breaker;
        self
    }

    /// The destination's circuit breaker.
    pub(crate) fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub fn name(&self) -> &str {
        self.connector.name()
    }

    /// Writes one golden change.
    pub async fn write(&self, write: &Write<'_>) -> Result<Written, SendError> {
        // Wait for a token rather than be throttled: each vendor 429 would cost a retry.
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        self.connector.write(write).await
    }
}
