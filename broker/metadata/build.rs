//! Compiles the Raft transport's protobuf service (see krait-protos).

fn main() -> std::io::Result<()> {
    krait_protos::compile(&["proto/raft.proto"], &["proto"], |b| b)
}
