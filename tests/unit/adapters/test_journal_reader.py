"""JournalReader: reads a journal while its writer holds it, and stops at what is not
complete yet (a record being written, a torn tail, a segment just created)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from mercato.adapters.journal import (
    SEGMENT_HEADER,
    FileJournal,
    JournalCorrupt,
    segment_header,
    segment_name,
)
from mercato.adapters.journal_reader import JournalReader
from mercato.domain.commands import EndOfDay

from .test_journal import commands, expected, fill, record_offsets


def read(reader: JournalReader, seq: int = 1) -> list[tuple[int, str, int, bytes]]:
    return [
        (e.seq, e.source, e.source_seq, msgspec.msgpack.encode(e.cmd))
        for e in reader.read_from(seq)
    ]


def test_reads_what_the_open_writer_committed(tmp_path: Path) -> None:
    cmds = commands(40)
    reader = JournalReader(tmp_path)
    assert read(reader) == [] and reader.last_seq() == 0  # no directory yet
    with FileJournal(tmp_path, fsync=False, segment_bytes=300) as j:  # holds the lock
        for i, c in enumerate(cmds[:25], 1):
            j.append("client", i, c)
        assert read(reader) == []  # appended, not written
        j.commit()
        assert reader.last_seq() == 25
        assert read(reader) == expected(cmds)[:25]
        assert read(reader, 26) == []  # on from where it stopped
        for i, c in enumerate(cmds[25:], 26):
            j.append("client", i, c)
        j.commit()
        assert len(list(tmp_path.glob("*.seg"))) > 3  # the reads cross segments
        assert read(reader, 26) == expected(cmds)[25:]
        assert read(reader, 7) == expected(cmds)[6:]  # any seq, not only the next one
        assert read(JournalReader(tmp_path), 13) == expected(cmds)[12:]
        assert reader.last_seq() == 40


def test_a_torn_tail_is_not_yet_written(tmp_path: Path) -> None:
    cmds = commands(6)
    src = tmp_path / "src"
    fill(src, cmds)
    seg = segment_name(1)
    data = (src / seg).read_bytes()
    last = record_offsets(data)[-1]
    for cut in range(last, len(data), 3):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / seg).write_bytes(data[:cut])
        reader = JournalReader(d)
        assert read(reader) == expected(cmds)[:5], cut
        assert reader.last_seq() == 5
        (d / seg).write_bytes(data)  # the rest of the write arrives
        assert read(reader, 6) == expected(cmds)[5:]
    # the writer's recovery truncates a torn tail and appends after it: the reader follows
    d = tmp_path / "recovered"
    d.mkdir()
    (d / seg).write_bytes(data[: last + 5])
    reader = JournalReader(d)
    assert len(read(reader)) == 5
    with FileJournal(d, fsync=False) as j:
        j.append("client", 6, EndOfDay(ts=99))
    assert read(reader, 6) == [(6, "client", 6, msgspec.msgpack.encode(EndOfDay(ts=99)))]


@pytest.mark.parametrize("content", [b"", segment_header()[:4], bytes(SEGMENT_HEADER.size)])
def test_a_segment_being_created_is_not_yet_written(tmp_path: Path, content: bytes) -> None:
    cmds = commands(5)
    fill(tmp_path, cmds)
    (tmp_path / segment_name(6)).write_bytes(content)
    reader = JournalReader(tmp_path)
    assert read(reader) == expected(cmds)
    assert read(reader, 6) == []


def test_a_bad_record_in_a_finished_segment_is_corruption(tmp_path: Path) -> None:
    cmds = commands(30)
    fill(tmp_path, cmds, segment_bytes=300)
    first = tmp_path / segment_name(1)
    data = bytearray(first.read_bytes())
    data[record_offsets(bytes(data))[1] + 9] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        read(JournalReader(tmp_path))
