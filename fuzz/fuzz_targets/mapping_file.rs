//! Mapping files as a user writes them: arbitrary YAML is parsed and checked against the contracts
//! and, when accepted, applied to a vendor-shaped payload. A bad file is refused with a reason,
//! never a panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchyard_proto::contracts::{self, Contract};
use switchyard_transform::mapping::{Context, Mapping};

fn contracts() -> &'static [Contract] {
    static CONTRACTS: OnceLock<Vec<Contract>> = OnceLock::new();
    CONTRACTS.get_or_init(|| contracts::built_in().expect("contracts"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mapping) = Mapping::parse("fuzz.yaml", text, contracts()) else {
        return;
    };
    let payload = json!({
        "type": "contact.updated", "created": 1_795_000_000, "timestamp": "2026-11-27T10:00:00Z",
        "data": {"id": 42, "email": " Ada@Example.org ", "phone": "+1 201 555 0142", "name": "Ada Lovelace",
                 "total": "19.99", "items": [{"sku": "a", "qty": 2}], "when": "2026-11-27 10:00:00"}
    });
    let ctx = Context {
        default_region: phonenumber::country::Id::GB,
    };
    let _ = mapping.applies_to(&payload);
    let _ = mapping.apply_all(&payload, &ctx);
});
