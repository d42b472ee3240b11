"""The connection guard's bookkeeping and the limits' flags, without sockets (the real
server is tried in tests/integration/test_abuse.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import pytest

from mercato.api.limits import (
    ConnectionGuard,
    Limits,
    add_limit_flags,
    http_refusal,
    limits_from_args,
)


class Transport(asyncio.Transport):
    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.host, 1234) if name == "peername" else default

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True


def test_the_guard_counts_per_address_and_forgets_closed_connections() -> None:
    guard = ConnectionGuard(Limits(per_address=2))
    a1, a2, a3, b1 = Transport("a"), Transport("a"), Transport("a"), Transport("b")
    assert guard.admit(a1) and guard.admit(a2) and guard.admit(b1)
    assert guard.admit(a1)  # the same connection again (its WebSocket protocol): no change
    assert not guard.admit(a3)
    assert (guard.open_connections("a"), guard.open_connections(), guard.refused) == (2, 3, 1)
    guard.refuse(a3)
    assert a3.closed and a3.written.startswith(b"HTTP/1.1 503")
    body = json.loads(a3.written.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "too_many_connections"
    guard.release(a1)
    guard.release(a1)  # idempotent
    guard.release(a3)  # never admitted: nothing
    assert guard.admit(a3)
    for t in (a2, a3, b1):
        guard.release(t)
    assert guard.open_connections() == 0 and guard._by_address == {}  # nothing left held


def test_a_refusal_is_a_whole_response_in_the_error_shape() -> None:
    raw = http_refusal(408, "request_timeout", "late")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 408 Request Timeout")
    assert f"content-length: {len(body)}".encode() in head and b"connection: close" in head
    assert json.loads(body) == {"error": {"code": "request_timeout", "message": "late"}}


def test_limits_are_positive() -> None:
    with pytest.raises(ValueError, match="per_address"):
        Limits(per_address=0)
    with pytest.raises(ValueError, match="head_timeout"):
        Limits(head_timeout=-1)


def test_the_flags_set_the_limits_and_a_bad_one_is_a_one_line_error() -> None:
    parser = argparse.ArgumentParser()
    add_limit_flags(parser)
    assert limits_from_args(parser.parse_args([])) == Limits()
    args = parser.parse_args(["--max-connections-per-address", "9", "--head-timeout", "0.5"])
    assert limits_from_args(args) == Limits(per_address=9, head_timeout=0.5)
    with pytest.raises(SystemExit) as e:
        limits_from_args(parser.parse_args(["--keep-alive", "0"]))
    assert str(e.value) == "mercato: keep_alive must be positive"
