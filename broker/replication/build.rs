//! Compiles the replica fetch service with the `protoc` the protoc-bin-vendored crate ships, so
//! a build needs no system protobuf-compiler; a non-empty `PROTOC` picks another.

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
        // Records as `bytes::Bytes`: the leader's read goes out and the follower's append comes
        // in without a copy into a `Vec`.
        .bytes(".krait.replication.v1.FetchedPartition.records")
        .compile_with_config(config, &["proto/replication.proto"], &["proto"])
}
