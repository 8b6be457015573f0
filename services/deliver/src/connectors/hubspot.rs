//! The HubSpot destination (CRM v3 objects API): contacts upserted by email and companies by
//! domain (`POST /crm/v3/objects/{contacts,companies}/batch/upsert`, one input per change, so a
//! repeat updates the same record); deals patched by their HubSpot id
//! (`PATCH /crm/v3/objects/deals/{dealId}`) when the crosswalk or deliver's own ids know it,
//! created (`POST /crm/v3/objects/deals`) otherwise, the new id kept for the next change; an
//! invoice moves the deal it settles to the flow's `deal_stage` (default `closedwon`).

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{Company, Contact, Deal, canonical_object::Object};

use super::api::Api;
use super::http::SendError;
use super::ids::{Ids, Links, golden_key};
use super::values::{decimal_text, object, own_id};
use super::{Write, Written, permanent};

/// A configured HubSpot account (portal).
#[derive(Debug)]
pub struct HubspotDestination {
    api: Api,
    ids: Ids,
    source_system: Option<String>,
    /// The unique deal property new deals are upserted by (`deal_id_property`).
    deal_id_property: Option<String>,
    /// The company property the tax id goes to (`tax_id_property`); HubSpot has none of its own.
    tax_id_property: Option<String>,
}

impl HubspotDestination {
    /// The connector for a configured HubSpot portal.
    pub async fn new(config: &DestinationConfig, pool: Pool, links: Links) -> Result<Self, String> {
        Ok(Self {
            api: Api::bearer(config, pool.clone()).await?,
            ids: Ids::new(pool, &config.name, links),
            source_system: config.source_system.clone(),
            deal_id_property: config.deal_id_property.clone(),
            tax_id_property: config.tax_id_property.clone(),
        })
    }

    /// The destination's configured name.
    pub fn name(&self) -> &str {
        &self.api.name
    }

    /// Writes one golden change.
    pub async fn write(&self, write: &Write<'_>) -> Result<Written, SendError> {
        match write.object() {
            Some(Object::Contact(contact)) => self.upsert_contact(contact).await,
            Some(Object::Company(company)) => self.upsert_company(company).await,
            Some(Object::Deal(deal)) => self.write_deal(write, deal).await,
            Some(Object::Invoice(_)) => self.settle_deal(write).await,
            _ => Err(permanent(
                "a HubSpot destination takes contacts, companies, deals and invoices",
            )),
        }
    }

    /// An invoice (typically a flow with `when: { status: paid }`) moves the deal it settles to
    /// the flow's `deal_stage` (default `closedwon`) with `PATCH /crm/v3/objects/deals/{dealId}`:
    /// setting a stage is idempotent, so a retry or replay changes nothing more. The deal is the
    /// one dedupe resolved (`related`), by its id in this portal's source, else the id deliver
    /// kept when it created the deal here.
    async fn settle_deal(&self, write: &Write<'_>) -> Result<Written, SendError> {
        let Some(deal) = write
            .change
            .related
            .iter()
            .find(|r| r.field == "deal_id" && !r.golden_id.is_empty())
        else {
            return Err(permanent(
                "no deal to update: the invoice names no deal (deal_id) that Switchyard knows",
            ));
        };
        let own = self.source_system.as_deref().and_then(|system| {
            deal.external_refs
                .iter()
                .find(|r| r.system == system && r.object == "deal" && !r.id.is_empty())
        });
        let id = match own {
            Some(reference) => reference.id.clone(),
            None => self
                .ids
                .find(&[golden_key("deal", &deal.golden_id)])
                .await?
                .ok_or_else(|| {
                    permanent(
                        "the invoice's deal has no HubSpot id: it neither came from this portal's source nor was created here by Switchyard",
                    )
                })?,
        };
        let stage = write.flow.deal_stage.as_deref().unwrap_or(SETTLED_STAGE);
        let mut properties = serde_json::Map::new();
        properties.insert("dealstage".to_owned(), json!(stage));
        self.patch_deal(&id, properties).await
    }

    /// `PATCH /crm/v3/objects/deals/{dealId}` with `properties`.
    async fn patch_deal(
        &self,
        id: &str,
        properties: serde_json::Map<String, Value>,
    ) -> Result<Written, SendError> {
        let url = self.api.url(&format!("/crm/v3/objects/deals/{id}"));
        let body = json!({ "properties": properties });
        let answer = self
            .api
            .call(Method::PATCH, &url, |r| r.json(&body))
            .await?;
        Ok(Written::Done(answer.status))
    }

    async fn upsert_contact(&self, contact: &Contact) -> Result<Written, SendError> {
        if contact.email.is_empty() {
            return Err(permanent(
                "HubSpot contacts are upserted by email, and this contact has none (or the flow's fields leave it out)",
            ));
        }
        let properties = object([
            ("email", json!(contact.email)),
            ("firstname", json!(contact.first_name)),
            ("lastname", json!(contact.last_name)),
            ("phone", json!(contact.phone)),
            ("company", json!(contact.company_name)),
            ("jobtitle", json!(contact.job_title)),
            // The canonical stages are HubSpot's internal values already.
            ("lifecyclestage", json!(contact.lifecycle_stage)),
        ]);
        self.batch_upsert("contacts", "email", &contact.email, properties)
            .await
    }

    async fn upsert_company(&self, company: &Company) -> Result<Written, SendError> {
        if company.domain.is_empty() {
            return Err(permanent(
                "HubSpot companies are upserted by domain, and this company has none (or the flow's fields leave it out)",
            ));
        }
        // `industry` is left out: HubSpot's is a fixed list of its own values.
        let mut properties = object([
            ("name", json!(company.name)),
            ("domain", json!(company.domain)),
            (
                "country",
                json!(
                    company
                        .address
                        .as_ref()
                        .map(|a| a.country.clone())
                        .unwrap_or_default()
                ),
            ),
        ]);
        if let Some(property) = &self.tax_id_property
            && !company.tax_id.is_empty()
        {
            properties.insert(property.clone(), json!(company.tax_id));
        }
        self.batch_upsert("companies", "domain", &company.domain, properties)
            .await
    }

    /// One input of a batch upsert. HubSpot answers 200 (or 207 with per-input errors).
    async fn batch_upsert(
        &self,
        objects: &str,
        id_property: &str,
        id: &str,
        properties: serde_json::Map<String, Value>,
    ) -> Result<Written, SendError> {
        let body = json!({
            "inputs": [{ "idProperty": id_property, "id": id, "properties": properties }]
        });
        let url = self
            .api
            .url(&format!("/crm/v3/objects/{objects}/batch/upsert"));
        let answer = self.api.call(Method::POST, &url, |r| r.json(&body)).await?;
        if let Some(error) = answer.body["errors"].as_array().and_then(|e| e.first()) {
            return Err(SendError::Permanent {
                status: answer.status,
                reason: format!(
                    "HubSpot refused the upsert: {}",
                    error["message"].as_str().unwrap_or("no message")
                ),
            });
        }
        Ok(Written::Done(answer.status))
    }

    async fn write_deal(&self, write: &Write<'_>, deal: &Deal) -> Result<Written, SendError> {
        let mut properties = object([
            ("dealname", json!(deal.name)),
            ("dealstage", json!(deal_stage(&deal.stage))),
            (
                "amount",
                json!(deal.amount.as_ref().map(decimal_text).unwrap_or_default()),
            ),
            (
                "closedate",
                json!(super::values::date(deal.close_date.as_ref()).unwrap_or_default()),
            ),
        ]);
        let golden = golden_key("deal", &write.change.golden_id);
        let known = match own_id(write.change, self.source_system.as_deref(), &["deal"]) {
            Some(id) => Some(id.to_owned()),
            None => self.ids.find(std::slice::from_ref(&golden)).await?,
        };
        if let Some(id) = known {
            return self.patch_deal(&id, properties).await;
        }
        if !properties.contains_key("dealname") {
            return Err(permanent(
                "a new HubSpot deal needs a name, and this deal has none (or the flow's fields leave it out)",
            ));
        }
        properties
            .entry("pipeline")
            .or_insert_with(|| json!("default"));
        if let Some(property) = &self.deal_id_property {
            // Upserted by the golden id in a unique property: a repeat — after a lost answer, a
            // crash before the id was kept, another replica's write — finds the same deal.
            let golden_id = write.change.golden_id.as_str();
            properties.insert(property.clone(), json!(golden_id));
            let body = json!({ "inputs": [{
                "idProperty": property, "id": golden_id, "properties": properties,
            }] });
            let url = self.api.url("/crm/v3/objects/deals/batch/upsert");
            let answer = self.api.call(Method::POST, &url, |r| r.json(&body)).await?;
            if let Some(id) = answer.body["results"][0]["id"].as_str() {
                self.ids.keep(&[golden], id).await?;
            }
            return Ok(Written::Done(answer.status));
        }
        // Without such a property HubSpot has no idempotent create: the claim keeps two writes
        // of this deal from both creating it, and the id is kept as soon as HubSpot answers (a
        // crash in between can still leave a second deal; see the README).
        let _claim = self
            .ids
            .claim(std::slice::from_ref(&golden), write.key)
            .await?;
        if let Some(id) = self.ids.find(std::slice::from_ref(&golden)).await? {
            return self.patch_deal(&id, properties).await;
        }
        let body = json!({ "properties": properties });
        let url = self.api.url("/crm/v3/objects/deals");
        let answer = self.api.call(Method::POST, &url, |r| r.json(&body)).await?;
        let id = answer.body["id"].as_str().unwrap_or_default();
        if !id.is_empty() {
            self.ids.keep(&[golden], id).await?;
        }
        Ok(Written::Done(answer.status))
    }
}

/// The stage a paid invoice moves its deal to unless the flow names another (`deal_stage`).
const SETTLED_STAGE: &str = "closedwon";

/// The canonical deal stage as a stage of HubSpot's default sales pipeline.
fn deal_stage(stage: &str) -> &str {
    match stage {
        "appointment" => "appointmentscheduled",
        "qualified" => "qualifiedtobuy",
        "presentation" => "presentationscheduled",
        "decision" => "decisionmakerboughtin",
        "contract" => "contractsent",
        "won" => "closedwon",
        "lost" => "closedlost",
        other => other,
    }
}

impl super::Connector for HubspotDestination {
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

#[cfg(test)]
mod tests {
    #[test]
    fn stages_map_back_to_the_default_pipeline() {
        assert_eq!(super::deal_stage("won"), "closedwon");
        assert_eq!(super::deal_stage("lost"), "closedlost");
        assert_eq!(super::deal_stage("qualified"), "qualifiedtobuy");
    }
}
