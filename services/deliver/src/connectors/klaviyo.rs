//! The Klaviyo destination (API revision 2026-07-15): each golden contact becomes a profile with
//! `POST /api/profile-import` (create or update, matched by email), and when the contact gave
//! marketing consent and the flow names a list, it is subscribed to that list with
//! `POST /api/profile-subscription-bulk-create-jobs`; a (paid) invoice adds its customer's
//! profile to the flow's nurture list (`POST /api/lists/{id}/relationships/profiles`). Shapes
//! from Klaviyo's published spec.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_chassis::config::DestinationConfig;
use switchyard_proto::v1::{ChangeKind, canonical_object::Object};

use super::api::Api;
use super::http::SendError;
use super::values::{country_name, object};
use super::{Write, Written, permanent};

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
        let contact = match write.object() {
            Some(Object::Contact(contact)) => contact,
            Some(Object::Invoice(_)) => return self.nurture(write).await,
            _ => {
                return Err(permanent(
                    "a Klaviyo destination takes contacts and invoices",
                ));
            }
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
        super::values::put(
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

    /// Post-sale nurture for an invoice (a flow with `when: { status: paid }`): the paying
    /// customer's profile (found or created by email with `POST /api/profile-import`, which sends
    /// the email only — the key, nothing else of the contact) is added to the flow's `list_id`
    /// with `POST /api/lists/{id}/relationships/profiles`. Adding a member twice changes nothing,
    /// and this is not a marketing subscription: consent stays as the contact's own flows set it.
    async fn nurture(&self, write: &Write<'_>) -> Result<Written, SendError> {
        let Some(list) = write.flow.list_id.as_deref() else {
            return Err(permanent(
                "a Klaviyo invoice flow needs list_id: the list paying customers are added to",
            ));
        };
        let email = customer_email(write)?;
        let body = json!({ "data": { "type": "profile", "attributes": { "email": email } } });
        let profile = self.post("/api/profile-import", &body).await?;
        let Some(id) = profile.body["data"]["id"]
            .as_str()
            .filter(|id| !id.is_empty())
        else {
            return Err(SendError::Retryable {
                status: Some(profile.status),
                retry_after: None,
                reason: "Klaviyo answered the profile import without a profile id".to_owned(),
            });
        };
        let body = json!({ "data": [{ "type": "profile", "id": id }] });
        let answer = self
            .post(&format!("/api/lists/{list}/relationships/profiles"), &body)
            .await?;
        Ok(Written::Done(answer.status))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<super::api::Answer, SendError> {
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

/// The email of an invoice's paying customer, as dedupe resolved it (`related`).
pub(crate) fn customer_email<'a>(write: &'a Write<'_>) -> Result<&'a str, SendError> {
    write
        .change
        .related
        .iter()
        .find(|r| r.field == "customer_id" && !r.email.is_empty())
        .map(|r| r.email.as_str())
        .ok_or_else(|| {
            permanent(
                "no customer to nurture: the invoice's customer is not a known contact with an email",
            )
        })
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

impl super::Connector for KlaviyoDestination {
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
