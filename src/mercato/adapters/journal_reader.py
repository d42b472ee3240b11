"""A read-only view of a journal directory, safe while its ``FileJournal`` appends.

Used by the persister, which tails the node's journal from its own position. A reader may
also *hold* the journal at a seq (``hold``): retention then keeps the snapshot and the
segments needed to restart from there (``docs/journal.md``, "Retention").
"""

from __future__ import annotations

import os
import zlib
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path

from mercato.adapters.journal import (
    _SEGMENT_HEADER_BYTES,
    _SEGMENT_NAME,
    HEADER,
    MAX_RECORD_BYTES,
    SEGMENT_HEADER,
    JournalCorrupt,
    _check_header,
    _decode,
    _torn_header,
    segment_name,
)
from mercato.adapters.journal_commit import read_commit
from mercato.adapters.private_files import write_private
from mercato.ports import JournalEntry


class JournalReader:
    """A read-only view of a ``FileJournal`` directory, safe while its writer appends.

    It never takes the writer's lock and never writes. ``read_from`` yields the records
    that are complete and CRC-valid; in the last segment it stops at the first one that is
    not (a record still being written, a torn tail a crash left behind, a segment whose
    header is not written yet): that is "not yet written", and a later call picks up from
    there. Segments before the last one were finished before the next was created, so a
    bad record there is corruption (``JournalCorrupt``), as in ``FileJournal.read_from``.

    It reads no further than the writer's commit record (``COMMIT``), so every record it
    yields was fsynced and will not be undone (a write that found no space is truncated
    away before the record moves). It remembers where the last read stopped, so reading
    on from there costs only the new bytes. One thread at a time.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._cursor: tuple[int, int, int] | None = None  # (segment, offset, next seq)

    def _segments(self) -> list[int]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := _SEGMENT_NAME.fullmatch(n)))

    def read_from(self, seq: int) -> Iterator[JournalEntry]:
        """Yield the complete entries with ``entry.seq >= seq``, in order, up to the end."""
        for path, off, end, expected, payload in self._records(max(seq, 1)):
            entry = _decode(path, off, payload, expected)
            self._cursor = (int(path.stem), end, expected + 1)
            yield entry

    def last_seq(self) -> int:
        """The seq of the last complete record (0: none); reads on from the last position."""
        last = 0
        start = self._cursor[2] if self._cursor is not None else 1
        for _, _, _, expected, _ in self._records(start):
            last = expected
        if last == 0:
            last = start - 1
        return last

    def _records(self, seq: int) -> Iterator[tuple[Path, int, int, int, memoryview]]:
        """(path, offset, end, seq, payload) of each valid record with seq >= ``seq``."""
        firsts = self._segments()
        if not firsts:
            return
        try:
            limit = read_commit(self.directory)  # past it: not durable, or being undone
        except ValueError:
            limit = None
        cursor = self._cursor
        if cursor is not None and cursor[2] == seq and cursor[0] in firsts:
            i = firsts.index(cursor[0])
            start, expected = cursor[1], cursor[2]
        else:
            i = max(bisect_right(firsts, seq) - 1, 0)
            start, expected = 0, firsts[i]
        for j in range(i, len(firsts)):
            first = firsts[j]
            is_last = j == len(firsts) - 1
            path = self.directory / segment_name(first)
            if start == 0 and first != expected:
                raise JournalCorrupt(path, 0, f"segment should start at seq {expected}")
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read()
            except FileNotFoundError:
                return  # a torn header removed by the writer's recovery: read again later
            base = start
            if start == 0:
                head_ok = data[: SEGMENT_HEADER.size] == _SEGMENT_HEADER_BYTES
                if is_last and not head_ok and _torn_header(data):
                    return  # being created (or torn by a crash): not yet written
                _check_header(path, data)
                base = SEGMENT_HEADER.size
            mv = memoryview(data)
            off = base - start  # offsets into data; file offset = start + off
            while off < len(data):
                bad = off + HEADER.size > len(data)
                if not bad:
                    length, crc = HEADER.unpack_from(data, off)
                    end = off + HEADER.size + length
                    bad = not 0 < length <= MAX_RECORD_BYTES or end > len(data)
                    bad = bad or zlib.crc32(mv[off + HEADER.size : end]) != crc
                if bad:
                    if is_last:
                        return  # not yet written (or a torn tail the writer will truncate)
                    raise JournalCorrupt(path, start + off, "bad record in a finished segment")
                if limit is not None and expected > limit:
                    return
                if expected >= seq:
                    yield path, start + off, start + end, expected, mv[off + HEADER.size : end]
                expected += 1
                off = end
            start = 0


# -- holds: where readers need the journal from ---------------------------------------------

HOLDS_DIR = "holds"


def holds(directory: str | os.PathLike[str]) -> dict[str, int]:
    """The readers' holds on the journal in ``directory``: name -> the seq each needs.

    A hold at seq H asks retention to keep the newest snapshot at or before H and every
    segment from there on (what a reader restarting at H replays). An unreadable hold
    file counts as a hold at 0 (keep everything), the safe side.
    """
    root = Path(directory) / HOLDS_DIR
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return {}
    out: dict[str, int] = {}
    for name in names:
        if name.startswith("."):
            continue  # a hold being written
        try:
            out[name] = int((root / name).read_text().strip())
        except (OSError, ValueError):
            out[name] = 0
    return out


def hold(directory: str | os.PathLike[str], name: str, seq: int) -> None:
    """Record that reader ``name`` needs the journal from seq ``seq`` (atomically)."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad hold name {name!r}")
    root = Path(directory) / HOLDS_DIR
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(root / name, f"{seq}\n")


def release(directory: str | os.PathLike[str], name: str) -> None:
    """Drop reader ``name``'s hold: retention no longer waits for it."""
    (Path(directory) / HOLDS_DIR / name).unlink(missing_ok=True)
