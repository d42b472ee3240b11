"""The server's garbage-collection policy: no automatic full collection, a scheduled one."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from mercato.api.app import create_app
from mercato.services import gc_policy
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc_policy.restore()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


class Node:
    """Something that can be part of a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def old_cycle() -> weakref.ref[Node]:
    """A cycle that became garbage only after it reached the oldest generation."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    keep = [a]
    gc.collect(1)  # reachable: survives into the oldest generation
    gc.collect(1)
    ref = weakref.ref(a)
    del a, b, keep
    gc.collect(1)  # the young collections no longer look at it
    assert ref() is not None
    return ref


def test_quiet_freezes_and_stops_automatic_full_collections(restored: None) -> None:
    original = gc.get_threshold()
    young, middle, _ = original
    gc_policy.quiet()
    gc_policy.quiet()  # idempotent: the saved thresholds stay the original ones
    assert gc.get_threshold()[:2] == (young, middle)
    assert gc.get_threshold()[2] >= 2**31 - 1
    assert gc.get_freeze_count() > 0  # what existed is out of every future scan
    gc_policy.restore()
    assert gc.get_threshold() == original
    assert gc.get_freeze_count() == 0


def test_young_collections_still_free_new_cycles(restored: None) -> None:
    gc_policy.quiet()
    ref = cycle()
    assert ref() is not None  # a cycle: reference counting alone cannot free it
    gc.collect(0)
    assert ref() is None


def test_the_scheduled_collection_frees_cycles_that_outlived_the_young_generations(
    restored: None,
) -> None:
    gc_policy.quiet()
    ref = old_cycle()  # in the oldest generation, which is no longer collected by itself
    slept: list[float] = []
    alive: list[bool] = []

    async def sleep(seconds: float) -> None:  # the injected clock: 35 s, then stop
        alive.append(ref() is not None)
        slept.append(seconds)
        if len(slept) > 7:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(gc_policy.collect_every(30.0, sleep, rss=lambda: 0))
    assert slept == [5.0] * 8  # it looks every 5 s
    assert alive == [True] * 6 + [False] * 2  # and collects once 30 s have passed
    assert ref() is None


def test_memory_growth_brings_the_full_collection_forward(restored: None) -> None:
    """Flat memory: no collection before its time. Memory up by ``growth``: one at once."""
    gc_policy.quiet()
    ref = old_cycle()
    sizes = iter([100, 100, 110, 150, 160, 170, 180, 190, 200])  # MB at each look
    seen: list[bool] = []

    async def sleep(seconds: float) -> None:
        seen.append(ref() is not None)
        if len(seen) > 4:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(
            gc_policy.collect_every(600.0, sleep, growth=32 << 20, rss=lambda: next(sizes) << 20)
        )
    # baseline 100; looks: 100, 110 (flat enough), 150 (+50 MB: collect)
    assert seen == [True, True, True, False, False]


def test_the_resident_size_is_read() -> None:
    assert gc_policy.resident_bytes() > 1 << 20


def test_full_collection_reports_what_it_found() -> None:
    gc.collect()
    ref = cycle()
    found, took = gc_policy.full_collection()
    assert ref() is None
    assert found >= 2
    assert took >= 0


def test_the_server_lifespan_applies_and_undoes_the_policy(tmp_path: Path, restored: None) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    before = gc.get_threshold()
    app = create_app(Platform(), auth, full_gc_every=600.0)
    with TestClient(app) as client:
        assert client.get("/v1/instruments").status_code == 200
        assert gc.get_threshold()[2] >= 2**31 - 1
    assert gc.get_threshold() == before
    auth.close()
