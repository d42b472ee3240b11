"""The heap trimmer: trims after work that freed something, at most once per period."""

from __future__ import annotations

import sys

import pytest

from mercato.adapters import heap


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.skipif(not heap.available(), reason="this C library has no malloc_trim")
def test_trims_only_after_freeing_and_at_most_once_per_period() -> None:
    clock = _Clock()
    t = heap.Trimmer(every=30.0, clock=clock)
    assert t.after(0) is False  # nothing freed: nothing to give back
    assert t.after(500) is True
    clock.now += 29.9
    assert t.after(500) is False  # too soon
    clock.now += 0.2
    assert t.after(1) is True
    assert t.trims == 2


def test_unavailable_heap_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_malloc_trim", None)
    t = heap.Trimmer(every=0.0)
    assert t.after(10) is False
    assert heap.trim() is False
    assert t.trims == 0


def test_glibc_linux_has_malloc_trim() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert heap.available()
    heap.trim()  # returns whether pages were returned: either is fine, it must not fail
