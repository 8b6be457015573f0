//! The Mailchimp destination: one audience member per golden contact, upserted with `PUT
//! /lists/{list_id}/members/{subscriber_hash}` (MD5 of the lower-cased email), so a repeated write
//! updates the same member instead of adding another; a (paid) invoice tags its customer's member
//! with the flow's `tag` for post-sale nurture. Shapes from Mailchimp's Marketing API spec.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use switchyard_chassis::config::DestinationConfig;
use switchyard_proto::v1::{Contact, canonical_object};

use super::http::{SendError, classify, transport_error};
use super::klaviyo::customer_email;
use super::{Write, permanent};

/// A configured Mailchimp audience.
#[derive(Debug)]
pub struct MailchimpDestination {
    pub name: String,
    base: String,
    list_id: String,
    api_key: SecretString,
    client: reqwest::Client,
}

impl MailchimpDestination {
    pub fn new(config: &DestinationConfig, client: reqwest::Client) -> Result<Self, String> {
        Ok(Self {
            name: config.name.clone(),
            base: config.base_url().trim_end_matches('/').to_owned(),
            list_id: config
                .list_id
                .clone()
                .ok_or_else(|| format!("destination {}: list_id missing", config.name))?,
            api_key: config
                .secret()
                .cloned()
                .ok_or_else(|| format!("destination {}: API key not resolved", config.name))?,
            client,
        })
    }

    /// Mailchimp's member id: the MD5 of the lower-cased email.
    pub fn subscriber_hash(email: &str) -> String {
        format!("{:x}", md5::compute(email.trim().to_lowercase().as_bytes()))
    }

    /// Upserts the contact as an audience member. New members with marketing consent are
    /// `subscribed`; without it `transactional` (never subscribe someone who did not opt in).
    #[tracing::instrument(
        skip_all,
        name = "destination write",
        fields(otel.kind = "client", otel.name = "destination write", http.request.method = "PUT", destination = %self.name)
    )]
    pub async fn upsert(&self, contact: &Contact) -> Result<u16, SendError> {
        let consent = contact.consent.as_ref().is_some_and(|c| c.marketing);
        let body = json!({
            "email_address": contact.email,
            "status_if_new": if consent { "subscribed" } else { "transactional" },
            "merge_fields": {
                "FNAME": contact.first_name,
                "LNAME": contact.last_name,
                "PHONE": contact.phone,
            },
        });
        let url = format!(
            "{}/lists/{}/members/{}",
            self.base,
            self.list_id,
            Self::subscriber_hash(&contact.email)
        );
        self.send(reqwest::Method::PUT, url, &body).await
    }

    /// Post-sale nurture for an invoice (a flow with `when: { status: paid }`): the paying
    /// customer's member gets the flow's `tag` (`POST .../members/{hash}/tags`), which a
    /// Mailchimp journey can start on. The tags endpoint answers 404 for an address that is not
    /// a member, so the member is put first with its email only — `transactional` if new: a
    /// purchase is no marketing consent. Both calls are idempotent.
    pub async fn nurture(&self, write: &Write<'_>) -> Result<u16, SendError> {
        let Some(tag) = write.flow.tag.as_deref() else {
            return Err(permanent(
                "a Mailchimp invoice flow needs tag: the tag paying customers get",
            ));
        };
        let email = customer_email(write)?;
        let member = format!(
            "{}/lists/{}/members/{}",
            self.base,
            self.list_id,
            Self::subscriber_hash(email)
        );
        let body = json!({ "email_address": email, "status_if_new": "transactional" });
        self.send(reqwest::Method::PUT, member.clone(), &body)
            .await?;
        let body = json!({ "tags": [{ "name": tag, "status": "active" }] });
        self.send(reqwest::Method::POST, format!("{member}/tags"), &body)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        body: &serde_json::Value,
    ) -> Result<u16, SendError> {
        let response = self
            .client
            .request(method, url)
            .basic_auth("switchyard", Some(self.api_key.expose_secret()))
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        classify(response).await
    }
}

impl super::Connector for MailchimpDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(
        &'a self,
        write: &'a Write<'a>,
    ) -> futures::future::BoxFuture<'a, Result<super::Written, SendError>> {
        Box::pin(async move {
            match write.object() {
                Some(canonical_object::Object::Contact(contact)) => {
                    self.upsert(contact).await.map(super::Written::Done)
                }
                Some(canonical_object::Object::Invoice(_)) => {
                    self.nurture(write).await.map(super::Written::Done)
                }
                _ => Err(permanent(
                    "a Mailchimp audience takes contacts and invoices",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_subscriber_hash_is_the_md5_of_the_lower_cased_email() {
        // Mailchimp's documentation example.
        assert_eq!(
            super::MailchimpDestination::subscriber_hash("Urist.McVankab@freddiesjokes.com"),
            "62eeb292278cc15f5817cb78f7790b08"
        );
    }
}
