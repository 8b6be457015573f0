//! The Mailchimp destination: one audience member per golden contact, upserted with `PUT
//! /lists/{list_id}/members/{subscriber_hash}` (MD5 of the lower-cased email), so a repeated write
//! updates the same member instead of adding another. Shapes from Mailchimp's Marketing API spec.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use switchyard_chassis::config::DestinationConfig;
use switchyard_proto::v1::Contact;

use crate::webhook::{SendError, classify, transport_error};

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
                .secret
                .clone()
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
        let response = self
            .client
            .put(url)
            .basic_auth("switchyard", Some(self.api_key.expose_secret()))
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        classify(response).await
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
