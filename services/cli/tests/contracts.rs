//! `switchyard contracts check` on the built-in files and on a user's broken contract.

use std::process::Command;

fn switchyard(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("switchyard runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_built_in_contracts_and_mappings_check_out() {
    let (ok, text) = switchyard(&["contracts", "check"]);
    assert!(ok, "{text}");
    for id in [
        "contact/v1",
        "lead/v1",
        "company/v1",
        "product/v1",
        "deal/v1",
        "order/v1",
        "invoice/v1",
    ] {
        assert!(text.contains(&format!("ok   {id}")), "{id} in {text}");
    }
    assert!(
        text.contains("ok   mapping stripe-customer (stripe → contact/v1)"),
        "{text}"
    );
}

#[test]
fn a_contract_whose_samples_disagree_fails_the_check() {
    let dir = std::env::temp_dir().join(format!("sy-contracts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let contact = include_str!("../../../proto/contracts/contact.v1.yaml");
    // v2 says a broken email is valid: the contract's own test case must catch it.
    let v2 = contact.replace("version: 1", "version: 2").replace(
        "    valid: false\n    payload: { email: \"bob@\" }",
        "    valid: true\n    payload: { email: \"bob@\" }",
    );
    std::fs::write(dir.join("contact.v2.yaml"), v2).expect("write");
    let (ok, text) = switchyard(&[
        "contracts",
        "check",
        "--contracts",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL contact/v2"), "{text}");
    assert!(
        text.contains("ok   contact/v1"),
        "both versions are live: {text}"
    );
    std::fs::write(dir.join("contact.v2.yaml"), "object: contact\nversion: 2\n").expect("write");
    let (ok, text) = switchyard(&[
        "contracts",
        "check",
        "--contracts",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(
        !ok && text.contains("contact.v2.yaml"),
        "a broken file is named: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
