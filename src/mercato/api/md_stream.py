"""The market-data fan-out's fast path: a WebSocket server for market data only, on its own
port (``mercato serve --md-port``), outside ASGI.

Same protocol as ``/v1/ws`` for the public channels (``subscribe``, ``unsubscribe``,
``ping``; ``?encoding=binary``), at path ``/v1/md``. What differs is the way out: each
publication is framed as a WebSocket message once (``Message.framed``: a JSON text frame,
or ``varint channel id`` + small ticks in a binary frame, the channel id being the same
for every subscriber) and those bytes are written straight to each subscriber's transport:
no per-connection task, queue or ASGI message on the way. A subscriber whose transport
pushes back (``pause_writing``) or that has anything queued goes through its ``Conn``
queue instead, with the policy of ``/v1/ws``: quotes and stats conflate, a book that falls
behind gets a fresh snapshot, a full queue disconnects it (1013, "slow consumer").

The WebSocket protocol itself (handshake, incoming frames, pings, close) is the
``websockets`` library's sans-I/O ``ServerProtocol``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, cast
from urllib.parse import parse_qs

import msgspec
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from mercato.api.outbox import QUEUE_SIZE, Conn
from mercato.api.ws import MAX_MESSAGE, MAX_SUBSCRIPTIONS
from mercato.marketdata.codec import channel_prefix
from mercato.marketdata.market import Message
from mercato.services.marketdata import ChannelError, MarketData

log = logging.getLogger(__name__)

PATH: Final = "/v1/md"
_json = msgspec.json.Encoder()


class _Op(msgspec.Struct, forbid_unknown_fields=True):
    op: str
    channels: list[str] = []
    id: str | int | None = None


class MdFanout:
    """Every market-data connection, by channel; fed by ``MarketData.on_publish``."""

    def __init__(self, md: MarketData, queue_size: int = QUEUE_SIZE) -> None:
        self.md = md
        self.queue_size = queue_size
        self.followers: dict[str, set[MdPeer]] = {}
        md.on_publish(self.on_publish)

    def on_publish(self, messages: list[Message]) -> None:
        """Each publication to its followers. The common case is written inline: a
        subscriber that is up to date (it has the previous message) and not held back gets
        the prepared frame in one ``transport.write``; any other goes through
        ``MdPeer.deliver``."""
        try:
            followers = self.followers
            for msg in messages:
                name = msg.channel.name
                peers = followers.get(name)
                if not peers:
                    continue
                seq, prev = msg.seq, msg.seq - 1
                has_binary = msg.binary is not None
                text = binary = b""
                for peer in list(peers):
                    conn = peer.conn
                    sent = conn.sent
                    if peer.held or sent.get(name) != prev:
                        peer.deliver(msg)
                        continue
                    sent[name] = seq
                    if conn.binary and has_binary:
                        binary = binary or _wire(msg, 1)
                        peer.write(binary)
                    else:
                        text = text or _wire(msg, 0)
                        peer.write(text)
        except Exception:  # a bug here must not break the platform's submit
            log.exception("market-data fan-out failed")

    def follow(self, peer: MdPeer, channel: str) -> None:
        self.followers.setdefault(channel, set()).add(peer)

    def unfollow(self, peer: MdPeer, channel: str) -> None:
        peers = self.followers.get(channel)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self.followers[channel]

    def protocol(self) -> MdPeer:
        return MdPeer(self)


class MdPeer(asyncio.Protocol):
    """One subscriber's connection."""

    def __init__(self, fanout: MdFanout) -> None:
        self.fanout = fanout
        self.md = fanout.md
        self.conn = Conn(None, fanout.queue_size)
        self.ws = ServerProtocol(max_size=MAX_MESSAGE)
        self.transport: asyncio.Transport | None = None
        self.write: Any = None  # the transport's write
        self.paused = False
        self.held = False  # paused, or something queued: frames must wait their turn
        self.open = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        self.write = self.transport.write

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame) and self.open:
                if event.opcode == Opcode.TEXT:
                    self._op(bytes(event.data))
                elif event.opcode == Opcode.BINARY:
                    self._error(None, 400, "invalid_message", "operations are JSON text")
        self._flush_protocol()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush_protocol()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        for channel in list(self.conn.channels):
            self.fanout.unfollow(self, channel)
        self.conn.channels.clear()
        self.open = False

    def pause_writing(self) -> None:
        self.paused = self.held = True

    def resume_writing(self) -> None:
        self.paused = False
        self._drain()

    # -- the way out ---------------------------------------------------------------------

    def deliver(self, msg: Message) -> None:
        """A publication for this subscriber: its prepared bytes written at once when the
        transport takes them and nothing waits before them; the queue otherwise."""
        conn, name = self.conn, msg.channel.name
        if self.paused or len(conn.outbox):
            conn.deliver(msg)
            self.held = True
            if conn.outbox.closed is not None:
                self._close(*conn.outbox.closed)
            return
        last = conn.sent.get(name, 0)
        if name not in conn.channels or msg.seq <= last:
            return
        conn.sent[name] = msg.seq
        if conn.binary and msg.binary is not None:
            if last == msg.seq - 1:
                data = _wire(msg, 1)
            else:  # it missed one (a resubscribe): a key frame, which decodes alone
                key = msg.key_frame()
                assert key is not None
                data = _frame(Opcode.BINARY, conn.prefix[name] + key)
        else:
            data = _wire(msg, 0)
        assert self.transport is not None
        self.transport.write(data)

    def _drain(self) -> None:
        conn = self.conn
        while not self.paused and (entry := conn.outbox.take()) is not None:
            for frame in conn.frames(entry, self.md):
                self._send(frame)
            self._flush_protocol()
        self.held = self.paused or bool(len(conn.outbox))

    def _send(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            self.ws.send_text(frame.encode())
        else:
            self.ws.send_binary(frame)

    def _flush_protocol(self) -> None:
        out = self.ws.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))
        if self.ws.close_expected() and self.transport is not None:
            self.transport.close()

    def _close(self, code: int, reason: str) -> None:
        if self.open:
            self.open = False
            self.ws.send_close(code, reason)
            self._flush_protocol()
            self.connection_lost(None)
        if self.transport is not None:
            self.transport.close()

    # -- the way in ----------------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        path, _, query = request.path.partition("?")
        encoding = parse_qs(query).get("encoding", ["json"])[0]
        if path != PATH or encoding not in ("json", "binary"):
            why = "encoding is json or binary" if path == PATH else f"no route {path[:100]}"
            self.ws.send_response(self.ws.reject(404 if path != PATH else 400, why))
            return
        self.ws.send_response(self.ws.accept(request))
        self.conn.binary = encoding == "binary"
        self.open = True

    def _reply(self, data: dict[str, Any]) -> None:
        self.ws.send_text(_json.encode(data))

    def _error(self, op: str | None, status: int, code: str, message: str, rid: Any = None) -> None:
        out: dict[str, Any] = {"op": op, "status": status} if op else {}
        if rid is not None:
            out["id"] = rid
        out["error"] = {"code": code, "message": message}
        self._reply(out)

    def _op(self, data: bytes) -> None:
        try:
            msg = msgspec.json.decode(data, type=_Op)
        except msgspec.ValidationError as e:
            self._error(None, 400, "invalid_message", str(e))
            return
        except msgspec.DecodeError as e:
            self._error(None, 400, "invalid_json", str(e))
            return
        head: dict[str, Any] = {"op": msg.op}
        if msg.id is not None:
            head["id"] = msg.id
        if msg.op == "ping":
            self._reply({**head, "op": "pong"})
        elif msg.op == "subscribe":
            self._subscribe(msg, head)
        elif msg.op == "unsubscribe":
            for name in msg.channels:
                try:
                    name = self.md.canonical(name)
                except ChannelError:
                    continue
                self.conn.channels.discard(name)
                self.fanout.unfollow(self, name)
            self._reply({**head, "status": 200, "channels": sorted(self.conn.channels)})
        else:
            self._error(msg.op, 400, "unknown_op", f"unknown op {msg.op[:50]!r}", msg.id)

    def _subscribe(self, msg: _Op, head: dict[str, Any]) -> None:
        conn, md = self.conn, self.md
        wanted: list[str] = []
        for name in msg.channels:
            try:
                wanted.append(md.canonical(name))
            except ChannelError as e:
                self._error("subscribe", e.status, e.code, str(e), msg.id)
                return
        if len(conn.channels | set(wanted)) > MAX_SUBSCRIPTIONS:
            limit = f"at most {MAX_SUBSCRIPTIONS} channels per connection"
            self._error("subscribe", 400, "too_many_subscriptions", limit, msg.id)
            return
        for name in wanted:
            ch = md.channel(name)
            conn.ids[name] = ch.id
            conn.prefix[name] = channel_prefix(ch.id)
            conn.channels.add(name)
            self.fanout.follow(self, name)
        reply = {**head, "status": 200, "channels": sorted(conn.channels)}
        if conn.binary:
            reply["ids"] = {c: conn.ids[c] for c in sorted(conn.channels)}
        self._reply(reply)
        for name in wanted:  # then each snapshot, queued behind anything still waiting
            for frame in conn.snapshot(name, md):
                conn.outbox.offer(frame)
        self._drain()


def _wire(msg: Message, binary: int) -> bytes:
    """The publication as one WebSocket frame (0: JSON text, 1: binary), made once."""
    data = msg.wire[binary]
    if data is None:
        if binary:
            assert msg.binary is not None
            data = _frame(Opcode.BINARY, channel_prefix(msg.channel.id) + msg.binary)
        else:
            data = _frame(Opcode.TEXT, msg.json.encode())
        msg.wire[binary] = data
    return data


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked (server) WebSocket frame, FIN set."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 1 << 16:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


async def serve_md(md: MarketData, host: str, port: int) -> asyncio.Server:
    """Start the market-data server (the caller closes it)."""
    fanout = MdFanout(md)
    loop = asyncio.get_running_loop()
    return await loop.create_server(fanout.protocol, host, port)


__all__ = ["PATH", "MdFanout", "MdPeer", "serve_md"]
