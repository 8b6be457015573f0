//! The Salesforce destination (REST API v61.0): every record upserted by an external-id field
//! holding the golden id, `PATCH /services/data/v61.0/sobjects/{Contact|Account|Opportunity}/
//! {field}/{golden id}` — Salesforce creates the record the first time (201) and updates it ever
//! after (200), so a retry or a replay never makes a second one. A record born in this org (its
//! Salesforce id in the crosswalk, from the destination's `source_system`) is updated by that id
//! instead, and given the golden id in the external-id field, so it is never created again.

use reqwest::Method;
use serde_json::json;
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::canonical_object::Object;

use super::api::Api;
use super::http::SendError;
use super::values::{date, decimal_number, object, own_id};
use super::{Write, Written, permanent};

/// The REST API version the connector speaks.
pub const API_VERSION: &str = "v61.0";
/// The external-id field records are upserted by, unless configured otherwise.
pub const DEFAULT_EXTERNAL_ID_FIELD: &str = "Switchyard_Id__c";

/// A configured Salesforce org.
#[derive(Debug)]
pub struct SalesforceDestination {
    api: Api,
    external_id_field: String,
    source_system: Option<String>,
}

impl SalesforceDestination {
    /// The connector for a configured Salesforce org.
    pub async fn new(config: &DestinationConfig, pool: Pool) -> Result<Self, String> {
        Ok(Self {
            api: Api::bearer(config, pool).await?,
            external_id_field: config
                .external_id_field
                .clone()
                .unwrap_or_else(|| DEFAULT_EXTERNAL_ID_FIELD.to_owned()),
            source_system: config.source_system.clone(),
        })
    }

    /// The destination's configured name.
    pub fn name(&self) -> &str {
        &self.api.name
    }

    /// Writes one golden change.
    pub async fn write(&self, write: &Write<'_>) -> Result<Written, SendError> {
        let country = |a: Option<&switchyard_proto::v1::Address>| {
            json!(a.map(|a| a.country.clone()).unwrap_or_default())
        };
        let (sobject, objects, mut fields) = match write.object() {
            Some(Object::Contact(c)) => (
                "Contact",
                &["contact"][..],
                object([
                    ("FirstName", json!(c.first_name)),
                    ("LastName", json!(c.last_name)),
                    ("Email", json!(c.email)),
                    ("Phone", json!(c.phone)),
                    ("Title", json!(c.job_title)),
                    ("MailingCountry", country(c.address.as_ref())),
                ]),
            ),
            Some(Object::Company(c)) => (
                "Account",
                &["company", "account"][..],
                object([
                    ("Name", json!(c.name)),
                    ("Website", json!(c.domain)),
                    ("Industry", json!(c.industry)),
                    ("BillingCountry", country(c.address.as_ref())),
                ]),
            ),
            Some(Object::Deal(d)) => (
                "Opportunity",
                &["deal", "opportunity"][..],
                object([
                    ("Name", json!(d.name)),
                    ("StageName", json!(stage_name(&d.stage))),
                    (
                        "Amount",
                        d.amount.as_ref().map(decimal_number).unwrap_or_default(),
                    ),
                    (
                        "CloseDate",
                        json!(date(d.close_date.as_ref()).unwrap_or_default()),
                    ),
                ]),
            ),
            _ => {
                return Err(permanent(
                    "a Salesforce destination takes contacts, companies and deals",
                ));
            }
        };
        let change = write.change;
        let url = match own_id(change, self.source_system.as_deref(), objects) {
            // Born in this org: updated where it is, and tagged with the golden id so that an
            // upsert by the external id finds it too.
            Some(id) => {
                fields.insert(self.external_id_field.clone(), json!(change.golden_id));
                self.api.url(&format!(
                    "/services/data/{API_VERSION}/sobjects/{sobject}/{id}"
                ))
            }
            None => self.api.url(&format!(
                "/services/data/{API_VERSION}/sobjects/{sobject}/{}/{}",
                self.external_id_field, change.golden_id
            )),
        };
        let answer = self
            .api
            .call(Method::PATCH, &url, |r| r.json(&fields))
            .await?;
        Ok(Written::Done(answer.status))
    }
}

/// The canonical deal stage as a stage of Salesforce's default opportunity stages.
fn stage_name(stage: &str) -> &str {
    match stage {
        "appointment" => "Prospecting",
        "qualified" => "Qualification",
        "presentation" => "Value Proposition",
        "decision" => "Id. Decision Makers",
        "contract" => "Negotiation/Review",
        "won" => "Closed Won",
        "lost" => "Closed Lost",
        other => other,
    }
}

impl super::Connector for SalesforceDestination {
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
