"""FileJournal: round trip, group commit, torn tails, corruption, segments, async commit."""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import zlib
from pathlib import Path

import msgspec
import pytest

from mercato.adapters import journal as journal_module
from mercato.adapters.journal import DEFAULT_SEGMENT_BYTES as SEG
from mercato.adapters.journal import (
    FORMAT_VERSION,
    HEADER,
    SEGMENT_HEADER,
    FileJournal,
    JournalCorrupt,
    JournalFailed,
    JournalFull,
    JournalLocked,
    JournalVersionError,
    segment_header,
    segment_name,
)
from mercato.adapters.journal_commit import COMMIT_NAME, _pack
from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
)
from mercato.domain.types import AccountKind, OrderType, Side, TimeInForce, TradingStatus
from mercato.ports import JournalEntry


def commands(n: int) -> list[Command]:
    """``n`` commands of every kind, varied enough that their encodings differ in length."""
    out: list[Command] = [AddInstrument(symbol="AAPL", ts=1)]
    kinds = 5
    for i in range(1, n):
        ts = 1_000 + i
        k = i % kinds
        if k == 0:
            out.append(CancelOrder(order_id=i - 1, symbol="AAPL", ts=ts))
        elif k == 1:
            out.append(ReplaceOrder(order_id=i - 2, symbol="AAPL", price=15_000 + i, qty=7, ts=ts))
        elif k == 2:
            out.append(SetTradingStatus(symbol="AAPL", status=TradingStatus.OPEN, ts=ts))
        elif k == 3 and i % 7 == 0:
            out.append(EndOfDay(ts=ts))
        else:
            out.append(
                NewOrder(
                    order_id=i,
                    account=i % 4 + 1,
                    symbol="AAPL",
                    side=Side.BUY if i % 2 else Side.SELL,
                    type=OrderType.LIMIT,
                    tif=TimeInForce.DAY if i % 3 else TimeInForce.GTC,
                    qty=10 * (i % 9 + 1),
                    price=15_000 + i * 37 % 500,
                    ts=ts,
                )
            )
    return out


def fill(path: Path, cmds: list[Command], *, fsync: bool = True, segment_bytes: int = SEG) -> None:
    with FileJournal(path, fsync=fsync, segment_bytes=segment_bytes) as j:
        for i, cmd in enumerate(cmds, 1):
            assert j.append("client", i, cmd) == i
        j.commit()


def entries(path: Path, *, segment_bytes: int = SEG) -> list[tuple[int, str, int, bytes]]:
    with FileJournal(path, segment_bytes=segment_bytes) as j:
        return [
            (e.seq, e.source, e.source_seq, msgspec.msgpack.encode(e.cmd)) for e in j.read_from(1)
        ]


def expected(cmds: list[Command]) -> list[tuple[int, str, int, bytes]]:
    return [(i, "client", i, msgspec.msgpack.encode(c)) for i, c in enumerate(cmds, 1)]


def acknowledged_upto(path: Path, seq: int) -> None:
    """Make the commit record say ``seq``: what a crash during the next commit leaves."""
    (path / COMMIT_NAME).write_bytes(_pack(1, seq) + bytes(32))


def record_offsets(data: bytes) -> list[int]:
    offsets, off = [], SEGMENT_HEADER.size
    while off < len(data):
        offsets.append(off)
        off += HEADER.size + struct.unpack_from("<I", data, off)[0]
    return offsets


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every fd passed to os.fsync (the journal's calls go through the os module)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    cmds = commands(50)
    fill(tmp_path, cmds)
    assert entries(tmp_path) == expected(cmds)
    with FileJournal(tmp_path) as j:
        assert j.last_seq == j.committed_seq == 50
        assert [e.seq for e in j.read_from(45)] == [45, 46, 47, 48, 49, 50]
        assert list(j.read_from(51)) == []
        assert j.append("other", 1, EndOfDay(ts=9)) == 51
    assert entries(tmp_path)[-1] == (51, "other", 1, msgspec.msgpack.encode(EndOfDay(ts=9)))


def test_append_is_buffered_until_commit(tmp_path: Path) -> None:
    with FileJournal(tmp_path) as j:
        j.append("a", 1, EndOfDay())
        assert j.last_seq == 1 and j.committed_seq == 0
        assert list(j.read_from(1)) == []
        j.commit()
        assert [e.seq for e in j.read_from(1)] == [1]


def test_group_commit_fsyncs_once(tmp_path: Path, fsyncs: list[int]) -> None:
    with FileJournal(tmp_path) as j:
        j.append("a", 1, EndOfDay())
        j.commit()  # creates the segment: one fsync for the file, one for the directory
        assert len(fsyncs) == 2
        fsyncs.clear()
        for i, cmd in enumerate(commands(500), 2):
            j.append("a", i, cmd)
        assert fsyncs == []
        j.commit()
        assert len(fsyncs) == 1
        j.commit()  # nothing buffered: no write, no fsync
        assert len(fsyncs) == 1
    assert len(entries(tmp_path)) == 501


def test_no_fsync_mode(tmp_path: Path, fsyncs: list[int]) -> None:
    fill(tmp_path, commands(20), fsync=False)
    assert fsyncs == []
    assert entries(tmp_path) == expected(commands(20))


def test_torn_last_record_at_every_offset(tmp_path: Path) -> None:
    cmds = commands(6)
    src = tmp_path / "src"
    fill(src, cmds)
    seg = segment_name(1)
    data = (src / seg).read_bytes()
    last = record_offsets(data)[-1]
    for cut in range(last, len(data)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / seg).write_bytes(data[:cut])
        with FileJournal(d) as j:
            assert j.last_seq == 5, cut
            assert (d / seg).stat().st_size == last  # the torn record is gone
            assert j.append("client", 6, EndOfDay(ts=cut)) == 6
        got = entries(d)
        assert got[:5] == expected(cmds)[:5]
        assert got[5] == (6, "client", 6, msgspec.msgpack.encode(EndOfDay(ts=cut)))


@pytest.mark.parametrize("where", ["length", "crc", "payload"])
def test_bad_last_record_is_truncated(tmp_path: Path, where: str) -> None:
    cmds = commands(10)
    fill(tmp_path, cmds)
    path = tmp_path / segment_name(1)
    data = bytearray(path.read_bytes())
    last = record_offsets(bytes(data))[-1]
    at = {"length": last, "crc": last + 5, "payload": len(data) - 2}[where]
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    acknowledged_upto(tmp_path, 9)  # the last record's commit never returned
    assert entries(tmp_path) == expected(cmds)[:9]


@pytest.mark.parametrize("where", ["length", "crc", "payload", "zeros"])
def test_corruption_followed_by_valid_data_raises(tmp_path: Path, where: str) -> None:
    fill(tmp_path, commands(10))
    path = tmp_path / segment_name(1)
    data = bytearray(path.read_bytes())
    bad = record_offsets(bytes(data))[4]
    if where == "length":
        struct.pack_into("<I", data, bad, 1_000_000)  # now runs past the end of the file
    elif where == "crc":
        data[bad + 4] ^= 0x01
    elif where == "payload":
        data[bad + HEADER.size + 3] ^= 0x40
    else:
        data[bad : bad + 20] = bytes(20)
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as info:
        FileJournal(tmp_path)
    assert info.value.path == path and info.value.offset == bad
    assert str(bad) in str(info.value)
    with pytest.raises(JournalCorrupt):
        FileJournal(tmp_path)  # the failed open released its lock and truncated nothing


def test_segment_rollover(tmp_path: Path) -> None:
    cmds = commands(200)
    fill(tmp_path, cmds, segment_bytes=1_000)
    names = sorted(p.name for p in tmp_path.glob("*.seg"))
    assert len(names) > 5
    firsts = [int(n.split(".")[0]) for n in names]
    assert firsts[0] == 1 and firsts == sorted(firsts)
    for name in names:
        assert (tmp_path / name).stat().st_size <= 1_000
    assert entries(tmp_path, segment_bytes=1_000) == expected(cmds)
    with FileJournal(tmp_path, segment_bytes=1_000) as j:
        for start in (1, firsts[2], firsts[2] + 1, firsts[-1], 200):
            assert [e.seq for e in j.read_from(start)] == list(range(start, 201))
        for i, cmd in enumerate(commands(50), 201):
            j.append("client", i, cmd)
    assert [e[0] for e in entries(tmp_path)] == list(range(1, 251))


def test_segment_with_one_oversized_record(tmp_path: Path) -> None:
    fill(tmp_path, commands(5), segment_bytes=10)  # every record gets its own segment
    assert sorted(p.name for p in tmp_path.glob("*.seg")) == [segment_name(i) for i in range(1, 6)]
    assert entries(tmp_path) == expected(commands(5))


def test_torn_tail_in_last_segment_of_many(tmp_path: Path) -> None:
    cmds = commands(100)
    fill(tmp_path, cmds, segment_bytes=800)
    last = max(tmp_path.glob("*.seg"))
    first_seq = int(last.name.split(".")[0])
    last.write_bytes(last.read_bytes()[: SEGMENT_HEADER.size + 5])  # a piece of a record header
    acknowledged_upto(tmp_path, first_seq - 1)
    with FileJournal(tmp_path, segment_bytes=800) as j:
        assert j.last_seq == first_seq - 1
        j.append("client", first_seq, cmds[first_seq - 1])
    assert entries(tmp_path) == expected(cmds)[:first_seq]


def test_corruption_in_an_older_segment_raises_when_read(tmp_path: Path) -> None:
    fill(tmp_path, commands(100), segment_bytes=800)
    second = sorted(tmp_path.glob("*.seg"))[1]
    data = bytearray(second.read_bytes())
    data[SEGMENT_HEADER.size + HEADER.size + 2] ^= 0x10
    second.write_bytes(bytes(data))
    with FileJournal(tmp_path, segment_bytes=800) as j:
        assert j.last_seq == 100  # only the last segment is scanned when opening
        with pytest.raises(JournalCorrupt) as info:
            list(j.read_from(1))
        assert info.value.path == second and info.value.offset == SEGMENT_HEADER.size


def test_missing_segment_raises_when_read(tmp_path: Path) -> None:
    fill(tmp_path, commands(100), segment_bytes=800)
    sorted(tmp_path.glob("*.seg"))[2].unlink()
    with FileJournal(tmp_path) as j, pytest.raises(JournalCorrupt, match="should start"):
        list(j.read_from(1))


def test_segment_header_is_written(tmp_path: Path, fsyncs: list[int]) -> None:
    with FileJournal(tmp_path, segment_bytes=800) as j:
        j.append("client", 1, EndOfDay())
        j.commit()  # the header goes out with the first records: still one fsync + the dir
        assert len(fsyncs) == 2
        for i, cmd in enumerate(commands(99), 2):
            j.append("client", i, cmd)
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) > 3
    header = b"MRCJ" + struct.pack("<H", FORMAT_VERSION)
    header += struct.pack("<I", zlib.crc32(header))
    for seg in segments:
        data = seg.read_bytes()
        assert data[: SEGMENT_HEADER.size] == header == segment_header()
        assert record_offsets(data)[0] == SEGMENT_HEADER.size
    assert [e[0] for e in entries(tmp_path, segment_bytes=800)] == list(range(1, 101))


def test_empty_journal_has_no_segment(tmp_path: Path) -> None:
    FileJournal(tmp_path).close()
    assert list(tmp_path.glob("*.seg")) == []
    fill(tmp_path, commands(3))
    assert (tmp_path / segment_name(1)).read_bytes()[: SEGMENT_HEADER.size] == segment_header()


def damage_header(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "magic":  # another file format, with a consistent header of its own
        body = b"MRCX" + struct.pack("<H", FORMAT_VERSION)
        data[: SEGMENT_HEADER.size] = body + struct.pack("<I", zlib.crc32(body))
    elif how == "version bit":  # corrupt: the CRC no longer matches
        data[4] ^= 0x02
    elif how == "crc":
        data[SEGMENT_HEADER.size - 1] ^= 0x80
    else:
        assert how == "zeros"
        data[: SEGMENT_HEADER.size] = bytes(SEGMENT_HEADER.size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["magic", "version bit", "crc", "zeros"])
def test_bad_header_of_last_segment_raises_on_open(tmp_path: Path, how: str) -> None:
    fill(tmp_path, commands(100), segment_bytes=800)
    last = max(tmp_path.glob("*.seg"))
    damage_header(last, how)
    before = last.read_bytes()
    with pytest.raises(JournalCorrupt) as info:
        FileJournal(tmp_path, segment_bytes=800)
    assert info.value.path == last and info.value.offset == 0
    if how == "magic":
        assert "not a journal segment" in str(info.value)
    elif how != "zeros":
        assert "header CRC" in str(info.value)
    assert last.read_bytes() == before  # nothing truncated or rewritten
    with pytest.raises(JournalCorrupt):
        FileJournal(tmp_path, segment_bytes=800)  # and the failed open released its lock


@pytest.mark.parametrize("how", ["magic", "version bit", "crc", "zeros", "torn"])
def test_bad_header_of_older_segment_raises_when_read(tmp_path: Path, how: str) -> None:
    fill(tmp_path, commands(100), segment_bytes=800)
    second = sorted(tmp_path.glob("*.seg"))[1]
    if how == "torn":  # only a torn header is forgiven, and only in the last segment
        second.write_bytes(second.read_bytes()[:3])
    else:
        damage_header(second, how)
    seen: list[int] = []
    with FileJournal(tmp_path, segment_bytes=800) as j:
        assert j.last_seq == 100  # only the last segment is checked when opening
        with pytest.raises(JournalCorrupt) as info:
            seen.extend(e.seq for e in j.read_from(1))
        assert info.value.path == second and info.value.offset == 0
    assert seen == list(range(1, int(second.name.split(".")[0])))  # the first segment


@pytest.mark.parametrize("which", ["last", "older"])
def test_unknown_format_version_raises(tmp_path: Path, which: str) -> None:
    fill(tmp_path, commands(100), segment_bytes=800)
    segments = sorted(tmp_path.glob("*.seg"))
    path = segments[-1] if which == "last" else segments[1]
    data = path.read_bytes()
    path.write_bytes(segment_header(FORMAT_VERSION + 1) + data[SEGMENT_HEADER.size :])
    if which == "last":
        with pytest.raises(JournalVersionError) as info:
            FileJournal(tmp_path, segment_bytes=800)
        assert path.read_bytes()[SEGMENT_HEADER.size :] == data[SEGMENT_HEADER.size :]
        with pytest.raises(JournalVersionError):
            FileJournal(tmp_path, segment_bytes=800)  # not JournalLocked: the lock was released
    else:
        with FileJournal(tmp_path, segment_bytes=800) as j:
            assert j.last_seq == 100  # only the last segment is checked when opening
            with pytest.raises(JournalVersionError) as info:
                list(j.read_from(1))
    err = info.value
    assert (err.path, err.found, err.supported) == (path, FORMAT_VERSION + 1, FORMAT_VERSION)
    assert not isinstance(err, JournalCorrupt)
    message = str(err)
    assert str(path) in message
    assert f"version {FORMAT_VERSION + 1}" in message and f"version {FORMAT_VERSION}" in message


@pytest.mark.parametrize("cut", [*range(SEGMENT_HEADER.size), "zeros"])
def test_torn_header_in_empty_last_segment_is_rewritten(
    tmp_path: Path, fsyncs: list[int], cut: int | str
) -> None:
    """A crash right after creating a segment leaves no header, or part of one."""
    cmds = commands(100)
    fill(tmp_path, cmds, segment_bytes=800)
    last = max(tmp_path.glob("*.seg"))
    first_seq = int(last.name.split(".")[0])
    torn = bytes(SEGMENT_HEADER.size) if cut == "zeros" else segment_header()[: int(cut)]
    last.write_bytes(torn)
    acknowledged_upto(tmp_path, first_seq - 1)  # the crash came before the commit returned
    fsyncs.clear()
    with FileJournal(tmp_path, segment_bytes=800) as j:
        assert j.last_seq == j.committed_seq == first_seq - 1
        assert last.read_bytes() == segment_header()
        assert len(fsyncs) == 2  # the rewritten header and the directory, before any append
        assert [e.seq for e in j.read_from(first_seq - 3)] == list(range(first_seq - 3, first_seq))
        for i in range(first_seq, 101):
            assert j.append("client", i, cmds[i - 1]) == i
    assert entries(tmp_path, segment_bytes=800) == expected(cmds)


def test_torn_header_of_the_only_segment_is_rewritten(tmp_path: Path) -> None:
    (tmp_path / segment_name(1)).write_bytes(b"")
    with FileJournal(tmp_path) as j:
        assert j.last_seq == 0
        j.append("client", 1, EndOfDay())
    assert (tmp_path / segment_name(1)).read_bytes()[: SEGMENT_HEADER.size] == segment_header()
    assert [e[0] for e in entries(tmp_path)] == [1]


def test_torn_header_followed_by_a_record_raises(tmp_path: Path) -> None:
    """Records behind a bad header were acknowledged: that is corruption, not a torn file."""
    fill(tmp_path, commands(100), segment_bytes=800)
    last = max(tmp_path.glob("*.seg"))
    data = last.read_bytes()
    last.write_bytes(bytes(SEGMENT_HEADER.size) + data[SEGMENT_HEADER.size :])
    with pytest.raises(JournalCorrupt) as info:
        FileJournal(tmp_path, segment_bytes=800)
    assert info.value.path == last and info.value.offset == 0
    assert last.read_bytes()[SEGMENT_HEADER.size :] == data[SEGMENT_HEADER.size :]


def test_short_foreign_last_segment_is_not_taken_for_a_torn_header(tmp_path: Path) -> None:
    (tmp_path / segment_name(1)).write_bytes(b"PK\x03")
    with pytest.raises(JournalCorrupt, match="truncated segment header"):
        FileJournal(tmp_path)
    assert (tmp_path / segment_name(1)).read_bytes() == b"PK\x03"


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    with FileJournal(tmp_path), pytest.raises(JournalLocked):
        FileJournal(tmp_path)
    FileJournal(tmp_path).close()  # released on close


def test_not_a_command_is_refused_without_side_effect(tmp_path: Path) -> None:
    with FileJournal(tmp_path) as j:
        with pytest.raises(TypeError):
            j.append("a", 1, "not a command")  # type: ignore[arg-type]
        assert j.last_seq == 0
        assert j.append("a", 1, EndOfDay()) == 1


def test_failed_commit_is_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = FileJournal(tmp_path)
    j.append("a", 1, EndOfDay())

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(JournalFailed):
        j.commit()
    with pytest.raises(JournalFailed):
        j.append("a", 2, EndOfDay())
    with pytest.raises(JournalFailed):
        j.commit()
    j.close()  # releases the files without trying to commit again


def test_commit_async_groups_and_keeps_order(tmp_path: Path, fsyncs: list[int]) -> None:
    cmds = commands(301)

    async def run() -> None:
        with FileJournal(tmp_path) as j:
            j.append("client", 1, cmds[0])
            await j.commit_async()
            fsyncs.clear()
            commits = []
            for start in range(1, 300, 30):  # ten commits in flight, appended in between
                for i in range(start, start + 30):
                    j.append("client", i + 1, cmds[i])
                commits.append(asyncio.ensure_future(j.commit_async()))
                await asyncio.sleep(0)
            await asyncio.gather(*commits)
            assert j.committed_seq == 301
            assert len(fsyncs) <= 10
            j.commit()  # a sync commit after async ones goes through the same writer

    asyncio.run(run())
    assert entries(tmp_path) == expected(cmds)


def test_commit_async_no_space_refuses_later_commits_until_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit in flight behind one that found no space holds seqs that were not written:
    it is refused too, and nothing is written until the owner rolls back."""
    go = threading.Event()

    def enospc(fd: int, data: bytes | bytearray) -> None:
        go.wait(5)
        raise OSError(28, "No space left on device")

    async def run() -> None:
        j = FileJournal(tmp_path)
        monkeypatch.setattr(journal_module, "_write_all", enospc)
        j.append("a", 1, EndOfDay())
        first = asyncio.ensure_future(j.commit_async())
        await asyncio.sleep(0)
        j.append("a", 2, EndOfDay())
        second = asyncio.ensure_future(j.commit_async())
        await asyncio.sleep(0)
        go.set()
        for fut in (first, second):
            with pytest.raises(JournalFull):
                await fut
        with pytest.raises(JournalFull):
            j.append("a", 3, EndOfDay())
        assert list(tmp_path.glob("*.seg")) == []  # the segment it created is undone
        monkeypatch.undo()  # space again
        j.rollback()
        assert j.last_seq == j.committed_seq == 0
        assert j.append("a", 3, EndOfDay(ts=3)) == 1
        await j.commit_async()
        j.close()

    asyncio.run(run())
    assert entries(tmp_path) == [(1, "a", 3, msgspec.msgpack.encode(EndOfDay(ts=3)))]


def test_entry_encoding_is_pinned() -> None:
    """The journal stores commands as msgspec arrays, so field order is the file format.

    A changed command (a field added, moved or renamed; ``ts`` comes last because the base
    class is kw_only) would make old journals decode into different commands, silently.
    If this test fails, the journal format changed: bump ``FORMAT_VERSION`` (old journals
    then need an upgrade path, see docs/journal.md), do not just update these.
    """
    assert FORMAT_VERSION == 2  # the bytes below are those of format version 2
    assert segment_header().hex() == "4d52434a0200fdb94d86"  # b"MRCJ", u16 2, crc32
    cmds: list[Command] = [
        AddInstrument(symbol="AB", tick_size=5, lot_size=10, price_scale=2, qty_scale=1, ts=7),
        NewOrder(
            order_id=3,
            account=4,
            symbol="AB",
            side=Side.BUY,
            type=OrderType.STOP_LIMIT,
            qty=20,
            tif=TimeInForce.DAY,
            price=105,
            stop_price=100,
            ts=8,
        ),
        CancelOrder(order_id=3, symbol="AB", ts=9),
        ReplaceOrder(order_id=3, symbol="AB", price=110, qty=10, stop_price=105, ts=10),
        SetTradingStatus(symbol="AB", status=TradingStatus.HALTED, ts=11),
        EndOfDay(ts=12),
        CreateAccount(account=4, kind=AccountKind.MARGIN, currency="USD", ts=13),
        Deposit(account=4, asset="USD", amount=500, ref=1, ts=14),
    ]
    pinned = [
        "9401a1730199a26169a24142050a0201a355534407a0",
        "9402a17302dc0012a16e0304a24142010414026964c2a0000000080000",
        "9403a1730394a16303a2414209",
        "9404a1730498a17203a241426e0a69000a",
        "9405a1730594a27374a24142020b",
        "9406a1730693a3656f640ca0",
        "9407a1730796a4616363740402a3555344010d",
        "9408a1730897a364657004a3555344cd01f401000e",
    ]
    entries = [JournalEntry(i, "s", i, c) for i, c in enumerate(cmds, 1)]  # type: ignore[arg-type]
    assert [msgspec.msgpack.encode(e).hex() for e in entries] == pinned
    decoder = msgspec.msgpack.Decoder(JournalEntry)
    assert [decoder.decode(bytes.fromhex(h)) for h in pinned] == entries
    # a NewOrder journaled before GTD and self-trade modes (no expire_ts, no self_trade:
    # the array two shorter) still reads
    before_gtd = "9402a17302dc0010a16e0304a24142010414026964c2a000000008"
    assert decoder.decode(bytes.fromhex(before_gtd)) == entries[1]
    # an AddInstrument journaled before calendars (no calendar: the platform's) and an
    # EndOfDay before per-instrument days (no symbol: the platform's) still read
    before_calendar = "9401a1730198a26169a24142050a0201a355534407"
    assert decoder.decode(bytes.fromhex(before_calendar)) == entries[0]
    assert decoder.decode(bytes.fromhex(before_calendar)).cmd.calendar == ""  # type: ignore[union-attr]
    before_symbol = "9406a1730692a3656f640c"
    assert decoder.decode(bytes.fromhex(before_symbol)) == entries[5]
    # and the new fields travel last
    cal = AddInstrument(symbol="AB", calendar="24/7", ts=7)
    again = decoder.decode(msgspec.msgpack.encode(JournalEntry(1, "s", 1, cal)))
    assert again.cmd == cal
    eod = EndOfDay(ts=12, symbol="AB")
    assert msgspec.msgpack.encode(eod).hex() == "93a3656f640ca24142"
