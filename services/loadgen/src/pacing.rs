//! When each request goes out: closed loop (a number of connections, each sending its next
//! request when the previous one is answered) or open loop (a fixed offered rate, whatever the
//! answers do), and the hold of a sender that honours `Retry-After`.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Until when a sender honouring `Retry-After` holds its sends, in microseconds since the run
/// started (0: not holding), and how often it was told to.
#[derive(Debug, Default)]
pub struct Backoff {
    until_micros: std::sync::atomic::AtomicU64,
    pub told: std::sync::atomic::AtomicU64,
}

impl Backoff {
    pub fn hold(&self, started: Instant, retry_after: Duration) {
        let until = started.elapsed() + retry_after;
        let until = u64::try_from(until.as_micros()).unwrap_or(u64::MAX);
        self.until_micros
            .fetch_max(until, std::sync::atomic::Ordering::Relaxed);
        self.told.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long sends are still held, if they are.
    pub fn left(&self, started: Instant) -> Option<Duration> {
        let until =
            Duration::from_micros(self.until_micros.load(std::sync::atomic::Ordering::Relaxed));
        until
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
    }
}

/// `connections` workers, each sending its next request when the previous one is answered.
pub async fn closed_loop<F, Fut>(
    send: F,
    duration: Duration,
    connections: usize,
    backoff: &Arc<Backoff>,
    started: Instant,
) -> u64
where
    F: Fn(u64, Instant) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (send, counter, backoff) = (send.clone(), counter.clone(), backoff.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if let Some(left) = backoff.left(started) {
                        tokio::time::sleep(left).await;
                        continue;
                    }
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    send(i, Instant::now()).await;
                }
            })
        })
        .collect();
    futures::future::join_all(workers).await;
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

/// One request every 1/rate seconds, whatever the answers do (unless the sender honours
/// `Retry-After`: then the schedule moves on by each hold); at most `in_flight` outstanding.
pub async fn open_loop<F, Fut>(
    send: F,
    rate: u64,
    duration: Duration,
    in_flight: usize,
    backoff: &Backoff,
    started: Instant,
) -> u64
where
    F: Fn(u64, Instant) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut start = Instant::now();
    let deadline = start + duration;
    let total = rate.saturating_mul(duration.as_secs().max(1));
    let limit = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1) * 16));
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let (mut sent, mut held) = (0, false);
    for i in 0..total {
        if let Some(left) = backoff.left(started) {
            // What was not sent while held is sent later, at the same pace: the sender queues.
            // The run still ends on time; what is left then was never offered.
            tokio::time::sleep(left).await;
            start += left;
            held = true;
        }
        if held && Instant::now() >= deadline {
            break;
        }
        sent += 1;
        let scheduled = start + Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            send(i, scheduled).await;
            drop(permit);
        }));
    }
    futures::future::join_all(tasks).await;
    sent
}
