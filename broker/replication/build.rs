//! Compiles the replica fetch service (needs `protoc`, Debian's protobuf-compiler).

fn main() -> std::io::Result<()> {
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Records as `bytes::Bytes`: the leader's read goes out and the follower's append comes
        // in without a copy into a `Vec`.
        .bytes(".krait.replication.v1.FetchedPartition.records")
        .compile_protos(&["proto/replication.proto"], &["proto"])
}
