//! Which system may write which field: the data contracts' `write_rules` name the categories of
//! system (crm, marketing, accounting, payments, e-commerce) that own a field. Another source may
//! fill the field while it is empty but never overwrite the owner's value; fields without a rule
//! go to the newest source timestamp.

use std::collections::{BTreeMap, HashMap};

use switchyard_proto::contracts::Contract;

/// The category of system a source kind is.
pub fn category(source_kind: &str) -> Option<&'static str> {
    Some(match source_kind {
        "hubspot" | "salesforce" => "crm",
        "mailchimp" | "klaviyo" => "marketing",
        "quickbooks" | "xero" => "accounting",
        "stripe" => "payments",
        "shopify" => "e-commerce",
        // A first-party sender (the business's own app) is trusted like the owner of any field.
        _ => return None,
    })
}

/// The write rules of every contract, by object.
#[derive(Debug, Clone, Default)]
pub struct WriteRules {
    by_object: HashMap<String, BTreeMap<String, Vec<String>>>,
}

impl WriteRules {
    /// The rules of the newest version of each object's contract.
    pub fn from_contracts(contracts: &[Contract]) -> Self {
        let mut newest: HashMap<&str, &Contract> = HashMap::new();
        for contract in contracts {
            let entry = newest.entry(contract.object.as_str()).or_insert(contract);
            if contract.version > entry.version {
                *entry = contract;
            }
        }
        Self {
            by_object: newest
                .into_iter()
                .map(|(object, c)| (object.to_owned(), c.write_rules.clone()))
                .collect(),
        }
    }

    /// Whether a source of `source_kind` may overwrite `field` of `object` (it may always fill
    /// an empty one).
    pub fn may_overwrite(&self, object: &str, field: &str, source_kind: &str) -> bool {
        let Some(owners) = self
            .by_object
            .get(object)
            .and_then(|rules| rules.get(field))
        else {
            return true;
        };
        match category(source_kind) {
            Some(category) => owners.iter().any(|owner| owner == category),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owning_kind_of_system_overwrites_a_ruled_field() {
        let rules = WriteRules::from_contracts(
            &switchyard_proto::contracts::built_in().expect("contracts"),
        );
        assert!(rules.may_overwrite("invoice", "status", "quickbooks"));
        assert!(rules.may_overwrite("invoice", "status", "stripe"));
        assert!(!rules.may_overwrite("invoice", "status", "hubspot"));
        assert!(!rules.may_overwrite("contact", "lifecycle_stage", "mailchimp"));
        assert!(rules.may_overwrite("contact", "lifecycle_stage", "salesforce"));
        assert!(
            rules.may_overwrite("contact", "first_name", "mailchimp"),
            "no rule: newest wins"
        );
        assert!(rules.may_overwrite("contact", "lifecycle_stage", "standard-webhooks"));
    }
}
