//! How personal data is hidden wherever a value is quoted back to people: logs, span attributes,
//! contract-violation and mapping reasons, dead letters. Emails keep their first letter and
//! domain, phones their last two digits; short codes (an enum value, a country, a currency) are
//! shown as they are, and anything else is described by its shape, never quoted.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// `jane@example.com` → `j***@example.com`.
pub fn email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `+44 113 496 0826` → `***26`: enough to tell two numbers apart, not to call anyone.
pub fn phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return "***".to_owned();
    }
    let last: String = digits[digits.len() - 2..].iter().collect();
    format!("***{last}")
}

/// Up to 32 characters of letters, digits and `_-.:/`, with fewer than seven digits: an enum
/// value, a country or currency code, a short id. Never an email, a name, or anything with as many
/// digits as a phone number (so a malformed date is described, not shown).
fn code_like(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c))
        && text.chars().filter(char::is_ascii_digit).count() < 7
}

/// A JSON value as a reason may quote it: codes, booleans and small numbers as they are (strings
/// quoted), anything else by its shape (`a text of 12 characters`, `a number of 11 digits`).
pub fn value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            let text = n.to_string();
            let digits = text.chars().filter(char::is_ascii_digit).count();
            if digits < 7 {
                text
            } else {
                format!("a number of {digits} digits")
            }
        }
        Value::String(s) if code_like(s) => format!("{s:?}"),
        Value::String(s) => format!("a text of {} characters", s.chars().count()),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Free text (a reason, a destination's answer) with every email and international phone number
/// in it redacted; the rest stays as written.
pub fn text(text: &str) -> String {
    static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+").expect("email")
    });
    // A `+`, then at least seven digits with the usual separators between them.
    static PHONE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\+\d(?:[\s().\-]{0,2}\d){6,}").expect("phone"));
    let emails = EMAIL.replace_all(text, |c: &regex::Captures<'_>| email(&c[0]));
    PHONE
        .replace_all(&emails, |c: &regex::Captures<'_>| phone(&c[0]))
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_keep_their_first_letter_and_domain() {
        assert_eq!(email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(email("bob@"), "b***@");
        assert_eq!(email("not-an-email"), "***");
    }

    #[test]
    fn phones_keep_their_last_two_digits() {
        assert_eq!(phone("+44 113 496 0826"), "***26");
        assert_eq!(phone("12"), "***");
    }

    #[test]
    fn codes_are_shown_and_everything_else_is_described() {
        assert_eq!(value(&json!("UK")), "\"UK\"");
        assert_eq!(value(&json!("vip")), "\"vip\"");
        assert_eq!(value(&json!("yesterday")), "\"yesterday\"");
        // Seven digits or more could be a phone number, written any way: described, not shown.
        assert_eq!(value(&json!("2026-13-45")), "a text of 10 characters");
        assert_eq!(value(&json!("020-7946-0958")), "a text of 13 characters");
        assert_eq!(value(&json!(-1)), "-1");
        assert_eq!(value(&json!(true)), "true");
        assert_eq!(value(&json!("Jane Doe")), "a text of 8 characters");
        assert_eq!(value(&json!("jane@example.com")), "a text of 16 characters");
        assert_eq!(value(&json!("4915116989129")), "a text of 13 characters");
        assert_eq!(
            value(&json!(4_915_116_989_129_u64)),
            "a number of 13 digits"
        );
        assert_eq!(value(&json!({"a": 1})), "an object");
        assert_eq!(value(&json!([1])), "a list");
    }

    #[test]
    fn free_text_loses_its_emails_and_phones_only() {
        assert_eq!(
            text("jane.doe@example.com is already a list member (id 123456789)"),
            "j***@example.com is already a list member (id 123456789)"
        );
        assert_eq!(
            text("phone +44 (0)113 496-0826 invalid; call +1 201 555 0123"),
            "phone ***26 invalid; call ***23"
        );
        assert_eq!(text("nothing personal here"), "nothing personal here");
    }
}
