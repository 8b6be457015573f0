//! What an accounting destination (QuickBooks Online, Xero) books a line to: the vendor's own
//! product for the line's SKU, and the tax code for the line's tax rate, both from the
//! destination's config (`items`, `tax_codes`).

use std::collections::BTreeMap;

use switchyard_chassis::config::DestinationConfig;
use switchyard_proto::v1::LineItem;

use super::http::SendError;
use super::permanent;

/// A destination's product and tax-code tables.
#[derive(Debug, Clone, Default)]
pub struct Books {
    items: BTreeMap<String, String>,
    tax_codes: BTreeMap<u32, String>,
    destination: String,
}

impl Books {
    pub fn new(config: &DestinationConfig) -> Self {
        Self {
            items: config.items.clone(),
            tax_codes: config.tax_codes.clone(),
            destination: config.name.clone(),
        }
    }

    /// The vendor's product for the line's SKU, if the config names one.
    pub fn item(&self, line: &LineItem) -> Option<&str> {
        self.items.get(line.sku.trim()).map(String::as_str)
    }

    /// The tax code for the line's rate: none when the destination has no tax table (the
    /// vendor's default applies), an error naming the rate when the table lacks it — a guessed
    /// code would put wrong tax in the books, so the change waits in the dead letters for the
    /// table to be completed and the change replayed.
    pub fn tax_code(&self, line: &LineItem) -> Result<Option<&str>, SendError> {
        let rate_bp = line.tax_rate_bp;
        if self.tax_codes.is_empty() {
            return Ok(None);
        }
        let code = u32::try_from(rate_bp)
            .ok()
            .and_then(|bp| self.tax_codes.get(&bp));
        match code {
            Some(code) => Ok(Some(code)),
            None => Err(permanent(&format!(
                "destination {}: no tax code for a line taxed at {} % (basis points {rate_bp}); add it to the destination's tax_codes and replay",
                self.destination,
                f64::from(rate_bp) / 100.0
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn books(tax: &[(u32, &str)]) -> Books {
        Books {
            items: [("W-1".to_owned(), "42".to_owned())].into(),
            tax_codes: tax.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            destination: "books".to_owned(),
        }
    }

    fn line(sku: &str, bp: i32) -> LineItem {
        LineItem {
            sku: sku.to_owned(),
            tax_rate_bp: bp,
            ..Default::default()
        }
    }

    #[test]
    fn items_are_found_by_sku_and_unknown_skus_fall_back() {
        let b = books(&[]);
        assert_eq!(b.item(&line(" W-1 ", 0)), Some("42"));
        assert_eq!(b.item(&line("W-2", 0)), None);
    }

    #[test]
    fn without_a_tax_table_no_code_is_sent() {
        assert_eq!(books(&[]).tax_code(&line("W-1", 2000)).ok(), Some(None));
    }

    #[test]
    fn a_rate_missing_from_the_table_is_a_permanent_error_naming_it() {
        let b = books(&[(0, "NONE"), (2000, "OUTPUT2")]);
        assert_eq!(b.tax_code(&line("W-1", 2000)).ok(), Some(Some("OUTPUT2")));
        assert_eq!(b.tax_code(&line("W-1", 0)).ok(), Some(Some("NONE")));
        match b.tax_code(&line("W-1", 750)) {
            Err(SendError::Permanent { reason, .. }) => {
                assert!(reason.contains("7.5 %"), "{reason}");
                assert!(reason.contains("tax_codes"), "{reason}");
            }
            other => panic!("expected a permanent error, got {other:?}"),
        }
        assert!(b.tax_code(&line("W-1", -1)).is_err());
    }
}
