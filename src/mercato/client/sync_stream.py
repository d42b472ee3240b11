"""A blocking client of the streaming API (``/v1/ws``): ``SyncStream``.

::

    from mercato.client import SyncStream

    with SyncStream("ws://localhost:8000", key_id, secret) as s:
        s.subscribe("trades:XYZ", "orders", "fills")
        order = s.place_order("XYZ", "buy", "limit", qty=10, price="100.00")
        for msg in s:  # {"channel": "orders", "seq": 1, "order": {..}}, ...
            print(msg["channel"], msg["seq"])

It is the async ``Stream`` on a private event loop in a background thread: each method
hands its coroutine to that loop and blocks until it is done. So reply routing, sequence
checks, the bounded queue and the errors are ``Stream``'s (see ``stream.py``): one
implementation for both clients, never two that drift apart. Methods may be called from
several threads at once, e.g. orders placed from one while another iterates.

``recv(timeout)`` returns the next channel message or raises ``TimeoutError`` (the message
is not lost: a later ``recv`` gets it); iterating is ``recv()`` without a timeout. After
``close()`` the loop is gone: calls and ``recv`` raise the error that ended the stream
(``StreamClosed`` for a close by the client), and messages not yet received are dropped.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from mercato.client.stream import Stream, StreamError

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(
    method: Callable[Concatenate[Stream, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[SyncStream, P], T]:
    """``Stream``'s ``method`` run on the stream's loop and waited for: the same
    arguments, answer, errors and docstring, written once."""

    @functools.wraps(method)
    def call(self: SyncStream, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._stream, *args, **kwargs))

    return call


class SyncStream:
    """A blocking ``Stream``: the same arguments, operations and errors, without ``await``.

    Use as a context manager, or ``connect()`` / ``close()``.
    """

    def __init__(
        self,
        url: str,
        key_id: str,
        secret: str,
        *,
        timeout: float = 10,
        queue_size: int = 10_000,
    ) -> None:
        self._stream = Stream(url, key_id, secret, timeout=timeout, queue_size=queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self._stream.url

    @property
    def failure(self) -> BaseException | None:
        return self._stream.failure

    # -- life ----------------------------------------------------------------------------

    def connect(self) -> None:
        if self._loop is not None:
            raise StreamError("already connected")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mercato-sync-stream", daemon=True
        )
        self._thread.start()
        try:
            self._run(self._stream.connect())
        except BaseException:
            self._stop()
            raise

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            self._run(self._stream.close())
        finally:
            self._stop()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- channel messages ----------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """The next channel message; ``TimeoutError`` if none came within ``timeout``
        seconds (``None``: wait for ever). Raises once the stream failed and is drained."""
        return self._run(self._next(timeout))

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> dict[str, Any]:
        return self.recv()

    async def _next(self, timeout: float | None) -> dict[str, Any]:
        # timed out inside the loop: a cancelled queue get leaves the message queued
        async with asyncio.timeout(timeout):
            return await anext(self._stream)

    # -- operations ----------------------------------------------------------------------

    subscribe = _blocking(Stream.subscribe)
    unsubscribe = _blocking(Stream.unsubscribe)
    ping = _blocking(Stream.ping)
    place_order = _blocking(Stream.place_order)
    cancel_order = _blocking(Stream.cancel_order)

    # -- the loop ------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the stream's loop and wait for its outcome."""
        if self._loop is None:
            coro.close()
            raise self._stream.failure or StreamError(
                "not connected: use `with SyncStream(...)` or connect()"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # interrupted (Ctrl-C): a recv must not go on to eat a message
            raise

    def _stop(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._loop = self._thread = None
