//! Near-duplicates: two golden contacts that share no key but are probably one person — an email
//! typed one letter wrong, a nickname, first and last names swapped, one name at one company or
//! postcode. They become review items for an operator, never merges.
//!
//! Finding candidates must stay cheap at any size, so each contact gets a few *blocking keys*
//! (`contact_near_keys`, stored as 64-bit hashes): its name with nicknames resolved and the two
//! names in either order, and its email's local part within its domain, whole and with each one
//! letter left out (two local parts one letter apart — added, dropped, changed or swapped — share
//! one of these; digits are never left out, since local parts that differ in a digit are two
//! mailboxes on purpose). Only contacts sharing a blocking key are compared, by the rules of
//! [`review`].

use std::collections::BTreeSet;

use switchyard_proto::v1::Contact;
use unicode_normalization::UnicodeNormalization as _;

/// What the rules compare, normalised: lower-case, accents and punctuation gone, nicknames
/// resolved to their full name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub email_local: String,
    pub email_domain: String,
    /// As written (folded), and with a nickname resolved to its full name.
    pub first: String,
    pub first_full: String,
    pub last: String,
    pub company: String,
    pub postcode: String,
}

impl Profile {
    /// The profile of a contact (its email normalised already).
    pub fn of(contact: &Contact) -> Self {
        let (email_local, email_domain) = contact
            .email
            .rsplit_once('@')
            .map(|(l, d)| (l.to_owned(), d.to_owned()))
            .unwrap_or_default();
        let first = fold(&contact.first_name);
        Self {
            email_local,
            email_domain,
            first_full: full_name(&first).to_owned(),
            first,
            last: fold(&contact.last_name),
            company: fold(&contact.company_name),
            postcode: contact
                .address
                .as_ref()
                .map(|a| {
                    a.postal_code
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect::<String>()
                        .to_ascii_uppercase()
                })
                .unwrap_or_default(),
        }
    }

    /// The blocking keys, hashed as they are stored: contacts sharing none are never compared.
    pub fn keys(&self) -> BTreeSet<i64> {
        self.key_texts().iter().map(|k| hash(k)).collect()
    }

    /// The blocking keys as text.
    fn key_texts(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        if !self.first_full.is_empty() && !self.last.is_empty() {
            // Either order: "Smith, Robert" and "Bob Smith" meet here.
            let (a, b) = if self.first_full <= self.last {
                (&self.first_full, &self.last)
            } else {
                (&self.last, &self.first_full)
            };
            keys.insert(format!("name:{a}|{b}"));
        }
        let chars: Vec<char> = self.email_local.chars().collect();
        if (MIN_LOCAL..=MAX_LOCAL).contains(&chars.len()) && !self.email_domain.is_empty() {
            let domain = &self.email_domain;
            keys.insert(format!("email:{domain}:{}", self.email_local));
            for (i, c) in chars.iter().enumerate() {
                if !c.is_ascii_digit() {
                    let without: String = chars[..i].iter().chain(&chars[i + 1..]).collect();
                    keys.insert(format!("email:{domain}:{without}"));
                }
            }
        }
        keys
    }
}

/// A blocking key as stored: the first 8 bytes of its SHA-256. Stable across builds and versions
/// (a key stored today must be found tomorrow); a rare collision only adds a candidate.
fn hash(key: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Local parts longer than this are not keyed: mailing-list and generated addresses.
const MAX_LOCAL: usize = 40;

/// Local parts shorter than this (`jo@`, `info@`…) are too short for one letter to mean a typo.
const MIN_LOCAL: usize = 5;

/// Lower-case letters and digits only, accents removed: `José-María` → `josemaria`.
fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// Common English, French, German, Spanish/Portuguese and Indian short forms and their full
/// names (folded). A name not listed is its own full name.
const NICKNAMES: &[(&str, &str)] = &[
    ("abby", "abigail"),
    ("al", "albert"),
    ("alex", "alexander"),
    ("andy", "andrew"),
    ("ben", "benjamin"),
    ("beth", "elizabeth"),
    ("betty", "elizabeth"),
    ("bill", "william"),
    ("billy", "william"),
    ("bob", "robert"),
    ("bobby", "robert"),
    ("cathy", "catherine"),
    ("chris", "christopher"),
    ("chuck", "charles"),
    ("charlie", "charles"),
    ("dan", "daniel"),
    ("danny", "daniel"),
    ("dave", "david"),
    ("debbie", "deborah"),
    ("dick", "richard"),
    ("ed", "edward"),
    ("eddie", "edward"),
    ("fred", "frederick"),
    ("greg", "gregory"),
    ("jack", "john"),
    ("jim", "james"),
    ("jimmy", "james"),
    ("joe", "joseph"),
    ("johnny", "john"),
    ("jon", "jonathan"),
    ("kate", "katherine"),
    ("katie", "katherine"),
    ("ken", "kenneth"),
    ("larry", "lawrence"),
    ("liz", "elizabeth"),
    ("maggie", "margaret"),
    ("matt", "matthew"),
    ("meg", "margaret"),
    ("mike", "michael"),
    ("nick", "nicholas"),
    ("pat", "patricia"),
    ("peggy", "margaret"),
    ("pete", "peter"),
    ("rich", "richard"),
    ("rick", "richard"),
    ("rob", "robert"),
    ("ron", "ronald"),
    ("sam", "samuel"),
    ("steve", "steven"),
    ("sue", "susan"),
    ("ted", "edward"),
    ("tom", "thomas"),
    ("tommy", "thomas"),
    ("tony", "anthony"),
    ("will", "william"),
    // French
    ("jp", "jeanpierre"),
    ("manu", "emmanuel"),
    ("nico", "nicolas"),
    ("seb", "sebastien"),
    // German
    ("hansi", "hans"),
    ("sepp", "josef"),
    ("steffi", "stefanie"),
    // Spanish and Portuguese
    ("chico", "francisco"),
    ("paco", "francisco"),
    ("pepe", "jose"),
    ("zeca", "jose"),
    // Indian
    ("raju", "rajesh"),
    ("sunny", "sunil"),
];

fn full_name(first: &str) -> &str {
    NICKNAMES
        .iter()
        .find(|(short, _)| *short == first)
        .map_or(first, |(_, full)| full)
}

/// Why `a` and `b` are probably one person, one clue per line and never a value; `None` when the
/// rules do not say so. The rules, each enough on its own:
/// - email local parts one edit apart (a letter added, dropped, changed or two swapped, not a
///   digit) on the same domain, unless both have first names that are different names;
/// - the same name — allowing a nickname, and first and last names swapped — and the same company
///   or the same postcode.
///
/// The same name alone is not enough: two John Smiths are two people until something else agrees.
pub fn review(a: &Profile, b: &Profile) -> Option<Vec<String>> {
    let email = email_one_edit_apart(a, b);
    let names = same_name(a, b);
    let company = !a.company.is_empty() && a.company == b.company;
    let postcode = !a.postcode.is_empty() && a.postcode == b.postcode;
    let different_first_names = !a.first_full.is_empty()
        && !b.first_full.is_empty()
        && a.first_full != b.first_full
        && names.is_none();
    let mut evidence = Vec::new();
    if email && !different_first_names {
        evidence.push("email local parts 1 edit apart on the same domain".to_owned());
        evidence.extend(names.clone());
    } else if let Some(name) = names.clone()
        && (company || postcode)
    {
        evidence.push(name);
    } else {
        return None;
    }
    if company {
        evidence.push("same company".to_owned());
    }
    if postcode {
        evidence.push("same postcode".to_owned());
    }
    Some(evidence)
}

/// How the names agree, if they do: the same, through a nickname, or swapped.
fn same_name(a: &Profile, b: &Profile) -> Option<String> {
    if a.first_full.is_empty() || a.last.is_empty() || b.first_full.is_empty() || b.last.is_empty()
    {
        return None;
    }
    if a.first_full == b.first_full && a.last == b.last {
        return Some(if a.first == b.first {
            "same first and last name".to_owned()
        } else {
            "first names are short and long forms of one name, same last name".to_owned()
        });
    }
    (a.first_full == b.last && a.last == b.first_full)
        .then(|| "first and last names swapped".to_owned())
}

fn email_one_edit_apart(a: &Profile, b: &Profile) -> bool {
    if a.email_domain.is_empty()
        || a.email_domain != b.email_domain
        || a.email_local == b.email_local
        || a.email_local.chars().count() < MIN_LOCAL
        || b.email_local.chars().count() < MIN_LOCAL
    {
        return false;
    }
    if strsim::osa_distance(&a.email_local, &b.email_local) != 1 {
        return false;
    }
    // jane.doe1@ and jane.doe2@ are two mailboxes on purpose, not a typo.
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let letters = |s: &str| {
        s.chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    };
    !(letters(&a.email_local) == letters(&b.email_local)
        && digits(&a.email_local) != digits(&b.email_local))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_proto::v1::Address;

    fn person(email: &str, first: &str, last: &str, company: &str, postcode: &str) -> Profile {
        Profile::of(&Contact {
            email: email.to_owned(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            company_name: company.to_owned(),
            address: Some(Address {
                postal_code: postcode.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn shares_a_key(a: &Profile, b: &Profile) -> bool {
        !a.keys().is_disjoint(&b.keys())
    }

    #[test]
    fn a_typo_in_the_email_on_the_same_domain_is_a_near_duplicate() {
        let a = person("jane.doe@acme.example", "Jane", "Doe", "", "");
        for typo in [
            "jane.deo@acme.example",  // swapped letters
            "jane.do@acme.example",   // one dropped
            "jane.doee@acme.example", // one added
            "jane.dow@acme.example",  // one changed
        ] {
            let b = person(typo, "", "", "", "");
            assert!(shares_a_key(&a, &b), "{typo}");
            assert!(review(&a, &b).is_some(), "{typo}");
        }
        // Another domain, two edits, numbered mailboxes, other first names: no.
        for (email, first) in [
            ("jane.doe@other.example", ""),
            ("jane.dxx@acme.example", ""),
            ("jane.dove@acme.example", "Janet"),
        ] {
            let b = person(email, first, "", "", "");
            assert_eq!(review(&a, &b), None, "{email} {first}");
        }
        let one = person("sales.team1@acme.example", "", "", "", "");
        let two = person("sales.team2@acme.example", "", "", "", "");
        assert_eq!(review(&one, &two), None);
    }

    #[test]
    fn one_name_needs_a_company_or_a_postcode_to_agree() {
        let bob = person("bob@home.example", "Bob", "Smith", "Acme Ltd", "");
        let robert = person("r.smith@work.example", "Robert", "Smith", "ACME LTD.", "");
        assert!(shares_a_key(&bob, &robert));
        assert_eq!(
            review(&bob, &robert),
            Some(vec![
                "first names are short and long forms of one name, same last name".to_owned(),
                "same company".to_owned()
            ])
        );
        let swapped = person("smith.r@mail.example", "Smith", "Robert", "", "SW1A 1AA");
        let robert_home = person("rob@else.example", "Robert", "Smith", "", "sw1a1aa");
        assert!(shares_a_key(&swapped, &robert_home));
        assert_eq!(
            review(&swapped, &robert_home),
            Some(vec![
                "first and last names swapped".to_owned(),
                "same postcode".to_owned()
            ])
        );
        // Two John Smiths with nothing else in common are two people.
        let john = person("john@a.example", "John", "Smith", "A", "1000");
        let other = person("jsmith@b.example", "John", "Smith", "B", "2000");
        assert!(shares_a_key(&john, &other));
        assert_eq!(review(&john, &other), None);
    }

    #[test]
    fn mailboxes_numbered_apart_share_no_key() {
        let a = person("person123@bench.example", "", "", "", "");
        let b = person("person124@bench.example", "", "", "", "");
        let c = person("person1234@bench.example", "", "", "", "");
        assert!(!shares_a_key(&a, &b));
        assert!(!shares_a_key(&a, &c));
    }

    #[test]
    fn names_fold_accents_case_and_punctuation() {
        let a = person("", "José-María", "García", "", "");
        let b = person("", "jose maria", "GARCIA", "", "");
        assert_eq!(a.keys(), b.keys());
        assert_eq!(a.keys().len(), 1);
    }
}
