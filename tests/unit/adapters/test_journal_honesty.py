"""The journal's commit record: a cut or damaged tail of acknowledged commands is refused,
a torn write that no commit finished is truncated, and a write that finds no space is
undone so that it can be tried again."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mercato.adapters import journal as journal_module
from mercato.adapters.journal import (
    FileJournal,
    JournalCorrupt,
    JournalFailed,
    JournalFull,
    JournalLost,
    segment_name,
)
from mercato.adapters.journal_commit import COMMIT_NAME, read_commit
from mercato.adapters.journal_reader import JournalReader
from mercato.domain.commands import EndOfDay

from .test_journal import acknowledged_upto, commands, entries, expected, fill, record_offsets


def test_a_tail_cut_at_a_record_boundary_is_refused(tmp_path: Path) -> None:
    fill(tmp_path, commands(10))
    seg = tmp_path / segment_name(1)
    data = seg.read_bytes()
    seg.write_bytes(data[: record_offsets(data)[-2]])  # seqs 9 and 10 are gone
    with pytest.raises(JournalLost) as info:
        FileJournal(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "ends at seq 8" in message and "seqs 9..10 are missing" in message
    assert "backup" in message and "--accept-loss" in message
    assert (info.value.have, info.value.committed) == (8, 10)
    assert seg.read_bytes() == data[: record_offsets(data)[-2]]  # nothing touched


def test_accept_loss_goes_on_from_what_is_left(tmp_path: Path) -> None:
    cmds = commands(10)
    fill(tmp_path, cmds)
    seg = tmp_path / segment_name(1)
    data = seg.read_bytes()
    seg.write_bytes(data[: record_offsets(data)[-1]])
    with FileJournal(tmp_path, accept_loss=True) as j:
        assert j.last_seq == 9
    assert read_commit(tmp_path) == 9  # accepted once: the next open is normal
    assert entries(tmp_path) == expected(cmds)[:9]


@pytest.mark.parametrize("where", ["length", "crc", "payload"])
def test_a_damaged_last_acknowledged_record_is_refused(tmp_path: Path, where: str) -> None:
    fill(tmp_path, commands(10))
    seg = tmp_path / segment_name(1)
    data = bytearray(seg.read_bytes())
    last = record_offsets(bytes(data))[-1]
    data[{"length": last, "crc": last + 5, "payload": len(data) - 2}[where]] ^= 0xFF
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalLost, match="seq 10 is missing"):
        FileJournal(tmp_path)
    assert seg.read_bytes() == bytes(data)  # not truncated


def test_a_deleted_last_segment_is_refused(tmp_path: Path) -> None:
    fill(tmp_path, commands(100), segment_bytes=800)
    last = max(tmp_path.glob("*.seg"))
    first = int(last.name.split(".")[0])
    last.unlink()
    with pytest.raises(JournalLost, match=f"ends at seq {first - 1} but seq 100"):
        FileJournal(tmp_path, segment_bytes=800)


def test_a_torn_write_past_the_commit_is_truncated(tmp_path: Path) -> None:
    cmds = commands(10)
    fill(tmp_path, cmds)
    seg = tmp_path / segment_name(1)
    data = seg.read_bytes()
    seg.write_bytes(data[:-3])
    acknowledged_upto(tmp_path, 9)
    with FileJournal(tmp_path) as j:
        assert j.last_seq == 9
    assert entries(tmp_path) == expected(cmds)[:9]


def test_a_journal_without_a_commit_record_is_taken_as_it_is(tmp_path: Path) -> None:
    """A journal written before the commit record existed: opening records one."""
    fill(tmp_path, commands(5))
    (tmp_path / COMMIT_NAME).unlink()
    with FileJournal(tmp_path) as j:
        assert j.last_seq == 5
    assert read_commit(tmp_path) == 5


def test_a_torn_commit_slot_falls_back_to_the_other(tmp_path: Path) -> None:
    with FileJournal(tmp_path) as j:
        for i in range(1, 4):
            j.append("a", i, EndOfDay(ts=i))
            j.commit()
    raw = bytearray((tmp_path / COMMIT_NAME).read_bytes())
    newest = 0 if raw[8] > raw[40] else 32  # the slot with the higher counter
    raw[newest + 16] ^= 0xFF
    (tmp_path / COMMIT_NAME).write_bytes(bytes(raw))
    assert read_commit(tmp_path) == 2
    with FileJournal(tmp_path) as j:
        assert j.last_seq == 3


def test_an_unreadable_commit_record_needs_accept_loss(tmp_path: Path) -> None:
    fill(tmp_path, commands(5))
    (tmp_path / COMMIT_NAME).write_bytes(bytes(64))
    with pytest.raises(JournalCorrupt, match=COMMIT_NAME):
        FileJournal(tmp_path)
    with FileJournal(tmp_path, accept_loss=True) as j:
        assert j.last_seq == 5
    assert read_commit(tmp_path) == 5


def test_the_reader_stops_at_the_commit_record(tmp_path: Path) -> None:
    fill(tmp_path, commands(10))
    acknowledged_upto(tmp_path, 7)  # 8..10 written, their commit not (yet) returned
    assert [e.seq for e in JournalReader(tmp_path).read_from(1)] == list(range(1, 8))
    assert JournalReader(tmp_path).last_seq() == 7


# -- no space -------------------------------------------------------------------------------


def no_space_after(monkeypatch: pytest.MonkeyPatch, written: int) -> None:
    """The journal's writes put ``written`` bytes down, then fail with ENOSPC."""
    real = journal_module._write_all

    def full(fd: int, data: bytes | bytearray) -> None:
        real(fd, bytes(data[:written]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_write_all", full)


def test_a_write_without_space_is_undone_and_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmds = commands(20)
    j = FileJournal(tmp_path)
    for i in range(1, 11):
        j.append("client", i, cmds[i - 1])
    j.commit()
    seg = tmp_path / segment_name(1)
    size = seg.stat().st_size
    for i in range(11, 16):
        j.append("client", i, cmds[i - 1])
    no_space_after(monkeypatch, 7)
    with pytest.raises(JournalFull, match="No space left"):
        j.commit()
    assert seg.stat().st_size == size  # the partial write is gone
    assert j.committed_seq == 10 and read_commit(tmp_path) == 10
    with pytest.raises(JournalFull):
        j.append("client", 11, cmds[10])  # refused until the owner rolls back
    monkeypatch.undo()
    j.rollback()
    assert j.last_seq == 10
    for i in range(11, 21):
        assert j.append("client", i, cmds[i - 1]) == i
    j.commit()
    j.close()
    assert entries(tmp_path) == expected(cmds)


def test_no_space_for_a_new_segment_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmds = commands(60)
    j = FileJournal(tmp_path, segment_bytes=800)
    for i in range(1, 11):
        j.append("client", i, cmds[i - 1])
    j.commit()
    before = sorted(p.name for p in tmp_path.glob("*.seg"))
    sizes = {p.name: p.stat().st_size for p in tmp_path.glob("*.seg")}
    for i in range(11, 41):  # enough for one or more new segments
        j.append("client", i, cmds[i - 1])
    no_space_after(monkeypatch, 3)
    with pytest.raises(JournalFull):
        j.commit()
    assert sorted(p.name for p in tmp_path.glob("*.seg")) == before
    assert {p.name: p.stat().st_size for p in tmp_path.glob("*.seg")} == sizes
    monkeypatch.undo()
    j.rollback()
    for i in range(11, 61):
        j.append("client", i, cmds[i - 1])
    j.commit()
    j.close()
    assert entries(tmp_path, segment_bytes=800) == expected(cmds)


def test_an_io_error_on_write_is_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = FileJournal(tmp_path)
    j.append("a", 1, EndOfDay())

    def eio(fd: int, data: bytes | bytearray) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(journal_module, "_write_all", eio)
    with pytest.raises(JournalFailed):
        j.commit()
    with pytest.raises(JournalFailed):
        j.rollback()
    j.close()


def test_files_are_private(tmp_path: Path) -> None:
    os.umask(0o022)
    d = tmp_path / "journal"
    fill(d, commands(3))
    assert d.stat().st_mode & 0o777 == 0o700
    for p in d.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p.name
