//! Compiles the Raft transport's protobuf service (needs `protoc`, Debian's protobuf-compiler).

fn main() -> std::io::Result<()> {
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/raft.proto"], &["proto"])
}
