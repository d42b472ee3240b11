"""A minimal WebSocket subscriber for the fan-out benchmark (``fanout.py``), one
``asyncio.Protocol`` per connection: the upgrade request, frame parsing, masked client
frames, pong, close codes. Written for the benchmark only: the ``websockets`` client costs
a task, a queue and its generator-based parser per message, and at 10,000 connections the
load processes would measure themselves.

It follows one market-data channel and counts its trades: JSON messages are parsed
(msgspec, only each trade's ``ts``), in either shape (``"trades": [..]`` per publication
or ``"trade": {..}`` per trade); binary messages (``varint channel id`` + a small-ticks
frame, ``docs/ticks.md``) are counted from the frame header, or decoded in full on sampled
connections. Sampled connections record each trade's delay (receipt minus ``ts``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any

import msgspec

# BENCH_ENDPOINT=md: subscribe on the market-data server (``api/md_stream.py``, port + 1,
# path /v1/md: writes straight to the transport) instead of the ASGI ``/v1/ws``.
MD_ENDPOINT = os.environ.get("BENCH_ENDPOINT") == "md"
PATH = "/v1/md" if MD_ENDPOINT else "/v1/ws"


class _Trade(msgspec.Struct):
    ts: int = 0


class _Msg(msgspec.Struct):
    op: str = ""
    status: int = 0
    channel: str = ""
    ids: dict[str, int] | None = None
    trade: _Trade | None = None
    trades: list[_Trade] | None = None


_decode_msg = msgspec.json.Decoder(_Msg).decode


def _uvarint(b: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def frame_events(frame: bytes, i: int) -> int:
    """The event count of the small-ticks frame at ``frame[i:]``, from its header only."""
    head = frame[i]
    assert head & 0xF8 == 0xB0, f"not a small-ticks frame: {head:#x}"
    _, i = _uvarint(frame, i + 1)  # seq
    if head & 1:  # a key frame: five bases
        for _ in range(5):
            _, i = _uvarint(frame, i)
    return _uvarint(frame, i)[0]


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.3), FIN set."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Stats:
    """One load process's counters; the window's figures are differences."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.messages = 0
        self.bytes = 0
        self.window = False  # delays are recorded inside the window only
        self.delays: list[int] = []


class Subscriber(asyncio.Protocol):
    """One minimal WebSocket client on one ``trades`` channel."""

    def __init__(
        self, stats: Stats, port: int, channel: str, binary: bool, sampled: bool, interval: int = 0
    ) -> None:
        self.stats = stats
        self.interval = interval  # /v1/md's ?interval=: ms between the server's writes
        self.port = port
        self.channel = channel
        self.binary = binary
        self.sampled = sampled  # delays recorded; binary: every frame decoded in full
        self.decoder: Any = None  # a small-ticks Decoder, on sampled binary connections
        if binary and sampled:
            from mercato.client.ticks import Decoder

            self.decoder = Decoder(channel.partition(":")[2], 1, 1)  # tick 0.01, lot 1
        self.buf = b""
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.trades = 0
        self.close_code: int | None = None
        self.lost = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        params = ["encoding=binary"] if self.binary else []
        if self.interval:
            params.append(f"interval={self.interval}")
        query = "?" + "&".join(params) if params else ""
        transport.write(
            f"GET {PATH}{query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.close_code is None
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"{self.channel}: lost ({exc})"))

    def data_received(self, data: bytes) -> None:
        t = time.time_ns()
        self.stats.bytes += len(data)
        buf = self.buf + data if self.buf else data
        i, n = 0, len(buf)
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(buf[:end].decode(errors="replace"))
            self.upgraded = True
            i = end + 4
            body = json.dumps({"op": "subscribe", "channels": [self.channel]}).encode()
            self.transport.write(client_frame(1, body))  # type: ignore[union-attr]
        while n - i >= 2:
            b1 = buf[i + 1] & 0x7F  # server frames are not masked
            h = 2
            if b1 == 126:
                if n - i < 4:
                    break
                b1, h = int.from_bytes(buf[i + 2 : i + 4], "big"), 4
            elif b1 == 127:
                if n - i < 10:
                    break
                b1, h = int.from_bytes(buf[i + 2 : i + 10], "big"), 10
            if n - i < h + b1:
                break
            self.message(buf[i] & 0x0F, buf[i + h : i + h + b1], t)
            i += h + b1
        self.buf = buf[i:]

    def message(self, opcode: int, payload: bytes, t: int) -> None:
        stats = self.stats
        if opcode == 2:  # binary market data: varint channel id, small-ticks frame
            stats.messages += 1
            _, i = _uvarint(payload, 0)
            if self.sampled:
                events = self.decoder.decode(payload[i:])
                count = len(events)
                if stats.window:
                    stats.delays.extend(t - e.ts for e in events)
            else:
                count = frame_events(payload, i)
            self.trades += count
            stats.deliveries += count
        elif opcode == 1:
            msg = _decode_msg(payload)
            if msg.channel:  # market data
                stats.messages += 1
                trades = msg.trades if msg.trades is not None else [msg.trade] if msg.trade else []
                self.trades += len(trades)
                stats.deliveries += len(trades)
                if stats.window and self.sampled:
                    stats.delays.extend(t - tr.ts for tr in trades)
            elif msg.op == "subscribe" and not self.ready.done():
                if msg.status == 200:
                    self.ready.set_result(None)
                else:
                    self.ready.set_exception(ConnectionError(f"{self.channel}: {payload!r}"))
        elif opcode == 9:  # ping
            self.transport.write(client_frame(10, payload))  # type: ignore[union-attr]
        elif opcode == 8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.transport.close()  # type: ignore[union-attr]

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()
