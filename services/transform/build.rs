//! Embeds every `mappings/*.yaml` as a built-in mapping, so adding a vendor mapping is adding a
//! file — no Rust to touch.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("mappings");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("services/transform/mappings exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    let mut out = String::from(
        "/// Every file in `services/transform/mappings/`, by file name.\npub const BUILT_IN: &[(&str, &str)] = &[\n",
    );
    for name in names {
        let path = dir.join(&name);
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("string");
    }
    out.push_str("];\n");
    let target =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("built_in.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
