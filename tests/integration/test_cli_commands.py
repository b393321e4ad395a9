"""The krait CLI end to end against a real broker: topics, produce with keys, consume from
the beginning and from an offset, perf runs with JSON output, clear errors."""
from __future__ import annotations

from harness import consume, unique


def test_topic_lifecycle_through_the_cli(cli, broker):
    name = unique("cli")
    out = cli("topic", "create", name, "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000")
    assert f"Created topic {name}." in out.stdout.decode()
    listed = {t["topic"]: t for t in cli.json("topic", "list")}
    assert listed[name]["partitions"] == 3 and listed[name]["replication_factor"] == 1
    assert name in cli("topic", "list").stdout.decode()
    described = cli.json("topic", "describe", name)
    assert described["configs"]["retention.ms"] == {"value": "3600000", "source": "topic"}
    assert [p["partition"] for p in described["partition_details"]] == [0, 1, 2]
    cli("topic", "add-partitions", name, "--partitions", "5")
    assert cli.json("topic", "describe", name)["partitions"] == 5
    cli("topic", "alter-config", name, "--set", "retention.bytes=1000000", "--delete", "retention.ms")
    configs = cli.json("topic", "describe", name)["configs"]
    assert configs["retention.bytes"]["source"] == "topic" and configs["retention.ms"]["source"] == "default"
    cli("topic", "delete", name)
    assert name not in {t["topic"] for t in cli.json("topic", "list")}


def test_cli_errors_are_clear_and_exit_non_zero(cli):
    name = unique("cli")
    cli("topic", "create", name)
    again = cli("topic", "create", name, check=False)
    assert again.returncode != 0 and "already exists" in again.stderr.decode().lower()
    missing = cli("topic", "describe", unique("missing"), check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr.decode()
    rf = cli("topic", "create", unique("rf"), "--replication-factor", "3", check=False)
    assert rf.returncode != 0 and "replication" in rf.stderr.decode().lower()


def test_produce_with_keys_and_consume_from_beginning_and_offset(cli, broker):
    name = unique("cli")
    cli("topic", "create", name, "--partitions", "1")
    lines = [f"key{i}:value {i}" for i in range(20)]
    out = cli("produce", name, "--key-separator", ":", input="\n".join(lines) + "\n")
    assert "Produced 20 records." in out.stderr.decode()
    records = consume(broker.bootstrap, name, [0], expected=20)
    assert [(r.key, r.value) for r in records] == [(f"key{i}".encode(), f"value {i}".encode()) for i in range(20)]
    got = cli("consume", name, "--from-beginning", "--max-messages", "20", "--print-key", "--key-separator", "=")
    assert got.stdout.decode().splitlines() == [f"key{i}=value {i}" for i in range(20)]
    tail = cli("consume", name, "--partition", "0", "--offset", "15", "--max-messages", "5")
    assert tail.stdout.decode().splitlines() == [f"value {i}" for i in range(15, 20)]
    as_json = cli.json("consume", name, "--from-beginning", "--max-messages", "2")
    assert [(r["offset"], r["key"], r["value"]) for r in as_json] == [(0, "key0", "value 0"), (1, "key1", "value 1")]


def test_consume_with_too_few_records_fails_after_the_timeout(cli):
    name = unique("cli")
    cli("topic", "create", name)
    cli("produce", name, input="only\n")
    r = cli("--timeout-ms", "2000", "consume", name, "--from-beginning", "--max-messages", "5", check=False)
    assert r.returncode != 0 and "received 1 of 5" in r.stderr.decode()


def test_perf_produce_and_consume_report_json_figures(cli):
    name = unique("perf")
    cli("topic", "create", name, "--partitions", "2")
    produced = cli.json("perf", "produce", "--topic", name, "--num-records", "20000", "--record-size", "100")
    assert produced["records"] == 20000 and produced["records_per_sec"] > 0
    assert 0 < produced["latency_p50_ms"] <= produced["latency_p99_ms"] <= produced["latency_max_ms"]
    consumed = cli.json("perf", "consume", "--topic", name, "--num-records", "20000")
    assert consumed["records"] == 20000 and consumed["bytes"] == 20000 * 100


def test_perf_e2e_measures_every_record_sent_after_the_warm_up_from_send_to_receive(cli):
    name = unique("perf-e2e")
    cli("topic", "create", name)
    cli("produce", name, input="older record, not stamped\n")
    r = cli.json("perf", "e2e", "--topic", name, "--rate", "2000", "--seconds", "2", "--warmup-seconds", "0.5")
    assert r["records"] == 4000 and r["target_rate"] == 2000
    # Paced: not faster than asked, and not far behind on an idle loopback.
    assert 1500 <= r["achieved_rate"] <= 2100, r
    # The warm-up's quarter of the records is left out; the rest are each measured once.
    assert 2800 <= r["measured"] <= 3100, r
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"] <= r["max_ms"] < 10_000, r
    assert 0 < r["ack_p50_ms"] <= r["ack_p99_ms"], r
    # Every record reached the partition, after the one that was there before.
    consumed = cli.json("perf", "consume", "--topic", name, "--num-records", "4001")
    assert consumed["records"] == 4001


def test_perf_e2e_refuses_a_record_too_short_for_its_stamp(cli):
    r = cli("perf", "e2e", "--topic", "any", "--rate", "10", "--record-size", "4", check=False)
    assert r.returncode != 0 and "record-size" in r.stderr.decode()
