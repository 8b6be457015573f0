//! Data minimisation: a flow with a `fields` list sends only those canonical fields. The golden
//! record is cut down before any connector sees it, so no connector can leak a field by mistake;
//! connectors leave empty fields out of their bodies, so a field cut here never reaches the
//! vendor (not even as a blank).

use switchyard_proto::v1::canonical_object::Object;

/// Clears every field of `object` that `fields` (contract names) does not name.
pub(crate) fn minimise(object: &mut Object, fields: &[String]) {
    let keep = |name: &str| fields.iter().any(|f| f == name);
    let clear = |name: &str, value: &mut String| {
        if !keep(name) {
            value.clear();
        }
    };
    match object {
        Object::Contact(c) => {
            clear("email", &mut c.email);
            clear("phone", &mut c.phone);
            clear("first_name", &mut c.first_name);
            clear("last_name", &mut c.last_name);
            clear("company_name", &mut c.company_name);
            clear("job_title", &mut c.job_title);
            clear("lifecycle_stage", &mut c.lifecycle_stage);
            minimise_consent(&mut c.consent, &keep);
            minimise_address(&mut c.address, &keep);
        }
        Object::Lead(l) => {
            clear("email", &mut l.email);
            clear("phone", &mut l.phone);
            clear("first_name", &mut l.first_name);
            clear("last_name", &mut l.last_name);
            clear("company_name", &mut l.company_name);
            clear("lead_source", &mut l.lead_source);
            clear("status", &mut l.status);
            minimise_consent(&mut l.consent, &keep);
        }
        Object::Company(c) => {
            clear("name", &mut c.name);
            clear("domain", &mut c.domain);
            clear("tax_id", &mut c.tax_id);
            clear("industry", &mut c.industry);
            if !keep("country") {
                c.address = None;
            }
        }
        Object::Product(p) => {
            clear("sku", &mut p.sku);
            clear("name", &mut p.name);
            clear("description", &mut p.description);
            if !keep("unit_price") {
                p.unit_price = None;
            }
            if !keep("tax_rate_bp") {
                p.tax_rate_bp = 0;
            }
        }
        Object::Deal(d) => {
            clear("name", &mut d.name);
            clear("stage", &mut d.stage);
            if !keep("amount") {
                d.amount = None;
            }
            if !keep("close_date") {
                d.close_date = None;
            }
            if !keep("line_items") {
                d.line_items.clear();
            }
            if !keep("contact_id") {
                d.contact = None;
            }
            if !keep("company_id") {
                d.company = None;
            }
        }
        Object::Order(o) => {
            clear("order_number", &mut o.order_number);
            clear("status", &mut o.status);
            for (name, money) in [
                ("total", &mut o.total),
                ("subtotal", &mut o.subtotal),
                ("tax", &mut o.tax),
            ] {
                if !keep(name) {
                    *money = None;
                }
            }
            if !keep("placed_at") {
                o.placed_at = None;
            }
            if !keep("line_items") {
                o.line_items.clear();
            }
            if !keep("customer_id") {
                o.customer = None;
            }
            // Not a contract field: no flow can ask for it.
            o.shipping_address = None;
        }
        Object::Invoice(i) => {
            clear("invoice_number", &mut i.invoice_number);
            clear("status", &mut i.status);
            for (name, money) in [
                ("total", &mut i.total),
                ("subtotal", &mut i.subtotal),
                ("tax", &mut i.tax),
                ("amount_paid", &mut i.amount_paid),
            ] {
                if !keep(name) {
                    *money = None;
                }
            }
            if !keep("issued_at") {
                i.issued_at = None;
            }
            if !keep("due_at") {
                i.due_at = None;
            }
            if !keep("line_items") {
                i.line_items.clear();
            }
            if !keep("customer_id") {
                i.customer = None;
            }
            if !keep("deal_id") {
                i.deal = None;
            }
        }
    }
}

/// The address parts a contract names flat (`country`, `postal_code`): only those named stay.
fn minimise_address(
    address: &mut Option<switchyard_proto::v1::Address>,
    keep: &dyn Fn(&str) -> bool,
) {
    let (country, postal_code) = (keep("country"), keep("postal_code"));
    match address {
        Some(a) if country || postal_code => {
            *a = switchyard_proto::v1::Address {
                country: if country {
                    std::mem::take(&mut a.country)
                } else {
                    String::new()
                },
                postal_code: if postal_code {
                    std::mem::take(&mut a.postal_code)
                } else {
                    String::new()
                },
                ..Default::default()
            };
        }
        _ => *address = None,
    }
}

fn minimise_consent(
    consent: &mut Option<switchyard_proto::v1::Consent>,
    keep: &dyn Fn(&str) -> bool,
) {
    match (keep("marketing_consent"), keep("consent_source")) {
        (false, false) => *consent = None,
        (marketing, source) => {
            if let Some(consent) = consent {
                if !marketing {
                    // Absent consent reads as "no consent": nobody is subscribed on a guess.
                    consent.marketing = false;
                    consent.given_at = None;
                }
                if !source {
                    consent.source.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{Address, Consent, Contact};

    use super::*;

    #[test]
    fn only_named_fields_stay() {
        let mut object = Object::Contact(Contact {
            email: "jane@example.com".to_owned(),
            phone: "+442079460958".to_owned(),
            first_name: "Jane".to_owned(),
            last_name: "Doe".to_owned(),
            job_title: "CTO".to_owned(),
            consent: Some(Consent {
                marketing: true,
                source: "form".to_owned(),
                given_at: None,
            }),
            address: Some(Address {
                country: "GB".to_owned(),
                ..Address::default()
            }),
            ..Contact::default()
        });
        minimise(&mut object, &["email".to_owned(), "first_name".to_owned()]);
        assert_eq!(
            object,
            Object::Contact(Contact {
                email: "jane@example.com".to_owned(),
                first_name: "Jane".to_owned(),
                ..Contact::default()
            })
        );
    }
}
