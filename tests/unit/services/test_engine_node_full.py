"""A journal that finds no space: the node refuses (nothing of the batch happens), says why
in its health, and takes commands again once there is space, losing nothing acknowledged."""

from __future__ import annotations

import asyncio
import errno
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mercato.adapters import journal as journal_module
from mercato.engine import Engine
from mercato.services import engine_node
from mercato.services.engine_node import AsyncEngineNode, EngineNode, NodeUnavailable

from .test_engine_node import load


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every journal write puts a few bytes down, then fails with ENOSPC; the file system
    reports no free space."""
    real = journal_module._write_all

    def full(fd: int, data: bytes | bytearray) -> None:
        real(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_write_all", full)
    monkeypatch.setattr(engine_node, "MIN_FREE", 1 << 62)


def test_no_space_refuses_the_batch_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmds = load(3, 300)
    first, second, third = cmds[:100], cmds[100:200], cmds[200:]

    async def run() -> None:
        node = EngineNode.open(tmp_path, fsync=False)
        async with AsyncEngineNode(node) as anode:
            await anode.submit([("c", i, c) for i, c in enumerate(first, 1)])
            with monkeypatch.context() as m:
                disk_full(m)
                with pytest.raises(NodeUnavailable, match="No space left"):
                    await anode.submit([("c", i, c) for i, c in enumerate(second, 101)])
                assert "No space left" in node.health()
                assert node.last_source_seq("c") == 100  # the duplicate table rolled back
                assert node.journal.last_seq == node.journal.committed_seq == 100
                with pytest.raises(NodeUnavailable):  # refused at once until the retry
                    await anode.submit([("c", 101, second[0])])
            monkeypatch.setattr(engine_node, "RETRY_AFTER", 0.0)
            node._retry_at = 0.0  # space again, and the retry is due
            assert node.health() == ""
            # the same source_seqs again: not duplicates, since they never happened
            results = await anode.submit([("c", i, c) for i, c in enumerate(second, 101)])
            assert [r.seq for r in results] == list(range(101, 201))
            assert not any(r.duplicate for r in results)
            await anode.submit([("c", i, c) for i, c in enumerate(third, 201)])
        node.close()

    asyncio.run(run())
    fresh = Engine()
    for c in cmds:
        fresh.process(c)
    reopened = EngineNode.open(tmp_path, fsync=False)
    assert reopened.applied_seq == 300
    assert reopened.state_hash() == fresh.state_hash()
    reopened.close()


@pytest.fixture
def tiny_fs(tmp_path: Path, require_service: Callable[[str], None]) -> Iterator[Path]:
    """A real 2 MiB file system (tmpfs; needs root), unmounted afterwards: skipped on a
    developer's machine that cannot mount one, a failure in CI (MERCATO_REQUIRE_SERVICES)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if shutil.which("mount") is None:
        require_service("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        require_service(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_real_full_file_system(tiny_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fill a real file system with the journal: ENOSPC from the kernel, then room again."""
    monkeypatch.setattr(engine_node, "RETRY_AFTER", 0.0)
    cmds = load(5, 4_000)
    ballast = tiny_fs / "ballast"
    ballast.write_bytes(bytes(shutil.disk_usage(tiny_fs).free - 150_000))  # room for ~1,000

    async def run() -> int:
        node = EngineNode.open(tiny_fs / "node", fsync=True, snapshot_every=0)
        acked = 0
        refused = 0
        try:
            return await fill_then_free(node, acked, refused)
        finally:
            node.close()

    async def fill_then_free(node: EngineNode, acked: int, refused: int) -> int:
        async with AsyncEngineNode(node) as anode:
            for start in range(0, len(cmds), 100):
                batch = [("c", i, c) for i, c in enumerate(cmds[start : start + 100], start + 1)]
                try:
                    await anode.submit(batch)
                except NodeUnavailable:
                    refused += 1
                    break
                acked = start + 100
            assert refused == 1, "the file system never filled"
            assert "No space left" in node.health() or node.health() == ""
            ballast.unlink()  # room again
            node._retry_at = 0.0
            for start in range(acked, len(cmds), 100):
                batch = [("c", i, c) for i, c in enumerate(cmds[start : start + 100], start + 1)]
                await anode.submit(batch)
        return acked

    acked = asyncio.run(run())
    assert 0 < acked < len(cmds)
    fresh = Engine()
    for c in cmds:
        fresh.process(c)
    reopened = EngineNode.open(tiny_fs / "node", snapshot_every=0)
    assert reopened.applied_seq == len(cmds)
    assert reopened.state_hash() == fresh.state_hash()
    reopened.close()
