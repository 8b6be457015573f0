//! Normalisation before matching: the same person typed two ways must produce the same key.

/// Email key: trimmed and lower-cased; no provider-specific rewriting (dots, plus tags).
pub fn email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn emails_differing_in_case_and_spaces_share_a_key() {
        assert_eq!(
            super::email("  Jane.Doe@Example.COM "),
            super::email("jane.doe@example.com")
        );
        assert_ne!(
            super::email("jane.doe+x@example.com"),
            super::email("jane.doe@example.com")
        );
    }
}
