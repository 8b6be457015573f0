//! Normalisation before matching: the same person typed two ways must produce the same key.

use phonenumber::country;

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
    code.trim()
        .to_uppercase()
        .parse()
        .map_err(|_| UnknownRegion(code.to_owned()))
}

/// A phone number after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phone {
    /// No phone given.
    Empty,
    /// A valid number in E.164 (`+442079460958`): stored and used as a match key.
    E164(String),
    /// Not a valid number: its digits are kept (so nothing the source sent is lost) but never
    /// matched on, because junk such as `000000` or a bare extension would join strangers.
    Unparseable(String),
}

impl Phone {
    /// The value stored in the golden record and delivered.
    pub fn value(&self) -> &str {
        match self {
            Self::Empty => "",
            Self::E164(value) | Self::Unparseable(value) => value,
        }
    }

    /// The match key, only for valid numbers.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::E164(value) => Some(value),
            Self::Empty | Self::Unparseable(_) => None,
        }
    }
}

/// Phone: parsed with libphonenumber's rules (`default_region` for numbers without a country
/// code), validated against the region's numbering plan and formatted as E.164. An extension is
/// not part of the identity, so it is dropped from the key.
pub fn phone(raw: &str, default_region: country::Id) -> Phone {
    let raw = raw.trim();
    if raw.is_empty() {
        return Phone::Empty;
    }
    // "+44 (0)20 …" marks the trunk prefix as dropped after a country code; the parser does not
    // know that convention and would keep the 0.
    let written = if raw.starts_with('+') {
        raw.replacen("(0)", "", 1)
    } else {
        raw.to_owned()
    };
    match phonenumber::parse(Some(default_region), &written) {
        Ok(number) if number.is_valid() => {
            Phone::E164(number.format().mode(phonenumber::Mode::E164).to_string())
        }
        _ => {
            // Keep a leading '+': without it an international number would read as a national one.
            let plus = if raw.starts_with('+') { "+" } else { "" };
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                Phone::Empty
            } else {
                Phone::Unparseable(format!("{plus}{digits}"))
            }
        }
    }
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
    fn one_number_written_many_ways_has_one_e164_key() {
        let written = [
            "+1 201-555-0123",
            "+1 (201) 555-0123",
            "1 201 555 0123",
            "(201) 555-0123",
            "201-555-0123",
            "201.555.0123",
            " 2015550123 ",
            "+12015550123",
            "tel:+1-201-555-0123",
        ];
        for raw in written {
            assert_eq!(
                phone(raw, us()),
                Phone::E164("+12015550123".to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn the_default_region_applies_only_without_a_country_code() {
        let gb = region("GB").expect("GB is a region");
        assert_eq!(phone("020 7946 0958", gb).key(), Some("+442079460958"));
        assert_eq!(phone("+44 20 7946 0958", us()).key(), Some("+442079460958"));
        assert_eq!(
            phone("+44 (0)20 7946 0958", us()).key(),
            Some("+442079460958")
        );
        // A national number means a different subscriber under another default region.
        assert_eq!(phone("020 7946 0958", us()).key(), None);
        let de = region("de").expect("case does not matter");
        assert_eq!(phone("030 901820", de).key(), Some("+4930901820"));
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
            assert_eq!(phone(raw, us()).key(), Some(e164), "{raw}");
        }
    }

    #[test]
    fn an_extension_is_not_part_of_the_key() {
        assert_eq!(
            phone("+1 201 555 0123 ext. 42", us()).key(),
            Some("+12015550123")
        );
    }

    #[test]
    fn unparseable_phones_keep_their_digits_but_have_no_key() {
        for (raw, kept) in [
            ("12-34", "1234"),
            ("000 000 0000", "0000000000"),
            ("+999 123 456", "+999123456"),
            ("call me: 55", "55"),
        ] {
            let phone = phone(raw, us());
            assert_eq!(phone, Phone::Unparseable(kept.to_owned()), "{raw}");
            assert_eq!(phone.value(), kept);
            assert_eq!(phone.key(), None, "{raw} must not be a match key");
        }
    }

    #[test]
    fn no_phone_is_no_key() {
        for raw in ["", "   ", "n/a"] {
            assert_eq!(phone(raw, us()), Phone::Empty, "{raw:?}");
            assert_eq!(phone(raw, us()).value(), "");
        }
    }

    #[test]
    fn unknown_regions_are_refused() {
        assert!(region("ZZ").is_err());
        assert!(region("").is_err());
        assert!(region("USA").is_err());
    }
}
