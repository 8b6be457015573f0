//! Golden records for companies, products, deals, orders, invoices and leads. Each matches on the
//! keys its contract names — company: registrable domain or tax id; product: SKU; lead: email;
//! deal, order and invoice: their source ids through the crosswalk — and merges field by field
//! with the same survivorship, no-op suppression, conflict and outbox rules as contacts.

use std::collections::HashMap;

use prost::Message as _;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_chassis::deadpool_postgres::Transaction;
use switchyard_proto::v1::{
    CanonicalObject, ChangeKind, Envelope, GoldenChange, IdentityConflict, Invoice, RelatedRecord,
    canonical_object::Object,
};
use time::OffsetDateTime;
use uuid::Uuid;

use switchyard_chassis::ids::{ChangeId, MsgId};

use crate::normalize;
use crate::store::{
    Outcome, Pending, Resolution, StoreError, already_processed, exec, external_refs, lock_keys,
    query_cached, query_one_cached, query_opt_cached, to_time,
};
use crate::survivorship::WriteRules;

/// Where each object's changes and conflicts go, and who may write which field.
#[derive(Debug, Clone)]
pub struct RecordRules {
    /// Object name → (`<prefix>.golden.<object>`, `<prefix>.ops.conflict.<object>`).
    pub subjects: HashMap<&'static str, (String, String)>,
    pub write_rules: WriteRules,
}

/// The subject token of an object.
pub fn object_name(object: &Object) -> &'static str {
    match object {
        Object::Lead(_) => "lead",
        Object::Contact(_) => "contact",
        Object::Company(_) => "company",
        Object::Product(_) => "product",
        Object::Deal(_) => "deal",
        Object::Order(_) => "order",
        Object::Invoice(_) => "invoice",
    }
}

/// The normalised match keys of a record, as (kind, value).
fn match_keys(object: &Object) -> Vec<(&'static str, String)> {
    let mut keys = Vec::new();
    match object {
        Object::Company(c) => {
            if let Some(domain) = normalize::domain(&c.domain) {
                keys.push(("domain", domain));
            }
            let country = c.address.as_ref().map(|a| a.country.as_str()).unwrap_or("");
            if let Some(tax_id) = normalize::tax_id(&c.tax_id, country) {
                keys.push(("tax_id", tax_id));
            }
        }
        Object::Product(p) => keys.extend(normalize::sku(&p.sku).map(|sku| ("sku", sku))),
        Object::Lead(l) => {
            let email = normalize::email(&l.email);
            if !email.is_empty() {
                keys.push(("email", email));
            }
        }
        // Deals, orders and invoices have no natural key across systems: the crosswalk decides.
        Object::Deal(_) | Object::Order(_) | Object::Invoice(_) | Object::Contact(_) => {}
    }
    keys
}

/// The record with its keys in normalised form, as it is stored and delivered.
fn normalised(object: &Object) -> Object {
    let mut object = object.clone();
    match &mut object {
        Object::Company(c) => {
            if let Some(domain) = normalize::domain(&c.domain) {
                c.domain = domain;
            }
            // The tax id as the key reads it: VAT numbers with their country code, no spaces.
            let country = c.address.as_ref().map_or("", |a| a.country.as_str());
            if let Some(tax_id) = normalize::tax_id(&c.tax_id, country) {
                c.tax_id = tax_id;
            }
        }
        Object::Product(p) => {
            if let Some(sku) = normalize::sku(&p.sku) {
                p.sku = sku;
            }
        }
        Object::Lead(l) => l.email = normalize::email(&l.email),
        _ => {}
    }
    object
}

/// Copies each field the incoming record has (non-default) and that differs, when the source may
/// write it (or the stored value is empty); names the fields it changed.
macro_rules! merge_fields {
    ($stored:expr, $incoming:expr, $may:expr, $changed:expr; $($field:ident => $name:literal),* $(,)?) => {{$(
        if !unset(&$incoming.$field)
            && $incoming.$field != $stored.$field
            && ($may($name) || unset(&$stored.$field))
        {
            $stored.$field = $incoming.$field.clone();
            $changed.push($name.to_owned());
        }
    )*}};
}

/// Whether a field holds its "not given" value ('' / 0 / None / no items).
fn unset<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Merges `incoming` into `stored` (same object type); returns the changed contract fields.
pub(crate) fn merge(
    stored: &mut Object,
    incoming: &Object,
    may: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut changed = Vec::new();
    match (stored, incoming) {
        (Object::Company(s), Object::Company(i)) => merge_fields!(s, i, may, changed;
            name => "name", domain => "domain", tax_id => "tax_id", industry => "industry",
            address => "country"),
        (Object::Product(s), Object::Product(i)) => {
            merge_fields!(s, i, may, changed;
                sku => "sku", name => "name", description => "description",
                unit_price => "unit_price", tax_rate_bp => "tax_rate_bp");
            // `false` is a real value here (a product taken off sale), not "not given".
            if s.active != i.active && may("active") {
                s.active = i.active;
                changed.push("active".to_owned());
            }
        }
        (Object::Deal(s), Object::Deal(i)) => merge_fields!(s, i, may, changed;
            name => "name", stage => "stage", amount => "amount", close_date => "close_date",
            contact => "contact_id", company => "company_id", line_items => "line_items"),
        (Object::Order(s), Object::Order(i)) => merge_fields!(s, i, may, changed;
            order_number => "order_number", status => "status", customer => "customer_id",
            line_items => "line_items", subtotal => "subtotal", tax => "tax", total => "total",
            placed_at => "placed_at", shipping_address => "shipping_address"),
        (Object::Invoice(s), Object::Invoice(i)) => merge_fields!(s, i, may, changed;
            invoice_number => "invoice_number", status => "status", customer => "customer_id",
            line_items => "line_items", subtotal => "subtotal", tax => "tax", total => "total",
            amount_paid => "amount_paid", issued_at => "issued_at", due_at => "due_at",
            deal => "deal_id"),
        (Object::Lead(s), Object::Lead(i)) => merge_fields!(s, i, may, changed;
            email => "email", phone => "phone", first_name => "first_name",
            last_name => "last_name", company_name => "company_name",
            lead_source => "lead_source", status => "status", consent => "marketing_consent"),
        _ => {}
    }
    changed
}

/// Empties each field named in `filled` whose value is still `merged`'s: what an un-merge takes
/// back from a survivor (a value changed since the merge is the survivor's own). Lists the same
/// fields as [`merge`]; returns the fields it emptied.
pub(crate) fn unfill(survivor: &mut Object, merged: &Object, filled: &[String]) -> Vec<String> {
    let mut cleared = Vec::new();
    macro_rules! unfill_fields {
        ($s:expr, $m:expr; $($field:ident => $name:literal),* $(,)?) => {{$(
            if filled.iter().any(|f| f == $name) && !unset(&$s.$field) && $s.$field == $m.$field {
                $s.$field = Default::default();
                cleared.push($name.to_owned());
            }
        )*}};
    }
    match (survivor, merged) {
        (Object::Company(s), Object::Company(m)) => unfill_fields!(s, m;
            name => "name", domain => "domain", tax_id => "tax_id", industry => "industry",
            address => "country"),
        // `active` is never filled: `false` is a value, not a gap.
        (Object::Product(s), Object::Product(m)) => unfill_fields!(s, m;
            sku => "sku", name => "name", description => "description",
            unit_price => "unit_price", tax_rate_bp => "tax_rate_bp"),
        (Object::Deal(s), Object::Deal(m)) => unfill_fields!(s, m;
            name => "name", stage => "stage", amount => "amount", close_date => "close_date",
            contact => "contact_id", company => "company_id", line_items => "line_items"),
        (Object::Order(s), Object::Order(m)) => unfill_fields!(s, m;
            order_number => "order_number", status => "status", customer => "customer_id",
            line_items => "line_items", subtotal => "subtotal", tax => "tax", total => "total",
            placed_at => "placed_at", shipping_address => "shipping_address"),
        (Object::Invoice(s), Object::Invoice(m)) => unfill_fields!(s, m;
            invoice_number => "invoice_number", status => "status", customer => "customer_id",
            line_items => "line_items", subtotal => "subtotal", tax => "tax", total => "total",
            amount_paid => "amount_paid", issued_at => "issued_at", due_at => "due_at",
            deal => "deal_id"),
        (Object::Lead(s), Object::Lead(m)) => unfill_fields!(s, m;
            email => "email", phone => "phone", first_name => "first_name",
            last_name => "last_name", company_name => "company_name",
            lead_source => "lead_source", status => "status", consent => "marketing_consent"),
        _ => {}
    }
    cleared
}

/// Resolves one canonical record (any object but contact) into its golden record, atomically.
pub async fn resolve(
    pool: &Pool,
    rules: &RecordRules,
    envelope: &Envelope,
    incoming: &Object,
) -> Result<Resolution, StoreError> {
    let name = object_name(incoming);
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(resolution) = already_processed(&tx, &envelope.event_id).await? {
        tx.commit().await?;
        return Ok(resolution);
    }
    let system = envelope.source_system.as_str();
    let external_id = envelope.source_object_id.as_str();
    let keys = match_keys(incoming);
    // Events sharing a key must not race into two records: lock every key in sorted order.
    let mut locks = vec![format!("{name}:xref:{system}:{external_id}")];
    locks.extend(
        keys.iter()
            .map(|(kind, value)| format!("{name}:{kind}:{value}")),
    );
    locks.sort();
    lock_keys(&tx, &locks).await?;
    let by_xref: Option<Uuid> = query_opt_cached(
        &tx,
        "SELECT golden_id FROM crosswalk WHERE system = $1 AND object = $2 AND external_id = $3",
        &[&system, &name, &external_id],
    )
    .await?
    .map(|row| row.get(0));
    let mut matches: Vec<(&'static str, Uuid)> =
        by_xref.map(|id| ("source id", id)).into_iter().collect();
    for (kind, value) in &keys {
        let row = query_opt_cached(
            &tx,
            "SELECT golden_id FROM golden_keys WHERE object = $1 AND kind = $2 AND value = $3",
            &[&name, kind, value],
        )
        .await?;
        if let Some(row) = row {
            matches.push((kind, row.get(0)));
        }
    }
    let mut candidates: Vec<Uuid> = Vec::new();
    for (_, id) in &matches {
        if !candidates.contains(id) {
            candidates.push(*id);
        }
    }
    let occurred_at = to_time(envelope.occurred_at.as_ref());
    let incoming = normalised(incoming);
    let mut conflict = None;
    let mut extra = Vec::new();
    let (outcome, golden, changed) = match candidates.as_slice() {
        [] => {
            let id = Uuid::now_v7();
            exec(&tx,
                "INSERT INTO golden_records (id, object, record, source_updated_at, version) VALUES ($1, $2, $3, $4, 1)",
                &[&id, &name, &encode(&incoming), &occurred_at],
            )
            .await?;
            (
                Outcome::Created,
                Some((id, 1_i64, incoming.clone())),
                Vec::new(),
            )
        }
        [id] => {
            let row = query_one_cached(&tx,
                    "SELECT record, source_updated_at, version FROM golden_records WHERE id = $1 FOR UPDATE",
                    &[id],
                )
                .await?;
            let stored_at: OffsetDateTime = row.get(1);
            let version: i64 = row.get(2);
            let mut stored = decode(row.get(0)).unwrap_or_else(|| incoming.clone());
            if occurred_at < stored_at {
                (Outcome::Stale, None, Vec::new())
            } else {
                let may = |field: &str| {
                    rules
                        .write_rules
                        .may_overwrite(name, field, &envelope.source_kind)
                };
                let changed = merge(&mut stored, &incoming, &may);
                if changed.is_empty() {
                    (Outcome::NoOp, None, Vec::new())
                } else {
                    exec(&tx,
                        "UPDATE golden_records SET record = $2, source_updated_at = $3, version = $4, updated_at = now() WHERE id = $1",
                        &[id, &encode(&stored), &occurred_at, &(version + 1)],
                    )
                    .await?;
                    (Outcome::Updated, Some((*id, version + 1, stored)), changed)
                }
            }
        }
        [a, others @ ..] => {
            let detected_at = OffsetDateTime::now_utc();
            for b in others {
                let detail = detail(&matches, *a, *b);
                exec(&tx,
                    "INSERT INTO identity_conflicts (event_id, object, golden_a, golden_b, detail, detected_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&envelope.event_id, &name, a, b, &detail, &detected_at],
                )
                .await?;
                tracing::warn!(event_id = %envelope.event_id, object = name, golden_a = %a, golden_b = %b, %detail,
                    "identity conflict recorded; records kept apart");
                let pair = IdentityConflict {
                    event_id: envelope.event_id.clone(),
                    object_type: name.to_owned(),
                    golden_a: a.to_string(),
                    golden_b: b.to_string(),
                    detail,
                    detected_at: Some(switchyard_proto::Timestamp {
                        seconds: detected_at.unix_timestamp(),
                        nanos: i32::try_from(detected_at.nanosecond()).unwrap_or(0),
                    }),
                    kind: "keys_disagree".to_owned(),
                    evidence: Vec::new(),
                };
                // The first pair rides the outbox row; the others are review notices.
                if conflict.is_none() {
                    conflict = Some(pair);
                } else {
                    let msg_id = MsgId::Conflict {
                        event_id: &envelope.event_id,
                        other: Some(*b),
                    };
                    extra.push((msg_id.to_string(), pair));
                }
            }
            (Outcome::Conflict, None, Vec::new())
        }
    };
    let golden_id = golden
        .as_ref()
        .map(|(id, _, _)| *id)
        .or_else(|| candidates.first().copied());
    if let Some(id) = golden_id
        && outcome != Outcome::Conflict
    {
        if by_xref.is_none() {
            exec(&tx,
                "INSERT INTO crosswalk (system, object, external_id, golden_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                &[&system, &name, &external_id, &id],
            )
            .await?;
        }
        // Keys this record brought that no record holds yet now lead to it.
        for (kind, value) in &keys {
            exec(
                &tx,
                "INSERT INTO golden_keys (object, kind, value, golden_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                &[&name, kind, value, &id],
            )
            .await?;
        }
    }
    let (golden_subject, conflict_subject) = rules.subjects.get(name).cloned().unwrap_or_default();
    let mut notices = Vec::new();
    for (msg_id, pair) in extra {
        let notice = Pending {
            event_id: envelope.event_id.clone(),
            subject: conflict_subject.clone(),
            msg_id,
            payload: pair.encode_to_vec(),
        };
        exec(
            &tx,
            "INSERT INTO review_notices (msg_id, event_id, subject, payload) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            &[&notice.msg_id, &notice.event_id, &notice.subject, &notice.payload],
        )
        .await?;
        notices.push(notice);
    }
    let made_version = golden.as_ref().map(|(_, version, _)| *version);
    let pending = match (golden, conflict) {
        (Some((id, version, record)), _) => {
            let kind = if outcome == Outcome::Created {
                ChangeKind::Created
            } else {
                ChangeKind::Updated
            };
            let related = match &record {
                Object::Invoice(invoice) => invoice_related(&tx, envelope, invoice).await?,
                _ => Vec::new(),
            };
            let change = GoldenChange {
                change_id: ChangeId {
                    golden: id,
                    version,
                }
                .to_string(),
                golden_id: id.to_string(),
                object_type: name.to_owned(),
                kind: kind.into(),
                version,
                changed_fields: changed,
                cause: Some(envelope.clone()),
                record: Some(CanonicalObject {
                    envelope: Some(envelope.clone()),
                    object: Some(record),
                }),
                external_refs: external_refs(&tx, id).await?,
                related,
            };
            Some(Pending {
                event_id: envelope.event_id.clone(),
                subject: golden_subject,
                msg_id: MsgId::Golden(ChangeId {
                    golden: id,
                    version,
                })
                .to_string(),
                payload: change.encode_to_vec(),
            })
        }
        (None, Some(conflict)) => Some(Pending {
            event_id: envelope.event_id.clone(),
            subject: conflict_subject,
            msg_id: MsgId::Conflict {
                event_id: &envelope.event_id,
                other: None,
            }
            .to_string(),
            payload: conflict.encode_to_vec(),
        }),
        (None, None) => None,
    };
    exec(&tx,
        "INSERT INTO processed_events (event_id, outcome, golden_id, change_subject, change_msg_id, change_payload, version, source_system) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &envelope.event_id,
            &outcome.as_str(),
            &golden_id,
            &pending.as_ref().map(|p| p.subject.as_str()),
            &pending.as_ref().map(|p| p.msg_id.as_str()),
            &pending.as_ref().map(|p| p.payload.as_slice()),
            &made_version,
            &envelope.source_system,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Resolution {
        outcome,
        pending,
        notices,
    })
}

/// The golden records an invoice points at, for deliver: its deal (to update in the CRM) and its
/// customer's email (to tag in the marketing tool). Resolved here, in the transaction that makes
/// the change, so every redelivery and replay of the change carries the same answer.
async fn invoice_related(
    tx: &Transaction<'_>,
    envelope: &Envelope,
    invoice: &Invoice,
) -> Result<Vec<RelatedRecord>, StoreError> {
    let mut related = Vec::new();
    if let Some(deal) = invoice_deal(tx, envelope, invoice).await? {
        related.push(RelatedRecord {
            field: "deal_id".to_owned(),
            object_type: "deal".to_owned(),
            golden_id: deal.to_string(),
            external_refs: external_refs(tx, deal).await?,
            email: String::new(),
        });
    }
    if let Some(customer) = invoice.customer.as_ref().filter(|c| !c.id.is_empty()) {
        let row = query_opt_cached(
            tx,
            "SELECT g.id, g.email FROM crosswalk x JOIN golden_contacts g ON g.id = x.golden_id \
             WHERE x.system = $1 AND x.object = 'contact' AND x.external_id = $2",
            &[&customer.system, &customer.id],
        )
        .await?;
        if let Some(row) = row {
            let id: Uuid = row.get(0);
            related.push(RelatedRecord {
                field: "customer_id".to_owned(),
                object_type: "contact".to_owned(),
                golden_id: id.to_string(),
                external_refs: external_refs(tx, id).await?,
                email: row.get(1),
            });
        }
    }
    Ok(related)
}

/// The golden deal an invoice settles: its `deal_id` as an id of the invoice's own source (or of
/// the system its reference names); else — a Stripe invoice's `metadata.deal_id` holds another
/// system's id — the one deal any system knows by that id (several: ambiguous, none taken); else,
/// for an invoice deliver itself created from a won deal, the deal whose crosswalk row holds
/// this invoice's id (the accounting connectors link the document they create to the deal).
async fn invoice_deal(
    tx: &Transaction<'_>,
    envelope: &Envelope,
    invoice: &Invoice,
) -> Result<Option<Uuid>, StoreError> {
    let by_ref = "SELECT golden_id FROM crosswalk WHERE system = $1 AND object = 'deal' AND external_id = $2";
    if let Some(deal) = invoice.deal.as_ref().filter(|d| !d.id.is_empty()) {
        if let Some(row) = query_opt_cached(tx, by_ref, &[&deal.system, &deal.id]).await? {
            return Ok(Some(row.get(0)));
        }
        let rows = query_cached(
            tx,
            "SELECT DISTINCT golden_id FROM crosswalk WHERE object = 'deal' AND external_id = $1 LIMIT 2",
            &[&deal.id],
        )
        .await?;
        return Ok(match rows.as_slice() {
            [only] => Some(only.get(0)),
            _ => None,
        });
    }
    Ok(query_opt_cached(
        tx,
        by_ref,
        &[&envelope.source_system, &envelope.source_object_id],
    )
    .await?
    .map(|row| row.get(0)))
}

pub(crate) fn encode(object: &Object) -> Vec<u8> {
    CanonicalObject {
        envelope: None,
        object: Some(object.clone()),
    }
    .encode_to_vec()
}

pub(crate) fn decode(bytes: Vec<u8>) -> Option<Object> {
    CanonicalObject::decode(bytes.as_slice()).ok()?.object
}

/// Which keys matched which record, without their values (they may be personal data).
fn detail(matches: &[(&'static str, Uuid)], a: Uuid, b: Uuid) -> String {
    let keys = |id: Uuid| {
        matches
            .iter()
            .filter(|(_, matched)| *matched == id)
            .map(|(key, _)| *key)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    format!(
        "{} matched golden_a, {} matched golden_b; not merged",
        keys(a),
        keys(b)
    )
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{Company, Invoice, Money};

    use super::*;

    #[test]
    fn companies_match_on_registrable_domain_and_prefixed_tax_id() {
        let company = Object::Company(Company {
            name: "Example Ltd".into(),
            domain: "https://www.shop.example.co.uk/".into(),
            tax_id: "123 456 789".into(),
            address: Some(switchyard_proto::v1::Address {
                country: "DE".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            match_keys(&company),
            vec![
                ("domain", "example.co.uk".to_owned()),
                ("tax_id", "DE123456789".to_owned())
            ]
        );
        let Object::Company(stored) = normalised(&company) else {
            unreachable!()
        };
        assert_eq!(stored.domain, "example.co.uk");
    }

    #[test]
    fn unfill_takes_back_exactly_the_gaps_a_merge_filled() {
        let survivor = Object::Company(Company {
            name: "Example Ltd".into(),
            domain: "example.com".into(),
            ..Default::default()
        });
        let merged = Object::Company(Company {
            name: "Example Limited".into(),
            tax_id: "DE123456789".into(),
            industry: "Retail".into(),
            address: Some(switchyard_proto::v1::Address {
                country: "DE".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut record = survivor.clone();
        let filled = merge(&mut record, &merged, &|_| false);
        assert_eq!(
            filled,
            ["tax_id", "industry", "country"],
            "gaps only, never the name"
        );
        // The industry changed after the merge: it is the survivor's own now.
        if let Object::Company(c) = &mut record {
            c.industry = "Wholesale".into();
        }
        let cleared = unfill(&mut record, &merged, &filled);
        assert_eq!(cleared, ["tax_id", "country"]);
        let Object::Company(c) = record else {
            unreachable!()
        };
        assert_eq!(
            (
                c.name.as_str(),
                c.tax_id.as_str(),
                c.industry.as_str(),
                c.address
            ),
            ("Example Ltd", "", "Wholesale", None)
        );
    }

    #[test]
    fn only_the_system_of_record_overwrites_and_anyone_fills_a_gap() {
        let money = |n| {
            Some(Money {
                minor_units: n,
                currency: "USD".into(),
            })
        };
        let mut stored = Object::Invoice(Invoice {
            invoice_number: "1".into(),
            status: "open".into(),
            total: money(100),
            ..Default::default()
        });
        let incoming = Object::Invoice(Invoice {
            invoice_number: "1".into(),
            status: "paid".into(),
            total: money(100),
            amount_paid: money(100),
            ..Default::default()
        });
        let changed = merge(&mut stored, &incoming, &|field| field != "status");
        assert_eq!(
            changed,
            vec!["amount_paid".to_owned()],
            "status is not this source's to change"
        );
        let changed = merge(&mut stored, &incoming, &|_| true);
        assert_eq!(changed, vec!["status".to_owned()]);
        assert!(
            merge(&mut stored, &incoming, &|_| true).is_empty(),
            "the same again is a no-op"
        );
    }
}
