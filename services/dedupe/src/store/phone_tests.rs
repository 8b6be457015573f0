//! A golden phone against later readings, on real PostgreSQL: a valid phone is replaced only by a
//! reading at least as sure, never by an unparseable or guessed one.

use switchyard_proto::v1::Address;

use super::resolve_contacts;
use crate::store::testing::{database, event, rules};

/// Resolves one event of `jane` (crm:1, always the same email) with `phone` written in `country`,
/// and answers the golden phone after it.
async fn after(
    pool: &switchyard_chassis::deadpool_postgres::Pool,
    id: &str,
    phone: &str,
    country: &str,
    at: i64,
) -> (String, Option<String>) {
    let (envelope, mut contact) = event(id, "crm:1", "jane@example.com", phone, "Jane", at);
    if !country.is_empty() {
        contact.address = Some(Address {
            country: country.to_owned(),
            ..Default::default()
        });
    }
    resolve_contacts(pool, &rules(), &[(envelope, contact)])
        .await
        .expect("resolved");
    let row = pool
        .get()
        .await
        .expect("connection")
        .query_one(
            "SELECT phone, phone_key FROM golden_contacts WHERE email = 'jane@example.com'",
            &[],
        )
        .await
        .expect("jane");
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn a_golden_phone_is_never_replaced_by_a_worse_reading() {
    let (pool, url) = database().await;
    let french = ("+33123456789".to_owned(), Some("+33123456789".to_owned()));
    // Read in her own country (France), though the deployment's default region is the US.
    assert_eq!(after(&pool, "p1", "01 23 45 67 89", "FR", 1).await, french);
    // Later events with junk, an extension-only scrawl, or no phone leave it alone.
    assert_eq!(after(&pool, "p2", "n/a 12", "", 2).await, french);
    assert_eq!(after(&pool, "p3", "", "FR", 3).await, french);
    // A national number with no country is only a guess in the default region (a valid US
    // number here): less sure than what her French record stated.
    assert_eq!(after(&pool, "p4", "(201) 555-0123", "", 4).await, french);
    // A new number written with its country code is as sure as it gets: it replaces hers.
    let german = (
        "+4915116989129".to_owned(),
        Some("+4915116989129".to_owned()),
    );
    assert_eq!(after(&pool, "p5", "+49 1511 6989129", "", 5).await, german);
    // So is one read in her record's country.
    let paris = ("+33142685300".to_owned(), Some("+33142685300".to_owned()));
    assert_eq!(after(&pool, "p6", "01 42 68 53 00", "FR", 6).await, paris);
    pool.close();
    switchyard_chassis::testkit::drop_database(&url).await;
}

#[tokio::test]
async fn a_guessed_phone_gives_way_to_a_stated_one_and_to_another_guess() {
    let (pool, url) = database().await;
    let guess = ("+12015550123".to_owned(), Some("+12015550123".to_owned()));
    assert_eq!(after(&pool, "g1", "(201) 555-0123", "", 1).await, guess);
    // Another guess is as sure: the newer one wins, as for any field.
    let other = ("+12015550199".to_owned(), Some("+12015550199".to_owned()));
    assert_eq!(after(&pool, "g2", "201 555 0199", "", 2).await, other);
    // Nothing replaces a valid guess with junk either.
    assert_eq!(after(&pool, "g3", "000", "", 3).await, other);
    let stated = ("+442079460958".to_owned(), Some("+442079460958".to_owned()));
    assert_eq!(after(&pool, "g4", "020 7946 0958", "GB", 4).await, stated);
    pool.close();
    switchyard_chassis::testkit::drop_database(&url).await;
}

#[tokio::test]
async fn junk_still_fills_an_empty_phone_but_is_no_key() {
    let (pool, url) = database().await;
    assert_eq!(
        after(&pool, "j1", "12-34 ext. 5", "", 1).await,
        ("1234".to_owned(), None)
    );
    // And a valid number then replaces the junk.
    assert_eq!(
        after(&pool, "j2", "+44 113 496 0826", "", 2).await,
        ("+441134960826".to_owned(), Some("+441134960826".to_owned()))
    );
    pool.close();
    switchyard_chassis::testkit::drop_database(&url).await;
}
