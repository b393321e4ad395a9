//! DescribeLogDirs: the broker's one log directory (its data directory) and, for every partition
//! it holds a replica of, the bytes its log takes. Partitions it does not hold are absent, as
//! Kafka leaves them out, rather than errors. Sizes come from the logs' own counters: nothing
//! here walks the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use krait_acl::Operation;
use krait_image::{BrokerId, ClusterImage};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use krait_protocol::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use krait_protocol::kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::context::RequestContext;
use crate::topics::Partition;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

/// Partitions by topic, each topic's sorted and without duplicates.
type PartitionsByTopic = BTreeMap<String, BTreeSet<i32>>;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let broker = ctx.broker;
    if !ctx.authorized_on_cluster(Operation::Describe) {
        // Kafka answers an unauthorized client with no log directories (and, from v3, says why).
        let mut response = DescribeLogDirsResponse::default();
        if ctx.api_version >= 3 {
            response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        return response;
    }
    let image = broker.cluster.image();
    let wanted = request.topics.map(requested);
    let held = held_partitions(&image, broker.node_id(), wanted.as_ref());
    let mut dir = DescribeLogDirsResult::default();
    dir.log_dir = StrBytes::from_string(log_dir_name(&broker.config.data_dir));
    // The volume's total and usable bytes (v4); -1, the protocol's "unknown", if statvfs fails.
    if let Some((capacity, usable)) = crate::disk::space(&broker.config.data_dir) {
        dir.total_bytes = i64::try_from(capacity).unwrap_or(i64::MAX);
        dir.usable_bytes = i64::try_from(usable).unwrap_or(i64::MAX);
    }
    dir.topics = held
        .into_iter()
        .filter_map(|(topic, partitions)| describe_topic(broker, topic, &partitions))
        .collect();
    let mut response = DescribeLogDirsResponse::default();
    response.results = vec![dir];
    response
}

/// The request's topics and partitions, merged: a client may name a topic twice.
fn requested(topics: Vec<DescribableLogDirTopic>) -> PartitionsByTopic {
    let mut out = PartitionsByTopic::new();
    for t in topics {
        out.entry(t.topic.0.to_string())
            .or_default()
            .extend(t.partitions);
    }
    out
}

/// The partitions with a replica on `broker` in `image` (current, being added or being
/// removed), narrowed to `wanted` when the client named some; `None` means every one.
fn held_partitions(
    image: &ClusterImage,
    broker: BrokerId,
    wanted: Option<&PartitionsByTopic>,
) -> PartitionsByTopic {
    let mut out = PartitionsByTopic::new();
    for (topic, partition) in image.partitions_on(broker) {
        let asked = wanted.is_none_or(|w| w.get(&topic).is_some_and(|p| p.contains(&partition)));
        if asked {
            out.entry(topic).or_default().insert(partition);
        }
    }
    out
}

/// Kafka names a log dir by its absolute path; symlinks are kept as configured.
fn log_dir_name(data_dir: &Path) -> String {
    std::path::absolute(data_dir)
        .unwrap_or_else(|_| data_dir.to_path_buf())
        .display()
        .to_string()
}

/// A topic's held partitions as the local catalog has them; `None` when the catalog has none of
/// them (the applied image and the catalog are synced together, so only a topic deleted in
/// between is missed).
fn describe_topic(
    broker: &Broker,
    name: String,
    partitions: &BTreeSet<i32>,
) -> Option<DescribeLogDirsTopic> {
    let topic = broker.topics.get(&name)?;
    let described: Vec<DescribeLogDirsPartition> = partitions
        .iter()
        .filter_map(|index| topic.partition(*index))
        .map(|p| describe_partition(p))
        .collect();
    if described.is_empty() {
        return None;
    }
    let mut t = DescribeLogDirsTopic::default();
    t.name = TopicName(StrBytes::from_string(name));
    t.partitions = described;
    Some(t)
}

fn describe_partition(partition: &Partition) -> DescribeLogDirsPartition {
    let log = partition.log();
    let offsets = log.offsets();
    let mut p = DescribeLogDirsPartition::default();
    p.partition_index = partition.index;
    p.partition_size = i64::try_from(log.size_bytes()).unwrap_or(i64::MAX);
    // Kafka's lag of a current (not future) replica: its high watermark minus its log end
    // offset, floored at 0. That is 0 on a leader, and on a follower too, whose high watermark
    // is the leader's clipped to its own log end; the leader's unclipped one is not kept.
    p.offset_lag = (offsets.high_watermark - offsets.log_end_offset).max(0);
    p.is_future_key = false;
    p
}

#[cfg(test)]
mod tests {
    use krait_image::{ClusterImage, MetadataRecord, PartitionState, TopicImage};
    use krait_protocol::kafka_protocol::messages::ApiKey;

    use super::*;
    use crate::handlers::tests::{
        batch, broker, create, ctx, encodes_at_every_version, name, produce_request,
        register_fenced_broker,
    };

    fn ask(topics: &[(&str, &[i32])]) -> DescribeLogDirsRequest {
        let mut r = DescribeLogDirsRequest::default();
        r.topics = Some(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    let mut t = DescribableLogDirTopic::default();
                    t.topic = name(topic);
                    t.partitions = partitions.to_vec();
                    t
                })
                .collect(),
        );
        r
    }

    fn every_partition() -> DescribeLogDirsRequest {
        let mut r = DescribeLogDirsRequest::default();
        r.topics = None;
        r
    }

    /// (topic, partition, size) of each reported partition.
    fn sizes(r: &DescribeLogDirsResponse) -> Vec<(String, i32, i64)> {
        r.results[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.partition_size))
            })
            .collect()
    }

    fn partitions(list: &[(&str, &[i32])]) -> PartitionsByTopic {
        list.iter()
            .map(|(t, p)| (t.to_string(), p.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn held_partitions_are_those_with_a_replica_here_narrowed_to_the_request() {
        let mut image = ClusterImage::default();
        let mut adding = PartitionState::new(vec![3]);
        adding.adding = vec![1];
        let states = vec![
            PartitionState::new(vec![1, 2]),
            PartitionState::new(vec![2, 3]),
            adding,
        ];
        image.topics.insert(
            "a".into(),
            TopicImage {
                id: uuid::Uuid::new_v4(),
                partitions: states,
                configs: BTreeMap::new(),
            },
        );
        assert_eq!(
            held_partitions(&image, 1, None),
            partitions(&[("a", &[0, 2])])
        );
        let wanted = partitions(&[("a", &[1, 2, 9]), ("b", &[0])]);
        assert_eq!(
            held_partitions(&image, 1, Some(&wanted)),
            partitions(&[("a", &[2])])
        );
        assert!(held_partitions(&image, 4, None).is_empty());
    }

    #[tokio::test]
    async fn partition_size_grows_by_each_produced_batch_and_every_version_encodes() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(&dir).await;
        create(&b, "t", 2).await;
        let r = handle(&ctx(&b, 4), every_partition()).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.results.len(), 1, "one log dir");
        let expected_dir = std::path::absolute(dir.path()).unwrap();
        assert_eq!(
            r.results[0].log_dir.as_str(),
            expected_dir.to_str().unwrap()
        );
        assert_eq!(r.results[0].error_code, 0);
        assert_eq!(sizes(&r), vec![("t".into(), 0, 0), ("t".into(), 1, 0)]);

        let first = batch(&["a", "b", "c"], 10);
        let second = batch(&["d"], 20);
        for records in [&first, &second] {
            let produced = crate::handlers::produce::handle(
                &ctx(&b, 9),
                produce_request("t", 0, records.clone(), 1),
            )
            .await
            .0
            .unwrap();
            assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        }
        let r = handle(&ctx(&b, 4), ask(&[("t", &[0])])).await;
        let grown = (first.len() + second.len()) as i64;
        assert_eq!(sizes(&r), vec![("t".into(), 0, grown)]);
        let p = &r.results[0].topics[0].partitions[0];
        assert_eq!(
            (p.offset_lag, p.is_future_key),
            (0, false),
            "a leader lags nothing"
        );
        encodes_at_every_version(ApiKey::DescribeLogDirs, &r);
    }

    #[tokio::test]
    async fn only_partitions_held_here_are_listed_and_unknown_ones_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(&dir).await;
        register_fenced_broker(&b, 2).await;
        // Partition 1 lives on broker 2 alone: this broker has a (empty) log for it in its
        // catalog, as for every partition, but no replica.
        let split = MetadataRecord::CreateTopic {
            name: "split".into(),
            id: uuid::Uuid::new_v4(),
            assignments: vec![vec![1], vec![2]],
            configs: BTreeMap::new(),
        };
        b.cluster
            .change(split, |image| image.topics.contains_key("split"))
            .await
            .unwrap();
        create(&b, "t", 1).await;

        let all = handle(&ctx(&b, 4), every_partition()).await;
        assert_eq!(
            sizes(&all),
            vec![("split".into(), 0, 0), ("t".into(), 0, 0)]
        );
        let some = handle(
            &ctx(&b, 4),
            ask(&[("split", &[0, 1, 7]), ("missing", &[0]), ("split", &[0])]),
        )
        .await;
        assert_eq!(sizes(&some), vec![("split".into(), 0, 0)]);
        let none = handle(&ctx(&b, 4), ask(&[("split", &[1])])).await;
        assert!(none.results[0].topics.is_empty());
        encodes_at_every_version(ApiKey::DescribeLogDirs, &all);
    }
}
