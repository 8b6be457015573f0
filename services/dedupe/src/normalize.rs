//! Normalisation before matching: the same person typed two ways must produce the same key.

use phonenumber::country;
pub use switchyard_proto::phone::{Certainty, Phone};
use switchyard_proto::v1::Contact;

/// The configured default region is not one the phone-number metadata knows.
#[derive(Debug, thiserror::Error)]
#[error("dedupe.default_region: {0:?} is not a region known to the phone-number metadata")]
pub struct UnknownRegion(pub String);

/// Email key: trimmed and lower-cased; no provider-specific rewriting (dots, plus tags).
pub fn email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// The region assumed for phone numbers written without a country code, e.g. `"GB"`.
pub fn region(code: &str) -> Result<country::Id, UnknownRegion> {
    switchyard_proto::phone::region(code).ok_or_else(|| UnknownRegion(code.to_owned()))
}

/// Phone: E.164 read as `switchyard_proto::phone` reads it, in the contact's own country (its
/// address) when it has one, else `default_region`; an extension is never part of the key.
pub fn phone(contact: &Contact, default_region: country::Id) -> Phone {
    let record_country = contact
        .address
        .as_ref()
        .and_then(|a| switchyard_proto::phone::region(&a.country));
    switchyard_proto::phone::normalize(&contact.phone, record_country, default_region)
}

/// Company domain key: the registrable domain (public-suffix list) of a domain, a website URL or
/// an email address — `https://www.shop.example.co.uk/about` and `ops@example.co.uk` both give
/// `example.co.uk`. `None` when nothing registrable is there (a bare suffix, an IP, junk).
pub fn domain(raw: &str) -> Option<String> {
    let raw = raw.trim().trim_end_matches('.').to_lowercase();
    let host = match raw.rsplit_once('@') {
        Some((_, host)) => host.to_owned(),
        None if raw.contains("://") => url::Url::parse(&raw).ok()?.host_str()?.to_owned(),
        // `example.com/about` or `www.example.com:8080`: a host with something after it.
        None => raw.split(['/', ':', '?', '#']).next()?.to_owned(),
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let domain = psl::domain(host.as_bytes())?;
    // A name the list knows no suffix for (`example.invalid`) is not a company's domain.
    if !domain.suffix().is_known() {
        return None;
    }
    std::str::from_utf8(domain.as_bytes())
        .ok()
        .map(str::to_owned)
}

/// EU VAT numbers carry their country code (Greece's is `EL`); written without it they are
/// prefixed, so `DE 123 456 789` and `123456789` from a German company share a key.
const VAT_PREFIXED: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Tax id key: letters and digits only, upper-cased, and country-prefixed where the format says
/// so (EU VAT numbers, given the company's ISO country). `None` when nothing is left.
pub fn tax_id(raw: &str, country: &str) -> Option<String> {
    let bare: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_uppercase();
    if bare.is_empty() {
        return None;
    }
    let prefix = match country.trim().to_uppercase().as_str() {
        "GR" => "EL".to_owned(),
        other => other.to_owned(),
    };
    let has_prefix = bare
        .get(..2)
        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphabetic()));
    if !has_prefix && VAT_PREFIXED.contains(&prefix.as_str()) {
        return Some(format!("{prefix}{bare}"));
    }
    Some(bare)
}

/// SKU key: trimmed and upper-cased (`" tshirt-m "` and `"TSHIRT-M"` are one product).
pub fn sku(raw: &str) -> Option<String> {
    let sku = raw.trim().to_uppercase();
    (!sku.is_empty()).then_some(sku)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websites_emails_and_subdomains_share_the_registrable_domain() {
        for raw in [
            "example.co.uk",
            "www.example.co.uk",
            "https://WWW.Example.co.uk/about?x=1",
            "http://shop.eu.example.co.uk:8080",
            "ops@Example.co.uk",
            "example.co.uk/contact",
        ] {
            assert_eq!(domain(raw).as_deref(), Some("example.co.uk"), "{raw}");
        }
        assert_eq!(domain("blog.example.com").as_deref(), Some("example.com"));
        // Different companies on a shared hosting suffix stay apart.
        assert_ne!(domain("alice.github.io"), domain("bob.github.io"));
        for junk in ["co.uk", "", "127.0.0.1", "localhost", "not a domain"] {
            assert_eq!(domain(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn tax_ids_lose_formatting_and_gain_their_vat_prefix() {
        assert_eq!(
            tax_id("DE 123 456 789", "DE").as_deref(),
            Some("DE123456789")
        );
        assert_eq!(tax_id("123456789", "de").as_deref(), Some("DE123456789"));
        assert_eq!(tax_id("094.259.216", "GR").as_deref(), Some("EL094259216"));
        assert_eq!(tax_id("12-3456789", "US").as_deref(), Some("123456789"));
        assert_eq!(tax_id(" - ", "US"), None);
        assert_eq!(sku(" tshirt-m ").as_deref(), Some("TSHIRT-M"));
        assert_eq!(sku("  "), None);
    }

    fn us() -> country::Id {
        region("US").expect("US is a region")
    }

    fn contact(phone: &str, country: &str) -> Contact {
        Contact {
            phone: phone.to_owned(),
            address: (!country.is_empty()).then(|| switchyard_proto::v1::Address {
                country: country.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn emails_differing_in_case_and_spaces_share_a_key() {
        assert_eq!(
            email("  Jane.Doe@Example.COM "),
            email("jane.doe@example.com")
        );
        assert_ne!(
            email("jane.doe+x@example.com"),
            email("jane.doe@example.com")
        );
    }

    #[test]
    fn a_national_number_is_read_in_the_contacts_own_country() {
        // A French number written the French way, in a deployment whose default region is the US.
        assert_eq!(
            phone(&contact("01 23 45 67 89", "FR"), us()).key(),
            Some("+33123456789")
        );
        assert_eq!(
            phone(&contact("01 23 45 67 89", "FR"), us()).certainty(),
            Some(Certainty::RecordCountry)
        );
        // Without the country it is no valid US number: kept, never a key.
        assert_eq!(phone(&contact("01 23 45 67 89", ""), us()).key(), None);
        let gb = region("GB").expect("GB is a region");
        assert_eq!(
            phone(&contact("020 7946 0958", ""), gb).key(),
            Some("+442079460958")
        );
        assert_eq!(
            phone(&contact("+44 (0)20 7946 0958", ""), us()).key(),
            Some("+442079460958")
        );
    }

    #[test]
    fn numbers_used_by_the_integration_tests_are_valid() {
        for (raw, e164) in [
            ("(201) 555-0142", "+12015550142"),
            ("+1 201 555 0199", "+12015550199"),
            ("201 555 0177", "+12015550177"),
            ("+1 (212) 555-0100", "+12125550100"),
            ("+44 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(phone(&contact(raw, ""), us()).key(), Some(e164), "{raw}");
        }
    }

    #[test]
    fn unknown_regions_are_refused() {
        assert!(region("ZZ").is_err());
        assert!(region("").is_err());
        assert!(region("USA").is_err());
    }
}
