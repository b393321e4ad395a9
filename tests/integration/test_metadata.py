"""ApiVersions, Metadata and DescribeCluster as real clients see them: kcat (librdkafka 2.0.2,
a strict parser), confluent-kafka (librdkafka 2.x), kafka-python, and raw requests."""
import json

from confluent_kafka.admin import AdminClient

import kafka_wire as wire
from harness import admin, create_topic, free_port, kcat, unique

# API keys and the lowest max version a modern client needs of each.
REQUIRED_APIS = {
    wire.API_PRODUCE: 3, wire.API_FETCH: 4, wire.API_LIST_OFFSETS: 1, wire.API_METADATA: 1,
    wire.API_API_VERSIONS: 3, 19: 2, 20: 1, 37: 0, 32: 1, 60: 0,  # CreateTopics, DeleteTopics, CreatePartitions,
}                                                                # DescribeConfigs, DescribeCluster


def test_api_versions_v0_and_v3_list_every_served_api_with_sane_ranges(broker):
    with wire.KafkaConnection(broker.bootstrap) as conn:
        v0 = wire.api_versions(conn, 0)
        v3 = wire.api_versions(conn, 3)
    assert v0.error_code == 0 and v3.error_code == 0
    assert v0.versions == v3.versions, "the served table must not depend on the request version"
    for key, need in REQUIRED_APIS.items():
        assert key in v3.versions, f"API {key} missing from ApiVersions"
        lo, hi = v3.versions[key]
        assert lo <= hi and hi >= need, f"API {key} serves {lo}..{hi}, need at least {need}"
    assert v3.versions[wire.API_API_VERSIONS][0] == 0, "ApiVersions v0 must stay served for old clients"


def test_kcat_metadata_handshake_works_with_old_librdkafka(broker):
    name = create_topic(broker.bootstrap, unique("kcat-md"), partitions=3)
    out = kcat(broker.bootstrap, "-L", "-J", "-t", name, timeout=30).stdout
    md = json.loads(out)
    assert [b["id"] for b in md["brokers"]] == [1]
    assert md["brokers"][0]["name"] == f"127.0.0.1:{broker.port}"
    assert md["controllerid"] == 1
    (t,) = md["topics"]
    assert t["topic"] == name and "error" not in t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    for p in t["partitions"]:
        assert p["leader"] == 1
        assert [r["id"] for r in p["replicas"]] == [1]
        assert [r["id"] for r in p["isrs"]] == [1]


def test_kcat_plain_listing_names_broker_and_topics(broker):
    names = [create_topic(broker.bootstrap, unique("kcat-list"), partitions=p) for p in (1, 4)]
    cp = kcat(broker.bootstrap, "-L", timeout=30)
    out = cp.stdout.decode()
    assert "ApiVersionRequest failed" not in cp.stderr.decode()
    assert f"broker 1 at 127.0.0.1:{broker.port}" in out
    assert f'topic "{names[0]}" with 1 partitions' in out
    assert f'topic "{names[1]}" with 4 partitions' in out


def test_confluent_list_topics_reports_broker_controller_cluster_and_leaders(broker):
    name = create_topic(broker.bootstrap, unique("md"), partitions=5)
    md = admin(broker.bootstrap).list_topics(timeout=10)
    assert md.cluster_id, "cluster id must be set"
    assert md.controller_id == 1
    assert list(md.brokers) == [1]
    assert (md.brokers[1].host, md.brokers[1].port) == ("127.0.0.1", broker.port)
    t = md.topics[name]
    assert t.error is None
    assert sorted(t.partitions) == [0, 1, 2, 3, 4]
    for p in t.partitions.values():
        assert (p.leader, p.replicas, p.isrs, p.error) == (1, [1], [1], None)


def test_cluster_id_is_stable_across_restart(broker):
    before = admin(broker.bootstrap).list_topics(timeout=10).cluster_id
    broker.restart()
    after = admin(broker.bootstrap).list_topics(timeout=10).cluster_id
    assert before and before == after


def test_metadata_for_unknown_topic_with_auto_create_off_is_unknown_topic(broker_factory):
    b = broker_factory(args=["--auto-create-topics", "false"])
    name = unique("missing")
    md = admin(b.bootstrap).list_topics(topic=name, timeout=10)
    t = md.topics[name]
    assert t.error is not None and t.error.code() == 3, f"expected UNKNOWN_TOPIC_OR_PARTITION, got {t.error}"
    assert name not in admin(b.bootstrap).list_topics(timeout=10).topics


def test_metadata_for_unknown_topic_auto_creates_with_default_partitions(broker_factory):
    b = broker_factory(args=["--default-partitions", "3"])
    name = unique("auto")
    out = json.loads(kcat(b.bootstrap, "-L", "-J", "-t", name, timeout=30).stdout)
    md = admin(b.bootstrap).list_topics(timeout=10)
    assert name in md.topics, f"kcat -L -t {name} did not auto-create it: {out}"
    assert len(md.topics[name].partitions) == 3


def test_advertised_host_port_and_node_id_are_what_metadata_returns(broker_factory):
    port = free_port()
    b = broker_factory(args=["--node-id", "7", "--advertise", f"localhost:{port}"], port=port)
    md = admin(b.bootstrap).list_topics(timeout=10)
    assert list(md.brokers) == [7]
    assert (md.brokers[7].host, md.brokers[7].port) == ("localhost", port)
    assert md.controller_id == 7
    name = create_topic(b.bootstrap, unique("adv"), partitions=2)
    t = admin(b.bootstrap).list_topics(topic=name, timeout=10).topics[name]
    assert {p.leader for p in t.partitions.values()} == {7}


def test_flags_fall_back_to_krait_environment_variables(broker_factory):
    b = broker_factory(env={"KRAIT_NODE_ID": "5", "KRAIT_DEFAULT_PARTITIONS": "2"})
    md = admin(b.bootstrap).list_topics(timeout=10)
    assert list(md.brokers) == [5]
    name = unique("envauto")
    kcat(b.bootstrap, "-L", "-t", name, timeout=30)
    assert len(admin(b.bootstrap).list_topics(topic=name, timeout=10).topics[name].partitions) == 2


def test_describe_cluster_returns_this_broker_as_controller(broker):
    a: AdminClient = admin(broker.bootstrap)
    desc = a.describe_cluster(request_timeout=10).result(timeout=15)
    assert desc.cluster_id == a.list_topics(timeout=10).cluster_id
    assert desc.controller is not None and desc.controller.id == 1
    assert [(n.id, n.host, n.port) for n in desc.nodes] == [(1, "127.0.0.1", broker.port)]


def test_confluent_describe_topics_reports_partitions_and_leaders(broker):
    from confluent_kafka import TopicCollection

    name = create_topic(broker.bootstrap, unique("desc"), partitions=3)
    futures = admin(broker.bootstrap).describe_topics(TopicCollection([name]), request_timeout=10)
    d = futures[name].result(timeout=15)
    assert d.name == name
    assert [p.id for p in d.partitions] == [0, 1, 2]
    for p in d.partitions:
        assert p.leader.id == 1
        assert [r.id for r in p.replicas] == [1]
        assert [r.id for r in p.isr] == [1]


def test_kafka_python_sees_cluster_and_topic_partitions(broker):
    from kafka import KafkaAdminClient, KafkaConsumer

    name = create_topic(broker.bootstrap, unique("kp-md"), partitions=4)
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        cluster = a.describe_cluster()
        assert cluster["controller_id"] == 1
        assert cluster["cluster_id"] == admin(broker.bootstrap).list_topics(timeout=10).cluster_id
        assert [(x["broker_id"], x["host"], x["port"]) for x in cluster["brokers"]] == [(1, "127.0.0.1", broker.port)]
        assert name in a.list_topics()
        (t,) = a.describe_topics([name])
        assert t["error_code"] == 0
        parts = sorted(t["partitions"], key=lambda p: p["partition_index"])
        assert [p["partition_index"] for p in parts] == [0, 1, 2, 3]
        assert all(p["leader_id"] == 1 and p["replica_nodes"] == [1] for p in parts)
    finally:
        a.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        assert c.partitions_for_topic(name) == {0, 1, 2, 3}
    finally:
        c.close()


def test_the_external_listener_advertises_the_external_addresses(broker_factory):
    """`--external-listen` is a second Kafka listener whose clients are told every broker's
    address from `--external-advertised-addresses` (entry N for broker N), as the operator's
    NodePort/load-balancer setup needs; clients of the internal listener still get `--advertise`."""
    external = free_port()
    b = broker_factory(args=["--external-listen", f"127.0.0.1:{external}",
                             "--external-advertised-addresses", f"unused.example:1,localhost:{external}"])
    inside = json.loads(kcat(b.bootstrap, "-L", "-J", timeout=30).stdout)
    assert [x["name"] for x in inside["brokers"]] == [f"127.0.0.1:{b.port}"]
    outside = json.loads(kcat(f"127.0.0.1:{external}", "-L", "-J", timeout=30).stdout)
    assert [x["name"] for x in outside["brokers"]] == [f"localhost:{external}"]
    # The external listener serves the whole protocol: a topic created through it is produced to
    # and read back through it.
    name = create_topic(f"127.0.0.1:{external}", unique("ext"), partitions=1)
    kcat(f"127.0.0.1:{external}", "-P", "-t", name, input="hello\n", timeout=30)
    out = kcat(f"127.0.0.1:{external}", "-C", "-t", name, "-c", "1", "-e", timeout=30).stdout
    assert out.strip() == b"hello"


def test_readyz_answers_503_until_registered_then_200(broker_factory):
    import urllib.request
    http = free_port()
    b = broker_factory(args=["--http-listen", f"127.0.0.1:{http}"])
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz", timeout=10) as r:
        assert r.status == 200 and r.read() == b"ready\n"
    assert b.alive()
