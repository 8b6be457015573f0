//! `flow_status`: the conditions deliver reports (a paused flow, a destination's failing or
//! expiring credentials), the latest report per rule and subject, read by the alert evaluator in
//! its transaction and by `ListFlows`.

use std::time::SystemTime;

use switchyard_chassis::deadpool_postgres::{Pool, Transaction};

use super::StoreError;

/// A condition as stored: the rule it raises, its subject and the alert's summary.
#[derive(Debug)]
pub(crate) struct Condition {
    pub rule: String,
    pub subject: String,
    pub summary: String,
}

/// Keeps a report's condition unless a newer report already set it.
pub(crate) async fn store(
    pool: &Pool,
    condition: &Condition,
    active: bool,
    at: SystemTime,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO flow_status (rule, subject, active, summary, reported_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rule, subject) DO UPDATE SET \
             active = EXCLUDED.active, summary = EXCLUDED.summary, reported_at = EXCLUDED.reported_at \
             WHERE flow_status.reported_at <= EXCLUDED.reported_at",
            &[
                &condition.rule,
                &condition.subject,
                &active,
                &condition.summary,
                &at,
            ],
        )
        .await?;
    Ok(())
}

/// The conditions that hold now, by rule and subject.
pub(crate) async fn active(tx: &Transaction<'_>) -> Result<Vec<Condition>, StoreError> {
    let rows = tx
        .query(
            "SELECT rule, subject, summary FROM flow_status WHERE active ORDER BY rule, subject",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Condition {
            rule: r.get(0),
            subject: r.get(1),
            summary: r.get(2),
        })
        .collect())
}

/// The flows deliver last reported paused (for `ListFlows`).
pub(crate) async fn paused_flows(pool: &Pool) -> Result<Vec<String>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT substr(subject, 6) FROM flow_status \
             WHERE rule = 'flow_paused' AND active AND subject LIKE 'flow=%'",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
