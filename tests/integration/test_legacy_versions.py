"""The request versions Kafka 4.0 removed (KIP-896) and Kafka 3.9 still serves: kafka-python
pinned to an old broker version (`api_version`) sends them as old clients do; versions no
client here sends are checked on the wire. Each test checks what the request did (topics
created, offsets committed and read back, configs described), not only that it was answered.
"""
from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   ConfigResource as CkConfigResource, ResourcePatternType, ResourceType)
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.protocol.broker_version_data import BrokerVersionData
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KpTopicPartition

import kafka_wire as wire
from ports import free_port
from security import AUTHORIZER
from harness import (admin, assert_delivered, consumer, partition_count, produce_all, producer, topic_names,
                     unique, wait_until)

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
API_CREATE_TOPICS = 19
API_DELETE_TOPICS = 20
API_DESCRIBE_CONFIGS = 32
API_DESCRIBE_LOG_DIRS = 35

# What Kafka 3.9 serves of each API Krait has, where Kafka 4.0 starts later.
KAFKA_3_9_MINIMUMS = {
    wire.API_LIST_OFFSETS: 0,
    API_OFFSET_COMMIT: 0,
    API_OFFSET_FETCH: 0,
    API_CREATE_TOPICS: 0,
    API_DELETE_TOPICS: 0,
    wire.API_OFFSET_FOR_LEADER_EPOCH: 0,
    API_DESCRIBE_CONFIGS: 0,
    API_DESCRIBE_LOG_DIRS: 0,
}


def sent_version(broker_version: tuple, api_key: int) -> int:
    """The highest version of `api_key` kafka-python sends to a broker pinned at `broker_version`."""
    return BrokerVersionData(broker_version=broker_version).api_versions[api_key][1]


def kp_admin(bootstrap: str, api_version: tuple) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, api_version=api_version, request_timeout_ms=10000)


def test_api_versions_advertise_kafka_3_9_minimums_and_still_refuse_legacy_message_formats(broker):
    with wire.KafkaConnection(broker.bootstrap) as conn:
        served = wire.api_versions(conn, 0).versions
    for key, minimum in KAFKA_3_9_MINIMUMS.items():
        assert served[key][0] == minimum, (key, served[key])
    # Magic 0/1 message sets: not served, and a request at such a version gets Kafka's answer.
    assert served[wire.API_PRODUCE][0] == 3 and served[wire.API_FETCH][0] == 4
    with wire.KafkaConnection(broker.bootstrap) as conn:
        corr = conn.send_request(wire.API_PRODUCE, 2, b"")
        r = conn.recv_response(corr)
        assert r.i16() == wire.ERR_UNSUPPORTED_VERSION


def test_create_topics_v0_and_delete_topics_v0_from_kafka_python_pinned_to_0_10_1(broker):
    assert sent_version((0, 10, 1), API_CREATE_TOPICS) == 0
    assert sent_version((0, 10, 1), API_DELETE_TOPICS) == 0
    name = unique("legacy-v0")
    client = kp_admin(broker.bootstrap, (0, 10, 1))
    try:
        client.create_topics({name: {"num_partitions": 3, "replication_factor": 1,
                                     "configs": {"retention.ms": "3600000"}}})
        wait_until(lambda: partition_count(broker.bootstrap, name) == 3, 20, f"{name} with 3 partitions")
        res = CkConfigResource(ResourceType.TOPIC, name)
        configs = admin(broker.bootstrap).describe_configs([res])[res].result(timeout=10)
        assert configs["retention.ms"].value == "3600000"
        # A second create of the same name: TOPIC_ALREADY_EXISTS (36) in the v0 answer.
        again = client.create_topics({name: {"num_partitions": 1, "replication_factor": 1}}, raise_errors=False)
        assert [t["error_code"] for t in again["topics"]] == [36]

        result = client.delete_topics([name])
        assert [(t["name"], t["error_code"]) for t in result["topics"]] == [(name, 0)]
        wait_until(lambda: name not in topic_names(broker.bootstrap), 20, f"{name} deleted")
    finally:
        client.close()


def test_create_topics_v1_validate_only_creates_nothing_and_reports_messages(broker, topic):
    assert sent_version((0, 10, 2), API_CREATE_TOPICS) == 1
    existing = topic()
    name = unique("legacy-v1")
    client = kp_admin(broker.bootstrap, (0, 10, 2))
    try:
        checked = client.create_topics({name: {"num_partitions": 2, "replication_factor": 1}},
                                       validate_only=True)
        assert [(t["name"], t["error_code"]) for t in checked["topics"]] == [(name, 0)]
        assert name not in topic_names(broker.bootstrap)
        # v1 answers carry an error message.
        dup = client.create_topics({existing: {"num_partitions": 1, "replication_factor": 1}}, raise_errors=False)
        assert dup["topics"][0]["error_code"] == 36
        assert dup["topics"][0]["error_message"]
        client.create_topics({name: {"num_partitions": 2, "replication_factor": 1}})
        wait_until(lambda: partition_count(broker.bootstrap, name) == 2, 20, f"{name} with 2 partitions")
    finally:
        client.close()


def test_describe_configs_v0_reports_overrides_as_not_default(broker, topic):
    assert sent_version((0, 11), API_DESCRIBE_CONFIGS) == 0
    t = topic(config={"retention.ms": "7200000"})
    client = kp_admin(broker.bootstrap, (0, 11))
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, t)
        everything = client.describe_configs([resource], config_filter="all")["topic"][t]
        assert everything["retention.ms"]["value"] == "7200000"
        assert everything["retention.ms"]["is_default"] is False
        assert everything["cleanup.policy"]["value"] == "delete"
        assert everything["cleanup.policy"]["is_default"] is True
        # kafka-python keeps, for "modified", what v0 reports as not default: the override only.
        modified = client.describe_configs([resource])["topic"][t]
        assert "retention.ms" in modified and "cleanup.policy" not in modified
        chosen = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t, {"retention.ms": None})],
                                         config_filter="all")["topic"][t]
        assert list(chosen) == ["retention.ms"]
    finally:
        client.close()


def test_offset_commit_v1_from_kafka_python_pinned_to_0_8_2_is_read_back_by_a_current_client(broker, topic):
    assert sent_version((0, 8, 2), API_OFFSET_COMMIT) == 1
    t = topic(partitions=2)
    group = unique("legacy-group")
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, api_version=(0, 8, 2),
                      enable_auto_commit=False, request_timeout_ms=10000)
    try:
        tps = [KpTopicPartition(t, 0), KpTopicPartition(t, 1)]
        c.assign(tps)
        c.commit({tps[0]: OffsetAndMetadata(5, "v1-meta", -1), tps[1]: OffsetAndMetadata(9, "m9", -1)})
        assert c.committed(tps[0]) == 5 and c.committed(tps[1]) == 9
    finally:
        c.close()
    # Read back by kafka-python speaking current versions (OffsetFetch v8).
    modern = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        got = [modern.committed(tp, metadata=True) for tp in tps]
        assert [(o.offset, o.metadata) for o in got] == [(5, "v1-meta"), (9, "m9")]
    finally:
        modern.close()


def offset_commit_v0(conn, group: str, topic: str, offsets: dict) -> list:
    body = wire.string(group) + wire.array([topic], lambda t: wire.string(t) + wire.array(
        sorted(offsets.items()), lambda po: wire.i32(po[0]) + wire.i64(po[1]) + wire.string("m0")))
    r = conn.recv_response(conn.send_request(API_OFFSET_COMMIT, 0, body))
    return r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i16()))))


def offset_fetch_v0(conn, group: str, topic: str, partitions: list) -> list:
    body = wire.string(group) + wire.array([topic], lambda t: wire.string(t) + wire.array(partitions, wire.i32))
    r = conn.recv_response(conn.send_request(API_OFFSET_FETCH, 0, body))
    rows = r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i64(), y.string(), y.i16()))))
    assert r.remaining() == 0, "OffsetFetch v0 has no top-level error code"
    return rows


def test_offset_commit_v0_and_offset_fetch_v0_get_kafka_3_9_kraft_answer(broker, topic):
    """v0 kept offsets in ZooKeeper, apart from the coordinator's; Kafka 3.9 without ZooKeeper
    refuses both partition by partition (UNSUPPORTED_VERSION) and the connection stays usable."""
    t = topic(partitions=2)
    group = unique("legacy-v0-group")
    with wire.KafkaConnection(broker.bootstrap) as conn:
        unsupported = wire.ERR_UNSUPPORTED_VERSION
        assert offset_commit_v0(conn, group, t, {0: 3, 1: 11}) == [(t, [(0, unsupported), (1, unsupported)])]
        assert offset_fetch_v0(conn, group, t, [0, 1]) == [(t, [(0, -1, "", unsupported), (1, -1, "", unsupported)])]
        assert wire.api_versions(conn, 0).error_code == 0
    modern = consumer(broker.bootstrap, group_id=group)
    try:
        got = modern.committed([TopicPartition(t, 0), TopicPartition(t, 1)], timeout=10)
        assert [p.offset for p in got] == [-1001, -1001], "a refused v0 commit stores nothing"
    finally:
        modern.close()


def list_offsets_v0(conn, topic: str, partition: int, timestamp: int, max_num_offsets: int = 1):
    body = wire.i32(-1) + wire.array([topic], lambda t: wire.string(t) + wire.array(
        [partition], lambda p: wire.i32(p) + wire.i64(timestamp) + wire.i32(max_num_offsets)))
    r = conn.recv_response(conn.send_request(wire.API_LIST_OFFSETS, 0, body))
    [(_name, [(index, error, offsets)])] = r.array(
        lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i16(), y.array(lambda z: z.i64())))))
    assert index == partition
    return error, offsets


def test_list_offsets_v0_answers_earliest_and_latest_as_offset_lists(broker, topic):
    t = topic()
    assert_delivered(produce_all(producer(broker.bootstrap), t, [{"value": b"x"}] * 4))
    with wire.KafkaConnection(broker.bootstrap) as conn:
        assert list_offsets_v0(conn, t, 0, -2) == (0, [0])
        assert list_offsets_v0(conn, t, 0, -1) == (0, [4])
        assert list_offsets_v0(conn, t, 5, -1) == (wire.ERR_UNKNOWN_TOPIC_OR_PARTITION, [])


def test_offset_for_leader_epoch_v0_and_v1_on_the_wire(broker, topic):
    t = topic()
    assert_delivered(produce_all(producer(broker.bootstrap), t, [{"value": b"x"}] * 3))
    body = wire.array([t], lambda n: wire.string(n) + wire.array([0], lambda p: wire.i32(p) + wire.i32(0)))
    with wire.KafkaConnection(broker.bootstrap) as conn:
        r = conn.recv_response(conn.send_request(wire.API_OFFSET_FOR_LEADER_EPOCH, 0, body))
        assert r.array(lambda x: (x.string(), x.array(lambda y: (y.i16(), y.i32(), y.i64())))) == [(t, [(0, 0, 3)])]
        r = conn.recv_response(conn.send_request(wire.API_OFFSET_FOR_LEADER_EPOCH, 1, body))
        rows = r.array(lambda x: (x.string(), x.array(lambda y: (y.i16(), y.i32(), y.i32(), y.i64()))))
        assert rows == [(t, [(0, 0, 0, 3)])]


def test_describe_log_dirs_v0_lists_the_topic_partitions(broker, topic):
    t = topic(partitions=2)
    body = wire.array([t], lambda n: wire.string(n) + wire.array([0, 1], wire.i32))
    with wire.KafkaConnection(broker.bootstrap) as conn:
        r = conn.recv_response(conn.send_request(API_DESCRIBE_LOG_DIRS, 0, body))
        r.i32()  # throttle time
        dirs = r.array(lambda x: (x.i16(), x.string(), x.array(lambda y: (
            y.string(), y.array(lambda z: (z.i32(), z.i64(), z.i64(), z.i8()))))))
    assert dirs and all(error == 0 for error, _path, _topics in dirs)
    partitions = sorted(p[0] for _e, _path, topics in dirs for name, ps in topics if name == t for p in ps)
    assert partitions == [0, 1]


def test_delete_topics_v0_answer_has_no_throttle_time(broker, topic):
    t = topic()
    body = wire.array([t, "no-such-topic"], wire.string) + wire.i32(10000)
    with wire.KafkaConnection(broker.bootstrap) as conn:
        r = conn.recv_response(conn.send_request(API_DELETE_TOPICS, 0, body))
        rows = r.array(lambda x: (x.string(), x.i16()))
        assert r.remaining() == 0
    assert sorted(rows) == sorted([(t, 0), ("no-such-topic", wire.ERR_UNKNOWN_TOPIC_OR_PARTITION)])
    wait_until(lambda: t not in topic_names(broker.bootstrap), 20, f"{t} deleted")


API_CREATE_ACLS = 30
API_DESCRIBE_ACLS = 29
API_DELETE_ACLS = 31
TOPIC_RESOURCE, ANY, READ, ALLOW = 2, 1, 3, 3


@pytest.fixture
def acl_broker(broker_factory, tmp_path):
    """A plaintext broker with ACLs on, whose anonymous clients are super users."""
    port = free_port()
    props = tmp_path / "server.properties"
    props.write_text(f"listeners=PLAINTEXT://127.0.0.1:{port}\n"
                     f"authorizer.class.name={AUTHORIZER}\nsuper.users=User:ANONYMOUS\n")
    return broker_factory(port=port, args=["--config", str(props)])


def describe_acls_v0(conn, topic: str) -> list:
    body = wire.i8(TOPIC_RESOURCE) + wire.string(topic) + wire.string(None) + wire.string(None) + wire.i8(ANY) + wire.i8(ANY)
    r = conn.recv_response(conn.send_request(API_DESCRIBE_ACLS, 0, body))
    r.i32()
    assert r.i16() == 0 and r.string() in (None, "")
    return r.array(lambda x: (x.i8(), x.string(), x.array(lambda y: (y.string(), y.string(), y.i8(), y.i8()))))


def test_acls_v0_create_describe_and_delete_literal_acls_only(acl_broker):
    t = unique("acl-v0")
    # A prefixed ACL on the same name, which v0 (literal only) must neither see nor delete.
    a = admin(acl_broker.bootstrap)
    prefixed = AclBinding(ResourceType.TOPIC, t, ResourcePatternType.PREFIXED, "User:carol", "*",
                          AclOperation.READ, AclPermissionType.ALLOW)
    for f in a.create_acls([prefixed]).values():
        f.result(timeout=10)
    with wire.KafkaConnection(acl_broker.bootstrap) as conn:
        body = wire.array(["User:bob"], lambda p: wire.i8(TOPIC_RESOURCE) + wire.string(t) + wire.string(p)
                          + wire.string("*") + wire.i8(READ) + wire.i8(ALLOW))
        r = conn.recv_response(conn.send_request(API_CREATE_ACLS, 0, body))
        r.i32()
        assert r.array(lambda x: (x.i16(), x.string())) == [(0, "")]
        assert describe_acls_v0(conn, t) == [(TOPIC_RESOURCE, t, [("User:bob", "*", READ, ALLOW)])]
        # The current client sees the v0 ACL as LITERAL.
        seen = a.describe_acls(AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, None, None,
                                                AclOperation.ANY, AclPermissionType.ANY)).result(timeout=10)
        assert [(b.principal, b.resource_pattern_type) for b in seen] == [("User:bob", ResourcePatternType.LITERAL)]

        body = wire.array([t], lambda n: wire.i8(TOPIC_RESOURCE) + wire.string(n) + wire.string(None)
                          + wire.string(None) + wire.i8(ANY) + wire.i8(ANY))
        r = conn.recv_response(conn.send_request(API_DELETE_ACLS, 0, body))
        r.i32()
        results = r.array(lambda x: (x.i16(), x.string(), x.array(lambda y: (
            y.i16(), y.string(), y.i8(), y.string(), y.string(), y.string(), y.i8(), y.i8()))))
        # Error messages of successes: Kafka's default, the empty string.
        assert results == [(0, "", [(0, "", TOPIC_RESOURCE, t, "User:bob", "*", READ, ALLOW)])]
        assert describe_acls_v0(conn, t) == []
    left = a.describe_acls(AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.ANY, None, None,
                                            AclOperation.ANY, AclPermissionType.ANY)).result(timeout=10)
    assert [(b.principal, b.resource_pattern_type) for b in left] == [("User:carol", ResourcePatternType.PREFIXED)]
