//! The matching rules applied in memory: each event of a batch resolved against the state the
//! events before it left (created, updated, stale, a no-op, a duplicate or a conflict), its change
//! or conflict notice queued for the outbox, and the keys and source ids it moves.

use prost::Message as _;
use switchyard_chassis::ids::{ChangeId, MsgId};
use switchyard_proto::v1::{
    CanonicalObject, ChangeKind, ExternalRef, GoldenChange, IdentityConflict, canonical_object,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Batch, ConflictRow, Event, OutboxRow, notice, sort_refs};
use crate::store::{
    ContactRules, Golden, Outcome, Pending, Resolution, StoreError, conflict_detail, merge,
    phone_may_replace,
};

const PHONE_SHARED: &str = "phone matched golden_a but the email differs; kept apart as golden_b";

impl Batch {
    /// Applies one event to the batch's state, exactly as resolving it alone would have applied it
    /// to the database, and records what is to be written.
    pub(super) fn resolve(
        &mut self,
        rules: &ContactRules,
        event: &Event<'_>,
    ) -> Result<Resolution, StoreError> {
        let envelope = event.envelope;
        if let Some(pending) = self.processed.get(&envelope.event_id) {
            return Ok(Resolution {
                outcome: Outcome::Duplicate,
                pending: pending.clone(),
                notices: self
                    .processed_notices
                    .get(&envelope.event_id)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        if !self.seen.insert(envelope.event_id.clone()) {
            // Twice in one batch: the first one's change is published with the batch, before
            // either message is acknowledged.
            return Ok(Resolution {
                outcome: Outcome::Duplicate,
                pending: None,
                notices: Vec::new(),
            });
        }
        let xref = event.xref();
        let by_xref = self.xrefs.get(&xref).copied();
        let email = event.contact.email.as_str();
        let by_email = if email.is_empty() {
            None
        } else {
            self.emails.get(email).copied()
        };
        let by_phone = event
            .phone_key
            .as_ref()
            .and_then(|key| self.phones.get(key).copied());
        // An alias stays with the merged record: it never replaces the survivor's own key (and the
        // unique indexes allow one holder).
        let aliased = |found: Option<(Uuid, bool)>| found.is_some_and(|(_, alias)| alias);
        let (email_alias, phone_alias) = (aliased(by_email), aliased(by_phone));
        let (by_email, by_phone) = (by_email.map(|(id, _)| id), by_phone.map(|(id, _)| id));
        let matches: Vec<(&'static str, Uuid)> = [
            ("source id", by_xref),
            ("email", by_email),
            ("phone", by_phone),
        ]
        .into_iter()
        .filter_map(|(key, id)| id.map(|id| (key, id)))
        .collect();
        let mut candidates: Vec<Uuid> = Vec::new();
        for (_, id) in &matches {
            if !candidates.contains(id) {
                candidates.push(*id);
            }
        }

        let mut conflict = None;
        let (outcome, golden, changed) = match candidates.as_slice() {
            [] => {
                let golden = Golden {
                    id: Uuid::now_v7(),
                    contact: event.contact.clone(),
                    phone_key: event.phone_key.clone(),
                    phone_certainty: event.phone_certainty,
                    source_updated_at: event.occurred_at,
                    version: 1,
                };
                self.create(&golden);
                (Outcome::Created, Some(golden), Vec::new())
            }
            [id] => {
                let id = *id;
                let stored = self.records.get(&id).ok_or(StoreError::Missing(id))?;
                let phone_only = by_xref.is_none() && by_email.is_none();
                if phone_only
                    && !event.contact.email.is_empty()
                    && !stored.contact.email.is_empty()
                    && stored.contact.email != event.contact.email
                {
                    // The phone matched, the email says someone else: a shared line (a household,
                    // a switchboard) or a changed address — never merged silently. The newcomer
                    // gets a record of their own, without the phone key the other already holds,
                    // and the pair is recorded for review.
                    let golden = Golden {
                        id: Uuid::now_v7(),
                        contact: event.contact.clone(),
                        phone_key: None,
                        phone_certainty: None,
                        source_updated_at: event.occurred_at,
                        version: 1,
                    };
                    self.create(&golden);
                    let detected_at = OffsetDateTime::now_utc();
                    self.notice(
                        rules,
                        event,
                        MsgId::Conflict {
                            event_id: &envelope.event_id,
                            other: None,
                        }
                        .to_string(),
                        notice(
                            envelope,
                            "phone_shared",
                            id,
                            golden.id,
                            PHONE_SHARED,
                            detected_at,
                        ),
                    );
                    self.conflicts.push(ConflictRow {
                        event_id: envelope.event_id.clone(),
                        golden_a: id,
                        golden_b: golden.id,
                        detail: PHONE_SHARED.to_owned(),
                        detected_at: Some(detected_at),
                    });
                    tracing::warn!(event_id = %envelope.event_id, golden_a = %id, golden_b = %golden.id,
                        "phone shared by a different email; new record kept apart and conflict recorded");
                    (Outcome::Created, Some(golden), Vec::new())
                } else if event.occurred_at < stored.source_updated_at {
                    (Outcome::Stale, None, Vec::new())
                } else {
                    let may = |field: &str| {
                        rules
                            .write_rules
                            .may_overwrite("contact", field, &envelope.source_kind)
                    };
                    let mut update = event.contact.clone();
                    if email_alias {
                        update.email.clear();
                    }
                    // A valid phone stays unless a reading at least as sure replaces it: an
                    // unparseable number, or a national number guessed in the default region over
                    // one the record stated, never does.
                    if phone_alias
                        || !phone_may_replace(
                            stored,
                            event.phone_key.as_deref(),
                            event.phone_certainty,
                        )
                    {
                        update.phone.clear();
                    }
                    let (merged, changed) = merge(&stored.contact, &update, &may);
                    if changed.is_empty() {
                        (Outcome::NoOp, None, Vec::new())
                    } else {
                        // The key follows the stored phone: it moves only when this event's phone
                        // (normalised, locked and looked up above) replaced it.
                        let (phone_key, phone_certainty) =
                            if changed.iter().any(|field| field == "phone") {
                                (event.phone_key.clone(), event.phone_certainty)
                            } else {
                                (stored.phone_key.clone(), stored.phone_certainty)
                            };
                        let golden = Golden {
                            id,
                            contact: merged,
                            phone_key,
                            phone_certainty,
                            source_updated_at: event.occurred_at,
                            version: stored.version + 1,
                        };
                        self.update(golden.clone());
                        (Outcome::Updated, Some(golden), changed)
                    }
                }
            }
            [a, others @ ..] => {
                let detected_at = OffsetDateTime::now_utc();
                for b in others {
                    let detail = conflict_detail(&matches, *a, *b);
                    tracing::warn!(
                        event_id = %envelope.event_id,
                        golden_a = %a,
                        golden_b = %b,
                        %detail,
                        "identity conflict recorded; records kept apart"
                    );
                    // The first pair rides the event's outbox row; every other pair is a review
                    // notice of its own, so operators see them all.
                    let pair = notice(envelope, "keys_disagree", *a, *b, &detail, detected_at);
                    if conflict.is_none() {
                        conflict = Some(pair);
                    } else {
                        self.notice(
                            rules,
                            event,
                            MsgId::Conflict {
                                event_id: &envelope.event_id,
                                other: Some(*b),
                            }
                            .to_string(),
                            pair,
                        );
                    }
                    self.conflicts.push(ConflictRow {
                        event_id: envelope.event_id.clone(),
                        golden_a: *a,
                        golden_b: *b,
                        detail,
                        detected_at: Some(detected_at),
                    });
                }
                (Outcome::Conflict, None, Vec::new())
            }
        };
        if let Some(golden) = &golden {
            self.touched.insert(golden.id, event.index);
        }
        let golden_id = golden
            .as_ref()
            .map(|g| g.id)
            .or_else(|| candidates.first().copied());
        // Unless it was a conflict, the source id is linked to the record it resolved to (also for
        // a no-op or a stale event), so its later events match by source id.
        if let (Some(id), None) = (golden_id, by_xref)
            && outcome != Outcome::Conflict
        {
            self.link(xref, id);
        }
        let pending = match (&golden, conflict) {
            (Some(golden), _) => {
                let kind = if outcome == Outcome::Created {
                    ChangeKind::Created
                } else {
                    ChangeKind::Updated
                };
                let change = GoldenChange {
                    change_id: ChangeId {
                        golden: golden.id,
                        version: golden.version,
                    }
                    .to_string(),
                    golden_id: golden.id.to_string(),
                    object_type: "contact".to_owned(),
                    kind: kind.into(),
                    version: golden.version,
                    changed_fields: changed,
                    cause: Some(envelope.clone()),
                    record: Some(CanonicalObject {
                        envelope: Some(envelope.clone()),
                        object: Some(canonical_object::Object::Contact(golden.contact.clone())),
                    }),
                    external_refs: self.refs.get(&golden.id).cloned().unwrap_or_default(),
                    related: Vec::new(),
                };
                Some(Pending {
                    event_id: envelope.event_id.clone(),
                    subject: rules.golden_subject.clone(),
                    msg_id: MsgId::Golden(ChangeId {
                        golden: golden.id,
                        version: golden.version,
                    })
                    .to_string(),
                    payload: change.encode_to_vec(),
                })
            }
            // The conflict notice rides the same outbox as golden changes: published after
            // commit, republished from there if the service dies in between.
            (None, Some(conflict)) => Some(Pending {
                event_id: envelope.event_id.clone(),
                subject: rules.conflict_subject.clone(),
                msg_id: MsgId::Conflict {
                    event_id: &envelope.event_id,
                    other: None,
                }
                .to_string(),
                payload: conflict.encode_to_vec(),
            }),
            (None, None) => None,
        };
        self.outbox.push(OutboxRow {
            event_id: envelope.event_id.clone(),
            outcome,
            golden_id,
            version: golden.as_ref().map(|g| g.version),
            source_system: envelope.source_system.clone(),
            pending: pending.clone(),
        });
        // The batch's notices of this event join it once every event is resolved.
        Ok(Resolution {
            outcome,
            pending,
            notices: Vec::new(),
        })
    }

    /// A review notice of `event`, published with the batch's changes.
    pub(super) fn notice(
        &mut self,
        rules: &ContactRules,
        event: &Event<'_>,
        msg_id: String,
        conflict: IdentityConflict,
    ) {
        self.notices.push((
            event.index,
            Pending {
                event_id: event.envelope.event_id.clone(),
                subject: rules.conflict_subject.clone(),
                msg_id,
                payload: conflict.encode_to_vec(),
            },
        ));
    }

    /// A new record: it holds its email and phone key from now on.
    fn create(&mut self, golden: &Golden) {
        if !golden.contact.email.is_empty() {
            self.emails
                .insert(golden.contact.email.clone(), (golden.id, false));
        }
        if let Some(key) = &golden.phone_key {
            self.phones.insert(key.clone(), (golden.id, false));
        }
        self.refs.insert(golden.id, Vec::new());
        self.records.insert(golden.id, golden.clone());
        self.created.push(golden.id);
        self.written.insert(golden.id);
    }

    /// A changed record: a key it gave up leads nowhere any more, a key it took leads to it.
    fn update(&mut self, golden: Golden) {
        let id = golden.id;
        let (email, phone_key) = (golden.contact.email.clone(), golden.phone_key.clone());
        // Every record an event resolves to is in `records` (loaded or created by the batch).
        let before = self.records.insert(id, golden);
        let (old_email, old_key) = before
            .map(|b| (b.contact.email, b.phone_key))
            .unwrap_or_default();
        if old_email != email {
            if self.emails.get(&old_email) == Some(&(id, false)) {
                self.emails.remove(&old_email);
            }
            if !email.is_empty() {
                self.emails.insert(email, (id, false));
            }
        }
        if old_key != phone_key {
            if let Some(old) = &old_key
                && self.phones.get(old) == Some(&(id, false))
            {
                self.phones.remove(old);
            }
            if let Some(key) = phone_key {
                self.phones.insert(key, (id, false));
            }
        }
        if self.written.insert(id) {
            self.updated.push(id);
        }
    }

    /// Links a source id to a record.
    fn link(&mut self, (system, external_id): (String, String), id: Uuid) {
        let refs = self.refs.entry(id).or_default();
        refs.push(ExternalRef {
            system: system.clone(),
            object: "contact".to_owned(),
            id: external_id.clone(),
        });
        sort_refs(refs);
        self.xrefs.insert((system.clone(), external_id.clone()), id);
        self.links.push((system, external_id, id));
    }
}
