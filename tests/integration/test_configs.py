"""Topic configs: IncrementalAlterConfigs and AlterConfigs through real admin clients,
DescribeConfigs sources, refusals that name the key, and LogAppendTime."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException, TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType

from harness import admin, consume, create_topic, produce_all, producer, unique


def describe(bootstrap, topic):
    # The client must outlive its futures, or they resolve with _DESTROY.
    client = admin(bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic)
    return client.describe_configs([res])[res].result(timeout=10)


def incremental(bootstrap, topic, *changes, resource=ResourceType.TOPIC):
    client = admin(bootstrap)
    entries = [ConfigEntry(k, v, incremental_operation=op) for k, v, op in changes]
    res = ConfigResource(resource, topic, incremental_configs=entries)
    return client.incremental_alter_configs([res])[res].result(timeout=10)


def test_incremental_alter_sets_and_deletes_overrides_with_sources(broker, topic):
    t = topic()
    before = describe(broker.bootstrap, t)["retention.ms"]
    assert (before.value, before.source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)
    incremental(broker.bootstrap, t, ("retention.ms", "3600000", AlterConfigOpType.SET))
    after = describe(broker.bootstrap, t)["retention.ms"]
    assert (after.value, after.source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    incremental(broker.bootstrap, t, ("retention.ms", None, AlterConfigOpType.DELETE))
    assert describe(broker.bootstrap, t)["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value


@pytest.mark.parametrize("key,value,needle", [
    ("no.such.config", "1", "no.such.config"),
    ("retention.ms", "soon", "retention.ms"),
    ("cleanup.policy", "shred", "cleanup.policy"),
])
def test_invalid_alterations_are_refused_naming_the_key(broker, topic, key, value, needle):
    t = topic()
    with pytest.raises(KafkaException) as e:
        incremental(broker.bootstrap, t, (key, value, AlterConfigOpType.SET))
    err = e.value.args[0]
    assert err.name() == "INVALID_CONFIG", err
    assert needle in err.str()


def describe_broker(bootstrap, name):
    client = admin(bootstrap)
    res = ConfigResource(ResourceType.BROKER, name)
    return client.describe_configs([res])[res].result(timeout=10)


def test_static_broker_configs_are_refused_naming_the_key(broker):
    for key in ("log.dirs", "node.id", "log.retention.check.interval.ms"):
        with pytest.raises(KafkaException) as e:
            incremental(broker.bootstrap, "1", (key, "1", AlterConfigOpType.SET), resource=ResourceType.BROKER)
        err = e.value.args[0]
        assert err.name() == "INVALID_CONFIG" and key in err.str() and "static" in err.str(), err


def set_cluster_default(bootstrap, configs):
    """AlterConfigs on the cluster-wide broker level (resource name ""), which neither client's
    admin API can name: on the wire."""
    import kafka_wire
    with kafka_wire.KafkaConnection(bootstrap) as conn:
        assert kafka_wire.alter_configs(conn, 4, "", configs) == (0, None)


def test_dynamic_topic_defaults_apply_to_topics_without_an_override_broker_level_first(broker, topic):
    """message.max.bytes set for every broker, then for this one, is the limit a topic without an
    override enforces at once, with the source DescribeConfigs names; deleting both restores it."""
    t = topic()
    big = [dict(value=b"x" * 5000)]

    def limit():
        e = describe(broker.bootstrap, t)["max.message.bytes"]
        return e.value, e.source

    set_cluster_default(broker.bootstrap, {"message.max.bytes": "2000"})
    assert limit() == ("2000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    [d] = produce_all(producer(broker.bootstrap), t, big)
    assert d.error is not None and d.error.name() == "MSG_SIZE_TOO_LARGE", d.error

    incremental(broker.bootstrap, "1", ("message.max.bytes", "100000", AlterConfigOpType.SET), resource=ResourceType.BROKER)
    assert limit() == ("100000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    [d] = produce_all(producer(broker.bootstrap), t, big)
    assert d.error is None, d.error
    described = describe_broker(broker.bootstrap, "1")["message.max.bytes"]
    assert (described.value, described.source, described.is_read_only) == (
        "100000", ConfigSource.DYNAMIC_BROKER_CONFIG.value, False)

    incremental(broker.bootstrap, "1", ("message.max.bytes", None, AlterConfigOpType.DELETE), resource=ResourceType.BROKER)
    set_cluster_default(broker.bootstrap, {})
    assert limit()[1] == ConfigSource.DEFAULT_CONFIG.value
    [d] = produce_all(producer(broker.bootstrap), t, big)
    assert d.error is None, d.error


def test_broker_list_configs_append_and_subtract_and_compatibility_keys_round_trip(broker):
    """What librdkafka's 0081 does: APPEND to log.cleanup.policy and SET background.threads on
    a broker, then SUBTRACT and DELETE; a value outside a key's rule is refused."""
    incremental(broker.bootstrap, "1", ("background.threads", "9", AlterConfigOpType.SET),
                ("log.cleanup.policy", "compact", AlterConfigOpType.APPEND), resource=ResourceType.BROKER)
    configs = describe_broker(broker.bootstrap, "1")
    assert configs["log.cleanup.policy"].value == "delete,compact"
    assert (configs["background.threads"].value, configs["background.threads"].source) == (
        "9", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    incremental(broker.bootstrap, "1", ("background.threads", "", AlterConfigOpType.DELETE),
                ("log.cleanup.policy", "compact", AlterConfigOpType.SUBTRACT), resource=ResourceType.BROKER)
    configs = describe_broker(broker.bootstrap, "1")
    assert configs["log.cleanup.policy"].value == "delete"
    assert configs["background.threads"].source == ConfigSource.DEFAULT_CONFIG.value
    with pytest.raises(KafkaException) as e:
        incremental(broker.bootstrap, "1", ("log.cleanup.policy", "shred", AlterConfigOpType.SET),
                    resource=ResourceType.BROKER)
    assert "log.cleanup.policy" in e.value.args[0].str()


def test_kafka_python_legacy_alter_configs_sets_a_key_and_keeps_the_others(broker):
    """AlterConfigs replaces a topic's whole override set; kafka-python therefore re-sends the
    overrides it found, so the visible effect is one key changed and the rest kept."""
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient

    t = create_topic(broker.bootstrap, unique("cfg"), config={"retention.ms": "1000", "retention.bytes": "5000"})
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        # incremental=False forces the legacy AlterConfigs, which replaces every override.
        a.alter_configs([KConfigResource(ConfigResourceType.TOPIC, t, configs={"max.message.bytes": "20000"})],
                        incremental=False)
    finally:
        a.close()
    configs = describe(broker.bootstrap, t)
    overridden = {k for k, v in configs.items() if v.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
    assert overridden == {"max.message.bytes", "retention.ms", "retention.bytes"}
    assert (configs["max.message.bytes"].value, configs["retention.ms"].value) == ("20000", "1000")


def test_log_append_time_topic_stamps_records_with_the_broker_clock(broker):
    t = create_topic(broker.bootstrap, unique("lat"), config={"message.timestamp.type": "LogAppendTime"})
    start = int(time.time() * 1000)
    produce_all(producer(broker.bootstrap), t, [{"value": b"x", "timestamp": 1_000}])
    [record] = consume(broker.bootstrap, t, [0], expected=1)
    assert record.timestamp >= start - 1000, "the producer's 1970 timestamp was replaced"
    # The timestamp type travels with the batch: read it back through the raw client API.
    from harness import consumer
    from confluent_kafka import TopicPartition
    cons = consumer(broker.bootstrap, **{"enable.partition.eof": False})
    try:
        cons.assign([TopicPartition(t, 0, 0)])
        msg = next(m for _ in range(40) for m in cons.consume(1, 0.5) if m.error() is None)
        assert msg.timestamp()[0] == TIMESTAMP_LOG_APPEND_TIME
    finally:
        cons.close()


def test_kafka_python_admin_configs_round_trip_and_invalid_values_are_refused(broker):
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient

    t = create_topic(broker.bootstrap, unique("cfg"))
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        a.alter_configs([KConfigResource(ConfigResourceType.TOPIC, t, configs={"retention.ms": "7200000"})])
        described = a.describe_configs([KConfigResource(ConfigResourceType.TOPIC, t)])
        text = repr(described)
        assert "retention.ms" in text and "7200000" in text, text[:500]
        assert describe(broker.bootstrap, t)["retention.ms"].value == "7200000"
        # kafka-python reports per-resource errors in its result: INVALID_CONFIG is error 40.
        result = repr(a.alter_configs([KConfigResource(ConfigResourceType.TOPIC, t, configs={"retention.ms": "-5"})],
                                      raise_on_unknown=False))
        assert "[Error 40] InvalidConfigurationError" in result and "retention.ms" in result, result
        assert describe(broker.bootstrap, t)["retention.ms"].value == "7200000", "a refused change changes nothing"
    finally:
        a.close()
