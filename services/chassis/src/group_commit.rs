//! Group commit: requests that arrive together (from the lanes of deliver, the reports of monitor)
//! are written by one task as one batch — one round trip and one commit instead of one each — and
//! every request is answered with its own result once the batch is committed. A batch starts with
//! its first request, takes what joins it within `linger` (up to `max_batch`), and up to
//! `in_flight` batches run at once; meanwhile the next one grows, so batches grow with the load
//! rather than the latency.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

/// How batches are gathered.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Requests in one batch at most; more wait for the next.
    pub max_batch: usize,
    /// How long a batch that holds a request waits for more.
    pub linger: Duration,
    /// Batches being written at once.
    pub in_flight: usize,
}

/// Why a request got no answer of the writer's.
#[derive(Debug, thiserror::Error)]
pub enum Submitted<E> {
    /// The writer task stopped (the service is shutting down): nothing was written.
    #[error("the batch writer stopped")]
    Stopped,
    /// The batch failed; every request in it got this.
    #[error(transparent)]
    Failed(E),
}

type Pending<Req, Ans, E> = (Req, oneshot::Sender<Result<Ans, E>>);

/// Hands requests to the writer task; cheap to clone. The task stops once every handle is
/// dropped, after writing and answering what it holds.
#[derive(Debug)]
pub struct GroupCommit<Req, Ans, E> {
    queue: mpsc::Sender<Pending<Req, Ans, E>>,
}

impl<Req, Ans, E> Clone for GroupCommit<Req, Ans, E> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<Req, Ans, E> GroupCommit<Req, Ans, E>
where
    Req: Send + 'static,
    Ans: Send + 'static,
    E: Send + 'static,
{
    /// Starts the writer task: `write` gets each batch and answers one result per request, in
    /// the batch's order.
    pub fn start<W, F>(batching: Batching, write: W) -> Self
    where
        W: Fn(Vec<Req>) -> F + Send + Sync + 'static,
        F: Future<Output = Vec<Result<Ans, E>>> + Send + 'static,
    {
        let (queue, inbox) = mpsc::channel(batching.max_batch * 4);
        tokio::spawn(run(batching, Arc::new(write), inbox));
        Self { queue }
    }

    /// Submits one request; answers once its batch is written.
    pub async fn submit(&self, request: Req) -> Result<Ans, Submitted<E>> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((request, answer))
            .await
            .map_err(|_| Submitted::Stopped)?;
        answered
            .await
            .map_err(|_| Submitted::Stopped)?
            .map_err(Submitted::Failed)
    }
}

async fn run<Req, Ans, E, W, F>(
    batching: Batching,
    write: Arc<W>,
    mut inbox: mpsc::Receiver<Pending<Req, Ans, E>>,
) where
    Req: Send + 'static,
    Ans: Send + 'static,
    E: Send + 'static,
    W: Fn(Vec<Req>) -> F + Send + Sync + 'static,
    F: Future<Output = Vec<Result<Ans, E>>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(batching.in_flight.max(1)));
    let mut running = tokio::task::JoinSet::new();
    while let Some(first) = inbox.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + batching.linger;
        while batch.len() < batching.max_batch {
            match tokio::time::timeout_at(deadline, inbox.recv()).await {
                Ok(Some(next)) => batch.push(next),
                // Closed (shutdown) or waited long enough: write what is in hand.
                Ok(None) | Err(_) => break,
            }
        }
        // Waiting for a slot lets the next batch grow meanwhile; what is already queued joins.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        while batch.len() < batching.max_batch {
            match inbox.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let write = write.clone();
        running.spawn(async move {
            let (requests, answers): (Vec<Req>, Vec<_>) = batch.into_iter().unzip();
            let results = write(requests).await;
            for (answer, result) in answers.into_iter().zip(results) {
                let _ = answer.send(result);
            }
            drop(slot);
        });
        // Reap finished batches so the set does not grow.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn requests_of_one_moment_are_written_together_and_each_answered() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let doubler = GroupCommit::start(
            Batching {
                max_batch: 64,
                linger: Duration::from_millis(20),
                in_flight: 1,
            },
            move |batch: Vec<u32>| {
                seen.lock().expect("lock").push(batch.len());
                async move {
                    batch
                        .into_iter()
                        .map(|n| if n == 13 { Err("unlucky") } else { Ok(n * 2) })
                        .collect()
                }
            },
        );
        let answers = futures::future::join_all((0..40).map(|n| doubler.submit(n))).await;
        for (n, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok(doubled) => assert_eq!(doubled, u32::try_from(n).expect("small") * 2),
                Err(Submitted::Failed(reason)) => {
                    assert_eq!((n, reason), (13, "unlucky"));
                }
                Err(Submitted::Stopped) => panic!("stopped"),
            }
        }
        let sizes = sizes.lock().expect("lock").clone();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.len() < 40, "batched: {sizes:?}");
    }
}
