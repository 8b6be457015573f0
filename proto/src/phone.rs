//! Phone numbers to E.164, the one way transform and dedupe both read them: every common written
//! form (national with its trunk prefix, international, `+44 (0)…`, a trunk `0` after the country
//! code, `tel:` URIs, `00`/`011` exit codes, extensions), in the record's own country when it has
//! one, else the configured default region.
//!
//! Built on the `phonenumber` crate (libphonenumber's metadata), around one gap of its parser: given
//! a default region, it strips *that region's* national prefix from numbers that carry their own
//! country code, so with `US` as default `+49 1511 6989129` lost its `1` and became another valid
//! number. Numbers with a country code are therefore parsed without a region, which makes the
//! parser take the metadata of the number's own country.

use std::sync::Once;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;

/// Compiled regular expressions the phone metadata keeps. The crate keeps 100, fewer than the
/// patterns that parsing and validating numbers of a handful of countries touch, so each parse
/// recompiled some: reading contacts from six countries spent most of its time compiling regular
/// expressions. Only patterns in use are compiled, so the bound costs memory only when numbers of
/// that many countries come in.
const REGEX_CACHE: usize = 4096;

/// Gives the metadata's regular-expression cache room for [`REGEX_CACHE`] patterns, once.
fn warm_cache() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(mut cache) = DATABASE.cache().lock() {
            *cache = regex_cache::RegexCache::new(REGEX_CACHE);
        }
    });
}

/// How sure the reading of a valid number is: a number that says its country is read as written;
/// a national number is read in the record's own country, or failing that in the default region,
/// which is a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Certainty {
    /// National, read in the configured default region: nothing in the record said the country.
    DefaultRegion,
    /// National, read in the country the record itself gives (an address, a `country` field).
    RecordCountry,
    /// Written with its country code (`+`, `00`, `011`).
    International,
}

/// A phone number after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phone {
    /// No phone given.
    Empty,
    /// A valid number: E.164 (`+442079460958`), the extension apart, and how sure the reading is.
    Valid {
        e164: String,
        extension: Option<String>,
        certainty: Certainty,
    },
    /// Not a valid number: its digits (and a leading `+`) are kept, so nothing the source sent is
    /// lost, but never matched on: junk such as `000000` would join strangers.
    Unparseable(String),
}

impl Phone {
    /// The value stored and delivered: E.164, the kept digits of an unparseable number, or `""`.
    pub fn value(&self) -> &str {
        match self {
            Self::Empty => "",
            Self::Valid { e164, .. } => e164,
            Self::Unparseable(digits) => digits,
        }
    }

    /// The match key: only a valid number is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Valid { e164, .. } => Some(e164),
            Self::Empty | Self::Unparseable(_) => None,
        }
    }

    /// How sure the reading is; `None` when there is no valid number.
    pub fn certainty(&self) -> Option<Certainty> {
        match self {
            Self::Valid { certainty, .. } => Some(*certainty),
            Self::Empty | Self::Unparseable(_) => None,
        }
    }
}

/// A region code (`"GB"`, `"de"`) the phone metadata knows.
pub fn region(code: &str) -> Option<Id> {
    let code = code.trim().to_uppercase();
    DATABASE.by_id(code.as_str())?;
    code.parse().ok()
}

/// Reads `raw` as a phone number: a number with its country code as written; a national number in
/// `record_country` (the record's own country) when given and valid there, else in
/// `default_region`.
pub fn normalize(raw: &str, record_country: Option<Id>, default_region: Id) -> Phone {
    warm_cache();
    let raw = raw.trim();
    let raw = raw
        .strip_prefix("tel:")
        .or_else(|| raw.strip_prefix("TEL:"))
        .unwrap_or(raw);
    let (number, extension) = split_extension(raw);
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Phone::Empty;
    }
    let home = record_country.unwrap_or(default_region);
    if let Some((international, plus)) = international_digits(number, &digits, home) {
        // An exit code is only an exit code where the record is dialled from: read through the
        // default region's, it is a guess like any national reading there.
        let certainty = if plus || record_country.is_some() {
            Certainty::International
        } else {
            Certainty::DefaultRegion
        };
        return match parse_international(&international) {
            Some(e164) => Phone::Valid {
                e164,
                extension,
                certainty,
            },
            None => Phone::Unparseable(format!("+{international}")),
        };
    }
    let readings = [
        record_country.map(|c| (c, Certainty::RecordCountry)),
        Some((default_region, Certainty::DefaultRegion)),
    ];
    for (region, certainty) in readings.into_iter().flatten() {
        if let Some(e164) = parse_in(region, &digits) {
            return Phone::Valid {
                e164,
                extension,
                certainty,
            };
        }
    }
    Phone::Unparseable(digits)
}

/// `(number, extension)`: an extension written after the number (`ext. 42`, `x42`, `#42`,
/// `;ext=42`, `extension 42`) is split off, so its digits never join the number's.
fn split_extension(raw: &str) -> (&str, Option<String>) {
    let lower = raw.to_ascii_lowercase();
    for marker in [";ext=", "extension", "ext.", "ext", "x", "#"] {
        if let Some(at) = lower.rfind(marker) {
            let rest = raw[at + marker.len()..].trim();
            let number = raw[..at].trim_end_matches([' ', ',', ';']);
            if !rest.is_empty()
                && rest.len() <= 7
                && rest.bytes().all(|b| b.is_ascii_digit())
                && number.bytes().any(|b| b.is_ascii_digit())
            {
                return (number, Some(rest.to_owned()));
            }
        }
    }
    (raw, None)
}

/// The digits after the country code's `+` when the number is written internationally, and
/// whether it was written with `+` (rather than the exit code of the country it is dialled from:
/// `00`, the NANP's `011`).
fn international_digits(number: &str, digits: &str, home: Id) -> Option<(String, bool)> {
    // "+44 (0)20 …": the (0) is the trunk prefix, dropped when dialling from abroad.
    if number.trim_start().starts_with('+') {
        let cleaned = number.replacen("(0)", "", 1);
        return Some((cleaned.chars().filter(char::is_ascii_digit).collect(), true));
    }
    let meta = DATABASE.by_id(home.as_ref())?;
    // The exit code must start the number, and a country code follow it (none starts with 0).
    let after = |at: usize| {
        let rest = &digits[at..];
        (rest.len() > 6 && !rest.starts_with('0')).then(|| (rest.to_owned(), false))
    };
    if let Some(found) = meta
        .international_prefix()
        .and_then(|exit| exit.find(digits))
        && found.start() == 0
    {
        return after(found.end());
    }
    // NANP numbers never start with 0, so a North American record's `00` is an exit code too.
    if meta.country_code() == 1 && digits.starts_with("00") {
        return after(2);
    }
    None
}

/// A number given with its country code, parsed in its own country's metadata. A trunk `0`
/// written after the country code (`+33 0 1 23 45 67 89`) is dropped, as when dialled from abroad.
fn parse_international(digits: &str) -> Option<String> {
    let valid = |candidate: &str| {
        phonenumber::parse(None, format!("+{candidate}"))
            .ok()
            .filter(phonenumber::PhoneNumber::is_valid)
            .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
    };
    valid(digits).or_else(|| {
        (1..=3).find_map(|len| {
            let (code, national) = digits.split_at_checked(len)?;
            let national = national.strip_prefix('0')?;
            DATABASE.by_code(&code.parse::<u16>().ok()?)?;
            valid(&format!("{code}{national}"))
        })
    })
}

/// A national number read in `region`, if it is valid there.
fn parse_in(region: Id, digits: &str) -> Option<String> {
    phonenumber::parse(Some(region), digits)
        .ok()
        .filter(phonenumber::PhoneNumber::is_valid)
        .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(code: &str) -> Id {
        region(code).expect("a known region")
    }

    /// Every way people write `national` (the number as its own country writes it, trunk prefix
    /// included) and its international form: the record's country given or not, the default
    /// region elsewhere.
    fn spellings(country: &str, e164: &str) -> Vec<(String, Option<Id>)> {
        let number = phonenumber::parse(None, e164).expect("parses");
        let international = number
            .format()
            .mode(phonenumber::Mode::International)
            .to_string();
        let national = number
            .format()
            .mode(phonenumber::Mode::National)
            .to_string();
        let code = number.code().value().to_string();
        let after_code = international
            .strip_prefix(&format!("+{code}"))
            .expect("starts with its code")
            .trim()
            .to_owned();
        let exit_from_us = format!("011 {code} {after_code}");
        let exit_from_europe = format!("00 {code} {after_code}");
        let mut out = vec![
            (e164.to_owned(), None),
            (international.clone(), None),
            (format!("+{code}-{}", after_code.replace(' ', "-")), None),
            (
                format!(
                    "tel:{}",
                    number
                        .format()
                        .mode(phonenumber::Mode::Rfc3966)
                        .to_string()
                        .trim_start_matches("tel:")
                ),
                None,
            ),
            (format!("{international} ext. 42"), None),
            (format!("{international} x42"), None),
            (exit_from_us, Some(id("US"))),
            (exit_from_europe, Some(id("GB"))),
            (national.clone(), Some(id(country))),
            (format!("{national} ext. 7"), Some(id(country))),
            (national.replace(' ', ""), Some(id(country))),
        ];
        // A trunk 0 written after the country code, marked or not: "+44 (0)20 …", "+33 0 1 …".
        if national.starts_with('0') {
            out.push((format!("+{code} (0){after_code}"), None));
            out.push((format!("+{code} 0{after_code}"), None));
        }
        out
    }

    #[test]
    fn libphonenumbers_own_examples_in_six_countries_normalise_in_every_spelling() {
        let mut checked = 0;
        for country in ["US", "GB", "DE", "FR", "IN", "BR"] {
            let meta = DATABASE.by_id(country).expect("metadata");
            let descriptors = meta.descriptors();
            let examples = [descriptors.fixed_line(), descriptors.mobile()]
                .into_iter()
                .flatten()
                .filter_map(|d| d.example());
            for example in examples {
                let e164 = parse_in(id(country), example).expect("the example is valid");
                for (written, record) in spellings(country, &e164) {
                    // The default region is another country: only the number or the record may
                    // say where it is.
                    let default = if country == "US" { id("GB") } else { id("US") };
                    let phone = normalize(&written, record, default);
                    assert_eq!(phone.key(), Some(e164.as_str()), "{country}: {written:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked} spellings");
    }

    #[test]
    fn the_numbers_that_went_wrong_read_right() {
        let us = id("US");
        for (raw, record, e164) in [
            // A German mobile lost its leading 1 to the US trunk prefix.
            ("+49 1511 6989129", None, "+4915116989129"),
            ("+49 (0)1511 6989129", None, "+4915116989129"),
            ("+49 0 1511 6989129", None, "+4915116989129"),
            ("01511 6989129", Some("DE"), "+4915116989129"),
            ("+44 (0)113 496 0826", None, "+441134960826"),
            ("tel:+44-113-496-0826", None, "+441134960826"),
            ("+44 113 496 0826 ext. 42", None, "+441134960826"),
            ("011 44 113 496 0826", None, "+441134960826"),
            ("+33 0 1 23 45 67 89", None, "+33123456789"),
            ("01 23 45 67 89", Some("FR"), "+33123456789"),
            ("+91 098765 43210", None, "+919876543210"),
            ("098765 43210", Some("IN"), "+919876543210"),
            ("+55 11 91234-5678", None, "+5511912345678"),
            ("(11) 91234-5678", Some("BR"), "+5511912345678"),
            // In Brazil, 0 + area code 11: not the NANP exit code.
            ("011 91234-5678", Some("BR"), "+5511912345678"),
            ("(201) 555-0123", None, "+12015550123"),
            // The rest of docs/dedupe.md's table.
            ("201.555.0123", None, "+12015550123"),
            ("+1 201-555-0123", None, "+12015550123"),
            ("tel:+1-201-555-0123", None, "+12015550123"),
            ("1 201 555 0123 ext. 42", None, "+12015550123"),
            ("0113 496 0826", Some("GB"), "+441134960826"),
            ("00 44 113 496 0826", Some("GB"), "+441134960826"),
            ("+49 01511 6989129", None, "+4915116989129"),
            ("0049 1511 6989129", Some("DE"), "+4915116989129"),
            // 00 dialled from North America, where the exit code is 011.
            ("0012015557889", Some("US"), "+12015557889"),
            ("00 44 113 496 0826", None, "+441134960826"),
            ("+33 1 23 45 67 89", None, "+33123456789"),
            ("+33 (0)1 23 45 67 89", None, "+33123456789"),
            ("+91 98765 43210", None, "+919876543210"),
        ] {
            let phone = normalize(raw, record.map(id), us);
            assert_eq!(phone.key(), Some(e164), "{raw:?} in {record:?}");
        }
    }

    #[test]
    fn extensions_stay_apart_from_the_number() {
        let phone = normalize("+44 113 496 0826 ext. 42", None, id("US"));
        assert_eq!(
            phone,
            Phone::Valid {
                e164: "+441134960826".to_owned(),
                extension: Some("42".to_owned()),
                certainty: Certainty::International,
            }
        );
        // Even a number that does not parse keeps the extension out of its digits.
        assert_eq!(
            normalize("12-34 ext. 5", None, id("US")),
            Phone::Unparseable("1234".to_owned())
        );
    }

    #[test]
    fn how_sure_a_reading_is() {
        let us = id("US");
        let fr = id("FR");
        let certainty = |raw: &str, record: Option<Id>| normalize(raw, record, us).certainty();
        assert_eq!(
            certainty("+33 1 23 45 67 89", None),
            Some(Certainty::International)
        );
        assert_eq!(
            certainty("01 23 45 67 89", Some(fr)),
            Some(Certainty::RecordCountry)
        );
        assert_eq!(
            certainty("(201) 555-0123", None),
            Some(Certainty::DefaultRegion)
        );
        // An exit code read through the default region is a guess too: "011 91234 5678" is a
        // São Paulo number written the Brazilian way as much as a call from the US.
        assert_eq!(
            certainty("011 44 113 496 0826", None),
            Some(Certainty::DefaultRegion)
        );
        assert_eq!(
            certainty("011 44 113 496 0826", Some(us)),
            Some(Certainty::International)
        );
        // A French record with a US number written nationally: the default region reads it.
        assert_eq!(
            certainty("(201) 555-0123", Some(fr)),
            Some(Certainty::DefaultRegion)
        );
        // Read in the default region, a French national number is no valid number at all.
        assert_eq!(certainty("01 23 45 67 89", None), None);
        assert_eq!(normalize("01 23 45 67 89", None, us).key(), None);
        assert!(Certainty::International > Certainty::RecordCountry);
        assert!(Certainty::RecordCountry > Certainty::DefaultRegion);
    }

    #[test]
    fn junk_keeps_its_digits_but_is_no_key() {
        for (raw, kept) in [
            ("12-34", "1234"),
            ("000 000 0000", "0000000000"),
            ("+999 123 456", "+999123456"),
            ("call me: 55", "55"),
        ] {
            let phone = normalize(raw, None, id("US"));
            assert_eq!(phone, Phone::Unparseable(kept.to_owned()), "{raw}");
            assert_eq!(phone.key(), None);
        }
        for raw in ["", "  ", "n/a"] {
            assert_eq!(normalize(raw, None, id("US")), Phone::Empty, "{raw:?}");
        }
    }

    #[test]
    fn regions_are_checked_against_the_metadata() {
        assert!(region("gb").is_some());
        assert!(region("ZZ").is_none());
        assert!(region("USA").is_none());
        assert!(region("").is_none());
    }
}
