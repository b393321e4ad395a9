"""The README's first command, run as written from the repository root: it sets itself up,
builds (from the cache tests/run just filled, so only cargo's freshness check), serves Kafka, and
stops cleanly on SIGTERM. A newcomer's first step is checked the way `tests/run` is.

Only the data directory and the listener move, through the broker's `KRAIT_*` environment, so
the command itself is not edited; port 0 keeps it off every other test's ports.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from harness import STOP_TIMEOUT_S, wait_until

REPO = Path(__file__).resolve().parents[2]
# cargo checks every crate's freshness before it runs the binary: seconds with a warm cache,
# a minute on a loaded machine.
SERVING_TIMEOUT_S = 150.0
LISTENING = re.compile(r"krait-broker listening on 127\.0\.0\.1:(\d+)")


def first_command(readme: str) -> str:
    """The first ```sh block of the README, which must hold exactly one command."""
    block = re.search(r"^```sh\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)
    assert block, "the README has no ```sh block"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, f"the README's first command block is not one command: {lines}"
    return lines[0]


def test_first_command_block_is_the_broker_run_script():
    assert first_command((REPO / "README.md").read_text()) == "broker/run"


@pytest.mark.slow
@pytest.mark.timeout(SERVING_TIMEOUT_S + 2 * STOP_TIMEOUT_S + 30)
def test_readme_first_command_serves_kafka_and_stops_cleanly_on_sigterm(tmp_path):
    command = first_command((REPO / "README.md").read_text())
    data_dir = tmp_path / "data"
    log_path = tmp_path / "first-command.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRAIT_")}
    env.update(KRAIT_DATA_DIR=str(data_dir), KRAIT_LISTEN="127.0.0.1:0")

    with open(log_path, "wb") as log:
        # bash execs the command, broker/run execs cargo and `cargo run` execs the broker, so
        # this pid ends up being krait-broker's, as it is for a user at a terminal.
        proc = subprocess.Popen(["bash", "-c", command], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def listening_port():
            text = log_path.read_text(errors="replace")
            if proc.poll() is not None:
                raise AssertionError(f"`{command}` exited with {proc.returncode} before serving:\n"
                                     + tail(text))
            found = LISTENING.search(text)
            return int(found.group(1)) if found else None

        try:
            port = wait_until(listening_port, SERVING_TIMEOUT_S, f"`{command}` to listen", interval=0.2)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{tail(log_path.read_text(errors='replace'))}") from None

        # ApiVersions and Metadata from a real client: the broker it names is this one.
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=30)
        assert [(b.host, b.port) for b in metadata.brokers.values()] == [("127.0.0.1", port)]
        assert data_dir.is_dir(), "the broker did not use KRAIT_DATA_DIR"

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_TIMEOUT_S)
        assert code == 0, f"`{command}` exited with {code} on SIGTERM:\n{tail(log_path.read_text(errors='replace'))}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
