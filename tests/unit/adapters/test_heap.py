"""The heap trimmer: trims after work that freed something, at most once per period; a
C library without ``malloc_trim`` makes it a no-op."""

from __future__ import annotations

import platform

import pytest

from mercato.adapters import heap


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trims_only_after_freeing_and_at_most_once_per_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(heap, "_malloc_trim", lambda pad: calls.append(pad) or 1)
    clock = _Clock()
    t = heap.Trimmer(every=30.0, clock=clock)
    assert t.after(0) is False  # nothing freed: nothing to give back
    assert t.after(500) is True
    clock.now += 29.9
    assert t.after(500) is False  # too soon
    clock.now += 0.2
    assert t.after(1) is True
    assert t.trims == 2 and calls == [0, 0]  # malloc_trim(0), once per trim


def test_unavailable_heap_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_malloc_trim", None)
    t = heap.Trimmer(every=0.0)
    assert t.after(10) is False
    assert heap.trim() is False and not heap.available()
    assert t.trims == 0


def test_the_real_c_library() -> None:
    # glibc has malloc_trim (this machine's C library); elsewhere it is a no-op
    assert heap.available() == (platform.libc_ver()[0] == "glibc")
    assert isinstance(heap.trim(), bool)
