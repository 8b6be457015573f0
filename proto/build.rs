//! Compiles the contracts with protox (a pure-Rust protobuf compiler), so no `protoc` is needed,
//! and keeps the compiled descriptors for the admin API's gRPC reflection.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "switchyard/v1/common.proto",
        "switchyard/v1/canonical.proto",
        "switchyard/v1/events.proto",
        "switchyard/v1/admin.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("switchyard_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
