"""Listening the way a first run expects: the port is taken before anything starts (a
clash is one line naming the flag to change), and "ready" is said only once the server
accepts connections.

``mercato serve`` and ``mercato demo`` bind their socket here and hand it to uvicorn
(``Server.serve(sockets=...)``), then wait for uvicorn's ``started`` before printing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any


class ListenError(OSError):
    """The address cannot be listened on; the message says which flag to change."""


def bind(host: str, port: int, flag: str = "--port") -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one) and listening."""
    if not 0 <= port <= 65535:
        raise ListenError(f"{flag} {port}: a port is 0..65535")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ListenError(f"cannot listen on {host}: {e.strerror} (check --host)") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio and uvicorn do
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        reason = "already in use" if e.errno == 98 else (e.strerror or str(e))
        raise ListenError(
            f"cannot listen on {host}:{port}: {reason} (pass another {flag})"
        ) from None
    return sock


def check_free(host: str, port: int, flag: str) -> None:
    """Fail now, with one line naming ``flag``, if ``host:port`` cannot be listened on (for
    a server that binds its own socket later, such as the market-data fast path)."""
    bind(host, port, flag).close()


async def serve_until_done(
    server: Any, sock: socket.socket, on_ready: Callable[[], None], poll: float = 0.02
) -> bool:
    """Run uvicorn's ``server`` on ``sock``; call ``on_ready`` once it has started (its
    lifespan done, the socket accepting). True if it started, False if its start-up
    failed (uvicorn has logged why)."""
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(poll)
    started = bool(server.started)
    if started:
        on_ready()
    await serving
    return started


__all__ = ["ListenError", "bind", "check_free", "serve_until_done"]
