"""Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, through
confluent-kafka's AdminClient, kafka-python, and the krait CLI (table and -o json)."""
import re

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic

from harness import (admin, assert_delivered, consume, create_topic, partition_count, produce_all, producer,
                     topic_names, unique, wait_until)

INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
TOPIC_ALREADY_EXISTS = 36
INVALID_CONFIG = 40
UNKNOWN_TOPIC_OR_PARTITION = 3


def create_error(bootstrap, new_topic: NewTopic, validate_only=False) -> KafkaError:
    futures = admin(bootstrap).create_topics([new_topic], operation_timeout=10, validate_only=validate_only)
    with pytest.raises(KafkaException) as e:
        futures[new_topic.topic].result(timeout=15)
    return e.value.args[0]


def describe_topic_configs(bootstrap, name) -> dict:
    futures = admin(bootstrap).describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)],
                                                request_timeout=10)
    (f,) = futures.values()
    return f.result(timeout=15)


# ---------------------------------------------------------------- AdminClient

def test_create_topic_with_partitions_and_configs_then_produce_to_every_partition(broker):
    name = create_topic(broker.bootstrap, unique("create"), partitions=4,
                        config={"retention.ms": "3600000", "max.message.bytes": "500000"})
    assert name in topic_names(broker.bootstrap)
    p = producer(broker.bootstrap)
    reports = produce_all(p, name, [dict(value=f"v{i}".encode(), partition=i) for i in range(4)])
    assert_delivered(reports)
    assert [(r.partition, r.offset) for r in reports] == [(0, 0), (1, 0), (2, 0), (3, 0)]


def test_replication_factor_above_live_brokers_is_invalid_replication_factor(broker):
    name = unique("rf3")
    err = create_error(broker.bootstrap, NewTopic(name, num_partitions=1, replication_factor=3))
    assert err.code() == INVALID_REPLICATION_FACTOR, err
    assert name not in topic_names(broker.bootstrap)


def test_creating_an_existing_topic_is_topic_already_exists_and_keeps_the_original(broker):
    name = create_topic(broker.bootstrap, unique("dup"), partitions=2)
    err = create_error(broker.bootstrap, NewTopic(name, num_partitions=5, replication_factor=1))
    assert err.code() == TOPIC_ALREADY_EXISTS, err
    assert partition_count(broker.bootstrap, name) == 2


@pytest.mark.parametrize("config", [
    {"no.such.config": "1"},
    {"retention.ms": "not-a-number"},
    {"max.message.bytes": "-5"},
    {"cleanup.policy": "shred"},
], ids=["unknown-key", "non-numeric", "negative", "unknown-policy"])
def test_invalid_topic_config_is_invalid_config_and_creates_nothing(broker, config):
    name = unique("badcfg")
    err = create_error(broker.bootstrap, NewTopic(name, num_partitions=1, replication_factor=1, config=config))
    assert err.code() == INVALID_CONFIG, err
    assert name not in topic_names(broker.bootstrap)


def test_zero_partitions_is_invalid_partitions(broker):
    name = unique("zero")
    err = create_error(broker.bootstrap, NewTopic(name, num_partitions=0, replication_factor=1))
    assert err.code() == INVALID_PARTITIONS, err


def test_validate_only_create_checks_but_creates_nothing(broker):
    name = unique("dry")
    futures = admin(broker.bootstrap).create_topics([NewTopic(name, num_partitions=3, replication_factor=1)],
                                                   validate_only=True, operation_timeout=10)
    assert futures[name].result(timeout=15) is None
    assert name not in topic_names(broker.bootstrap)
    err = create_error(broker.bootstrap, NewTopic(name, 1, 3), validate_only=True)
    assert err.code() == INVALID_REPLICATION_FACTOR


def test_create_partitions_grows_topic_and_new_partitions_take_records(broker):
    name = create_topic(broker.bootstrap, unique("grow"), partitions=2)
    p = producer(broker.bootstrap)
    assert_delivered(produce_all(p, name, [dict(value=b"before", partition=1)]))
    futures = admin(broker.bootstrap).create_partitions([NewPartitions(name, 5)], operation_timeout=10)
    futures[name].result(timeout=15)
    wait_until(lambda: partition_count(broker.bootstrap, name) == 5, 15, "5 partitions in metadata")
    p = producer(broker.bootstrap)
    reports = produce_all(p, name, [dict(value=f"new{i}".encode(), partition=i) for i in (2, 3, 4)])
    assert_delivered(reports)
    assert [(r.partition, r.offset) for r in reports] == [(2, 0), (3, 0), (4, 0)]
    records = consume(broker.bootstrap, name, range(5))
    assert sorted((r.partition, r.value) for r in records) == [
        (1, b"before"), (2, b"new2"), (3, b"new3"), (4, b"new4")]


def test_create_partitions_cannot_shrink_or_keep_the_count(broker):
    name = create_topic(broker.bootstrap, unique("shrink"), partitions=3)
    for count in (2, 3):
        futures = admin(broker.bootstrap).create_partitions([NewPartitions(name, count)], operation_timeout=10)
        with pytest.raises(KafkaException) as e:
            futures[name].result(timeout=15)
        assert e.value.args[0].code() == INVALID_PARTITIONS
    assert partition_count(broker.bootstrap, name) == 3


def test_delete_topic_removes_it_and_its_records(broker):
    name = create_topic(broker.bootstrap, unique("del"), partitions=2)
    assert_delivered(produce_all(producer(broker.bootstrap), name, [dict(value=b"x" * 100)] * 20))
    futures = admin(broker.bootstrap).delete_topics([name], operation_timeout=10)
    assert futures[name].result(timeout=15) is None
    wait_until(lambda: name not in topic_names(broker.bootstrap), 15, f"{name} to disappear")
    # A topic recreated under the same name starts empty.
    create_topic(broker.bootstrap, name, partitions=1)
    assert consume(broker.bootstrap, name, [0]) == []


def test_deleting_a_missing_topic_is_unknown_topic(broker):
    name = unique("nosuch")
    futures = admin(broker.bootstrap).delete_topics([name], operation_timeout=10)
    with pytest.raises(KafkaException) as e:
        futures[name].result(timeout=15)
    assert e.value.args[0].code() == UNKNOWN_TOPIC_OR_PARTITION


def test_topics_survive_restart_with_their_partitions_and_configs(broker):
    name = create_topic(broker.bootstrap, unique("persist"), partitions=3, config={"retention.ms": "123456"})
    broker.restart()
    assert partition_count(broker.bootstrap, name) == 3
    assert describe_topic_configs(broker.bootstrap, name)["retention.ms"].value == "123456"


# ---------------------------------------------------------------- DescribeConfigs

def test_describe_topic_configs_reports_defaults_and_overrides_with_their_source(broker):
    name = create_topic(broker.bootstrap, unique("cfg"), config={"retention.ms": "3600000"})
    entries = describe_topic_configs(broker.bootstrap, name)
    assert {"max.message.bytes", "retention.ms", "cleanup.policy"} <= set(entries)

    retention = entries["retention.ms"]
    assert retention.value == "3600000"
    assert retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not retention.is_default

    max_bytes = entries["max.message.bytes"]
    assert int(max_bytes.value) in (1048576, 1048588), max_bytes.value
    assert max_bytes.source in (ConfigSource.DEFAULT_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value)

    cleanup = entries["cleanup.policy"]
    assert cleanup.value == "delete"
    assert cleanup.source in (ConfigSource.DEFAULT_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value)


def test_describe_configs_of_missing_topic_is_an_error(broker):
    futures = admin(broker.bootstrap).describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, unique("ghost"))], request_timeout=10)
    (f,) = futures.values()
    with pytest.raises(KafkaException) as e:
        f.result(timeout=15)
    assert e.value.args[0].code() == UNKNOWN_TOPIC_OR_PARTITION


def test_describe_broker_configs_reports_this_broker(broker):
    futures = admin(broker.bootstrap).describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")],
                                                       request_timeout=10)
    (f,) = futures.values()
    entries = f.result(timeout=15)
    assert len(entries) >= 3
    ids = {entries[k].value for k in ("broker.id", "node.id") if k in entries}
    assert ids == {"1"}, f"broker.id/node.id missing or wrong: {sorted(entries)}"
    assert int(entries["message.max.bytes"].value) in (1048576, 1048588)


def test_kafka_python_describe_configs_agrees(broker):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KCR
    from kafka.admin import ConfigResourceType

    name = create_topic(broker.bootstrap, unique("kpcfg"), config={"max.message.bytes": "200000"})
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        result = a.describe_configs([KCR(ConfigResourceType.TOPIC, name)], config_filter="all")
    finally:
        a.close()
    text = repr(result)
    assert "max.message.bytes" in text and "200000" in text, text[:2000]


def test_kafka_python_creates_and_deletes_topics(broker):
    from kafka import KafkaAdminClient

    name = unique("kpadmin")
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        a.create_topics({name: {"num_partitions": 3, "replication_factor": 1}})
        wait_until(lambda: partition_count(broker.bootstrap, name) == 3, 15, "kafka-python-created topic")
        a.delete_topics([name])
        wait_until(lambda: name not in topic_names(broker.bootstrap), 15, f"{name} to disappear")
    finally:
        a.close()


# ---------------------------------------------------------------- the krait CLI

def find_partitions(doc, name):
    """The partitions of `name` in a CLI JSON document, whatever its exact nesting: a list of
    partition objects or a count."""
    if isinstance(doc, list):
        for item in doc:
            found = find_partitions(item, name)
            if found is not None:
                return found
        return None
    if isinstance(doc, dict):
        if doc.get("name") == name or doc.get("topic") == name:
            for key in ("partitions", "partition_count", "partitionCount", "num_partitions"):
                if key in doc:
                    return doc[key]
        for v in doc.values():
            found = find_partitions(v, name)
            if found is not None:
                return found
    return None


def names_in(doc) -> set:
    """Topic names in a CLI `topic list -o json` answer."""
    if isinstance(doc, str):
        return {doc}
    if isinstance(doc, list):
        return set().union(*(names_in(x) for x in doc)) if doc else set()
    if isinstance(doc, dict):
        out = set()
        for key in ("name", "topic"):
            if isinstance(doc.get(key), str):
                out.add(doc[key])
        for key in ("topics",):
            if key in doc:
                out |= names_in(doc[key])
        return out
    return set()


def test_cli_topic_lifecycle_in_table_output(broker, cli):
    name = unique("clitab")
    cli("topic", "create", name, "--partitions", "3", "--replication-factor", "1")
    assert partition_count(broker.bootstrap, name) == 3
    assert name in cli("topic", "list").stdout.decode().split()
    described = cli("topic", "describe", name).stdout.decode()
    assert name in described
    assert "3" in described
    cli("topic", "add-partitions", name, "--partitions", "5")
    wait_until(lambda: partition_count(broker.bootstrap, name) == 5, 15, "CLI grow to 5 partitions")
    cli("topic", "delete", name)
    wait_until(lambda: name not in topic_names(broker.bootstrap), 15, f"{name} to disappear")
    assert name not in cli("topic", "list").stdout.decode().split()


def test_cli_topic_lifecycle_in_json_output(broker, cli):
    name = unique("clijson")
    cli("topic", "create", name, "--partitions", "2", "--replication-factor", "1",
        "--config", "retention.ms=7200000", json_output=True)
    assert name in names_in(cli.json("topic", "list"))
    parts = find_partitions(cli.json("topic", "describe", name), name)
    assert parts is not None, "topic describe -o json names no partitions"
    assert (len(parts) if isinstance(parts, list) else parts) == 2
    if isinstance(parts, list):
        for p in parts:
            leader = p.get("leader", p.get("leader_id"))
            assert leader == 1, p
    assert describe_topic_configs(broker.bootstrap, name)["retention.ms"].value == "7200000"
    cli("topic", "add-partitions", name, "--partitions", "4", json_output=True)
    wait_until(lambda: partition_count(broker.bootstrap, name) == 4, 15, "CLI grow to 4 partitions")
    parts = find_partitions(cli.json("topic", "describe", name), name)
    assert (len(parts) if isinstance(parts, list) else parts) == 4
    cli("topic", "delete", name, json_output=True)
    wait_until(lambda: name not in names_in(cli.json("topic", "list")), 15, f"{name} gone from CLI list")


def squash(text: bytes) -> bytes:
    """Upper case without spaces, dashes or underscores: `Invalid replication factor`,
    `INVALID_REPLICATION_FACTOR` and `InvalidReplicationFactor` all read the same."""
    return re.sub(rb"[\s_-]", b"", text).upper()


def test_cli_refuses_rf3_duplicate_and_bad_config_with_nonzero_exit(broker, cli):
    name = unique("clierr")
    cp = cli("topic", "create", name, "--partitions", "1", "--replication-factor", "3", check=False)
    assert cp.returncode != 0
    assert b"REPLICATIONFACTOR" in squash(cp.stderr + cp.stdout), cp.stderr
    cli("topic", "create", name, "--partitions", "1", "--replication-factor", "1")
    cp = cli("topic", "create", name, "--partitions", "1", "--replication-factor", "1", check=False)
    assert cp.returncode != 0
    assert b"EXISTS" in squash(cp.stderr + cp.stdout), cp.stderr
    cp = cli("topic", "create", unique("clibad"), "--partitions", "1", "--replication-factor", "1",
             "--config", "no.such.key=1", check=False)
    assert cp.returncode != 0
    cp = cli("topic", "describe", unique("clighost"), check=False)
    assert cp.returncode != 0
