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
for it (by default at most ten minutes) rather than forever, and sooner when memory grows:
it looks at the process's resident size every few seconds and collects as soon as it is
``GROWTH`` (32 MB) above what it was after the last full collection. Garbage in cycles
that outlived the young generations (found: WebSocket connections that come and go, about
15 KB each, since broken at close: ``tests/unit/api/test_ws_garbage.py``) so costs at most
that much memory, not ten minutes of it, while a process whose memory is flat pays for no
extra collection. ``restore()`` undoes ``quiet()``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger(__name__)

FULL_EVERY: Final = 600.0  # seconds between scheduled full collections
CHECK_EVERY: Final = 5.0  # seconds between looks at the resident size
GROWTH: Final = 32 << 20  # bytes of growth since the last full collection that start one
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")
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


def resident_bytes() -> int:
    """The process's resident set size (Linux: /proc/self/statm; elsewhere 0)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


async def collect_every(
    seconds: float = FULL_EVERY,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    *,
    check_every: float = CHECK_EVERY,
    growth: int = GROWTH,
    rss: Callable[[], int] = resident_bytes,
) -> None:
    """Run a full collection every ``seconds``, or as soon as the resident size is
    ``growth`` bytes above what it was after the last one (looked at every
    ``check_every`` seconds), until cancelled; log what each cost. Time is counted in the
    sleeps it takes, so an injected ``sleep`` is its clock."""
    step = min(check_every, seconds)
    since = 0.0
    baseline = rss()
    while True:
        await sleep(step)
        since += step
        grown = rss() - baseline
        if since < seconds and grown < growth:
            continue
        found, took = full_collection()
        why = "scheduled" if since >= seconds else f"memory grew {grown >> 20} MB"
        log.info("full gc (%s): %d unreachable objects in %.1f ms", why, found, took * 1e3)
        since = 0.0
        baseline = rss()
