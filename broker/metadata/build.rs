//! Compiles the Raft transport's protobuf service with the `protoc` the protoc-bin-vendored
//! crate ships, so a build needs no system protobuf-compiler; a non-empty `PROTOC` picks another.

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-env-changed=PROTOC");
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none_or(|p| p.is_empty()) {
        config.protoc_executable(
            protoc_bin_vendored::protoc_bin_path().map_err(std::io::Error::other)?,
        );
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &["proto/raft.proto"], &["proto"])
}
