"""How Mercato's ASGI server closes a WebSocket: uvicorn's sans-I/O protocol with a close
that is bounded in time (``SERVER_OPTIONS["ws"]``).

uvicorn's own waits for the transport to take more data before it writes the close frame
(a client that stopped reading never lets it), then for the peer's answer for 10 seconds,
and then ``transport.close()``, which waits again for the unsent data to leave: a client
that stopped reading held its connection ESTABLISHED, with its kernel buffers, for as long
as it liked (found: 120 s and more; 200 of them held 750 MB). Here the close frame is
queued at once, whatever the transport's back-pressure (the client is told why, if it ever
reads again); the peer then has ``CLOSE_TIMEOUT`` seconds to answer, after which the
connection is aborted: reset, its unsent data discarded by the kernel (``SO_LINGER`` 0).
The same bound applies when the application ends without a close, and so when the
server shuts down (uvicorn then waits for every connection to be gone: one client that
stopped reading held the shutdown for good).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from mercato.api.outbox import CLOSE_TIMEOUT, abort, release_protocol


class BoundedCloseProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol; its close never waits on the client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT

    async def send(self, message: Any) -> None:
        if (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and not self.transport.is_closing()
        ):
            # as uvicorn's, without waiting for the transport to be writable first
            code = message.get("code", 1000)
            reason = message.get("reason", "") or ""
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            self.close_timer = self.loop.call_later(self.close_timeout, self._abort)
            return
        await super().send(message)

    async def run_asgi(self) -> None:
        await super().run_asgi()
        if not self.disconnected and self.close_timer is None:  # closed, maybe not yet gone
            self.close_timer = self.loop.call_later(self.close_timeout, self._abort)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        release_protocol(self.conn)  # (an oversized frame's error held it in a cycle)

    def _abort(self) -> None:
        self.close_timer = None
        if not self.disconnected:
            abort(self.transport)


__all__ = ["BoundedCloseProtocol"]
