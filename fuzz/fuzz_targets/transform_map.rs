//! Every built-in mapping and its contract on arbitrary JSON payloads (plain, and wrapped as a
//! hydrated `{event, record}`): mapping and checking may refuse a payload, never panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchyard_proto::contracts::{self, Contract};
use switchyard_transform::mapping::{Context, Registry};

fn setup() -> &'static (Registry, Vec<Contract>) {
    static SETUP: OnceLock<(Registry, Vec<Contract>)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let contracts = contracts::built_in().expect("contracts");
        let registry = Registry::load(None, &contracts).expect("mappings");
        (registry, contracts)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (registry, contracts) = setup();
    let ctx = Context {
        default_region: phonenumber::country::Id::US,
    };
    let hydrated = json!({"event": payload, "record": payload});
    for mapping in registry.all() {
        for candidate in [&payload, &hydrated] {
            if !mapping.applies_to(candidate) {
                continue;
            }
            let (mut mapped, _problems) = mapping.apply_all(candidate, &ctx);
            if let Some(contract) = contracts.iter().find(|c| c.id() == mapping.contract) {
                let _ = contract.apply(&mut mapped.record);
            }
        }
    }
});
