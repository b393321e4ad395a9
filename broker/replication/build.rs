//! Compiles the replica fetch service (see krait-protos).

fn main() -> std::io::Result<()> {
    krait_protos::compile(&["proto/replication.proto"], &["proto"], |b| {
        // Records as `bytes::Bytes`: the leader's read goes out and the follower's append comes
        // in without a copy into a `Vec`.
        b.bytes(".krait.replication.v1.FetchedPartition.records")
    })
}
