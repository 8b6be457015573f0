//! Deliver's own crosswalk of destination ids: which record a destination created for a golden
//! record (and for each source id of it), so later changes update that record instead of
//! creating another, and documents find the customer their source id points at.

use prost::Message as _;
use switchyard_chassis::bus::Bus;
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{CrosswalkLink, ExternalRef, IdentityConflict};

use super::Write;
use super::http::SendError;

/// The ids one destination gave records.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    pool: Pool,
    destination: String,
    links: Links,
}

/// Where the ids a destination gives golden records go besides deliver's own table: dedupe's
/// crosswalk, as `CrosswalkLink`s on `<prefix>.canonical.crosswalk.<destination>`, so the
/// destination's webhooks about a record we created there (the echo of our write) match it by
/// source id.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    bus: Bus,
    subject: String,
    /// The source system whose ids these are: the destination's `source_system`, else its name.
    system: String,
}

impl Links {
    pub fn new(bus: &Bus, config: &DestinationConfig) -> Self {
        Self {
            bus: bus.clone(),
            subject: bus.names().crosswalk_link(&config.name),
            system: config
                .source_system
                .clone()
                .unwrap_or_else(|| config.name.clone()),
        }
    }

    /// Announces `vendor_id` for every golden record among `keys`; idempotent (the message id is
    /// the link itself, and dedupe inserts it only once).
    async fn announce(&self, keys: &[String], vendor_id: &str) -> Result<(), SendError> {
        for key in keys {
            let Some((object, golden_id)) = key
                .strip_prefix("golden:")
                .and_then(|rest| rest.split_once(':'))
            else {
                continue;
            };
            let link = CrosswalkLink {
                golden_id: golden_id.to_owned(),
                object: object.to_owned(),
                system: self.system.clone(),
                external_id: vendor_id.to_owned(),
            };
            let msg_id = format!("xref:{}:{object}:{vendor_id}", self.system);
            self.bus
                .publish(
                    self.subject.clone(),
                    &msg_id,
                    Default::default(),
                    link.encode_to_vec().into(),
                )
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

impl Links {
    /// Raises a conflict for a person: the destination holds several records (named in
    /// `detail`) that could be the golden record of `write`. Idempotent per change (the message
    /// id and the conflict's event id are the write's key).
    async fn conflict(&self, write: &Write<'_>, detail: String) -> Result<(), SendError> {
        let change = write.change;
        let event_id = format!("{}:{}", self.system, write.key);
        let conflict = IdentityConflict {
            event_id: event_id.clone(),
            object_type: change.object_type.clone(),
            golden_a: change.golden_id.clone(),
            golden_b: String::new(),
            detail,
            detected_at: Some(switchyard_proto::Timestamp {
                seconds: switchyard_chassis::unix_now(),
                nanos: 0,
            }),
            kind: "destination_duplicates".to_owned(),
            evidence: Vec::new(),
        };
        self.bus
            .publish(
                self.bus
                    .names()
                    .ops_destination_conflict(&change.object_type),
                &format!("conflict:{event_id}"),
                Default::default(),
                conflict.encode_to_vec().into(),
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The key of a golden record.
pub(crate) fn golden_key(object: &str, golden_id: &str) -> String {
    format!("golden:{object}:{golden_id}")
}

/// The key of a record's id in a source system.
pub(crate) fn ref_key(reference: &ExternalRef) -> String {
    format!(
        "ref:{}:{}:{}",
        reference.system, reference.object, reference.id
    )
}

impl Ids {
    pub fn new(pool: Pool, destination: &str, links: Links) -> Self {
        Self {
            pool,
            destination: destination.to_owned(),
            links,
        }
    }

    /// The vendor id of the record `keys` name: `own` (its id in the destination's own source,
    /// from the crosswalk), else the id kept here, else the one record `look_up` finds in the
    /// vendor (made there by hand, before Switchyard), which is adopted — kept under `keys` and
    /// linked in the crosswalk — so it is updated, never created twice. `look_up` runs only
    /// when nothing else knows the record.
    pub async fn known_or_adopted(
        &self,
        own: Option<&str>,
        keys: &[String],
        look_up: impl Future<Output = Result<Option<String>, SendError>>,
    ) -> Result<Option<String>, SendError> {
        if let Some(id) = own {
            return Ok(Some(id.to_owned()));
        }
        if let Some(id) = self.find(keys).await? {
            return Ok(Some(id));
        }
        let found = look_up.await?;
        if let Some(id) = &found {
            self.keep(keys, id).await?;
        }
        Ok(found)
    }

    /// What a look-up by email before a create found: nothing, the one record to adopt, or
    /// several — a question for a person: a conflict is raised (`admin conflicts`) and the write
    /// dead-lettered naming them, since adopting one would leave the others duplicates and
    /// creating another would add one. `more` says the vendor had more than it returned.
    pub async fn adopt(
        &self,
        write: &Write<'_>,
        (vendor, records): (&str, &str),
        ids: &[&str],
        more: bool,
    ) -> Result<Option<String>, SendError> {
        match ids {
            [] => Ok(None),
            [id] => Ok(Some((*id).to_owned())),
            several => {
                let found = format!(
                    "{vendor} already holds {}{} {records} with this contact's email ({})",
                    if more { "more than " } else { "" },
                    several.len(),
                    several.join(", ")
                );
                self.links.conflict(write, found.clone()).await?;
                Err(super::permanent(&format!(
                    "{found}: nothing written; merge them in {vendor}, then replay"
                )))
            }
        }
    }

    /// The vendor id kept under the first of `keys` that has one.
    pub async fn find(&self, keys: &[String]) -> Result<Option<String>, SendError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let db = self.pool.get().await.map_err(unavailable)?;
        let row = db
            .query_opt(
                "SELECT vendor_id FROM destination_ids WHERE destination = $1 AND key = ANY($2) \
                 ORDER BY array_position($2, key) LIMIT 1",
                &[&self.destination, &keys],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Claims a record that must be written once per golden record (a paid invoice's payment,
    /// under `key`) for the write `by`: `None` when it was written already, else the claim to
    /// hold until its id is kept.
    pub async fn claim_once(&self, key: &str, by: &str) -> Result<Option<Claim>, SendError> {
        let keys = [key.to_owned()];
        let claim = self.claim(&keys, by).await?;
        Ok(self.find(&keys).await?.is_none().then_some(claim))
    }

    /// Claims the creation of the destination record for `keys` for the write `by`, so no
    /// other write — another flow of this deliver, or another deliver replica — creates a second
    /// record for the same golden record or source id meanwhile. Hold the claim from the lookup
    /// (`find`) until the new id is kept; it is released when dropped. A claim held by another
    /// write makes this one retry shortly, and then find the id that write kept; a claim left by
    /// a crashed replica is taken over once stale, and at once by the same write's redelivery.
    pub async fn claim(&self, keys: &[String], by: &str) -> Result<Claim, SendError> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let db = self.pool.get().await.map_err(unavailable)?;
        let taken = db
            .query(
                "INSERT INTO destination_claims (destination, key, claimed_by)                  SELECT $1, k, $3 FROM unnest($2::text[]) AS k                  ON CONFLICT (destination, key) DO UPDATE                    SET claimed_by = EXCLUDED.claimed_by, claimed_at = now()                    WHERE destination_claims.claimed_by = EXCLUDED.claimed_by                       OR destination_claims.claimed_at < now() - make_interval(secs => $4)                  RETURNING key",
                &[&self.destination, &keys, &by, &CLAIM_STALE.as_secs_f64()],
            )
            .await
            .map_err(unavailable)?;
        let claim = Claim {
            pool: self.pool.clone(),
            destination: self.destination.clone(),
            keys: taken.iter().map(|r| r.get(0)).collect(),
            by: by.to_owned(),
        };
        if claim.keys.len() < keys.len() {
            // Dropping `claim` gives back the keys we did get.
            return Err(SendError::Retryable {
                status: None,
                retry_after: Some(CLAIM_RETRY),
                reason: "another write is creating this record at the destination; retrying to update it instead".to_owned(),
            });
        }
        Ok(claim)
    }

    /// Keeps `vendor_id` under every key; the first id kept for a key stays (a concurrent
    /// writer's record is the one later changes update).
    pub async fn keep(&self, keys: &[String], vendor_id: &str) -> Result<(), SendError> {
        let db = self.pool.get().await.map_err(unavailable)?;
        db.execute(
            "INSERT INTO destination_ids (destination, key, vendor_id) \
             SELECT $1, k, $3 FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING",
            &[&self.destination, &keys, &vendor_id],
        )
        .await
        .map_err(unavailable)?;
        // After our own table. A failure here retries the message; should the announcement be
        // lost for good, the crosswalk lacks this id and the destination's echo of our write is
        // matched by its keys (email, domain) instead of its id — slower, not wrong.
        self.links.announce(keys, vendor_id).await
    }
}

/// How long a creation claim holds against other writes when its holder never released it
/// (a replica killed mid-write): well above one write's vendor calls, each bounded by the
/// destination's timeout.
const CLAIM_STALE: std::time::Duration = std::time::Duration::from_secs(300);
/// When a write that found another's claim tries again.
const CLAIM_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// A write's claim on creating the record for some keys (see [`Ids::claim`]); released when
/// dropped.
#[derive(Debug)]
pub(crate) struct Claim {
    pool: Pool,
    destination: String,
    keys: Vec<String>,
    by: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let (pool, destination, keys, by) = (
            self.pool.clone(),
            std::mem::take(&mut self.destination),
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.by),
        );
        // Dropping cannot wait; should this delete fail, the claim goes stale instead.
        tokio::spawn(async move {
            let released = match pool.get().await {
                Ok(db) => db
                    .execute(
                        "DELETE FROM destination_claims                          WHERE destination = $1 AND key = ANY($2) AND claimed_by = $3",
                        &[&destination, &keys, &by],
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = released {
                tracing::warn!(%error, "creation claim not released; it lapses when stale");
            }
        });
    }
}

/// The write may have happened; the retry repeats it with the same idempotency key, or finds
/// the id kept.
fn unavailable(error: impl std::fmt::Display) -> SendError {
    SendError::Retryable {
        status: None,
        retry_after: None,
        reason: format!("deliver database unavailable: {error}"),
    }
}
