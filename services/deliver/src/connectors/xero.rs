//! The Xero destination (Accounting API 2.0): golden contacts as contacts
//! (`POST /api.xro/2.0/Contacts`), golden invoices, orders and won deals as sales invoices
//! (`POST /api.xro/2.0/Invoices`, `Type: ACCREC`). Each request names the organisation in
//! `xero-tenant-id` and carries an `Idempotency-Key` derived from the change, so a retry after a
//! lost answer gets Xero's first answer instead of a second record. A contact Xero already holds
//! with the same email (`GET /api.xro/2.0/Contacts?where=EmailAddress=="…"`) is adopted rather
//! than created again. The ids Xero gives are kept,
//! so the next change of a record updates it (by `ContactID`/`InvoiceID`); a contact also carries
//! the golden id as its `ContactNumber`.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_chassis::config::DestinationConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::v1::{Contact, ExternalRef, LineItem, Money, canonical_object::Object};

use super::api::Api;
use super::books::Books;
use super::http::SendError;
use super::ids::{Ids, Links, golden_key, ref_key};
use super::values::{date, decimal_number, display_name, idempotency_key, object, own_id, ref_in};
use super::{Write, Written, permanent};

/// Xero's limit on `Idempotency-Key` (its spec: "128 character max").
const KEY_MAX: usize = 128;

/// A configured Xero organisation.
#[derive(Debug)]
pub struct XeroDestination {
    api: Api,
    ids: Ids,
    source_system: Option<String>,
    tenant: String,
    account_code: String,
    payment_account_code: Option<String>,
    books: Books,
}

/// A sales invoice to write.
struct Document<'a> {
    number: &'a str,
    /// A paid invoice: the amount its payment records (the amount paid, else the total).
    paid: Option<&'a Money>,
    /// The Xero status: `DRAFT`, `AUTHORISED` or `VOIDED`.
    status: &'static str,
    customer: Option<&'a ExternalRef>,
    lines: &'a [LineItem],
    total: Option<&'a Money>,
    summary: &'a str,
    date: Option<String>,
    due_date: Option<String>,
}

impl XeroDestination {
    /// The connector for a configured Xero organisation.
    pub async fn new(config: &DestinationConfig, pool: Pool, links: Links) -> Result<Self, String> {
        Ok(Self {
            api: Api::bearer(config, pool.clone()).await?,
            ids: Ids::new(pool, &config.name, links),
            source_system: config.source_system.clone(),
            tenant: config
                .tenant_id
                .clone()
                .ok_or_else(|| format!("destination {}: tenant_id missing", config.name))?,
            account_code: config
                .account_code
                .clone()
                .unwrap_or_else(|| "200".to_owned()),
            payment_account_code: config.payment_account_code.clone(),
            books: Books::new(config),
        })
    }

    /// The destination's configured name.
    pub fn name(&self) -> &str {
        &self.api.name
    }

    /// Writes one golden change.
    pub async fn write(&self, write: &Write<'_>) -> Result<Written, SendError> {
        let document = match write.object() {
            Some(Object::Contact(contact)) => return self.contact(write, contact).await,
            Some(Object::Invoice(invoice)) => Document {
                number: &invoice.invoice_number,
                paid: (invoice.status == "paid")
                    .then(|| {
                        invoice
                            .amount_paid
                            .as_ref()
                            .filter(|m| m.minor_units > 0)
                            .or(invoice.total.as_ref())
                    })
                    .flatten(),
                status: match invoice.status.as_str() {
                    "draft" => "DRAFT",
                    "void" => "VOIDED",
                    _ => "AUTHORISED",
                },
                customer: invoice.customer.as_ref(),
                lines: &invoice.line_items,
                total: invoice.total.as_ref(),
                summary: &invoice.invoice_number,
                date: date(invoice.issued_at.as_ref()),
                due_date: date(invoice.due_at.as_ref()),
            },
            Some(Object::Order(order)) => Document {
                number: &order.order_number,
                paid: None,
                status: match order.status.as_str() {
                    "cancelled" => "VOIDED",
                    _ => "AUTHORISED",
                },
                customer: order.customer.as_ref(),
                lines: &order.line_items,
                total: order.total.as_ref(),
                summary: &order.order_number,
                date: date(order.placed_at.as_ref()),
                due_date: None,
            },
            Some(Object::Deal(deal)) if deal.stage == "won" => Document {
                number: "",
                paid: None,
                status: "AUTHORISED",
                customer: deal.contact.as_ref(),
                lines: &deal.line_items,
                total: deal.amount.as_ref(),
                summary: &deal.name,
                date: date(deal.close_date.as_ref()),
                due_date: None,
            },
            Some(Object::Deal(_)) => {
                return Ok(Written::Skipped(
                    "only won deals become Xero invoices".to_owned(),
                ));
            }
            _ => {
                return Err(permanent(
                    "a Xero destination takes contacts, invoices, orders and won deals",
                ));
            }
        };
        self.invoice(write, &document).await
    }

    /// `POST /api.xro/2.0/{collection}` with the tenant and an idempotency key for `what`.
    async fn post(
        &self,
        write: &Write<'_>,
        collection: &str,
        what: &str,
        body: &Value,
    ) -> Result<super::api::Answer, SendError> {
        let url = self.api.url(&format!("/api.xro/2.0/{collection}"));
        let key = idempotency_key(write.key, what, KEY_MAX);
        self.api
            .call(Method::POST, &url, |r| {
                r.header("xero-tenant-id", &self.tenant)
                    .header("idempotency-key", &key)
                    .header("accept", "application/json")
                    .json(body)
            })
            .await
    }

    /// The one active contact Xero holds with `email` (its `EmailAddress` filter ignores case),
    /// if any (see [`Ids::adopt`](super::ids::Ids::adopt)).
    async fn existing(&self, write: &Write<'_>, email: &str) -> Result<Option<String>, SendError> {
        if email.is_empty() {
            return Ok(None);
        }
        // The filter is a string literal of Xero's `where` syntax: a quote or backslash escaped.
        let literal = email.replace('\\', "\\\\").replace('"', "\\\"");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("where", &format!("EmailAddress==\"{literal}\""))
            .finish();
        let url = self.api.url(&format!("/api.xro/2.0/Contacts?{query}"));
        let answer = self
            .api
            .call(Method::GET, &url, |r| {
                r.header("xero-tenant-id", &self.tenant)
                    .header("accept", "application/json")
            })
            .await?;
        let ids: Vec<&str> = answer.body["Contacts"]
            .as_array()
            .map(|found| {
                found
                    .iter()
                    .filter_map(|c| c["ContactID"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        self.ids
            .adopt(write, ("Xero", "contacts"), &ids, false)
            .await
    }

    async fn contact(&self, write: &Write<'_>, contact: &Contact) -> Result<Written, SendError> {
        let change = write.change;
        let mut keys = vec![golden_key("contact", &change.golden_id)];
        keys.extend(change.external_refs.iter().map(ref_key));
        // Held until the new id is kept: no other write creates this record meanwhile.
        let _claim = self.ids.claim(&keys, write.key).await?;
        let known = self
            .ids
            .known_or_adopted(
                own_id(change, self.source_system.as_deref(), &["contact"]),
                &keys,
                // A record made in the vendor by hand, before Switchyard: adopted, never doubled.
                self.existing(write, &contact.email),
            )
            .await?;
        let name = display_name(contact);
        let mut fields = object([
            ("ContactID", json!(known.clone().unwrap_or_default())),
            ("ContactNumber", json!(change.golden_id)),
            ("Name", json!(name)),
            ("FirstName", json!(contact.first_name)),
            ("LastName", json!(contact.last_name)),
            ("EmailAddress", json!(contact.email)),
        ]);
        if !contact.phone.is_empty() {
            fields.insert(
                "Phones".to_owned(),
                json!([{ "PhoneType": "DEFAULT", "PhoneNumber": contact.phone }]),
            );
        }
        if let Some(address) = contact.address.as_ref().filter(|a| !a.country.is_empty()) {
            fields.insert(
                "Addresses".to_owned(),
                json!([{ "AddressType": "STREET", "Country": address.country }]),
            );
        }
        if known.is_none() && name.is_empty() {
            return Err(permanent(
                "a new Xero contact needs a name or an email, and the flow's fields leave none",
            ));
        }
        let body = json!({ "Contacts": [fields] });
        // Its own key for a create and for an update: the retry of a create whose answer was
        // lost finds the contact by its email and updates it, a different request.
        let what = if known.is_some() {
            "contact:update"
        } else {
            "contact"
        };
        let answer = self.post(write, "Contacts", what, &body).await?;
        if known.is_none()
            && let Some(id) = answer.body["Contacts"][0]["ContactID"].as_str()
        {
            self.ids.keep(&keys, id).await?;
        }
        Ok(Written::Done(answer.status))
    }

    async fn invoice(
        &self,
        write: &Write<'_>,
        document: &Document<'_>,
    ) -> Result<Written, SendError> {
        let golden = golden_key(&write.change.object_type, &write.change.golden_id);
        // The invoice and, when Xero creates it by name, its contact: no other write creates
        // either meanwhile.
        let mut claimed = vec![golden.clone()];
        claimed.extend(document.customer.map(ref_key));
        let _claim = self.ids.claim(&claimed, write.key).await?;
        let known = self.ids.find(std::slice::from_ref(&golden)).await?;
        if document.paid.is_some()
            && self
                .ids
                .find(&[format!("payment:{golden}")])
                .await?
                .is_some()
        {
            // Xero refuses to edit a paid invoice; its payment is recorded already.
            return Ok(Written::Skipped(
                "the invoice is paid in Xero and its payment recorded: nothing to change"
                    .to_owned(),
            ));
        }
        if known.is_none() && document.status == "VOIDED" {
            return Ok(Written::Skipped(
                "a void document Xero never had is not written".to_owned(),
            ));
        }
        let Some(reference) = document.customer else {
            return Err(permanent(
                "a Xero invoice needs its customer, and this record names none",
            ));
        };
        let customer_key = ref_key(reference);
        let contact_id = match ref_in(reference, self.source_system.as_deref()) {
            Some(id) => Some(id.to_owned()),
            None => self.ids.find(std::slice::from_ref(&customer_key)).await?,
        };
        // Xero uses the contact with this name, or creates it: its id comes back and is kept,
        // and a contacts flow to the same organisation finds it by the same source id.
        let contact = match &contact_id {
            Some(id) => json!({ "ContactID": id }),
            None => json!({ "Name": format!("{} customer {}", reference.system, reference.id) }),
        };
        let lines = self.lines(document)?;
        if lines.is_empty() {
            return Err(permanent(
                "a Xero invoice needs lines or a total, and this record has neither (or the flow's fields leave them out)",
            ));
        }
        let currency = document
            .total
            .map(|m| m.currency.clone())
            .or_else(|| {
                document
                    .lines
                    .iter()
                    .find_map(|l| l.unit_price.as_ref().map(|m| m.currency.clone()))
            })
            .unwrap_or_default();
        let fields = object([
            ("Type", json!("ACCREC")),
            ("InvoiceID", json!(known.clone().unwrap_or_default())),
            ("InvoiceNumber", json!(document.number)),
            ("Reference", json!(document.summary)),
            ("Contact", contact),
            ("Date", json!(document.date)),
            ("DueDate", json!(document.due_date)),
            ("LineAmountTypes", json!("Exclusive")),
            ("CurrencyCode", json!(currency)),
            ("Status", json!(document.status)),
            ("LineItems", Value::Array(lines)),
        ]);
        let body = json!({ "Invoices": [fields] });
        let answer = self.post(write, "Invoices", "invoice", &body).await?;
        let written = &answer.body["Invoices"][0];
        if known.is_none()
            && let Some(id) = written["InvoiceID"].as_str()
        {
            self.ids.keep(std::slice::from_ref(&golden), id).await?;
        }
        if contact_id.is_none()
            && let Some(id) = written["Contact"]["ContactID"].as_str()
        {
            self.ids.keep(&[customer_key], id).await?;
        }
        if let Some(amount) = document.paid {
            let invoice_id = known
                .as_deref()
                .or_else(|| written["InvoiceID"].as_str())
                .unwrap_or_default()
                .to_owned();
            self.payment(write, &golden, &invoice_id, amount).await?;
        }
        Ok(Written::Done(answer.status))
    }

    /// Records the payment of a paid invoice against it, once: `PUT /api.xro/2.0/Payments`
    /// (`createPayments`) to `payment_account_code`, dated the day deliver learns of it; the
    /// payment's id is kept, so a later change of the paid invoice pays nothing more.
    async fn payment(
        &self,
        write: &Write<'_>,
        golden: &str,
        invoice_id: &str,
        amount: &Money,
    ) -> Result<(), SendError> {
        // Without a bank account the organisation records payments itself (most reconcile them
        // from their bank feed, where a payment recorded here as well would be counted twice).
        let Some(account) = &self.payment_account_code else {
            return Ok(());
        };
        let key = format!("payment:{golden}");
        let Some(_claim) = self.ids.claim_once(&key, write.key).await? else {
            return Ok(());
        };
        if invoice_id.is_empty() {
            return Err(SendError::Retryable {
                status: None,
                retry_after: None,
                reason: "Xero answered the invoice without its InvoiceID; the payment waits"
                    .to_owned(),
            });
        }
        let payment = object([
            ("Invoice", json!({ "InvoiceID": invoice_id })),
            ("Account", json!({ "Code": account })),
            ("Amount", decimal_number(amount)),
            // The day deliver learns the invoice is paid: the change carries no payment date.
            (
                "Date",
                json!(date(Some(&switchyard_proto::Timestamp {
                    seconds: switchyard_chassis::unix_now(),
                    nanos: 0,
                }))),
            ),
        ]);
        let url = self.api.url("/api.xro/2.0/Payments");
        let idempotency = idempotency_key(write.key, "payment", KEY_MAX);
        let body = json!({ "Payments": [payment] });
        let answer = self
            .api
            .call(Method::PUT, &url, |r| {
                r.header("xero-tenant-id", &self.tenant)
                    .header("idempotency-key", &idempotency)
                    .header("accept", "application/json")
                    .json(&body)
            })
            .await?;
        if let Some(id) = answer.body["Payments"][0]["PaymentID"].as_str() {
            self.ids.keep(&[key], id).await?;
        }
        Ok(())
    }

    /// Lines booked to the configured sales account, with the item code for the line's SKU
    /// and the tax type for its rate when the destination configures them: quantity × unit
    /// amount, or one unit of the line's total when it has no unit price; a record without
    /// lines becomes one line of its total.
    fn lines(&self, document: &Document<'_>) -> Result<Vec<Value>, SendError> {
        let mut lines = Vec::new();
        for line in document.lines {
            let description = if line.description.is_empty() {
                line.sku.as_str()
            } else {
                line.description.as_str()
            };
            let (quantity, unit) = match (&line.unit_price, &line.total) {
                (Some(unit), _) => (line.quantity, unit),
                (None, Some(total)) => (1, total),
                (None, None) => continue,
            };
            let mut fields = object([
                ("Description", json!(description)),
                ("Quantity", json!(quantity)),
                ("UnitAmount", decimal_number(unit)),
                ("AccountCode", json!(self.account_code)),
            ]);
            if let Some(code) = self.books.item(line) {
                fields.insert("ItemCode".to_owned(), json!(code));
            }
            if let Some(tax) = self.books.tax_code(line)? {
                fields.insert("TaxType".to_owned(), json!(tax));
            }
            lines.push(Value::Object(fields));
        }
        if lines.is_empty()
            && let Some(total) = document.total
        {
            // No rate is known for a bare total: the account's default tax type applies.
            lines.push(json!({
                "Description": if document.summary.is_empty() { "Total" } else { document.summary },
                "Quantity": 1,
                "UnitAmount": decimal_number(total),
                "AccountCode": self.account_code,
            }));
        }
        Ok(lines)
    }
}

impl super::Connector for XeroDestination {
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
