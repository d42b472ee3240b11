"""FileSnapshotStore: atomic saves, pruning, and corrupt or partial files skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mercato.adapters.snapshots import SNAPSHOT_HEADER, FileSnapshotStore, snapshot_name


def test_empty_store_has_no_snapshot(tmp_path: Path) -> None:
    assert FileSnapshotStore(tmp_path).latest() is None


def test_round_trip_newest_wins(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(10, b"ten")
    store.save(200, b"two hundred" * 1000)
    store.save(30, b"thirty")  # ordered by seq, not by when it was written
    assert store.latest() == (200, b"two hundred" * 1000)
    assert FileSnapshotStore(tmp_path).latest() == (200, b"two hundred" * 1000)


def test_empty_data_is_a_snapshot(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(0, b"")
    assert store.latest() == (0, b"")


def test_keeps_the_newest(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path, keep=3)
    for seq in range(1, 8):
        store.save(seq * 100, bytes([seq]) * 50)
    assert store.seqs() == [500, 600, 700]
    assert sorted(p.name for p in tmp_path.iterdir()) == [snapshot_name(s) for s in (500, 600, 700)]


@pytest.mark.parametrize("damage", ["flip", "truncate", "header", "empty", "magic", "seq"])
def test_damaged_newest_is_skipped(tmp_path: Path, damage: str) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(1, b"old state")
    store.save(2, b"new state, longer than the header")
    path = tmp_path / snapshot_name(2)
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-3] ^= 0x01
    elif damage == "truncate":
        del raw[-5:]
    elif damage == "header":
        del raw[SNAPSHOT_HEADER.size - 2 :]
    elif damage == "empty":
        raw.clear()
    elif damage == "magic":
        raw[0] ^= 0xFF
    else:  # a valid file under another seq's name
        path.unlink()
        path = tmp_path / snapshot_name(3)
    path.write_bytes(bytes(raw))
    assert store.latest() == (1, b"old state")


def test_all_damaged_means_none(tmp_path: Path) -> None:
    (tmp_path / snapshot_name(5)).write_bytes(b"garbage")
    assert FileSnapshotStore(tmp_path).latest() is None


def test_crash_before_rename_leaves_the_old_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(1, b"old")

    def crash(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # stands in for the process dying between fsync and rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save(2, b"new")
    monkeypatch.undo()
    assert store.latest() == (1, b"old")
    assert sorted(p.name for p in tmp_path.iterdir()) == [snapshot_name(1)]


def test_leftover_temp_file_is_ignored_and_removed(tmp_path: Path) -> None:
    FileSnapshotStore(tmp_path).save(1, b"one")
    tmp = tmp_path / f".{snapshot_name(2)}.999.tmp"
    tmp.write_bytes(b"half a snap")
    store = FileSnapshotStore(tmp_path)
    assert not tmp.exists()
    assert store.latest() == (1, b"one")


def test_save_is_fsynced_file_then_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    FileSnapshotStore(tmp_path).save(7, b"data")
    assert calls == ["fsync-file", "rename", "fsync-dir"]


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileSnapshotStore(tmp_path, keep=0)
