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

#[cfg(test)]
mod tests {
    use super::*;

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
