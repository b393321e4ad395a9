//! Compiles a crate's gRPC services for its build script, with the `protoc` the
//! protoc-bin-vendored crate ships, so a build needs no system protobuf-compiler; a non-empty
//! `PROTOC` picks another. Build-time only: nothing here runs in a Krait process.

pub use tonic_prost_build::Builder;

/// Compiles `protos` (found under `include`) with client and server code; `adjust` sets the
/// crate's own options (e.g. which byte fields become `bytes::Bytes`).
pub fn compile(
    protos: &[&str],
    include: &[&str],
    adjust: impl FnOnce(Builder) -> Builder,
) -> std::io::Result<()> {
    println!("cargo:rerun-if-env-changed=PROTOC");
    // Any rerun-if line replaces cargo's default of rerunning on every file of the package, so
    // the protos are named too: without this a changed .proto keeps the old generated code in
    // a warm target directory.
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    for dir in include {
        println!("cargo:rerun-if-changed={dir}");
    }
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none_or(|p| p.is_empty()) {
        config.protoc_executable(
            protoc_bin_vendored::protoc_bin_path().map_err(std::io::Error::other)?,
        );
    }
    adjust(
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true),
    )
    .compile_with_config(config, protos, include)
}
