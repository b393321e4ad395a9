"""`krait transactions` end to end against a real broker: an open transaction (opened with
confluent-kafka and left hanging) is listed, described and its producer shown, and aborting it
with the CLI releases read_committed consumers."""
from __future__ import annotations

from confluent_kafka import Producer

from harness import consume, unique, wait_until
from test_transactions import lso, txn_producer


def committed_values(bootstrap: str, topic: str) -> list[str]:
    records = consume(bootstrap, topic, [0], isolation_level="read_committed")
    return [r.value.decode() for r in records]


def test_a_hanging_transaction_is_found_and_aborted_with_the_cli(cli, broker, topic):
    t = topic(partitions=1)
    tid = unique("hanging")
    hanging = txn_producer(broker.bootstrap, tid, transaction_timeout_ms=600000)
    hanging.begin_transaction()
    for i in range(20):
        hanging.produce(t, f"open-{i}".encode(), partition=0)
    hanging.flush(30)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(5):
        plain.produce(t, f"after-{i}".encode(), partition=0)
    assert plain.flush(30) == 0
    assert lso(broker.bootstrap, t, 0) == 0, "the open transaction holds read_committed back"
    assert committed_values(broker.bootstrap, t) == []

    listed = {x["transactional_id"]: x for x in cli.json("transactions", "list")}
    assert listed[tid]["state"] == "Ongoing"
    ongoing = {x["transactional_id"] for x in cli.json("transactions", "list", "--state", "Ongoing")}
    assert tid in ongoing
    empty = {x["transactional_id"] for x in cli.json("transactions", "list", "--state", "Empty")}
    assert tid not in empty
    assert tid in cli("transactions", "list").stdout.decode()
    bad = cli("transactions", "list", "--state", "Bogus", check=False)
    assert bad.returncode != 0 and "Bogus" in bad.stderr.decode()

    described = cli.json("transactions", "describe", tid)
    assert described["state"] == "Ongoing" and described["partitions"] == [[t, 0]]
    assert described["timeout_ms"] == 600000 and described["start_time_ms"] > 0
    producer_id, epoch = described["producer_id"], described["producer_epoch"]
    missing = cli("transactions", "describe", unique("nope"), check=False)
    assert missing.returncode != 0 and "TransactionalIdNotFound" in missing.stderr.decode()

    [partition] = cli.json("transactions", "producers", "--topic", t, "--partition", "0")
    states = {p["producer_id"]: p for p in partition["producers"]}
    assert states[producer_id]["current_txn_start_offset"] == 0
    assert states[producer_id]["producer_epoch"] == epoch
    assert states[producer_id]["last_sequence"] == 19
    assert str(producer_id) in cli("transactions", "producers", "--topic", t).stdout.decode()

    out = cli("transactions", "abort", "--topic", t, "--partition", "0",
              "--producer-id", str(producer_id), "--producer-epoch", str(epoch))
    assert "aborted the transaction" in out.stdout.decode()
    # 20 open records, 5 plain ones, then the ABORT marker.
    wait_until(lambda: lso(broker.bootstrap, t, 0) == 26, 20, "the LSO to pass the aborted transaction")
    seen = committed_values(broker.bootstrap, t)
    assert seen == [f"after-{i}" for i in range(5)], seen
    [partition] = cli.json("transactions", "producers", "--topic", t, "--partition", "0")
    states = {p["producer_id"]: p for p in partition["producers"]}
    assert states[producer_id]["current_txn_start_offset"] == -1
    # The coordinator still thinks the transaction open; the producer's own abort ends it there.
    hanging.abort_transaction(30)
    assert cli.json("transactions", "describe", tid)["state"] == "CompleteAbort"
