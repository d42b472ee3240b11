"""Snapshot files: one per journal seq, written atomically and checked on load.

A file is ``magic (8 bytes) | u64 LE seq | u64 LE length | u32 LE crc32(data) | data``,
named by its zero-padded seq. ``save`` writes a temporary file, fsyncs it, renames it into
place and fsyncs the directory, so a crash leaves either no new file or a whole one.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

SNAPSHOT_MAGIC: Final = b"MSNAP\x00\x00\x01"
SNAPSHOT_HEADER: Final = struct.Struct("<8sQQI")
SNAPSHOT_SUFFIX: Final = ".snap"
_TMP_SUFFIX: Final = ".tmp"
_SNAPSHOT_NAME = re.compile(r"(\d{20})\.snap")


def snapshot_name(seq: int) -> str:
    return f"{seq:020d}{SNAPSHOT_SUFFIX}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class FileSnapshotStore:
    """The ``SnapshotStore`` port over a directory of snapshot files.

    Keeps the newest ``keep`` snapshots (pruned after each save) and, for each seq that
    ``holds()`` returns (where a reader of the journal would restart), the newest snapshot
    at or before it. Temporary files left by a crash during ``save`` are removed when the
    store is opened. Blocking; one writer.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keep: int = 3,
        holds: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep = keep
        self._holds = holds
        for p in self.directory.iterdir():
            if p.name.endswith(_TMP_SUFFIX):
                p.unlink(missing_ok=True)

    def save(self, seq: int, data: bytes) -> None:
        """Write the snapshot covering journal entries up to ``seq``; durable on return."""
        if seq < 0:
            raise ValueError("seq must not be negative")
        header = SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, seq, len(data), zlib.crc32(data))
        final = self.directory / snapshot_name(seq)
        tmp = self.directory / f".{final.name}.{os.getpid()}{_TMP_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, header)
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._fsync_directory()
        self._prune()

    def latest(self) -> tuple[int, bytes] | None:
        """The newest intact snapshot as ``(seq, data)``; corrupt or partial files are skipped."""
        for seq in reversed(self.seqs()):
            data = self._load(seq)
            if data is not None:
                return seq, data
        return None

    def seqs(self) -> list[int]:
        """The seqs of the snapshot files present (intact or not), ascending."""
        return sorted(
            int(m.group(1))
            for p in self.directory.iterdir()
            if (m := _SNAPSHOT_NAME.fullmatch(p.name))
        )

    def _load(self, seq: int) -> bytes | None:
        try:
            raw = (self.directory / snapshot_name(seq)).read_bytes()
        except OSError:
            return None
        if len(raw) < SNAPSHOT_HEADER.size:
            return None
        magic, file_seq, length, crc = SNAPSHOT_HEADER.unpack_from(raw)
        data = raw[SNAPSHOT_HEADER.size :]
        if magic != SNAPSHOT_MAGIC or file_seq != seq or length != len(data):
            return None
        if zlib.crc32(data) != crc:
            return None
        return data

    def _prune(self) -> None:
        seqs = self.seqs()
        kept = set(seqs[-self.keep :])
        for held in self._holds() if self._holds is not None else ():
            at_or_before = [s for s in seqs if s <= held]
            if at_or_before:
                kept.add(at_or_before[-1])
        for seq in seqs:
            if seq not in kept:
                (self.directory / snapshot_name(seq)).unlink(missing_ok=True)

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
