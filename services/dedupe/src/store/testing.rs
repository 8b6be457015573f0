//! What the store's tests share: a migrated database of their own, the rules, and contact events.

use switchyard_chassis::config::DatabaseConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{Contact, Envelope};

use super::ContactRules;

/// A migrated database of its own, and its connection string (to drop it afterwards).
pub(crate) async fn database() -> (Pool, String) {
    let url = switchyard_chassis::testkit::fresh_database("dedupe_batch")
        .await
        .expect("test database");
    let pool = switchyard_chassis::db::connect(&DatabaseConfig {
        url: url.clone().into(),
        pool_size: std::num::NonZeroUsize::new(2).expect("non-zero"),
        ca_file: None,
    })
    .await
    .expect("pool");
    switchyard_chassis::db::migrate(&pool, "dedupe", crate::migrations::migrations::runner())
        .await
        .expect("migrations");
    (pool, url)
}

pub(crate) fn rules() -> ContactRules {
    ContactRules {
        golden_subject: "t.golden.contact".to_owned(),
        conflict_subject: "t.ops.conflict.contact".to_owned(),
        default_region: "US".parse().expect("region"),
        write_rules: Default::default(),
    }
}

/// A contact event: `source` is `system:external id`.
pub(crate) fn event(
    id: &str,
    source: &str,
    email: &str,
    phone: &str,
    name: &str,
    at: i64,
) -> (Envelope, Contact) {
    let (system, external_id) = source.split_once(':').expect("system:id");
    let envelope = Envelope {
        event_id: id.to_owned(),
        source_system: system.to_owned(),
        source_kind: "standard-webhooks".to_owned(),
        source_object_id: external_id.to_owned(),
        occurred_at: Some(switchyard_proto::Timestamp {
            seconds: 1_795_000_000 + at,
            nanos: 0,
        }),
        contract_version: "contact/v1".to_owned(),
        event_type: "contact.updated".to_owned(),
        ..Default::default()
    };
    let contact = Contact {
        email: email.to_owned(),
        phone: phone.to_owned(),
        first_name: name.to_owned(),
        ..Default::default()
    };
    (envelope, contact)
}
