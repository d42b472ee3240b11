"""The journal's commit record: the last seq a commit made durable, kept beside the segments.

Recovery compares it with what the segments hold. A tail past the record is a write that
no commit finished (never acknowledged): truncating it is safe. A journal that ends
before the record has lost acknowledged commands: opening refuses (``JournalLost``).

The file ``COMMIT`` has two 32-byte slots, written in turn, so a write torn by a crash
leaves the other slot intact. A slot is ``b"MRCC" | u32 LE 0 | u64 LE counter | u64 LE
committed seq | u32 LE crc32 of the 24 bytes before | u32 LE 0``; the slot with the
highest counter and a valid CRC wins. It is written with ``pwrite`` after each commit's
fsync (no system call more than that on the commit's path) and fdatasync'ed at most once
a ``sync_every`` seconds, on close, and when a segment is finished. So after a process
crash it is exact; after a power loss it may be up to ``sync_every`` behind, which can
hide a loss of the newest acknowledged commands but never reports a false one (the
segments are always fsynced before the record that covers them is written).
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path
from typing import Final

COMMIT_NAME: Final = "COMMIT"
COMMIT_MAGIC: Final = b"MRCC"
_SLOT: Final = struct.Struct("<4sIQQII")  # magic, 0, counter, seq, crc32, 0
_SLOT_SIZE: Final = 32
_CRC_SPAN: Final = 24
DEFAULT_SYNC_EVERY: Final = 1.0  # seconds between fdatasyncs of the record


def _pack(counter: int, seq: int) -> bytes:
    body = struct.pack("<4sIQQ", COMMIT_MAGIC, 0, counter, seq)
    return body + struct.pack("<II", zlib.crc32(body), 0)


def _read_slots(path: Path) -> tuple[int, int] | None:
    """(counter, seq) of the valid slot with the highest counter; None: no file.

    Raises ``ValueError`` when the file exists but neither slot is valid.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    best: tuple[int, int] | None = None
    for off in (0, _SLOT_SIZE):
        chunk = raw[off : off + _SLOT_SIZE]
        if len(chunk) < _SLOT_SIZE:
            continue
        magic, _, counter, seq, crc, _ = _SLOT.unpack(chunk)
        if magic != COMMIT_MAGIC or zlib.crc32(chunk[:_CRC_SPAN]) != crc:
            continue
        if best is None or counter > best[0]:
            best = (counter, seq)
    if best is None:
        raise ValueError(f"{path}: no valid commit record")
    return best


def read_commit(directory: Path) -> int | None:
    """The committed seq recorded in ``directory``; None when there is no record.

    Raises ``ValueError`` when the file exists but neither slot is valid.
    """
    found = _read_slots(directory / COMMIT_NAME)
    return None if found is None else found[1]


class CommitRecord:
    """The writer's side of ``COMMIT``: one ``pwrite`` per commit, fdatasync now and then."""

    def __init__(
        self,
        directory: Path,
        seq: int,
        *,
        fsync: bool = True,
        sync_every: float = DEFAULT_SYNC_EVERY,
    ) -> None:
        self._path = directory / COMMIT_NAME
        self._fsync = fsync
        self._sync_every = sync_every
        try:
            found = _read_slots(self._path)
        except ValueError:
            found = None  # overwritten below (the journal decided to go on)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        self._counter = found[0] if found is not None else 0
        self._seq = -1
        self._synced_at = 0.0
        self._unsynced = False
        self.write(seq, sync=True)

    @property
    def seq(self) -> int:
        return self._seq

    def write(self, seq: int, *, sync: bool = False) -> None:
        """Record ``seq`` as committed (call only once its records are durable)."""
        if seq != self._seq:
            self._counter += 1
            os.pwrite(self._fd, _pack(self._counter, seq), (self._counter % 2) * _SLOT_SIZE)
            self._seq = seq
            self._unsynced = True
        if self._fsync and self._unsynced:
            now = time.monotonic()
            if sync or now - self._synced_at >= self._sync_every:
                os.fdatasync(self._fd)
                self._synced_at = now
                self._unsynced = False

    def close(self) -> None:
        try:
            if self._fsync and self._unsynced:
                os.fdatasync(self._fd)
        finally:
            os.close(self._fd)
