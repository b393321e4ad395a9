"""Loopback ports for the brokers a test or benchmark starts.

A port found by binding port 0 comes from the kernel's ephemeral range: between the moment it is
released and the moment the broker binds it, any outgoing connection (a client, a Raft peer) may
take it, and the kernel may hand the same port to the next caller. The ports here come from below
the ephemeral range (which starts at 32768 on Linux), are handed out at most once per process,
and are checked free when handed out.
"""
from __future__ import annotations

import os
import socket
import threading

LOW, HIGH = 20000, 32768  # [LOW, HIGH): below net.ipv4.ip_local_port_range

_lock = threading.Lock()
_handed_out: set[int] = set()
# Each process starts at its own place, so two test runs on one machine rarely meet.
_next = LOW + (os.getpid() * 7919) % (HIGH - LOW)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port below the ephemeral range that nothing listens on and that this process
    has not handed out before."""
    global _next
    with _lock:
        for _ in range(HIGH - LOW):
            port = _next
            _next = LOW if _next + 1 >= HIGH else _next + 1
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free loopback port left in [{LOW}, {HIGH})")
