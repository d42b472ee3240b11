"""The market-data fan-out's fast path: a WebSocket server for market data only, on its own
port (``mercato serve --md-port``), outside ASGI.

Same protocol as ``/v1/ws`` for the public channels (``subscribe``, ``unsubscribe``,
``ping``; ``?encoding=binary``), at path ``/v1/md``. What differs is the way out: each
publication is framed as a WebSocket message once (``Message.framed``: a JSON text frame,
or ``varint channel id`` + small ticks in a binary frame, the channel id being the same
for every subscriber) and those bytes are written straight to each subscriber's transport:
no per-connection task, queue or ASGI message on the way. A subscriber whose transport
pushes back (``pause_writing``) or that has anything queued goes through its ``Conn``
queue instead, with the policy of ``/v1/ws``: quotes, stats and auction conflate, a book that falls
behind gets a fresh snapshot, a full queue disconnects it (1013, "slow consumer"; aborted
``close_timeout`` seconds later if it has not read the close by then: ``MdPeer._shut``).
A subscriber follows a channel only once its snapshot is queued, and until the snapshots
are written its publications wait behind them (``_subscribe``): snapshot S, then S+1.

The WebSocket protocol itself (handshake, incoming frames, pings, close) is the
``websockets`` library's sans-I/O ``ServerProtocol``.

**Batched subscribers** (``?interval=MS``, one of ``INTERVALS``): a client that needs no
more than a few updates a second (a screen, a phone) takes its market data in one write
every MS milliseconds. The publications of the interval keep their own frames and seqs,
nothing is re-encoded: for each channel they are joined once into one buffer for every
batched subscriber of the channel, and each subscriber gets its channels' buffers in one
``transport.write``. The kernel's cost of a write to a socket, about 7 us here
(``docs/benchmarks.md``), is then paid once per interval instead of once per publication;
quotes, stats and auction send only the interval's last value (as a key frame in binary when
earlier ones were skipped). A channel with ``BATCH_MAX`` publications waiting sends the
batch at once: what waits is bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Final, cast
from urllib.parse import parse_qs

import msgspec
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from mercato.api.limits import ConnectionGuard
from mercato.api.outbox import CLOSE_TIMEOUT, QUEUE_SIZE, Conn, abort, release_protocol
from mercato.api.ws import MAX_SUBSCRIPTIONS
from mercato.marketdata.codec import channel_prefix
from mercato.marketdata.market import STATE_KINDS, Message
from mercato.services.marketdata import ChannelError, MarketData

log = logging.getLogger(__name__)

PATH: Final = "/v1/md"
INTERVALS: Final = (0, 100, 250, 1000)  # ?interval=: milliseconds (0: each publication)
BATCH_MAX: Final = 1_000  # publications of one channel a batch holds before it is sent
Outgoing = dict["MdPeer", list[bytes]]  # what each subscriber is sent in its next write
_json = msgspec.json.Encoder()


class _Op(msgspec.Struct, forbid_unknown_fields=True):
    op: str
    channels: list[str] = []
    id: str | int | None = None


class MdFanout:
    """Every market-data connection, by channel; fed by ``MarketData.on_publish``."""

    def __init__(
        self,
        md: MarketData,
        queue_size: int = QUEUE_SIZE,
        guard: ConnectionGuard | None = None,
        close_timeout: float = CLOSE_TIMEOUT,
    ) -> None:
        self.md = md
        self.queue_size = queue_size
        self.guard = guard or ConnectionGuard()  # connections per address, timeouts
        self.close_timeout = close_timeout  # seconds a closed peer has before it is aborted
        self.followers: dict[str, set[MdPeer]] = {}  # real-time subscribers, by channel
        self.batches = {ms: Batch(ms / 1000) for ms in INTERVALS if ms}
        self.batched: dict[str, list[Batch]] = {}  # channel -> batches that follow it
        md.on_publish(self.on_publish)

    def on_publish(self, messages: list[Message]) -> None:
        """A flush's publications (one per channel) to the real-time subscribers, each in
        one write whatever its channels (``send``), and to the batches that follow them."""
        try:
            followers, batched = self.followers, self.batched
            out: Outgoing = {}
            for msg in messages:
                name = msg.channel.name
                peers = followers.get(name)
                if peers:
                    send(name, [msg], peers, out)
                batches = batched.get(name)
                if batches:
                    for batch in tuple(batches):  # (a full batch's flush may drop a peer)
                        batch.add(msg)
            write_out(out)
        except Exception:  # a bug here must not break the platform's submit
            log.exception("market-data fan-out failed")

    def follow(self, peer: MdPeer, channel: str) -> None:
        if not peer.interval:
            self.followers.setdefault(channel, set()).add(peer)
            return
        batch = self.batches[peer.interval]
        batch.followers.setdefault(channel, set()).add(peer)
        batches = self.batched.setdefault(channel, [])
        if batch not in batches:
            batches.append(batch)

    def unfollow(self, peer: MdPeer, channel: str) -> None:
        if not peer.interval:
            _discard(self.followers, channel, peer)
            return
        batch = self.batches[peer.interval]
        if _discard(batch.followers, channel, peer):
            self.batched[channel].remove(batch)
            if not self.batched[channel]:
                del self.batched[channel]

    def protocol(self) -> MdPeer:
        return MdPeer(self)


class Batch:
    """The subscribers that take their market data every ``seconds``: what each of their
    channels published meanwhile, sent in one write per subscriber when the timer fires
    (it runs only while something is pending)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.followers: dict[str, set[MdPeer]] = {}
        self.pending: dict[str, list[Message]] = {}
        self.timer: asyncio.TimerHandle | None = None

    def add(self, msg: Message) -> None:
        waiting = self.pending.get(msg.channel.name)
        if waiting is None:
            self.pending[msg.channel.name] = [msg]
        elif len(waiting) < BATCH_MAX - 1:
            waiting.append(msg)
        else:  # full: the interval ends now
            waiting.append(msg)
            self.flush()
            return
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.seconds, self.flush)

    def flush(self) -> None:
        """Send what is pending: one write per subscriber, whatever its channels."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        pending, self.pending = self.pending, {}
        out: Outgoing = {}
        try:
            for name, msgs in pending.items():
                peers = self.followers.get(name)
                if peers:
                    send(name, msgs, peers, out)
            write_out(out)
        except Exception:
            log.exception("market-data fan-out failed")


def send(name: str, msgs: list[Message], peers: Iterable[MdPeer], out: Outgoing) -> None:
    """Publications ``msgs`` of channel ``name`` (consecutive, in order) to its subscribers
    ``peers``. The common case is inline: a subscriber that is up to date (it has the
    message before the first) and not held back gets the prepared frames, made once for
    everyone, added to ``out``, where its other channels' join them for one
    ``transport.write`` (``write_out``); any other goes through ``MdPeer.deliver``. Of a
    state channel's messages (quotes, stats) only the last is sent."""
    last, form = msgs[-1], 1
    if len(msgs) > 1 and last.kind in STATE_KINDS:  # the latest value is the news
        msgs, form = [last], 2  # in binary as a key frame: it needs none of those skipped
    prev, seq = msgs[0].seq - 1, last.seq
    has_binary = last.binary is not None
    text = binary = b""
    for peer in list(peers):
        sent = peer.sent
        had = sent.get(name)
        if peer.held or had is None or (had != prev if form == 1 else had >= seq):
            for msg in msgs:
                peer.deliver(msg)
            continue
        sent[name] = seq
        if peer.binary and has_binary:
            data = binary = binary or _joined(msgs, form)
        else:
            data = text = text or _joined(msgs, 0)
        if peer.single:  # nothing else to wait for
            peer.write(data)
        elif (parts := out.get(peer)) is None:
            out[peer] = [data]
        else:
            parts.append(data)


def write_out(out: Outgoing) -> None:
    """One write per subscriber of what ``send`` collected for it."""
    for peer, parts in out.items():
        peer.write(parts[0] if len(parts) == 1 else b"".join(parts))


def _discard(followers: dict[str, set[MdPeer]], channel: str, peer: MdPeer) -> bool:
    """Remove ``peer`` from ``channel``'s followers; True when it was the last one."""
    peers = followers.get(channel)
    if peers is None:
        return False
    peers.discard(peer)
    if peers:
        return False
    del followers[channel]
    return True


class MdPeer(asyncio.Protocol):
    """One subscriber's connection."""

    def __init__(self, fanout: MdFanout) -> None:
        self.fanout = fanout
        self.md = fanout.md
        self.conn = Conn(None, fanout.queue_size)
        self.sent = self.conn.sent  # the fan-out's loop reads these three for every peer
        self.binary = False
        self.single = False  # follows one channel: its frames need not wait for others
        self.ws = ServerProtocol(max_size=fanout.guard.limits.ws_max_size)
        self.transport: asyncio.Transport | None = None
        self.admitted = False
        self.timer: asyncio.TimerHandle | None = None  # the handshake's, then the idle one
        self.write: Any = None  # the transport's write
        self.paused = False
        self.held = False  # paused, or something queued: frames must wait their turn
        self.open = False
        self.interval = 0  # ms between writes (?interval=); 0: each publication
        self.aborting: asyncio.TimerHandle | None = None  # after a close: the deadline

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self.fanout.guard
        if not guard.admit(transport):
            guard.refuse(transport)
            return
        self.admitted = True
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        self.write = self.transport.write
        self._time_out(guard.limits.head_timeout)

    def _time_out(self, seconds: float) -> None:
        """Close the connection in ``seconds`` unless it is open and follows a channel by
        then (``api/limits.py``: no half-open or idle connection is held)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a peer driven by hand, outside a loop (tests)
            return
        self.timer = loop.call_later(seconds, self._late)

    def _late(self) -> None:
        self.timer = None
        if not self.open:
            if self.transport is not None:
                self.transport.close()
        elif not self.conn.channels:
            self._close(1008, "subscribe within the idle timeout")

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
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
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.fanout.guard.release(self.transport)
        self._forget()
        if self.aborting is not None:
            self.aborting.cancel()
            self.aborting = None
        release_protocol(self.ws)

    def _forget(self) -> None:
        """Follow nothing any more."""
        for channel in list(self.conn.channels):
            self.fanout.unfollow(self, channel)
        self.conn.channels.clear()
        self.single = False
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
        if self.held or len(conn.outbox):
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
            # it missed one (a resubscribe, a skipped quote): a key frame, which decodes alone
            data = _wire(msg, 1 if last == msg.seq - 1 else 2)
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
        if self.ws.close_expected():
            self._shut()

    def _close(self, code: int, reason: str) -> None:
        if self.open:
            self.open = False
            self.ws.send_close(code, reason)
            self._flush_protocol()
            self._forget()
        self._shut()

    def _shut(self) -> None:
        """Close the transport once what it holds is sent; abort it if that has not
        happened ``close_timeout`` seconds later: a client that stopped reading would keep
        the socket and its buffers (the close frame is its last chance to learn why)."""
        transport = self.transport
        if transport is None or self.aborting is not None:
            return
        transport.close()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (no loop: a test driving the protocol by hand)
            return
        self.aborting = loop.call_later(self.fanout.close_timeout, abort, transport)

    # -- the way in ----------------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        path, _, query = request.path.partition("?")
        params = parse_qs(query)
        encoding = params.get("encoding", ["json"])[0]
        interval = params.get("interval", ["0"])[0]
        why = ""
        if path != PATH:
            why = f"no route {path[:100]}"
        elif encoding not in ("json", "binary"):
            why = "encoding is json or binary"
        elif interval not in [str(ms) for ms in INTERVALS]:
            why = f"interval is one of {', '.join(map(str, INTERVALS))} (milliseconds)"
        if why:
            self.ws.send_response(self.ws.reject(404 if path != PATH else 400, why))
            return
        self.ws.send_response(self.ws.accept(request))
        self.conn.binary = self.binary = encoding == "binary"
        self.interval = int(interval)
        self.open = True
        self._time_out(self.fanout.guard.limits.ws_idle_timeout)

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
                self.single = len(self.conn.channels) == 1
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
        followed = sorted(conn.channels | set(wanted))
        reply = {**head, "status": 200, "channels": followed}
        if conn.binary:
            reply["ids"] = {c: conn.ids[c] for c in followed}
        self._reply(reply)
        # Then each snapshot, queued behind anything still waiting, and only then is the
        # channel followed: a publication still pending is flushed into the snapshot (not
        # sent after it), and until the snapshots are out (``_drain``) every publication
        # waits in the queue behind them (``held``), never written ahead of them.
        self.held = True
        for name in wanted:
            for frame in conn.snapshot(name, md):
                conn.outbox.offer(frame)
            conn.channels.add(name)
            self.fanout.follow(self, name)
        self.single = len(conn.channels) == 1
        if conn.outbox.closed is not None:
            self._close(*conn.outbox.closed)
            return
        self._drain()


def _wire(msg: Message, form: int) -> bytes:
    """The publication as one WebSocket frame, made once: 0 JSON text, 1 binary, 2 binary
    as a key frame (it decodes without the message before it)."""
    data = msg.wire[form]
    if data is None:
        if form:
            ticks = msg.binary if form == 1 else msg.key_frame()
            assert ticks is not None
            data = _frame(Opcode.BINARY, channel_prefix(msg.channel.id) + ticks)
        else:
            data = _frame(Opcode.TEXT, msg.json.encode())
        msg.wire[form] = data
    return data


def _joined(msgs: list[Message], form: int) -> bytes:
    return _wire(msgs[0], form) if len(msgs) == 1 else b"".join([_wire(m, form) for m in msgs])


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked (server) WebSocket frame, FIN set."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 1 << 16:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


async def serve_md(
    md: MarketData, host: str, port: int, guard: ConnectionGuard | None = None
) -> asyncio.Server:
    """Start the market-data server (the caller closes it); ``guard``: its connection
    limits, shared with the API's port."""
    fanout = MdFanout(md, guard=guard)
    loop = asyncio.get_running_loop()
    return await loop.create_server(fanout.protocol, host, port)


__all__ = ["BATCH_MAX", "INTERVALS", "PATH", "Batch", "MdFanout", "MdPeer", "serve_md"]
