"""The Kafka tool shims librdkafka's tests run (tests/librdkafka/kafka-shim/bin): each argument
form those tests pass becomes one `krait` CLI command, and anything else is refused loudly
(exit 2, a message naming the argument) rather than guessed. The CLI here is a stand-in that
prints its arguments, so no broker is needed; the real CLI runs them in tests/librdkafka/run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BIN = Path(__file__).resolve().parents[1] / "librdkafka" / "kafka-shim" / "bin"


def shim(tmp_path: Path, command: str) -> subprocess.CompletedProcess:
    """Runs `command` through sh (as librdkafka's system() does) with a CLI that echoes."""
    cli = tmp_path / "krait"
    cli.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    cli.chmod(0o755)
    env = {**os.environ, "KRAIT_CLI_BIN": str(cli)}
    return subprocess.run(["sh", "-c", f"{BIN}/{command}"], env=env, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("command, expected", [
    # test_create_topic_sh, 0052 and 0077 (with --config), through test_kafka_topics.
    ('kafka-topics.sh --bootstrap-server 127.0.0.1:9 --create --topic "t1" --replication-factor 1 '
     '--partitions 1 --config message.timestamp.type=LogAppendTime --config segment.bytes=10000',
     ["--bootstrap-server", "127.0.0.1:9", "topic", "create", "t1", "--partitions", "1",
      "--replication-factor", "1", "--config", "message.timestamp.type=LogAppendTime",
      "--config", "segment.bytes=10000"]),
    # 0045.
    ("kafka-topics.sh --bootstrap-server b:1 --alter --topic t2 --partitions 4",
     ["--bootstrap-server", "b:1", "topic", "add-partitions", "t2", "--partitions", "4"]),
    ('kafka-topics.sh --bootstrap-server b:1 --delete --topic "t3" ',
     ["--bootstrap-server", "b:1", "topic", "delete", "t3"]),
    # 0109, 0115, 0119.
    ("kafka-acls.sh --bootstrap-server b:1 --add --deny-principal 'User:*' --operation All "
     "--deny-host '*' --topic 't4'",
     ["--bootstrap-server", "b:1", "acl", "add", "--deny-principal", "User:*", "--operation", "All",
      "--topic", "t4", "--host", "*"]),
    ("kafka-acls.sh --bootstrap-server b:1 --remove --force --allow-principal 'User:*' "
     "--operation Describe --allow-host '*' --topic 't5'",
     ["--bootstrap-server", "b:1", "acl", "remove", "--topic", "t5", "--principal", "User:*",
      "--operation", "Describe", "--permission", "allow", "--host", "*"]),
])
def test_the_forms_librdkafkas_tests_use_become_krait_commands(tmp_path, command, expected):
    r = shim(tmp_path, command)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == expected


@pytest.mark.parametrize("command, why", [
    ("kafka-topics.sh --bootstrap-server b:1 --describe --topic t", "unsupported argument '--describe'"),
    ("kafka-topics.sh --bootstrap-server b:1 --create --topic t --partitions 1",
     "--replication-factor is required"),
    ("kafka-topics.sh --bootstrap-server b:1 --delete --topic t --partitions 2",
     "--partitions not supported with --delete"),
    ("kafka-acls.sh --bootstrap-server b:1 --remove --allow-principal User:x --operation Read --topic t",
     "--remove without --force"),
    ("kafka-acls.sh --bootstrap-server b:1 --add --allow-principal User:x --deny-host '*' "
     "--operation Read --topic t", "--deny-host with --allow-principal"),
    ("kafka-acls.sh --bootstrap-server b:1 --add --allow-principal User:x --operation Read --group g",
     "unsupported argument '--group'"),
    # No test of librdkafka 2.12.1 runs kafka-configs.sh: there is none, and sh says so.
    ("kafka-configs.sh --bootstrap-server b:1 --describe", "not found"),
])
def test_any_other_form_is_refused_with_a_message(tmp_path, command, why):
    r = shim(tmp_path, command)
    assert r.returncode != 0
    assert r.stdout == "", "nothing may run"
    assert why in r.stderr
