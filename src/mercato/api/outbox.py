"""A WebSocket connection's outgoing side: its bounded queue (``Outbox``) and what it
follows and has been sent (``Conn``), with the slow-consumer policy of market data.

Shared by every WebSocket endpoint: ``/v1/ws`` (``api/ws.py``), the market-data fast
path ``/v1/md`` (``api/md_stream.py``) and the Alpaca streams, which queue plain frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from typing import Any, Final

import msgspec

from mercato.marketdata.market import STATE_KINDS, Message
from mercato.services.auth import Principal
from mercato.services.marketdata import MarketData

QUEUE_SIZE: Final = 1_000
BOOK_LAG: Final = 32  # book deltas waiting for one connection before a fresh snapshot
SLOW_CONSUMER: Final = (1013, "slow consumer")
CLOSE_TIMEOUT: Final = 2.0  # seconds a closed connection's peer has before it is aborted

_json = msgspec.json.Encoder()


class Outbox:
    """A connection's bounded queue of outgoing frames.

    ``offer`` never blocks: when the queue is full the connection is condemned (close
    code 1013, "slow consumer"), what it still had queued is dropped, and the writer sees
    the close next. After ``close`` every offer is refused. Frames leave in order, through
    ``take`` (by whichever task is sending: see ``Session.flush``) or ``next``. The
    connection's endpoint waits on ``wait_closed`` besides its reader and writer: the
    writer may be stuck sending to the client that stopped reading (``send_close``).
    """

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        self._frames: deque[Any] = deque()  # frames (str/bytes) or market-data entries
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._gone = asyncio.Event()
        self.closed: tuple[int, str] | None = None

    def offer(self, frame: Any) -> bool:
        if self.closed is not None:
            return False
        if len(self._frames) >= self._maxsize:
            self.close(*SLOW_CONSUMER)
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is not None:
            return
        self.closed = (code, reason)
        self._frames.clear()  # drop the backlog: the close goes out next
        self._ready.set()
        self._gone.set()

    async def wait_closed(self) -> tuple[int, str]:
        """Wait until the outbox is closed; how (code, reason)."""
        await self._gone.wait()
        assert self.closed is not None
        return self.closed

    def take(self) -> Any:
        """The next frame if one is queued (None when empty or closed), without waiting."""
        return self._frames.popleft() if self._frames and self.closed is None else None

    async def offered(self) -> None:
        """Wait until something was offered (or the outbox closed) since the last wait."""
        await self._ready.wait()
        self._ready.clear()

    async def next(self) -> Any:
        """The next frame, or None once closed (then ``closed`` says how)."""
        while True:
            if self.closed is not None:
                return None
            if self._frames:
                return self._frames.popleft()
            await self.offered()

    def __len__(self) -> int:
        return len(self._frames)


def abort(transport: Any) -> None:
    """Drop a connection now: a reset, and the kernel discards what it had not sent (a
    plain ``close`` keeps the socket, and its buffers, until the peer reads them all)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def release_protocol(ws: Any) -> None:
    """Break the cycles a ``websockets`` sans-I/O protocol (``ws``) keeps once its
    connection is lost, so that it, and the connection's objects it is reached from, are
    freed by reference counting rather than left for a full collection (which a server
    runs rarely: ``services/gc_policy.py``; each connection that came and went held about
    15 KB until then). Its parser is a suspended generator whose frame holds the protocol;
    the exception that stopped the parser (an abort's ``EOFError``, an oversized frame's
    ``PayloadTooBig``) holds that frame through its traceback."""
    ws.parser.close()
    ws.parser_exc = None


async def send_close(ws: Any, outbox: Outbox) -> None:
    """Send the close ``outbox`` was closed with (a Starlette ``WebSocket``'s ``close``),
    waiting at most ``CLOSE_TIMEOUT``: a client that stopped reading may never take it.
    The server then aborts the connection (``api/ws_protocol.py``).

    ``asyncio.timeout``, not ``wait_for``: the task ``wait_for`` makes holds the error of a
    client already gone (``WebSocketDisconnect``), whose traceback holds ``wait_for``'s
    frame, which holds the task: a cycle per connection, left to the full collection."""
    if outbox.closed is None:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await ws.close(*outbox.closed)


class _Slot:
    """A place in a connection's queue for a state channel: what is sent when its turn
    comes is the channel's latest message then (``Conn.slots``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Resync(_Slot):
    """A place in the queue for a fresh book snapshot: the connection fell behind on it."""

    __slots__ = ()


class Conn:
    """One client: who it is, what it follows, its per-channel seqs and its outbox.

    Market data reaches it as shared ``Message`` objects, turned into frames of the
    connection's encoding only when they are sent. Trades, L3 and bars are queued in order;
    quotes, stats and auction conflate (one place per channel in the queue, the latest wins);
    book deltas are queued until ``BOOK_LAG`` of one book wait, then dropped for a fresh
    snapshot sent in their place. Private channels (orders, fills) carry per-connection
    seqs; market-data channels carry the channel's own seq, the same for everyone.
    """

    def __init__(self, principal: Principal | None, queue_size: int, binary: bool = False) -> None:
        self.principal = principal
        self.binary = binary
        self.channels: set[str] = set()
        self.seqs: dict[str, int] = {}  # private channels: the last seq sent
        self.outbox = Outbox(queue_size)
        self.ids: dict[str, int] = {}  # market-data channel -> its id in binary frames
        self.prefix: dict[str, bytes] = {}  # the id as the varint that starts each frame
        self.sent: dict[str, int] = {}  # market-data channel -> seq of the last message sent
        self.slots: dict[str, Message] = {}
        self.book_queued: dict[str, int] = {}
        self.resync: set[str] = set()

    def reply(self, data: dict[str, Any]) -> None:
        self.outbox.offer(_json.encode(data).decode())

    def publish(self, channel: str, body: bytes) -> None:
        """Send ``body`` (an encoded JSON object) on private ``channel``, with the next seq."""
        seq = self.seqs.get(channel, 0) + 1
        self.seqs[channel] = seq
        head = b'{"channel":%s,"seq":%d' % (_json.encode(channel), seq)
        self.outbox.offer((head + b"," + body[1:]).decode())

    def deliver(self, msg: Message) -> None:
        """Queue one market-data publication (never blocks: see the class's policy)."""
        name = msg.channel.name
        kind = msg.kind
        if kind in STATE_KINDS:
            if name not in self.slots:
                self.outbox.offer(_Slot(name))
            self.slots[name] = msg
        elif kind == "book":
            if name in self.resync:
                return
            queued = self.book_queued.get(name, 0)
            if queued >= BOOK_LAG:
                self.resync.add(name)
                self.outbox.offer(_Resync(name))
                return
            self.book_queued[name] = queued + 1
            self.outbox.offer(msg)
        else:
            self.outbox.offer(msg)

    def frames(self, entry: Any, md: MarketData) -> list[str | bytes]:
        """What to send for one queue entry (none for what became stale meanwhile)."""
        if isinstance(entry, str | bytes):
            return [entry]
        if isinstance(entry, _Resync):
            self.resync.discard(entry.name)
            self.book_queued.pop(entry.name, None)
            return self.snapshot(entry.name, md) if entry.name in self.channels else []
        if isinstance(entry, _Slot):
            msg: Message = self.slots.pop(entry.name)
        else:
            msg = entry
            if msg.kind == "book":
                self.book_queued[msg.channel.name] -= 1
        name = msg.channel.name
        if name not in self.channels or msg.seq <= self.sent.get(name, 0):
            return []  # unsubscribed, or already in the snapshot it was sent
        follows = self.sent.get(name) == msg.seq - 1
        self.sent[name] = msg.seq
        if not self.binary or msg.binary is None:
            return [msg.json]
        frame = msg.binary if follows else msg.key_frame()
        assert frame is not None
        return [self.prefix[name] + frame]

    def snapshot(self, name: str, md: MarketData) -> list[str | bytes]:
        """The channel's snapshot in this connection's encoding; the next message it is
        sent on the channel follows it.

        Taking it publishes what the service still had pending (a snapshot at seq S holds
        exactly messages 1..S), so the seq is read after: a publication flushed into the
        snapshot reaches a connection that already follows the channel as an update it
        must not be sent (``frames`` drops it: its seq is not above ``sent``)."""
        frames: list[str | bytes] = []
        if self.binary:
            prefix = self.prefix[name]
            frames = [prefix + f for f in md.snapshot_binary(name)]
        if not frames:
            frames = [md.snapshot_json(name)]
        self.sent[name] = md.channel(name).seq
        return frames
