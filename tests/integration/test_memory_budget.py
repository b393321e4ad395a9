"""memory.mb against real clients: a broker with the default budget (128 MiB), 32
confluent-kafka consumers reading a backlog at once while four producers write large records,
every record read and every write delivered, and the broker's peak resident size within the
budget. The parts' own limits are tested on their own (test_fetch_memory.py, test_hardening.py);
this checks that their shares and the rest fit together. Measured here: a peak of 106 MiB; with
the defaults before memory.mb (RocksDB 64 MiB, Fetch responses 64 MiB, request frames 256 MiB)
the same load took the broker to 156 MiB."""
from __future__ import annotations

from harness import assert_delivered, consume, create_topic, produce_all, producer, unique
from test_fetch_memory import read_at_once
from test_hardening import peak_rss_bytes, reset_peak_rss, rss_bytes

MiB = 1024 * 1024
BUDGET = 128 * MiB  # memory.mb's default
PARTITIONS = 4
VALUE = 10_000
BACKLOG = 4_000  # 40 MB read by every consumer
CONSUMERS = 32
PRODUCERS = 4
WRITTEN = 2_000  # 20 MB per producer, while the consumers read


def records(n: int) -> list[dict]:
    return [{"value": i.to_bytes(4, "big") + b"v" * (VALUE - 4), "partition": i % PARTITIONS}
            for i in range(n)]


def test_readers_and_writers_at_once_stay_within_the_default_memory_budget(broker_factory):
    b = broker_factory()
    backlog = unique("backlog")
    create_topic(b.bootstrap, backlog, partitions=PARTITIONS)
    written = [unique("written") for _ in range(PRODUCERS)]
    for topic in written:
        create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    p = producer(b.bootstrap, **{"linger.ms": 20, "batch.size": 1_000_000})
    assert_delivered(produce_all(p, backlog, records(BACKLOG), timeout=120))
    reset_peak_rss(b)
    before = rss_bytes(b)

    def write_all(topic: str) -> None:
        w = producer(b.bootstrap, **{"linger.ms": 5, "batch.size": 1_000_000})
        assert_delivered(produce_all(w, topic, records(WRITTEN), timeout=180))

    read_at_once(b.bootstrap, backlog, PARTITIONS, BACKLOG, CONSUMERS,
                 also=[lambda t=t: write_all(t) for t in written],
                 **{"fetch.max.bytes": 50 * MiB, "max.partition.fetch.bytes": 10 * MiB})
    for topic in written:
        got = consume(b.bootstrap, topic, range(PARTITIONS), expected=WRITTEN, timeout=60)
        assert sorted(int.from_bytes(r.value[:4], "big") for r in got) == list(range(WRITTEN))

    peak = peak_rss_bytes(b)
    print(f"{CONSUMERS} consumers x {BACKLOG * VALUE // 1_000_000} MB and {PRODUCERS} producers x "
          f"{WRITTEN * VALUE // 1_000_000} MB at once: RSS {before / MiB:.0f} MiB before, peak "
          f"{peak / MiB:.0f} MiB against a budget of {BUDGET // MiB} MiB")
    assert peak <= BUDGET, f"peak RSS {peak / MiB:.0f} MiB over the {BUDGET // MiB} MiB budget"
