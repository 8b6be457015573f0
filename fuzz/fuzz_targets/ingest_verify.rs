//! Every source's signature verifier and parser on arbitrary requests: methods, headers, URL
//! tokens, clocks and bodies an attacker controls. Nothing may panic; a forged request is refused.

#![no_main]

use arbitrary::Arbitrary;
use axum::http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use switchyard_ingest::sources::Incoming;

#[path = "common.rs"]
mod common;

#[derive(Debug, Arbitrary)]
struct Request {
    kind: u8,
    post: bool,
    headers: Vec<(String, String)>,
    token: Option<String>,
    skew_ms: i32,
    body: Vec<u8>,
}

fuzz_target!(|request: Request| {
    let source = common::source(common::kind(request.kind));
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        common::insert(&mut headers, &name.to_ascii_lowercase(), value);
    }
    let method = if request.post {
        Method::POST
    } else {
        Method::GET
    };
    let incoming = Incoming {
        method: &method,
        url: common::URL.to_owned(),
        headers: &headers,
        body: &request.body,
        path_token: request.token.as_deref(),
        now_ms: common::NOW_MS + i64::from(request.skew_ms),
    };
    let _ = source.accept(&incoming);
});
