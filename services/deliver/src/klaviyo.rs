//! The Klaviyo destination (API revision 2026-07-15): each golden contact becomes a profile with
//! `POST /api/profile-import` (create or update, matched by email), and when the contact gave
//! marketing consent and the flow names a list, it is subscribed to that list with
//! `POST /api/profile-subscription-bulk-create-jobs`. Shapes from Klaviyo's published spec.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_chassis::config::DestinationConfig;
use switchyard_proto::v1::{ChangeKind, canonical_object::Object};

use crate::api::Api;
use crate::destination::{Write, Written, permanent};
use crate::values::{country_name, object};
use crate::webhook::SendError;

/// The API revision every request names.
pub const REVISION: &str = "2026-07-15";
const JSON_API: &str = "application/vnd.api+json";

/// A configured Klaviyo account.
#[derive(Debug)]
pub struct KlaviyoDestination {
    api: Api,
}

impl KlaviyoDestination {
    /// The connector for a configured Klaviyo account.
    pub fn new(config: &DestinationConfig) -> Result<Self, String> {
        Ok(Self {
            api: Api::key(config, "authorization", "Klaviyo-API-Key ")?,
        })
    }

    /// The destination's configured name.
    pub fn name(&self) -> &str {
        &self.api.name
    }

    /// Writes one golden change.
    pub async fn write(&self, write: &Write<'_>) -> Result<Written, SendError> {
        let Some(Object::Contact(contact)) = write.object() else {
            return Err(permanent("a Klaviyo destination takes contacts"));
        };
        if contact.email.is_empty() && contact.phone.is_empty() {
            return Err(permanent(
                "a Klaviyo profile needs an email or a phone number, and this contact has neither (or the flow's fields leave them out)",
            ));
        }
        let country = contact
            .address
            .as_ref()
            .map(|a| country_name(&a.country))
            .unwrap_or_default();
        let mut attributes = object([
            ("email", json!(contact.email)),
            ("phone_number", json!(contact.phone)),
            ("first_name", json!(contact.first_name)),
            ("last_name", json!(contact.last_name)),
            ("organization", json!(contact.company_name)),
            ("title", json!(contact.job_title)),
        ]);
        crate::values::put(
            &mut attributes,
            "location",
            Value::Object(object([("country", json!(country))])),
        );
        let body = json!({ "data": { "type": "profile", "attributes": attributes } });
        let answer = self.post("/api/profile-import", &body).await?;
        if let Some(list) = write.flow.list_id.as_deref()
            && contact.consent.as_ref().is_some_and(|c| c.marketing)
            && !contact.email.is_empty()
            && consent_is_news(write)
        {
            let source = contact
                .consent
                .as_ref()
                .map(|c| c.source.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("Switchyard");
            let body = json!({
                "data": {
                    "type": "profile-subscription-bulk-create-job",
                    "attributes": {
                        "custom_source": source,
                        "profiles": { "data": [{
                            "type": "profile",
                            "attributes": {
                                "email": contact.email,
                                "subscriptions": { "email": { "marketing": { "consent": "SUBSCRIBED" } } },
                            },
                        }] },
                    },
                    "relationships": { "list": { "data": { "type": "list", "id": list } } },
                }
            });
            self.post("/api/profile-subscription-bulk-create-jobs", &body)
                .await?;
        }
        Ok(Written::Done(answer.status))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<crate::api::Answer, SendError> {
        let url = self.api.url(path);
        self.api
            .call(Method::POST, &url, |r| {
                r.header("revision", REVISION)
                    .header("accept", JSON_API)
                    .header("content-type", JSON_API)
                    .body(body.to_string())
            })
            .await
    }
}

/// Subscribing lifts a profile's unsubscribe suppression in Klaviyo, so it is sent only when the
/// consent is new to Switchyard (a new contact, or the consent field changed) — never again on
/// every later edit, which would re-subscribe someone who unsubscribed in Klaviyo since.
fn consent_is_news(write: &Write<'_>) -> bool {
    write.change.kind == i32::from(ChangeKind::Created)
        || write
            .change
            .changed_fields
            .iter()
            .any(|f| f == "consent" || f == "marketing_consent")
}
