//! The Stripe destination: golden contacts as customers. A contact Stripe already knows — its
//! Stripe id is in the crosswalk (from the destination's `source_system`) or in deliver's own ids,
//! or Stripe holds one customer with its email (`GET /v1/customers?email=`), which is adopted —
//! is updated with `POST /v1/customers/{id}`; any other is created with `POST /v1/customers`
//! and its new id kept. Every request carries an `Idempotency-Key` derived from the change, so a
//! retry after a lost answer gets Stripe's saved answer instead of a second customer.

use reqwest::Method;
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::canonical_object::Object;

use super::api::Api;
use super::http::SendError;
use super::ids::{Ids, Links, golden_key, ref_key};
use super::values::{idempotency_key, own_id};
use super::{Write, Written, permanent};

/// Stripe's limit on `Idempotency-Key`.
const KEY_MAX: usize = 255;

/// A configured Stripe account.
#[derive(Debug)]
pub struct StripeDestination {
    api: Api,
    ids: Ids,
    source_system: Option<String>,
}

impl StripeDestination {
    /// The connector for a configured Stripe account.
    pub async fn new(config: &DestinationConfig, pool: Pool, links: Links) -> Result<Self, String> {
        Ok(Self {
            // The secret key as a bearer token; Stripe takes it as HTTP Basic user too.
            api: Api::bearer(config, pool.clone()).await?,
            ids: Ids::new(pool, &config.name, links),
            source_system: config.source_system.clone(),
        })
    }

    /// The destination's configured name.
    pub fn name(&self) -> &str {
        &self.api.name
    }

    /// The one customer Stripe already holds with `email`, if any (see
    /// [`Ids::adopt`](super::ids::Ids::adopt)). Stripe's email filter is exact (case-sensitive);
    /// golden emails are lower-case, as most stored ones are.
    async fn existing(&self, write: &Write<'_>, email: &str) -> Result<Option<String>, SendError> {
        if email.is_empty() {
            return Ok(None);
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("email", email)
            .append_pair("limit", "2")
            .finish();
        let url = self.api.url(&format!("/v1/customers?{query}"));
        let answer = self.api.call(Method::GET, &url, |r| r).await?;
        let ids: Vec<&str> = answer.body["data"]
            .as_array()
            .map(|found| found.iter().filter_map(|c| c["id"].as_str()).collect())
            .unwrap_or_default();
        let more = answer.body["has_more"] == true;
        self.ids
            .adopt(write, ("Stripe", "customers"), &ids, more)
            .await
    }

    /// Writes one golden change.
    pub async fn write(&self, write: &Write<'_>) -> Result<Written, SendError> {
        let Some(Object::Contact(contact)) = write.object() else {
            return Err(permanent("a Stripe destination takes contacts"));
        };
        let change = write.change;
        let mut keys = vec![golden_key("contact", &change.golden_id)];
        keys.extend(change.external_refs.iter().map(ref_key));
        // Held until the new id is kept: no other write creates this record meanwhile.
        let _claim = self.ids.claim(&keys, write.key).await?;
        let known = self
            .ids
            .known_or_adopted(
                own_id(
                    change,
                    self.source_system.as_deref(),
                    &["contact", "customer"],
                ),
                &keys,
                // A record made in the vendor by hand, before Switchyard: adopted, never doubled.
                self.existing(write, &contact.email),
            )
            .await?;
        let name = format!("{} {}", contact.first_name, contact.last_name);
        let country = contact
            .address
            .as_ref()
            .map(|a| a.country.as_str())
            .unwrap_or_default();
        // Built apart: the serializer is not `Send`, so it must not live across an await.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (key, value) in [
                ("email", contact.email.as_str()),
                ("name", name.trim()),
                ("phone", contact.phone.as_str()),
                ("address[country]", country),
            ] {
                // Left out rather than sent empty: Stripe would erase the value it has.
                if !value.is_empty() {
                    form.append_pair(key, value);
                }
            }
            form.append_pair("metadata[switchyard_id]", &change.golden_id);
            form.finish()
        };
        let (url, what) = match &known {
            Some(id) => (self.api.url(&format!("/v1/customers/{id}")), "update"),
            None => (self.api.url("/v1/customers"), "create"),
        };
        let key = idempotency_key(write.key, &format!("customer:{what}"), KEY_MAX);
        let answer = self
            .api
            .call(Method::POST, &url, |r| {
                r.header("idempotency-key", &key)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
            })
            .await?;
        if known.is_none()
            && let Some(id) = answer.body["id"].as_str()
        {
            self.ids.keep(&keys, id).await?;
        }
        Ok(Written::Done(answer.status))
    }
}

impl super::Connector for StripeDestination {
    fn name(&self) -> &str {
        Self::name(self)
    }

    fn write<'a>(
        &'a self,
        write: &'a Write<'a>,
    ) -> futures::future::BoxFuture<'a, Result<Written, SendError>> {
        Box::pin(Self::write(self, write))
    }
}
