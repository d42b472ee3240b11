"""Giving the C heap's free space back to the operating system (``trim``).

glibc's allocator keeps the pages a burst of allocations freed (one arena per thread that
allocated): after the retention's first round of deletions, for example, some 6 to 10 MB
of a server's heap are free but still counted in its RSS (``docs/benchmarks.md``, "Soak").
``malloc_trim(0)`` returns them. It is a no-op where the C library has no such call
(macOS, musl): the memory is still bounded there, only reported higher.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable
from typing import Final

TRIM_EVERY: Final = 30.0  # seconds between two trims, at least


def _load() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_malloc_trim: Final = _load()


def available() -> bool:
    """Whether this process's C library can trim its heap."""
    return _malloc_trim is not None


def trim() -> bool:
    """Return the heap's free pages to the system now; True if any were returned."""
    if _malloc_trim is None:
        return False
    return bool(_malloc_trim(0))


class Trimmer:
    """Trims after work that freed much (``after``), at most every ``every`` seconds of
    ``clock`` (the process's clock: when, never what, so determinism is untouched)."""

    def __init__(self, every: float = TRIM_EVERY, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self._clock = clock
        self._last = -float("inf")
        self.trims = 0

    def after(self, freed: int) -> bool:
        """Called after a piece of work that freed ``freed`` rows or objects; trims when
        something was freed and the last trim is old enough. True if it trimmed."""
        if freed <= 0 or _malloc_trim is None:
            return False
        now = self._clock()
        if now - self._last < self.every:
            return False
        self._last = now
        self.trims += 1
        trim()
        return True
