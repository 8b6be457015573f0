//! Contract-checked records (JSON maps, as mappings build them) into the protobuf messages the
//! bus carries, one function per canonical object.

use serde_json::{Map, Value};
use switchyard_proto::v1::{
    Address, Company, Consent, Contact, Deal, ExternalRef, Invoice, Lead, LineItem, Money, Order,
    Product, canonical_object::Object,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The message for `object` (`contact`, `invoice`, …) built from its checked record; `None` for
/// an object name no contract defines. `source` names the system the record's references
/// (customer, company) point into.
pub fn build(object: &str, record: &Map<String, Value>, source: &str) -> Option<Object> {
    let r = Record { record, source };
    Some(match object {
        "contact" => Object::Contact(Contact {
            email: r.text("email"),
            phone: r.text("phone"),
            first_name: r.text("first_name"),
            last_name: r.text("last_name"),
            company_name: r.text("company_name"),
            job_title: r.text("job_title"),
            lifecycle_stage: r.text("lifecycle_stage"),
            consent: r.consent(),
            address: r.address(),
        }),
        "lead" => Object::Lead(Lead {
            email: r.text("email"),
            phone: r.text("phone"),
            first_name: r.text("first_name"),
            last_name: r.text("last_name"),
            company_name: r.text("company_name"),
            lead_source: r.text("lead_source"),
            status: r.text("status"),
            consent: r.consent(),
        }),
        "company" => Object::Company(Company {
            name: r.text("name"),
            domain: r.text("domain"),
            tax_id: r.text("tax_id"),
            address: r.address(),
            industry: r.text("industry"),
        }),
        "product" => Object::Product(Product {
            sku: r.text("sku"),
            name: r.text("name"),
            description: r.text("description"),
            unit_price: r.money("unit_price"),
            active: record
                .get("active")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            tax_rate_bp: r.int("tax_rate_bp"),
        }),
        "deal" => Object::Deal(Deal {
            name: r.text("name"),
            stage: r.text("stage"),
            amount: r.money("amount"),
            close_date: r.time("close_date"),
            contact: r.reference("contact_id", "contact"),
            company: r.reference("company_id", "company"),
            line_items: r.line_items(),
        }),
        "order" => Object::Order(Order {
            order_number: r.text("order_number"),
            status: r.text("status"),
            customer: r.reference("customer_id", "contact"),
            line_items: r.line_items(),
            subtotal: r.money("subtotal"),
            tax: r.money("tax"),
            total: r.money("total"),
            placed_at: r.time("placed_at"),
            shipping_address: None,
        }),
        "invoice" => Object::Invoice(Invoice {
            invoice_number: r.text("invoice_number"),
            status: r.text("status"),
            customer: r.reference("customer_id", "contact"),
            line_items: r.line_items(),
            subtotal: r.money("subtotal"),
            tax: r.money("tax"),
            total: r.money("total"),
            amount_paid: r.money("amount_paid"),
            issued_at: r.time("issued_at"),
            due_at: r.time("due_at"),
            deal: r.reference("deal_id", "deal"),
        }),
        _ => return None,
    })
}

/// Typed reads from a checked record (the contract already vouched for the types).
struct Record<'a> {
    record: &'a Map<String, Value>,
    source: &'a str,
}

impl Record<'_> {
    fn text(&self, name: &str) -> String {
        text(self.record.get(name))
    }

    fn int(&self, name: &str) -> i32 {
        self.record
            .get(name)
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or_default()
    }

    fn money(&self, name: &str) -> Option<Money> {
        money(self.record.get(name))
    }

    fn time(&self, name: &str) -> Option<switchyard_proto::Timestamp> {
        timestamp(self.record.get(name))
    }

    fn consent(&self) -> Option<Consent> {
        self.record
            .get("marketing_consent")
            .and_then(Value::as_bool)
            .map(|marketing| Consent {
                marketing,
                source: self.text("consent_source"),
                given_at: None,
            })
    }

    /// The address parts the contracts carry flat (`country`, `postal_code`), if any.
    fn address(&self) -> Option<Address> {
        let (country, postal_code) = (self.text("country"), self.text("postal_code"));
        (!country.is_empty() || !postal_code.is_empty()).then(|| Address {
            country,
            postal_code,
            ..Default::default()
        })
    }

    /// A reference to another record of the same source system, by its id there.
    fn reference(&self, name: &str, object: &str) -> Option<ExternalRef> {
        let id = self.text(name);
        (!id.is_empty()).then(|| ExternalRef {
            system: self.source.to_owned(),
            object: object.to_owned(),
            id,
        })
    }

    fn line_items(&self) -> Vec<LineItem> {
        let Some(Value::Array(items)) = self.record.get("line_items") else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(Value::as_object)
            .map(|item| LineItem {
                sku: text(item.get("sku")),
                description: text(item.get("description")),
                quantity: item.get("quantity").and_then(Value::as_i64).unwrap_or(1),
                unit_price: money(item.get("unit_price")),
                tax_rate_bp: item
                    .get("tax_rate_bp")
                    .and_then(Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok())
                    .unwrap_or_default(),
                total: money(item.get("total")),
            })
            .collect()
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn money(value: Option<&Value>) -> Option<Money> {
    let money = value?.as_object()?;
    Some(Money {
        minor_units: money.get("minor_units")?.as_i64()?,
        currency: text(money.get("currency")),
    })
}

/// An RFC 3339 date-time, or a `YYYY-MM-DD` date as midnight UTC.
fn timestamp(value: Option<&Value>) -> Option<switchyard_proto::Timestamp> {
    let raw = value?.as_str()?;
    let at = OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
        let day = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(raw, day)
            .ok()
            .map(|d| d.midnight().assume_utc())
    })?;
    Some(switchyard_proto::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_invoice_record_becomes_an_invoice_with_money_dates_and_lines() {
        let record = json!({
            "invoice_number": "1037", "status": "paid", "customer_id": "58",
            "total": {"minor_units": 36250, "currency": "USD"},
            "issued_at": "2026-11-01",
            "line_items": [{"sku": "GARDEN-1", "quantity": 5, "unit_price": {"minor_units": 7250, "currency": "USD"}}]
        });
        let Some(Object::Invoice(invoice)) =
            build("invoice", record.as_object().expect("map"), "qbo")
        else {
            panic!("an invoice");
        };
        assert_eq!(invoice.total.map(|m| m.minor_units), Some(36250));
        assert_eq!(invoice.issued_at.map(|t| t.seconds), Some(1_793_491_200));
        assert_eq!(
            invoice.customer.map(|c| (c.system, c.object, c.id)),
            Some(("qbo".into(), "contact".into(), "58".into()))
        );
        assert_eq!(invoice.line_items[0].quantity, 5);
        assert_eq!(invoice.line_items[0].sku, "GARDEN-1");
        assert!(build("spaceship", record.as_object().expect("map"), "qbo").is_none());
    }
}
