"""Garbage collection for a latency-sensitive server: no full collection at a random moment.

CPython frees almost everything by reference counting; the cyclic collector is only for
cycles. Its young generations are cheap (they scan what was allocated since the last
one), but a full collection scans every tracked object in the process: the books, the
order history, the caches. With the default thresholds one starts by itself every few
thousand orders and stops the event loop for tens of milliseconds, which is the whole p99
of the order round trip (``docs/benchmarks.md``).

``quiet()`` keeps the young collections as they are (they catch the short-lived cycles of
asyncio: exceptions with tracebacks, finished tasks), moves what start-up built into the
permanent generation (``gc.freeze``: never scanned again, still freed by reference
counting), and turns off the automatic full collection. ``collect_every`` runs the full
collection on a schedule instead, so a cycle that outlived the young generations waits
for it (by default at most ten minutes) rather than forever. ``restore()`` undoes
``quiet()``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger(__name__)

FULL_EVERY: Final = 600.0  # seconds between scheduled full collections
_NEVER: Final = 2**31 - 1  # a gen-2 threshold no count of gen-1 collections reaches

_saved: tuple[int, ...] | None = None


def quiet() -> None:
    """Freeze what exists now and stop automatic full collections (idempotent)."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
    young, middle = _saved[0], _saved[1]
    gc.freeze()
    gc.set_threshold(young, middle, _NEVER)


def restore() -> None:
    """Back to the thresholds from before ``quiet()``, the frozen objects unfrozen."""
    global _saved
    if _saved is not None:
        gc.set_threshold(*_saved)
        _saved = None
    gc.unfreeze()


def full_collection() -> tuple[int, float]:
    """One full collection now: (objects found unreachable, seconds it took)."""
    t0 = time.perf_counter()
    found = gc.collect()
    return found, time.perf_counter() - t0


async def collect_every(
    seconds: float = FULL_EVERY, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Run a full collection every ``seconds`` until cancelled, logging what each cost."""
    while True:
        await sleep(seconds)
        found, took = full_collection()
        log.info("full gc: %d unreachable objects in %.1f ms", found, took * 1e3)
