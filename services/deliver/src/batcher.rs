//! Group commit for the `deliveries` table. Every lane of every flow hands its "delivered
//! before?" look-up and its "delivered" record to one [`GroupCommit`], which answers what arrives
//! together with one `SELECT … = ANY` per flow and one multi-row `INSERT` — pipelined on one
//! connection — instead of one round trip and one commit each. A record is answered only once its
//! `INSERT` has committed, so a lane still acks only after its record is stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_chassis::deadpool_postgres::{Client, Pool, PoolError};
use switchyard_chassis::group_commit::{Batching, GroupCommit, Submitted};
use switchyard_chassis::tokio_postgres;

const BATCHING: Batching = Batching {
    // Requests answered by one batch at most; more wait for the next.
    max_batch: 512,
    // Short against a delivery's own latency, long enough for the other lanes' requests of the
    // same moment to join.
    linger: Duration::from_millis(1),
    // Each batch on its own pooled connection.
    in_flight: 3,
};

/// Why a look-up or a record got no answer; the waiting deliveries are retried.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("no database connection: {0}")]
    Pool(Arc<PoolError>),
    #[error("delivery records: {0}")]
    Db(Arc<tokio_postgres::Error>),
    #[error("the delivery record batcher stopped")]
    Stopped,
}

impl From<Submitted<StoreError>> for StoreError {
    fn from(submitted: Submitted<StoreError>) -> Self {
        match submitted {
            Submitted::Stopped => Self::Stopped,
            Submitted::Failed(error) => error,
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(Arc::new(error))
    }
}

#[derive(Debug)]
enum Request {
    /// Whether `(flow, change_id)` was delivered, and with which status.
    Lookup { flow: Arc<str>, change_id: String },
    /// The flow delivered the change: its idempotency record.
    Record(Row),
}

#[derive(Debug)]
struct Row {
    flow: Arc<str>,
    change_id: String,
    destination: String,
    status: i32,
    attempts: i32,
}

/// Hands look-ups and records to the batcher task (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Deliveries {
    batches: GroupCommit<Request, Option<u16>, StoreError>,
}

impl Deliveries {
    /// Starts the batcher task on `pool`.
    pub(crate) fn start(pool: Pool) -> Self {
        let batches = GroupCommit::start(BATCHING, move |batch| {
            let pool = pool.clone();
            async move { execute(&pool, batch).await }
        });
        Self { batches }
    }

    /// The status the flow delivered the change with, if it did.
    pub(crate) async fn delivered(
        &self,
        flow: &str,
        change_id: &str,
    ) -> Result<Option<u16>, StoreError> {
        let request = Request::Lookup {
            flow: flow.into(),
            change_id: change_id.to_owned(),
        };
        Ok(self.batches.submit(request).await?)
    }

    /// Records the delivery; returns once the row is committed (or was there already).
    pub(crate) async fn record(
        &self,
        flow: &str,
        change_id: &str,
        destination: &str,
        status: u16,
        attempt: u64,
    ) -> Result<(), StoreError> {
        let request = Request::Record(Row {
            flow: flow.into(),
            change_id: change_id.to_owned(),
            destination: destination.to_owned(),
            status: i32::from(status),
            attempts: i32::try_from(attempt).unwrap_or(i32::MAX),
        });
        self.batches.submit(request).await?;
        Ok(())
    }
}

/// Runs one batch: one answer per request, in order (a record's answer is `None`).
async fn execute(pool: &Pool, batch: Vec<Request>) -> Vec<Result<Option<u16>, StoreError>> {
    let client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            let error = StoreError::Pool(Arc::new(error));
            return batch.iter().map(|_| Err(error.clone())).collect();
        }
    };
    let mut lookups: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut rows = Vec::new();
    for request in &batch {
        match request {
            Request::Lookup { flow, change_id } => {
                lookups.entry(flow).or_default().push(change_id);
            }
            Request::Record(row) => rows.push(row),
        }
    }
    // The look-ups and the insert go out together on the one connection (tokio-postgres
    // pipelines concurrent queries), so a batch costs one round trip plus the insert's commit.
    let client = &client;
    let insert = async {
        if rows.is_empty() {
            return Ok(());
        }
        insert(client, &rows).await
    };
    let selects = futures::future::join_all(
        lookups
            .iter()
            .map(|(flow, ids)| async move { (*flow, select(client, flow, ids).await) }),
    );
    let (inserted, selected) = futures::join!(insert, selects);
    let found: HashMap<&str, Result<HashMap<String, u16>, StoreError>> =
        selected.into_iter().collect();
    batch
        .iter()
        .map(|request| match request {
            Request::Lookup { flow, change_id } => match &found[&**flow] {
                Ok(statuses) => Ok(statuses.get(change_id).copied()),
                Err(error) => Err(error.clone()),
            },
            Request::Record(_) => inserted.clone().map(|()| None),
        })
        .collect()
}

async fn select(
    client: &Client,
    flow: &str,
    change_ids: &[&str],
) -> Result<HashMap<String, u16>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT change_id, http_status FROM deliveries WHERE flow = $1 AND change_id = ANY($2)",
        )
        .await?;
    let rows = client.query(&statement, &[&flow, &change_ids]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                u16::try_from(r.get::<_, i32>(1)).unwrap_or(0),
            )
        })
        .collect())
}

async fn insert(client: &Client, rows: &[&Row]) -> Result<(), StoreError> {
    let flows: Vec<&str> = rows.iter().map(|r| &*r.flow).collect();
    let change_ids: Vec<&str> = rows.iter().map(|r| r.change_id.as_str()).collect();
    let destinations: Vec<&str> = rows.iter().map(|r| r.destination.as_str()).collect();
    let statuses: Vec<i32> = rows.iter().map(|r| r.status).collect();
    let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
    // A change recorded twice in one batch (a redelivery racing its original) is one row: the
    // first one stands, as with one insert each.
    let statement = client
        .prepare_cached(
            "INSERT INTO deliveries (flow, change_id, destination, http_status, attempts) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int4[], $5::int4[]) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    client
        .execute(
            &statement,
            &[&flows, &change_ids, &destinations, &statuses, &attempts],
        )
        .await?;
    Ok(())
}
