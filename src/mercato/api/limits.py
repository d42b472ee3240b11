"""Connection limits: what a client may hold open, and for how long, before it has said
anything useful. Applied where a connection is made, before any ASGI application runs
(an ASGI check sees only complete request heads: a half-open connection never reaches it).

- at most ``per_address`` open connections per client address, across every port of the
  process (the API port and the market-data port share one ``ConnectionGuard``); one more
  is answered ``503 too_many_connections`` and closed at once;
- a request head (request line and headers) must arrive whole within ``head_timeout``
  seconds of the connection's opening or of its first byte, and be at most ``max_head``
  bytes, else ``408 request_timeout`` / ``431 head_too_large`` and the connection closes;
- a request body must arrive whole within ``body_timeout`` seconds of its head, else
  ``408 request_timeout`` (when nothing was answered yet) and the connection closes;
- an idle keep-alive connection closes after ``keep_alive`` seconds (uvicorn's
  ``timeout_keep_alive``);
- a WebSocket upgrade must be accepted within ``head_timeout``; once open, a WebSocket
  that has not authenticated (the Alpaca streams) or neither authenticated nor subscribed
  (``/v1/ws``, ``/v1/md``) within ``ws_idle_timeout`` is closed with 1008;
- a WebSocket frame (or message) over ``ws_max_size`` bytes is refused with close 1009
  as soon as its header announces it, before its payload is read.

The HTTP side wraps uvicorn's own protocol classes (``httptools`` and the sans-I/O
``websockets`` one, as ``SERVER_OPTIONS`` picks them): ``server_config`` builds the
``uvicorn.Config`` that ``mercato serve`` and ``mercato demo`` run.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, fields
from typing import Any, Final

import msgspec

__all__ = [
    "ConnectionGuard",
    "Limits",
    "add_limit_flags",
    "http_refusal",
    "limits_from_args",
    "server_config",
]

MAX_FRAME: Final = 64 * 1024  # bytes: every WebSocket endpoint's frame and message limit
_REASONS: Final = {
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Limits:
    """The limits of one server process (``docs/api.md``, "Limits")."""

    per_address: int = 256  # open connections per client address, all ports together
    head_timeout: float = 5.0  # seconds to send a whole request head / finish the upgrade
    max_head: int = 64 * 1024  # bytes of request line and headers
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    body_timeout: float = 10.0  # seconds for a request's body to arrive whole after its head
    ws_idle_timeout: float = 10.0  # seconds for a WebSocket to authenticate (or subscribe)
    ws_max_size: int = MAX_FRAME  # bytes of one WebSocket message

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name} must be positive")


def http_refusal(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response in the API's error shape, that closes the connection."""
    body = msgspec.json.encode({"error": {"code": code, "message": message}})
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return "?"  # a Unix socket: one address for all


class ConnectionGuard:
    """Open connections per client address. ``admit`` a transport when its connection is
    made (False: over the cap, refuse it); ``release`` it when the connection is lost
    (idempotent, whichever protocol holds the transport by then). Its maps hold only open
    connections, so they are as bounded as those."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._open: dict[Any, str] = {}  # transport -> client address
        self._by_address: dict[str, int] = {}
        self.refused = 0  # connections refused over the cap, since start

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        if transport in self._open:
            return True
        address = _address(transport)
        held = self._by_address.get(address, 0)
        if held >= self.limits.per_address:
            self.refused += 1
            return False
        self._by_address[address] = held + 1
        self._open[transport] = address
        return True

    def release(self, transport: asyncio.BaseTransport | None) -> None:
        address = self._open.pop(transport, None)
        if address is None:
            return
        held = self._by_address[address] - 1
        if held:
            self._by_address[address] = held
        else:
            del self._by_address[address]

    def open_connections(self, address: str | None = None) -> int:
        """How many connections are open (from ``address``, or from everyone)."""
        if address is None:
            return len(self._open)
        return self._by_address.get(address, 0)

    def refuse(self, transport: asyncio.BaseTransport) -> None:
        """Answer a connection over the cap and close it."""
        n = self.limits.per_address
        write = getattr(transport, "write", None)
        if write is not None:
            write(http_refusal(503, "too_many_connections", f"at most {n} per client address"))
        transport.close()


def _protocols(guard: ConnectionGuard) -> tuple[type[Any], type[Any]]:
    """uvicorn's httptools and sans-I/O WebSocket protocols, wrapped with ``guard``
    (defined here so that importing this module does not import uvicorn)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from mercato.api.ws_protocol import BoundedCloseProtocol

    class _GuardedHttp(HttpToolsProtocol):
        """uvicorn's httptools protocol, with the guard's cap and the request-head limits."""

        guard: ConnectionGuard  # set on the subclass ``server_config`` makes

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._admitted = False
            self._head_timer: asyncio.TimerHandle | None = None
            self._body_timer: asyncio.TimerHandle | None = None
            self._head_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if not self.guard.admit(transport):
                self.guard.refuse(transport)
                return
            self._admitted = True
            super().connection_made(transport)
            self._arm_head()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._admitted:
                return
            self._disarm_head()
            self._disarm_body()
            self.guard.release(self.transport)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._admitted or self.transport.is_closing():
                return
            if self._head_timer is not None:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._head_timer is not None and self._head_bytes > self.guard.limits.max_head:
                limit = self.guard.limits.max_head
                self._refuse(
                    431, "head_too_large", f"request line and headers: at most {limit} bytes"
                )

        # httptools' callbacks: a head starts (the timer runs from the connection's opening
        # for the first one, from the first byte for a kept-alive connection's next one)
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_head()

        def on_headers_complete(self) -> None:
            self._disarm_head()
            super().on_headers_complete()
            timeout = self.guard.limits.body_timeout
            self._body_timer = self.loop.call_later(timeout, self._body_late)

        def on_message_complete(self) -> None:
            self._disarm_body()
            super().on_message_complete()

        def handle_websocket_upgrade(self) -> None:
            self._disarm_body()  # the WebSocket protocol takes over the connection
            super().handle_websocket_upgrade()
            # uvicorn drops its parser (which holds this protocol: a cycle) only in
            # ``connection_lost``, never called once upgraded: without this, every
            # WebSocket left its HTTP protocol to the cyclic collector
            self.parser = None  # type: ignore[assignment]

        def _disarm_body(self) -> None:
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        def _body_late(self) -> None:
            self._body_timer = None
            timeout = self.guard.limits.body_timeout
            self._refuse(408, "request_timeout", f"send the request body within {timeout:g} s")

        def _arm_head(self) -> None:
            if self._head_timer is None:
                self._head_bytes = 0
                timeout = self.guard.limits.head_timeout
                self._head_timer = self.loop.call_later(timeout, self._head_late)

        def _disarm_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            timeout = self.guard.limits.head_timeout
            self._refuse(408, "request_timeout", f"send the request head within {timeout:g} s")

        def _refuse(self, status: int, code: str, message: str) -> None:
            self._disarm_head()
            self._disarm_body()
            if not self.transport.is_closing():
                cycle = self.cycle
                if cycle is None or cycle.response_complete or not cycle.response_started:
                    self.transport.write(http_refusal(status, code, message))  # (none half-sent)
                self.transport.close()

    class _GuardedWs(BoundedCloseProtocol):
        """uvicorn's sans-I/O WebSocket protocol with a bounded close (``ws_protocol.py``):
        the upgrade accepted in time, the guard released when the connection ends (the
        HTTP protocol admitted it)."""

        guard: ConnectionGuard

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            if not self.guard.admit(transport):  # (admitted already, as an HTTP connection)
                self.guard.refuse(transport)
            timeout = self.guard.limits.head_timeout
            self._handshake_timer = self.loop.call_later(timeout, self._handshake_late)

        def _handshake_late(self) -> None:
            if not self.handshake_complete and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._handshake_timer.cancel()
            self.guard.release(self.transport)
            super().connection_lost(exc)

    return (
        type("GuardedHttp", (_GuardedHttp,), {"guard": guard}),
        type("GuardedWs", (_GuardedWs,), {"guard": guard}),
    )


def server_config(app: Any, host: str, port: int, guard: ConnectionGuard, **options: Any) -> Any:
    """The ``uvicorn.Config`` of a Mercato server: ``SERVER_OPTIONS`` with the guarded
    protocols and ``guard``'s limits (keep-alive, WebSocket frame size)."""
    import uvicorn

    from mercato.api.app import SERVER_OPTIONS

    assert SERVER_OPTIONS["http"] == "httptools" and SERVER_OPTIONS["ws"] == "websockets-sansio"
    http, ws = _protocols(guard)
    limits = guard.limits
    merged = {**SERVER_OPTIONS, **options}
    merged.update(http=http, ws=ws, ws_max_size=limits.ws_max_size)
    merged.setdefault("timeout_keep_alive", limits.keep_alive)
    return uvicorn.Config(app, host=host, port=port, **merged)


_FLAGS: Final = (
    ("max-connections-per-address", "per_address", int, "open connections per client address"),
    ("head-timeout", "head_timeout", float, "seconds to send a whole request head"),
    ("keep-alive", "keep_alive", float, "seconds an idle keep-alive connection stays open"),
    ("body-timeout", "body_timeout", float, "seconds to send a request body after its head"),
    ("ws-idle-timeout", "ws_idle_timeout", float, "seconds for a WebSocket to authenticate"),
)


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """The connection limits as command-line flags (``mercato serve``, ``mercato demo``)."""
    defaults = Limits()
    for flag, name, kind, what in _FLAGS:
        parser.add_argument(
            f"--{flag}",
            dest=name,
            type=kind,
            default=getattr(defaults, name),
            metavar="N" if kind is int else "S",
            help=f"{what} (default {getattr(defaults, name):g})",
        )


def limits_from_args(args: argparse.Namespace) -> Limits:
    """The ``Limits`` the flags of ``add_limit_flags`` ask for (a one-line error if bad)."""
    try:
        return Limits(**{name: getattr(args, name) for _, name, _, _ in _FLAGS})
    except ValueError as e:
        raise SystemExit(f"mercato: {e}") from None
