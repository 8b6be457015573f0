//! The generic `webhook` destination: a JSON POST signed the Standard Webhooks way, with a
//! `webhook-id` that stays the same across retries so the receiver can drop repeats.

use std::time::SystemTime;

use serde_json::json;
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::signing::SigningKey;
use switchyard_proto::v1::{ChangeKind, GoldenChange, canonical_object};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::http::{SendError, classify, http_client, transport_error};
use super::{Write, Written};

/// A configured webhook destination.
#[derive(Debug)]
pub struct WebhookDestination {
    pub name: String,
    url: String,
    key: SigningKey,
    client: reqwest::Client,
}

impl WebhookDestination {
    /// Builds the destination; the secret was resolved from the environment by the config loader.
    pub fn new(config: &DestinationConfig) -> Result<Self, String> {
        let secret = config
            .secret()
            .ok_or_else(|| format!("destination {}: secret not resolved", config.name))?;
        let key = SigningKey::from_secret(secret)
            .map_err(|e| format!("destination {}: {e}", config.name))?;
        let client = http_client(config)?;
        Ok(Self {
            name: config.name.clone(),
            url: config.base_url().to_owned(),
            key,
            client,
        })
    }

    /// POSTs `body` with `webhook_id`; Ok carries the 2xx status.
    #[tracing::instrument(
        skip_all,
        name = "destination write",
        fields(
            otel.kind = "client",
            otel.name = "destination write",
            http.request.method = "POST",
            destination = %self.name,
            http.response.status_code = tracing::field::Empty,
        )
    )]
    pub async fn send(&self, webhook_id: &str, body: Vec<u8>) -> Result<u16, SendError> {
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json");
        for (name, value) in self.key.headers(webhook_id, timestamp, &body) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await;
        let response = response.map_err(transport_error)?;
        classify(response).await
    }
}

impl super::Connector for WebhookDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(
        &'a self,
        write: &'a Write<'a>,
    ) -> futures::future::BoxFuture<'a, Result<Written, SendError>> {
        Box::pin(async move {
            let body = payload(write.change, write.flow.fields.as_deref());
            self.send(write.key, body).await.map(Written::Done)
        })
    }
}

/// The JSON body sent to a webhook destination: Standard Webhooks' `{type, timestamp, data}`.
fn payload(change: &GoldenChange, fields: Option<&[String]>) -> Vec<u8> {
    let kind = match ChangeKind::try_from(change.kind) {
        Ok(ChangeKind::Created) => "created",
        _ => "updated",
    };
    // The source's timestamp keeps the body identical across retries.
    let timestamp = change
        .cause
        .as_ref()
        .and_then(|c| c.occurred_at)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let refs: Vec<_> = change
        .external_refs
        .iter()
        .map(|r| json!({ "system": r.system, "object": r.object, "id": r.id }))
        .collect();
    let object = change.record.as_ref().and_then(|r| r.object.as_ref());
    let mut data = match object {
        // Contacts keep the shape receivers have relied on from the start: every field present.
        Some(canonical_object::Object::Contact(contact)) => json!({
            "email": contact.email,
            "phone": contact.phone,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "company_name": contact.company_name,
            "job_title": contact.job_title,
            "lifecycle_stage": contact.lifecycle_stage,
            "marketing_consent": contact.consent.as_ref().map(|c| c.marketing),
        }),
        // Any other object as its contract names its fields (a company's name, domain, tax id).
        Some(other) => serde_json::Value::Object(other.contract_json()),
        None => json!({}),
    };
    if let Some(data) = data.as_object_mut() {
        data.insert("id".to_owned(), json!(change.golden_id));
        data.insert("version".to_owned(), json!(change.version));
        data.insert("changed_fields".to_owned(), json!(change.changed_fields));
        data.insert("external_refs".to_owned(), json!(refs));
    }
    let mut body = json!({
        "type": format!("{}.{kind}", change.object_type),
        "timestamp": timestamp,
        "data": data,
    });
    // Data minimisation: the record's fields the flow does not name are left out.
    if let (Some(fields), Some(data)) = (fields, body["data"].as_object_mut()) {
        data.retain(|key, _| {
            matches!(
                key.as_str(),
                "id" | "version" | "changed_fields" | "external_refs"
            ) || fields.iter().any(|f| f == key)
        });
    }
    serde_json::to_vec(&body).unwrap_or_default()
}
