"""DescribeLogDirs and DescribeCluster v2 (KIP-1073) as kafka-python 3's KafkaAdminClient sends
them: partition sizes after a real producer wrote to the partition, and fenced brokers listed,
marked, when the client asks for them."""
from __future__ import annotations

import pytest
from kafka import KafkaAdminClient

from harness import assert_delivered, create_topic, produce_all, producer, unique, wait_until

RECORDS = 200
FENCE_TIMEOUT_S = 30.0


def kp_admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)


def partition_sizes(client: KafkaAdminClient, topic: str, partitions: list[int]) -> dict[int, int]:
    """partition -> size from the one broker's one log dir, asking for `partitions` of `topic`."""
    (answer,) = client.describe_log_dirs({topic: partitions})
    (log_dir,) = answer["log_dirs"]
    assert log_dir["error_code"] == 0, log_dir
    sizes = {}
    for t in log_dir["topics"]:
        assert t["name"] == topic, t
        for p in t["partitions"]:
            assert (p["offset_lag"], p["is_future_key"]) == (0, False), p
            sizes[p["partition_index"]] = p["partition_size"]
    return sizes


def test_describe_log_dirs_reports_the_bytes_a_producer_wrote_and_only_held_partitions(broker):
    topic = create_topic(broker.bootstrap, unique("logdirs"), partitions=2)
    assert_delivered(produce_all(producer(broker.bootstrap, compression_type="none"), topic,
                                 [dict(value=b"v" * 100, partition=0) for _ in range(RECORDS)]))
    client = kp_admin(broker.bootstrap)
    try:
        (answer,) = client.describe_log_dirs({topic: [0, 1, 5]})
        assert answer["broker"] == 1
        (log_dir,) = answer["log_dirs"]
        assert log_dir["log_dir"] == str(broker.data_dir.absolute())
        first = partition_sizes(client, topic, [0, 1, 5])
        assert set(first) == {0, 1}, f"partition 5 does not exist and must be absent: {first}"
        assert first[0] >= RECORDS * 100, first
        assert first[1] == 0, first
        assert partition_sizes(client, topic, [0, 1]) == first, "nothing was written in between"

        everything = client.describe_log_dirs()
        listed = {(t["name"], p["partition_index"]) for t in everything[0]["log_dirs"][0]["topics"]
                  for p in t["partitions"]}
        assert {(topic, 0), (topic, 1)} <= listed
    finally:
        client.close()


def broker_list(client: KafkaAdminClient) -> list[tuple[int, bool]]:
    """(id, fenced) of each broker DescribeCluster lists; `is_fenced` is only in v2 answers."""
    return sorted((b["broker_id"], b["is_fenced"]) for b in client.describe_cluster()["brokers"])


def test_kafka_python_describe_cluster_v2_lists_the_live_broker_unfenced(broker):
    client = kp_admin(broker.bootstrap)
    try:
        assert broker_list(client) == [(1, False)]
    finally:
        client.close()


@pytest.mark.cluster
def test_describe_cluster_v2_lists_a_stopped_broker_as_fenced(cluster_factory):
    cluster = cluster_factory(3)
    victim = max(set(cluster.nodes) - {cluster.controller()})
    cluster.node(victim).broker.stop()
    cluster.remove_node(victim)
    cluster.wait_for(lambda vs: all(victim not in v.brokers for v in vs.values()), FENCE_TIMEOUT_S,
                     f"broker {victim} fenced (gone from Metadata)")
    client = kp_admin(cluster.bootstrap)
    try:
        # kafka-python asks with include_fenced_brokers=true.
        expected = sorted((i, i == victim) for i in (1, 2, 3))
        wait_until(lambda: broker_list(client) == expected, FENCE_TIMEOUT_S,
                   f"DescribeCluster to list {expected}")
    finally:
        client.close()
