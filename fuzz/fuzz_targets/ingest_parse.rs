//! Every source's payload parser behind a genuine signature: the first byte picks the source kind,
//! the rest is the body (JSON, form fields or SOAP XML; the corpus starts from the vendors'
//! samples), and the harness signs it as the vendor would. Nothing may panic, and every event a
//! parser accepts carries a type and valid JSON for transform.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_ingest::sources::Incoming;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let kind = common::kind(kind);
    let source = common::source(kind);
    let (method, headers, token) = common::signed(kind, body, "evt_fuzz_1", "customers/create");
    let incoming = Incoming {
        method: &method,
        url: common::URL.to_owned(),
        headers: &headers,
        body,
        path_token: token.as_deref(),
        now_ms: common::NOW_MS,
    };
    if let Ok(parsed) = source.accept(&incoming) {
        for event in parsed.events {
            assert!(
                serde_json::from_slice::<serde_json::Value>(&event.body).is_ok(),
                "{kind:?} produced an event body that is not JSON"
            );
            assert!(
                !event.event_type.is_empty(),
                "{kind:?}: an event without a type"
            );
        }
    }
});
