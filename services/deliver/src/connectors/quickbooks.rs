//! The QuickBooks Online destination (Accounting API v3, minor version 75): golden contacts as
//! customers, golden invoices and won deals as invoices (a paid invoice also gets its payment,
//! once, linked to it), golden orders as sales receipts. Every
//! POST carries `requestid`, Intuit's idempotency key, derived from the change and what is
//! written, so a retry or a redelivery gets Intuit's first answer instead of a second record. The
//! ids Intuit gives are kept, and a customer QuickBooks already holds (same email, else same
//! display name) is adopted rather than created: the next change of the record is a sparse
//! update of the same entity (with its current `SyncToken`), and a document finds the customer
//! its source id points at — or creates that customer first.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{
    Contact, ExternalRef, Invoice, LineItem, Money, canonical_object::Object,
};

use super::api::Api;
use super::books::Books;
use super::http::SendError;
use super::ids::{Ids, Links, golden_key, ref_key};
use super::values::{date, decimal_number, display_name, idempotency_key, object, own_id, ref_in};
use super::{Write, Written, permanent};

/// The minor version every call names (the one Intuit's current docs use).
pub const MINOR_VERSION: &str = "75";
/// A `requestid` longer than this is sent as its MD5.
const REQUEST_ID_MAX: usize = 50;
/// QuickBooks' limit on `DocNumber`; longer numbers are left to QuickBooks to assign.
const DOC_NUMBER_MAX: usize = 21;

/// A configured QuickBooks Online company.
#[derive(Debug)]
pub struct QuickbooksDestination {
    api: Api,
    ids: Ids,
    source_system: Option<String>,
    realm: String,
    item_id: String,
    books: Books,
}

/// A sales document QuickBooks holds: its answer's status, its id, its customer's id.
struct Booked {
    status: u16,
    id: Option<String>,
    customer: String,
}

/// A sales document to write: an invoice or a sales receipt.
struct Document<'a> {
    /// `invoice` or `salesreceipt` (the URL segment); the answer holds `Invoice`/`SalesReceipt`.
    entity: &'static str,
    number: &'a str,
    customer: Option<&'a ExternalRef>,
    lines: &'a [LineItem],
    total: Option<&'a Money>,
    /// Describes the one line written when the record has no lines.
    summary: &'a str,
    txn_date: Option<String>,
    due_date: Option<String>,
}

impl QuickbooksDestination {
    /// The connector for a configured QuickBooks company.
    pub async fn new(config: &DestinationConfig, pool: Pool, links: Links) -> Result<Self, String> {
        Ok(Self {
            api: Api::bearer(config, pool.clone()).await?,
            ids: Ids::new(pool, &config.name, links),
            source_system: config.source_system.clone(),
            realm: config
                .realm_id
                .clone()
                .ok_or_else(|| format!("destination {}: realm_id missing", config.name))?,
            item_id: config.item_id.clone().unwrap_or_else(|| "1".to_owned()),
            books: Books::new(config),
        })
    }

    /// The destination's configured name.
    pub fn name(&self) -> &str {
        &self.api.name
    }

    /// Writes one golden change.
    pub async fn write(&self, write: &Write<'_>) -> Result<Written, SendError> {
        match write.object() {
            Some(Object::Contact(contact)) => self.customer(write, contact).await,
            Some(Object::Invoice(invoice)) => {
                let document = Document {
                    entity: "invoice",
                    number: &invoice.invoice_number,
                    customer: invoice.customer.as_ref(),
                    lines: &invoice.line_items,
                    total: invoice.total.as_ref(),
                    summary: &invoice.invoice_number,
                    txn_date: date(invoice.issued_at.as_ref()),
                    due_date: date(invoice.due_at.as_ref()),
                };
                let booked = self.book(write, &document).await?;
                if invoice.status == "paid" {
                    self.payment(write, invoice, &booked).await?;
                }
                Ok(Written::Done(booked.status))
            }
            Some(Object::Order(order)) => {
                let document = Document {
                    entity: "salesreceipt",
                    number: &order.order_number,
                    customer: order.customer.as_ref(),
                    lines: &order.line_items,
                    total: order.total.as_ref(),
                    summary: &order.order_number,
                    txn_date: date(order.placed_at.as_ref()),
                    due_date: None,
                };
                self.document(write, &document).await
            }
            Some(Object::Deal(deal)) if deal.stage == "won" => {
                let document = Document {
                    entity: "invoice",
                    number: "",
                    customer: deal.contact.as_ref(),
                    lines: &deal.line_items,
                    total: deal.amount.as_ref(),
                    summary: &deal.name,
                    txn_date: date(deal.close_date.as_ref()),
                    due_date: None,
                };
                self.document(write, &document).await
            }
            Some(Object::Deal(_)) => Ok(Written::Skipped(
                "only won deals become QuickBooks invoices".to_owned(),
            )),
            _ => Err(permanent(
                "a QuickBooks destination takes contacts, invoices, orders and won deals",
            )),
        }
    }

    /// `POST /v3/company/{realm}/{entity}?requestid=…&minorversion=75`.
    async fn post(
        &self,
        write: &Write<'_>,
        entity: &str,
        what: &str,
        body: &Value,
    ) -> Result<super::api::Answer, SendError> {
        let mut url = reqwest::Url::parse(
            &self
                .api
                .url(&format!("/v3/company/{}/{entity}", self.realm)),
        )
        .map_err(|e| permanent(&format!("QuickBooks URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair(
                "requestid",
                &idempotency_key(write.key, what, REQUEST_ID_MAX),
            )
            .append_pair("minorversion", MINOR_VERSION);
        self.api
            .call(Method::POST, url.as_str(), |r| {
                r.header("accept", "application/json").json(body)
            })
            .await
    }

    /// The entity's current `SyncToken`, which an update must carry.
    async fn sync_token(
        &self,
        entity: &str,
        answer_key: &str,
        id: &str,
    ) -> Result<Value, SendError> {
        let url = self.api.url(&format!(
            "/v3/company/{}/{entity}/{id}?minorversion={MINOR_VERSION}",
            self.realm
        ));
        let answer = self
            .api
            .call(Method::GET, &url, |r| {
                r.header("accept", "application/json")
            })
            .await?;
        match &answer.body[answer_key]["SyncToken"] {
            Value::String(token) => Ok(json!(token)),
            _ => Err(SendError::Retryable {
                status: Some(answer.status),
                retry_after: None,
                reason: format!("QuickBooks answered the {entity} read without a SyncToken"),
            }),
        }
    }

    /// The one active customer QuickBooks holds for `contact`: by `PrimaryEmailAddr`, else by
    /// `DisplayName` — which QuickBooks keeps unique, so creating it would be refused — when
    /// that customer has no other email (see [`Ids::adopt`](super::ids::Ids::adopt) for several).
    async fn existing(
        &self,
        write: &Write<'_>,
        contact: &Contact,
    ) -> Result<Option<String>, SendError> {
        if !contact.email.is_empty() {
            let found = self
                .query_customers("PrimaryEmailAddr", &contact.email)
                .await?;
            let ids: Vec<&str> = found.iter().filter_map(|c| c["Id"].as_str()).collect();
            if let Some(id) = self
                .ids
                .adopt(write, ("QuickBooks", "customers"), &ids, false)
                .await?
            {
                return Ok(Some(id));
            }
        }
        let name = display_name(contact);
        if name.is_empty() {
            return Ok(None);
        }
        let found = self.query_customers("DisplayName", &name).await?;
        let Some(customer) = found.first() else {
            return Ok(None);
        };
        let id = customer["Id"].as_str().unwrap_or_default();
        let theirs = customer["PrimaryEmailAddr"]["Address"]
            .as_str()
            .unwrap_or_default();
        if theirs.is_empty() || theirs.eq_ignore_ascii_case(&contact.email) {
            return Ok(Some(id.to_owned()));
        }
        Err(permanent(&format!(
            "QuickBooks customer {id} already has this contact's display name with another email: \
             nothing written; rename one of them in QuickBooks, then replay"
        )))
    }

    /// `GET /v3/company/{realm}/query` for the active customers whose `field` is `value`.
    async fn query_customers(&self, field: &str, value: &str) -> Result<Vec<Value>, SendError> {
        // A string literal of Intuit's query language: a quote or backslash escaped.
        let literal = value.replace('\\', "\\\\").replace('\'', "\\'");
        let mut url =
            reqwest::Url::parse(&self.api.url(&format!("/v3/company/{}/query", self.realm)))
                .map_err(|e| permanent(&format!("QuickBooks URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair(
                "query",
                &format!("select * from Customer where {field} = '{literal}' and Active = true"),
            )
            .append_pair("minorversion", MINOR_VERSION);
        let answer = self
            .api
            .call(Method::GET, url.as_str(), |r| {
                r.header("accept", "application/json")
            })
            .await?;
        Ok(answer.body["QueryResponse"]["Customer"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    async fn customer(&self, write: &Write<'_>, contact: &Contact) -> Result<Written, SendError> {
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
                self.existing(write, contact),
            )
            .await?;
        let country = contact
            .address
            .as_ref()
            .map(|a| a.country.clone())
            .unwrap_or_default();
        let mut body = object([
            ("DisplayName", json!(display_name(contact))),
            ("GivenName", json!(contact.first_name)),
            ("FamilyName", json!(contact.last_name)),
            ("CompanyName", json!(contact.company_name)),
            ("Title", json!(contact.job_title)),
            (
                "PrimaryEmailAddr",
                Value::Object(object([("Address", json!(contact.email))])),
            ),
            (
                "PrimaryPhone",
                Value::Object(object([("FreeFormNumber", json!(contact.phone))])),
            ),
            (
                "BillAddr",
                Value::Object(object([("Country", json!(country))])),
            ),
        ]);
        if body.is_empty() {
            return Err(permanent(
                "a QuickBooks customer needs a name or an email, and the flow's fields leave none",
            ));
        }
        let answer = match known {
            Some(id) => {
                let sync = self.sync_token("customer", "Customer", &id).await?;
                body.insert("Id".to_owned(), json!(id));
                body.insert("SyncToken".to_owned(), sync);
                body.insert("sparse".to_owned(), json!(true));
                self.post(write, "customer", "customer:update", &Value::Object(body))
                    .await?
            }
            None => {
                let answer = self
                    .post(write, "customer", "customer", &Value::Object(body))
                    .await?;
                if let Some(id) = answer.body["Customer"]["Id"].as_str() {
                    self.ids.keep(&keys, id).await?;
                }
                answer
            }
        };
        Ok(Written::Done(answer.status))
    }

    /// The QuickBooks id of the customer `reference` points at: the id itself when it is one of
    /// this company's, else the one kept when deliver created it, else a customer created now
    /// (named after the reference; a contacts flow to the same company fills in the rest, as it
    /// finds the customer by the same source id).
    async fn customer_ref(
        &self,
        write: &Write<'_>,
        reference: Option<&ExternalRef>,
    ) -> Result<String, SendError> {
        let Some(reference) = reference else {
            return Err(permanent(
                "a QuickBooks sales document needs its customer, and this record names none",
            ));
        };
        if let Some(id) = ref_in(reference, self.source_system.as_deref()) {
            return Ok(id.to_owned());
        }
        let key = ref_key(reference);
        let _claim = self
            .ids
            .claim(std::slice::from_ref(&key), write.key)
            .await?;
        if let Some(id) = self.ids.find(std::slice::from_ref(&key)).await? {
            return Ok(id);
        }
        let body = json!({
            "DisplayName": format!("{} customer {}", reference.system, reference.id),
        });
        let answer = self.post(write, "customer", "customer", &body).await?;
        let id = answer.body["Customer"]["Id"]
            .as_str()
            .ok_or_else(|| SendError::Retryable {
                status: Some(answer.status),
                retry_after: None,
                reason: "QuickBooks answered the customer create without an Id".to_owned(),
            })?
            .to_owned();
        self.ids.keep(&[key], &id).await?;
        Ok(id)
    }

    async fn document(
        &self,
        write: &Write<'_>,
        document: &Document<'_>,
    ) -> Result<Written, SendError> {
        Ok(Written::Done(self.book(write, document).await?.status))
    }

    /// Records the payment of a paid invoice against the invoice booked for it, once:
    /// `POST …/payment` with the invoice as its `LinkedTxn`, for the amount paid (else the
    /// total). The payment's id is kept, so a later change of the paid invoice pays nothing more.
    async fn payment(
        &self,
        write: &Write<'_>,
        invoice: &Invoice,
        booked: &Booked,
    ) -> Result<(), SendError> {
        let Some(invoice_id) = &booked.id else {
            return Err(SendError::Retryable {
                status: Some(booked.status),
                retry_after: None,
                reason: "QuickBooks answered the invoice without its Id; the payment waits"
                    .to_owned(),
            });
        };
        let key = format!(
            "payment:{}",
            golden_key(&write.change.object_type, &write.change.golden_id)
        );
        let Some(_claim) = self.ids.claim_once(&key, write.key).await? else {
            return Ok(());
        };
        let Some(amount) = invoice
            .amount_paid
            .as_ref()
            .filter(|m| m.minor_units > 0)
            .or(invoice.total.as_ref())
        else {
            return Err(permanent(
                "a paid invoice without an amount paid or a total: no payment recorded",
            ));
        };
        let body = json!({
            "CustomerRef": { "value": booked.customer },
            "TotalAmt": decimal_number(amount),
            "Line": [{
                "Amount": decimal_number(amount),
                "LinkedTxn": [{ "TxnId": invoice_id, "TxnType": "Invoice" }],
            }],
        });
        let answer = self.post(write, "payment", "payment", &body).await?;
        if let Some(id) = answer.body["Payment"]["Id"].as_str() {
            self.ids.keep(&[key], id).await?;
        }
        Ok(())
    }

    /// Creates or updates the sales document; what QuickBooks answered, its id and customer.
    async fn book(&self, write: &Write<'_>, document: &Document<'_>) -> Result<Booked, SendError> {
        let customer = self.customer_ref(write, document.customer).await?;
        let lines = self.lines(document)?;
        if lines.is_empty() {
            return Err(permanent(
                "a QuickBooks sales document needs lines or a total, and this record has neither (or the flow's fields leave them out)",
            ));
        }
        let mut body = object([
            ("CustomerRef", json!({ "value": customer })),
            ("Line", Value::Array(lines)),
            (
                "DocNumber",
                json!(if document.number.len() <= DOC_NUMBER_MAX {
                    document.number
                } else {
                    ""
                }),
            ),
            ("TxnDate", json!(document.txn_date)),
            ("DueDate", json!(document.due_date)),
        ]);
        let entity = document.entity;
        let answer_key = if entity == "invoice" {
            "Invoice"
        } else {
            "SalesReceipt"
        };
        let golden = golden_key(&write.change.object_type, &write.change.golden_id);
        let _claim = self
            .ids
            .claim(std::slice::from_ref(&golden), write.key)
            .await?;
        let (answer, id) = match self.ids.find(std::slice::from_ref(&golden)).await? {
            Some(id) => {
                let sync = self.sync_token(entity, answer_key, &id).await?;
                body.insert("Id".to_owned(), json!(id));
                body.insert("SyncToken".to_owned(), sync);
                body.insert("sparse".to_owned(), json!(true));
                let answer = self
                    .post(
                        write,
                        entity,
                        &format!("{entity}:update"),
                        &Value::Object(body),
                    )
                    .await?;
                (answer, Some(id))
            }
            None => {
                let answer = self
                    .post(write, entity, entity, &Value::Object(body))
                    .await?;
                let id = answer.body[answer_key]["Id"].as_str().map(str::to_owned);
                if let Some(id) = &id {
                    self.ids.keep(&[golden], id).await?;
                }
                (answer, id)
            }
        };
        Ok(Booked {
            status: answer.status,
            id,
            customer,
        })
    }

    /// `SalesItemLineDetail` lines booked to the item configured for the line's SKU (else the
    /// destination's `item_id`) with the tax code for its rate. A record without lines becomes
    /// one line of its total.
    fn lines(&self, document: &Document<'_>) -> Result<Vec<Value>, SendError> {
        let fallback = json!({ "value": self.item_id });
        let mut lines = Vec::new();
        for line in document.lines {
            let item = self
                .books
                .item(line)
                .map_or_else(|| fallback.clone(), |id| json!({ "value": id }));
            lines.extend(sales_line(line, item, self.books.tax_code(line)?));
        }
        if lines.is_empty()
            && let Some(total) = document.total
        {
            // No rate is known for a bare total: the item's default tax code applies.
            lines.push(Value::Object(object([
                ("DetailType", json!("SalesItemLineDetail")),
                ("Amount", decimal_number(total)),
                ("Description", json!(document.summary)),
                ("SalesItemLineDetail", json!({ "ItemRef": fallback })),
            ])));
        }
        Ok(lines)
    }
}

/// One `SalesItemLineDetail` line: `Amount` is quantity × unit price (QuickBooks checks it), or
/// the line's total when it has no unit price; none for a line with neither.
fn sales_line(line: &LineItem, item: Value, tax: Option<&str>) -> Option<Value> {
    let description = if line.description.is_empty() {
        line.sku.as_str()
    } else {
        line.description.as_str()
    };
    let (amount, mut detail) = match &line.unit_price {
        Some(unit) => {
            let amount = Money {
                minor_units: unit.minor_units.checked_mul(line.quantity)?,
                currency: unit.currency.clone(),
            };
            (
                decimal_number(&amount),
                json!({ "ItemRef": item, "Qty": line.quantity, "UnitPrice": decimal_number(unit) }),
            )
        }
        None => (
            decimal_number(line.total.as_ref()?),
            json!({ "ItemRef": item }),
        ),
    };
    if let Some(code) = tax {
        detail["TaxCodeRef"] = json!({ "value": code });
    }
    Some(Value::Object(object([
        ("DetailType", json!("SalesItemLineDetail")),
        ("Amount", amount),
        ("Description", json!(description)),
        ("SalesItemLineDetail", detail),
    ])))
}

impl super::Connector for QuickbooksDestination {
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
