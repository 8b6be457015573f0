//! A batch's writes: every row it made, one multi-row statement per table, pipelined — golden
//! contacts, crosswalk links, identity conflicts, the outbox (`processed_events`), review notices
//! and near-duplicate keys.

use switchyard_chassis::deadpool_postgres::Transaction;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::Batch;
use crate::store::{COLUMNS, Golden, Params, StoreError};

impl Batch {
    /// Writes the batch's outcome: one statement per table, pipelined.
    pub(super) async fn write(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        // A key may move between records within a batch (a record's email replaced through its
        // source id, then taken by a new record). Each statement checks the unique indexes row by
        // row, so the records whose keys moved first let go of the keys they held; the final
        // state is then written, and no intermediate state ever has two holders of a key.
        let mut release = (Vec::new(), Vec::new(), Vec::new());
        for id in &self.updated {
            let golden = &self.records[id];
            let (email_moved, phone_moved) = match self.stored_keys.get(id) {
                Some((email, phone_key)) => (
                    golden.contact.email != *email,
                    golden.phone_key != *phone_key,
                ),
                None => (true, true),
            };
            if email_moved || phone_moved {
                release.0.push(*id);
                release.1.push(email_moved);
                release.2.push(phone_moved);
            }
        }
        let created = GoldenColumns::of(self.created.iter().map(|id| &self.records[id]));
        let updated = GoldenColumns::of(self.updated.iter().map(|id| &self.records[id]));
        let links = (
            self.links.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
            self.links.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
            self.links.iter().map(|l| l.2).collect::<Vec<_>>(),
        );
        let conflicts = (
            self.conflicts
                .iter()
                .map(|c| c.event_id.as_str())
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.golden_a)
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.golden_b)
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.detail.as_str())
                .collect::<Vec<_>>(),
            self.conflicts
                .iter()
                .map(|c| c.detected_at)
                .collect::<Vec<_>>(),
        );
        let outbox = (
            self.outbox
                .iter()
                .map(|o| o.event_id.as_str())
                .collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.outcome.as_str())
                .collect::<Vec<_>>(),
            self.outbox.iter().map(|o| o.golden_id).collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.pending.as_ref().map(|p| p.subject.as_str()))
                .collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.pending.as_ref().map(|p| p.msg_id.as_str()))
                .collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.pending.as_ref().map(|p| p.payload.as_slice()))
                .collect::<Vec<_>>(),
            self.outbox.iter().map(|o| o.version).collect::<Vec<_>>(),
            self.outbox
                .iter()
                .map(|o| o.source_system.as_str())
                .collect::<Vec<_>>(),
        );
        let insert = format!(
            "INSERT INTO golden_contacts ({COLUMNS}) SELECT * FROM unnest({GOLDEN_ARRAYS})"
        );
        let update = format!(
            "UPDATE golden_contacts g SET email = u.email, phone = u.phone, \
             first_name = u.first_name, last_name = u.last_name, \
             company_name = u.company_name, job_title = u.job_title, \
             lifecycle_stage = u.lifecycle_stage, marketing_consent = u.marketing_consent, \
             consent_source = u.consent_source, source_updated_at = u.source_updated_at, \
             version = u.version, phone_key = u.phone_key, \
             phone_certainty = u.phone_certainty, updated_at = now() \
             FROM unnest({GOLDEN_ARRAYS}) AS u({COLUMNS}) WHERE g.id = u.id"
        );
        let notices = (
            self.notices
                .iter()
                .map(|(_, n)| n.msg_id.as_str())
                .collect::<Vec<_>>(),
            self.notices
                .iter()
                .map(|(_, n)| n.event_id.as_str())
                .collect::<Vec<_>>(),
            self.notices
                .iter()
                .map(|(_, n)| n.subject.as_str())
                .collect::<Vec<_>>(),
            self.notices
                .iter()
                .map(|(_, n)| n.payload.as_slice())
                .collect::<Vec<_>>(),
        );
        let near = (
            self.near_keys.iter().map(|k| k.0).collect::<Vec<_>>(),
            self.near_keys.iter().map(|k| k.1).collect::<Vec<_>>(),
            self.near_keys
                .iter()
                .map(|k| k.2.as_str())
                .collect::<Vec<_>>(),
        );
        let (notice_stmt, near_stmt) = tokio::try_join!(
            tx.prepare_cached(
                "INSERT INTO review_notices (msg_id, event_id, subject, payload) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) \
                 ON CONFLICT DO NOTHING"
            ),
            tx.prepare_cached(
                "INSERT INTO contact_near_keys (key, golden_id, postcode) \
                 SELECT * FROM unnest($1::int8[], $2::uuid[], $3::text[]) \
                 ON CONFLICT (key, golden_id) DO UPDATE SET postcode = EXCLUDED.postcode"
            ),
        )?;
        let (release_stmt, insert, update, crosswalk, conflict, processed) = tokio::try_join!(
            tx.prepare_cached(
                "UPDATE golden_contacts g SET \
                 email = CASE WHEN r.email THEN '' ELSE g.email END, \
                 phone_key = CASE WHEN r.phone THEN NULL ELSE g.phone_key END \
                 FROM unnest($1::uuid[], $2::bool[], $3::bool[]) AS r(id, email, phone) \
                 WHERE g.id = r.id"
            ),
            tx.prepare_cached(&insert),
            tx.prepare_cached(&update),
            tx.prepare_cached(
                "INSERT INTO crosswalk (system, object, external_id, golden_id) \
                 SELECT s, 'contact', e, g FROM unnest($1::text[], $2::text[], $3::uuid[]) AS t(s, e, g) \
                 ON CONFLICT DO NOTHING"
            ),
            tx.prepare_cached(
                "INSERT INTO identity_conflicts (event_id, object, golden_a, golden_b, detail, detected_at) \
                 SELECT e, 'contact', a, b, d, coalesce(t, now()) \
                 FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[]) \
                 WITH ORDINALITY AS c(e, a, b, d, t, n) ORDER BY n"
            ),
            tx.prepare_cached(
                "INSERT INTO processed_events (event_id, outcome, golden_id, change_subject, change_msg_id, change_payload, version, source_system) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::int8[], $8::text[])"
            ),
        )?;
        let (created, updated) = (created.params(), updated.params());
        let notice_params: Params<'_> = &[&notices.0, &notices.1, &notices.2, &notices.3];
        let near_params: Params<'_> = &[&near.0, &near.1, &near.2];
        let params: [Params<'_>; 6] = [
            &[&release.0, &release.1, &release.2],
            &created,
            &updated,
            &[&links.0, &links.1, &links.2],
            &[
                &conflicts.0,
                &conflicts.1,
                &conflicts.2,
                &conflicts.3,
                &conflicts.4,
            ],
            &[
                &outbox.0, &outbox.1, &outbox.2, &outbox.3, &outbox.4, &outbox.5, &outbox.6,
                &outbox.7,
            ],
        ];
        // Pipelined in this order (see `look_up`); empty statements are not sent.
        let results = tokio::join!(
            execute_unless(tx, &release_stmt, params[0], release.0.is_empty()),
            execute_unless(tx, &insert, params[1], self.created.is_empty()),
            execute_unless(tx, &update, params[2], self.updated.is_empty()),
            execute_unless(tx, &crosswalk, params[3], links.0.is_empty()),
            execute_unless(tx, &conflict, params[4], conflicts.0.is_empty()),
            execute_unless(tx, &processed, params[5], outbox.0.is_empty()),
            execute_unless(tx, &notice_stmt, notice_params, notices.0.is_empty()),
            execute_unless(tx, &near_stmt, near_params, near.0.is_empty()),
        );
        // The first failure is the cause; the statements after it only report the abort.
        results.0?;
        results.1?;
        results.2?;
        results.3?;
        results.4?;
        results.5?;
        results.6?;
        results.7?;
        Ok(())
    }
}

/// Executes `statement` unless there is nothing to write.
async fn execute_unless(
    tx: &Transaction<'_>,
    statement: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
    nothing: bool,
) -> Result<u64, tokio_postgres::Error> {
    if nothing {
        Ok(0)
    } else {
        tx.execute(statement, params).await
    }
}

/// The array parameters of a multi-row statement over golden contacts, in [`COLUMNS`] order.
const GOLDEN_ARRAYS: &str = "$1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
    $6::text[], $7::text[], $8::text[], $9::bool[], $10::text[], $11::timestamptz[], \
    $12::bigint[], $13::text[], $14::smallint[]";

/// Golden contacts as one array per column, in [`COLUMNS`] order.
#[derive(Default)]
struct GoldenColumns<'a> {
    id: Vec<Uuid>,
    email: Vec<&'a str>,
    phone: Vec<&'a str>,
    first_name: Vec<&'a str>,
    last_name: Vec<&'a str>,
    company_name: Vec<&'a str>,
    job_title: Vec<&'a str>,
    lifecycle_stage: Vec<&'a str>,
    marketing_consent: Vec<Option<bool>>,
    consent_source: Vec<&'a str>,
    source_updated_at: Vec<OffsetDateTime>,
    version: Vec<i64>,
    phone_key: Vec<Option<&'a str>>,
    phone_certainty: Vec<Option<i16>>,
}

impl<'a> GoldenColumns<'a> {
    fn of(goldens: impl Iterator<Item = &'a Golden>) -> Self {
        let mut columns = Self::default();
        for g in goldens {
            let c = &g.contact;
            let consent = c.consent.as_ref();
            columns.id.push(g.id);
            columns.email.push(&c.email);
            columns.phone.push(&c.phone);
            columns.first_name.push(&c.first_name);
            columns.last_name.push(&c.last_name);
            columns.company_name.push(&c.company_name);
            columns.job_title.push(&c.job_title);
            columns.lifecycle_stage.push(&c.lifecycle_stage);
            columns.marketing_consent.push(consent.map(|c| c.marketing));
            columns
                .consent_source
                .push(consent.map(|c| c.source.as_str()).unwrap_or_default());
            columns.source_updated_at.push(g.source_updated_at);
            columns.version.push(g.version);
            columns.phone_key.push(g.phone_key.as_deref());
            columns.phone_certainty.push(g.phone_certainty);
        }
        columns
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.email,
            &self.phone,
            &self.first_name,
            &self.last_name,
            &self.company_name,
            &self.job_title,
            &self.lifecycle_stage,
            &self.marketing_consent,
            &self.consent_source,
            &self.source_updated_at,
            &self.version,
            &self.phone_key,
            &self.phone_certainty,
        ]
    }
}
