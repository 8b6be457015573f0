//! A golden record's lineage as dedupe keeps it, read only through dedupe's `golden_lineage`
//! function — never from dedupe's tables, and never by taking message ids apart.

use std::time::SystemTime;

use switchyard_chassis::deadpool_postgres::Client;

use super::StoreError;

/// Dedupe's lineage of a golden record, through the one function dedupe's migrations make
/// (`golden_lineage`, V7): it runs as dedupe's role and answers only ids, versions and times for
/// one record, so monitor reads no table of dedupe's (whose fields hold personal data) and can
/// write none of them. Where each service has its own schema it lives in `dedupe`; in a
/// single-schema installation it is on the search path.
const LINEAGE_COLUMNS: &str =
    "kind, system, object, source_id, event_id, outcome, version, first_seen, last_seen";

/// One row of a golden record's lineage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lineage {
    /// `record` (the golden record itself), `source` (a source record it was built from) or
    /// `event` (a source event dedupe applied to it).
    pub kind: String,
    pub system: String,
    pub object: String,
    pub source_id: String,
    pub event_id: String,
    pub outcome: String,
    pub version: Option<i64>,
    pub first_seen: Option<SystemTime>,
    pub last_seen: Option<SystemTime>,
}

/// Where `golden_lineage` is: in dedupe's own schema, or on the search path.
pub(crate) async fn lineage_function(client: &Client) -> Result<&'static str, StoreError> {
    let separate: bool = client
        .query_one(
            "SELECT to_regprocedure('dedupe.golden_lineage(uuid)') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    Ok(if separate {
        "dedupe.golden_lineage"
    } else {
        "golden_lineage"
    })
}

/// The lineage of golden record `id` (a UUID), through `function` ([`lineage_function`]).
pub(crate) async fn golden_lineage(
    client: &Client,
    function: &str,
    id: &str,
) -> Result<Vec<Lineage>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {LINEAGE_COLUMNS} FROM {function}($1::text::uuid)"),
            &[&id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Lineage {
            kind: r.get(0),
            system: r.get(1),
            object: r.get(2),
            source_id: r.get(3),
            event_id: r.get(4),
            outcome: r.get(5),
            version: r.get(6),
            first_seen: r.get(7),
            last_seen: r.get(8),
        })
        .collect())
}
