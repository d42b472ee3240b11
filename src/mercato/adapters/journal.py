"""The file journal: segment files of CRC-checked records, written by group commit.

A segment starts with a header, ``b"MRCJ" | u16 LE format version | u32 LE crc32`` of the
first six bytes, followed by records: ``u32 LE payload length | u32 LE crc32(payload) |
payload``, the payload being the MessagePack of a ``JournalEntry``. Segments are named by
the seq of their first record and rolled at ``segment_bytes``. The format, the torn-tail
rule and recovery are described in ``docs/journal.md``.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import re
import struct
import zlib
from bisect import bisect_right
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Final, NamedTuple, get_args

import msgspec

from mercato.adapters.journal_commit import COMMIT_NAME, CommitRecord, read_commit
from mercato.domain.commands import AnyCommand, Command
from mercato.ports import JournalEntry

HEADER: Final = struct.Struct("<II")  # payload length, crc32 of the payload
SEGMENT_HEADER: Final = struct.Struct("<4sHI")  # magic, format version, crc32 of the two
SEGMENT_MAGIC: Final = b"MRCJ"
FORMAT_VERSION: Final = 2  # of the segment layout and of the entry encoding together
MAX_RECORD_BYTES: Final = 16 << 20  # a longer length field is corruption, not a record
DEFAULT_SEGMENT_BYTES: Final = 64 << 20
SEGMENT_SUFFIX: Final = ".seg"
_SEGMENT_NAME = re.compile(r"(\d{20})\.seg")
_PAYLOAD_START: Final = b"\x94"  # MessagePack fixarray(4): the first byte of every payload
_COMMAND_TYPES: Final = get_args(AnyCommand)
_COMMAND_TYPE_SET: Final = frozenset(_COMMAND_TYPES)  # exact types: each has its own tag
_DECODER = msgspec.msgpack.Decoder(JournalEntry)
_HEADER_BODY: Final = SEGMENT_HEADER.size - 4  # the bytes the header's crc covers
# a write that failed for want of space: undone, so the same commit can be tried again
_NO_SPACE: Final = frozenset((errno.ENOSPC, errno.EDQUOT))
_log = logging.getLogger(__name__)


def segment_header(version: int = FORMAT_VERSION) -> bytes:
    """The header that starts every segment of journal format ``version``."""
    body = SEGMENT_MAGIC + struct.pack("<H", version)
    return body + struct.pack("<I", zlib.crc32(body))


_SEGMENT_HEADER_BYTES: Final = segment_header()


class JournalError(RuntimeError):
    """Base class of the journal's errors."""


class JournalCorrupt(JournalError):
    """A record that is not the torn tail failed its checks; the journal needs a human."""

    def __init__(self, path: Path, offset: int, why: str) -> None:
        super().__init__(f"{path} at offset {offset}: {why}")
        self.path = path
        self.offset = offset


class JournalVersionError(JournalError):
    """A segment is of a journal format version this build does not read."""

    def __init__(self, path: Path, found: int, supported: int = FORMAT_VERSION) -> None:
        super().__init__(
            f"{path}: journal format version {found}, this build reads version {supported} only"
        )
        self.path = path
        self.found = found
        self.supported = supported


class JournalFailed(JournalError):
    """A write or fsync failed: the journal accepts nothing more (recover from disk)."""


class JournalFull(JournalError):
    """A commit's write found no space (ENOSPC, EDQUOT). Nothing of it was kept: the file
    is back where it was, and after ``rollback`` the journal takes appends again."""


class JournalLost(JournalError):
    """The journal ends before the last seq a commit made durable (``COMMIT``):
    acknowledged commands are missing. Opening refuses unless ``accept_loss`` is given."""

    def __init__(self, directory: Path, have: int, committed: int) -> None:
        missing = (
            f"seq {committed} is" if have + 1 == committed else f"seqs {have + 1}..{committed} are"
        )
        super().__init__(
            f"{directory} ends at seq {have} but seq {committed} was acknowledged "
            f"({COMMIT_NAME}): {missing} missing; restore the data directory from a "
            f"backup, or accept the loss explicitly (--accept-loss) to go on from seq {have}"
        )
        self.directory = directory
        self.have = have
        self.committed = committed


class JournalLocked(JournalError):
    """Another FileJournal (in this or another process) holds the directory."""


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


class _Scan(NamedTuple):
    records: int  # complete records that passed their checks
    last: int  # offset of the last of them
    end: int  # offset just past the last of them
    bad: int | None  # offset of the first record that failed, None when clean to the end


def _check_header(path: Path, data: bytes) -> None:
    """Check the segment header at the start of ``data``, the contents of ``path``."""
    if len(data) < SEGMENT_HEADER.size:
        why = f"truncated segment header ({len(data)} of {SEGMENT_HEADER.size} bytes)"
        raise JournalCorrupt(path, 0, why)
    magic, version, crc = SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC:
        raise JournalCorrupt(path, 0, f"not a journal segment (magic {magic!r})")
    if zlib.crc32(data[:_HEADER_BODY]) != crc:
        raise JournalCorrupt(path, 0, "segment header CRC mismatch")
    if version != FORMAT_VERSION:
        raise JournalVersionError(path, version)


def _torn_header(data: bytes) -> bool:
    """Whether ``data`` is a segment whose header write was cut short, and nothing more.

    The header bytes must be a prefix of the ones this build writes, or zeros (a crash can
    extend a file without persisting its contents), and no intact record may follow.
    """
    head = data[: SEGMENT_HEADER.size]
    if head != _SEGMENT_HEADER_BYTES[: len(head)] and any(head):
        return False
    return _valid_record_after(data, -1) is None


def _scan(data: bytes) -> _Scan:
    """Walk the records of one segment, stopping at the first one that fails a check."""
    mv = memoryview(data)
    size = len(data)
    off = last = SEGMENT_HEADER.size
    count = 0
    while off < size:
        if off + HEADER.size > size:
            return _Scan(count, last, off, off)
        length, crc = HEADER.unpack_from(data, off)
        end = off + HEADER.size + length
        if not 0 < length <= MAX_RECORD_BYTES or end > size:
            return _Scan(count, last, off, off)
        if zlib.crc32(mv[off + HEADER.size : end]) != crc:
            return _Scan(count, last, off, off)
        count += 1
        last, off = off, end
    return _Scan(count, last, off, None)


def _decode(path: Path, off: int, payload: memoryview, expected: int) -> JournalEntry:
    """Decode one record's payload and check that it holds entry ``expected``."""
    try:
        entry = _DECODER.decode(payload)
    except msgspec.DecodeError as e:
        raise JournalCorrupt(path, off, f"undecodable entry: {e}") from None
    if entry.seq != expected:
        raise JournalCorrupt(path, off, f"seq {entry.seq}, expected {expected}")
    return entry


def _valid_record_after(data: bytes, bad: int) -> int | None:
    """The offset of an intact, decodable record starting after ``bad``, if there is one.

    ``bad = -1`` searches the whole of ``data``.

    This separates a torn tail (nothing valid follows) from corruption in the middle
    (valid data follows), even when the bad record's own length field is garbage.
    """
    mv = memoryview(data)
    p = data.find(_PAYLOAD_START, bad + 1 + HEADER.size)
    while p != -1:
        length, crc = HEADER.unpack_from(data, p - HEADER.size)
        if 0 < length <= MAX_RECORD_BYTES and p + length <= len(data):
            payload = mv[p : p + length]
            if zlib.crc32(payload) == crc:
                try:
                    _DECODER.decode(payload)
                except msgspec.DecodeError:
                    pass
                else:
                    return p - HEADER.size
        p = data.find(_PAYLOAD_START, p + 1)
    return None


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_Batch = list[tuple[int, bytearray]]  # (first seq of the segment, bytes to append to it)


class FileJournal:
    """The ``Journal`` port over append-only segment files in one directory.

    ``append`` only encodes into memory; ``commit`` writes the whole buffer and fsyncs
    once (group commit). ``commit_async`` does the write and fsync on a dedicated writer
    thread: one thread keeps the writes in call order, and since ``os.write``/``os.fsync``
    release the GIL the event loop keeps appending the next group while an fsync is in
    flight. Once a writer thread exists, ``commit`` goes through it too, so the two can
    be mixed without reordering. With ``fsync=False`` a commit survives a process crash
    but not a power loss. The directory is locked (``flock``) against a second writer.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        accept_loss: bool = False,
    ) -> None:
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fsync = fsync
        self._accept_loss = accept_loss
        self._segment_bytes = segment_bytes
        self._encoder = msgspec.msgpack.Encoder()
        self._lock_fd = self._lock()
        self._segments: list[int] = []  # first seq of each segment file, ascending
        self._fd: int | None = None  # the last segment, open for appending
        self._fd_first = 0
        self._fd_size = 0  # bytes in the last segment as written (where an undo goes back to)
        self._dirty = False  # written to _fd since its last fsync
        self._pending: _Batch = []
        self._writer: ThreadPoolExecutor | None = None
        self._failed: BaseException | None = None
        self._full: OSError | None = None  # a commit found no space: refuse until rollback
        self._closed = False
        self._last_seq = 0  # last seq appended
        self._committed = 0  # last seq written (and fsynced)
        self._seg_first = 1  # first seq of the segment that appends go to
        self._seg_size = SEGMENT_HEADER.size  # its size, with its header and the buffer
        self._commit: CommitRecord | None = None
        try:
            self._recover()
            self._commit = CommitRecord(self.directory, self._committed, fsync=fsync)
        except BaseException:
            self._release()
            raise

    # -- the port ------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def committed_seq(self) -> int:
        return self._committed

    def append(self, source: str, source_seq: int, cmd: Command) -> int:
        """Buffer ``cmd`` as the next entry and return its seq (no system call)."""
        if self._closed or self._failed is not None or self._full is not None:
            self._check_usable()
        if type(cmd) not in _COMMAND_TYPE_SET:
            raise TypeError(f"not a journalable command: {cmd!r}")
        seq = self._last_seq + 1
        payload = self._encoder.encode(JournalEntry(seq, source, source_seq, cmd))  # type: ignore[arg-type]
        if len(payload) > MAX_RECORD_BYTES:
            raise ValueError(f"journal record of {len(payload)} bytes is too large")
        size = HEADER.size + len(payload)
        if self._seg_size > SEGMENT_HEADER.size and self._seg_size + size > self._segment_bytes:
            self._seg_first = seq  # roll: this record starts a segment
            self._seg_size = SEGMENT_HEADER.size
        pending = self._pending
        if not pending or pending[-1][0] != self._seg_first:
            pending.append((self._seg_first, bytearray()))
        buf = pending[-1][1]
        buf += HEADER.pack(len(payload), zlib.crc32(payload))
        buf += payload
        self._seg_size += size
        self._last_seq = seq
        return seq

    def commit(self) -> None:
        """Write and fsync everything appended so far; durable when this returns."""
        self._check_usable()
        batch = self._take()
        if self._writer is not None:
            self._writer.submit(self._write, batch, self._last_seq).result()
        else:
            self._write(batch, self._last_seq)

    def commit_begin(self) -> Future[None]:
        """Start a commit on the writer thread and return at once.

        Everything appended before the call is durable when the returned future completes.
        This lets a caller overlap the write and fsync with other work, e.g. the engine
        applying the same batch, as long as it acknowledges nothing before the future is done.
        """
        self._check_usable()
        batch, upto = self._take(), self._last_seq
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
        return self._writer.submit(self._write, batch, upto)

    async def commit_async(self) -> None:
        """``commit`` with the write and fsync on the writer thread, off the event loop.

        The buffer is taken at the call, so entries appended while this awaits belong to
        the next commit. If the awaiting task is cancelled the write may still complete.
        """
        self._check_usable()
        batch, upto = self._take(), self._last_seq
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._write, batch, upto)

    def read_from(self, seq: int) -> Iterator[JournalEntry]:
        """Yield the entries with ``seq >= seq`` committed when iteration starts.

        Every segment header and record read is checked (magic, format version, CRCs, seq
        continuity within and across segments); a failure raises ``JournalCorrupt``, or
        ``JournalVersionError`` for another format version. ``read_from(1)`` is a full
        verification.
        """
        limit = self._committed
        firsts = list(self._segments)
        if seq > limit or not firsts:
            return
        i = max(bisect_right(firsts, seq) - 1, 0)
        expected = firsts[i]
        path = self._path(expected)
        off = 0
        for first in firsts[i:]:
            path = self._path(first)
            if first != expected:
                raise JournalCorrupt(path, 0, f"segment should start at seq {expected}")
            data = path.read_bytes()
            _check_header(path, data)
            mv = memoryview(data)
            off = SEGMENT_HEADER.size
            while expected <= limit and off < len(data):
                if off + HEADER.size > len(data):
                    raise JournalCorrupt(path, off, "truncated record header")
                length, crc = HEADER.unpack_from(data, off)
                end = off + HEADER.size + length
                if not 0 < length <= MAX_RECORD_BYTES or end > len(data):
                    raise JournalCorrupt(path, off, f"bad record length {length}")
                payload = mv[off + HEADER.size : end]
                if zlib.crc32(payload) != crc:
                    raise JournalCorrupt(path, off, "CRC mismatch")
                if expected >= seq:
                    yield _decode(path, off, payload, expected)
                expected += 1
                off = end
            if expected > limit:
                return
        raise JournalCorrupt(path, off, f"journal ends before committed seq {limit}")

    @property
    def first_seq(self) -> int:
        """The seq of the first entry still on disk (retention removes older segments)."""
        return self._segments[0] if self._segments else self._committed + 1

    def drop_before(self, seq: int) -> list[int]:
        """Remove the segments whose every entry has a seq <= ``seq``: retention, once a
        snapshot covers them. Never the last segment. Returns the first seqs removed.

        Not while a commit or a ``read_from`` is in flight (the owner calls it between
        commands, after a snapshot).
        """
        self._check_usable()
        gone: list[int] = []
        while len(self._segments) > 1 and self._segments[1] - 1 <= seq:
            first = self._segments[0]
            self._path(first).unlink(missing_ok=True)
            self._segments.pop(0)
            gone.append(first)
        if gone and self._fsync:
            _fsync_dir(self.directory)
        return gone

    def close(self) -> None:
        """Commit what is still buffered (unless a commit failed) and release the files."""
        if self._closed:
            return
        try:
            if self._failed is None and self._full is None:
                self.commit()
        finally:
            self._release()

    def __enter__(self) -> FileJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- recovery ------------------------------------------------------------------------

    def _recover(self) -> None:
        """Find the end of the journal, truncating a torn or corrupt tail record.

        A last segment whose header is torn and that holds no record (a crash just after
        creating it) gets its header rewritten; any other bad header raises. Before
        anything is truncated, the end found is checked against the commit record: ending
        before it means acknowledged commands are gone (``JournalLost``).
        """
        try:
            recorded = read_commit(self.directory)
        except ValueError as e:
            if not self._accept_loss:
                raise JournalCorrupt(self.directory / COMMIT_NAME, 0, str(e)) from None
            recorded = None
        self._segments = sorted(
            int(m.group(1))
            for p in self.directory.iterdir()
            if (m := _SEGMENT_NAME.fullmatch(p.name))
        )
        if not self._segments:
            self._check_loss(0, recorded)
            self._seg_first, self._seg_size, next_seq = 1, SEGMENT_HEADER.size, 1
            self._last_seq = self._committed = next_seq - 1
            return
        first = self._segments[-1]
        path = self._path(first)
        data = path.read_bytes()
        try:
            _check_header(path, data)
        except JournalCorrupt:
            if not _torn_header(data):
                raise
            self._check_loss(first - 1, recorded)
            self._rewrite_header(path, first)
            self._seg_first, self._seg_size = first, SEGMENT_HEADER.size
            self._last_seq = self._committed = first - 1
            return
        scan = _scan(data)
        if scan.bad is not None:
            later = _valid_record_after(data, scan.bad)
            if later is not None:
                why = f"invalid record followed by a valid one at offset {later}"
                raise JournalCorrupt(path, scan.bad, why)
        if scan.records:
            mv = memoryview(data)  # check the first and last seq against the name
            at = SEGMENT_HEADER.size
            first_length = HEADER.unpack_from(data, at)[0]
            _decode(path, at, mv[at + HEADER.size : at + HEADER.size + first_length], first)
            last_payload = mv[scan.last + HEADER.size : scan.end]
            _decode(path, scan.last, last_payload, first + scan.records - 1)
        next_seq = first + scan.records
        self._check_loss(next_seq - 1, recorded)
        if scan.bad is not None:
            os.truncate(path, scan.end)  # the torn tail: never acknowledged
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._fd_first, self._fd_size = first, scan.end
        if scan.bad is not None and self._fsync:
            os.fsync(self._fd)  # make the truncation durable before appending
        self._seg_first, self._seg_size = first, scan.end
        self._last_seq = self._committed = next_seq - 1

    def _check_loss(self, have: int, recorded: int | None) -> None:
        """Refuse a journal that ends (at ``have``) before its recorded commit."""
        if recorded is None or have >= recorded:
            return
        if not self._accept_loss:
            raise JournalLost(self.directory, have, recorded)
        _log.warning("%s", JournalLost(self.directory, have, recorded))
        _log.warning("going on from seq %d as asked (accept_loss)", have)

    def _rewrite_header(self, path: Path, first: int) -> None:
        """Replace the torn contents of the last segment by a fresh header, durably."""
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._fd_first = first
        os.ftruncate(self._fd, 0)
        _write_all(self._fd, _SEGMENT_HEADER_BYTES)
        self._fd_size = SEGMENT_HEADER.size
        if self._fsync:
            os.fsync(self._fd)
            _fsync_dir(self.directory)

    # -- writing -------------------------------------------------------------------------

    def _take(self) -> _Batch:
        batch, self._pending = self._pending, []
        return batch

    def _write(self, batch: _Batch, upto: int) -> None:
        """Append ``batch`` to its segment files and fsync them (on one thread at a time).

        A write that finds no space is undone (``JournalFull``: the files are as before the
        call); any other failure, and any failed fsync, is final (``JournalFailed``).
        """
        if self._failed is not None:
            raise JournalFailed("an earlier commit failed") from self._failed
        if self._full is not None:  # this batch follows seqs that were not written
            raise JournalFull("an earlier commit found no space") from self._full
        start = (self._fd is not None, self._fd_first, self._fd_size)
        created: list[int] = []
        try:
            for first, data in batch:
                if self._fd is None or first != self._fd_first:
                    self._roll(first, created)
                assert self._fd is not None
                _write_all(self._fd, data)
                self._fd_size += len(data)
                self._dirty = True
        except OSError as e:
            if e.errno not in _NO_SPACE or self._failed is not None:
                self._failed = self._failed or e
                raise JournalFailed(f"journal commit failed: {e!r}") from e
            self._undo(start, created, e)
            self._full = e
            raise JournalFull(e.strerror or repr(e)) from e
        except BaseException as e:
            self._failed = e
            raise JournalFailed(f"journal commit failed: {e!r}") from e
        try:
            if self._fsync and self._fd is not None and self._dirty:
                os.fsync(self._fd)
                if created:
                    _fsync_dir(self.directory)
            self._dirty = False
            self._committed = max(self._committed, upto)
            if self._commit is not None:
                self._commit.write(self._committed, sync=bool(created))
        except BaseException as e:  # after a failed fsync the kernel may have lost pages
            self._failed = e
            raise JournalFailed(f"journal commit failed: {e!r}") from e

    def _undo(self, start: tuple[bool, int, int], created: list[int], e: OSError) -> None:
        """Put the files back as they were before a write that found no space."""
        had_fd, first, size = start
        try:
            if created and self._fd is not None:
                os.close(self._fd)
                self._fd = None
            for seg in created:
                self._path(seg).unlink(missing_ok=True)
                if seg in self._segments:
                    self._segments.remove(seg)
            if created and had_fd:
                self._fd = os.open(self._path(first), os.O_WRONLY | os.O_APPEND)
                self._fd_first = first
            if self._fd is not None:
                os.ftruncate(self._fd, size)
                self._fd_size = size
        except OSError as undo_error:
            self._failed = e
            raise JournalFailed(f"journal commit failed: {e!r}; undo: {undo_error!r}") from e

    def rollback(self) -> None:
        """After a ``JournalFull`` commit: forget what was appended since the last commit
        that succeeded, so that the next appends take its seqs (the files are undone
        already). Only with no other commit in flight."""
        if self._closed or self._failed is not None:
            self._check_usable()
        self._full = None
        self._pending = []
        self._last_seq = self._committed
        if self._fd is None:
            self._seg_first, self._seg_size = self._committed + 1, SEGMENT_HEADER.size
        else:
            self._seg_first, self._seg_size = self._fd_first, self._fd_size

    def _roll(self, first: int, created: list[int]) -> None:
        """Finish the current segment (fsync, close) and create the one starting at ``first``."""
        if self._fd is not None:
            if self._fsync and self._dirty:
                try:
                    os.fsync(self._fd)
                except OSError as e:  # final, whatever the errno (see _write)
                    self._failed = e
                    raise
                self._dirty = False
            os.close(self._fd)
            self._fd = None
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        self._fd = os.open(self._path(first), flags, 0o600)
        self._fd_first, self._fd_size = first, 0
        created.append(first)
        _write_all(self._fd, _SEGMENT_HEADER_BYTES)  # fsynced with the commit's records
        self._fd_size = SEGMENT_HEADER.size
        self._dirty = True
        self._segments.append(first)  # after the header: read_from may now open the file

    # -- housekeeping --------------------------------------------------------------------

    def _path(self, first: int) -> Path:
        return self.directory / segment_name(first)

    def _check_usable(self) -> None:
        if self._closed:
            raise JournalError("journal is closed")
        if self._failed is not None:
            raise JournalFailed("an earlier commit failed") from self._failed
        if self._full is not None:
            raise JournalFull("a commit found no space: roll back first") from self._full

    def _lock(self) -> int:
        fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalLocked(f"{self.directory} is locked by another journal") from None
        return fd

    def _release(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._commit is not None:
            commit, self._commit = self._commit, None
            commit.close()
        os.close(self._lock_fd)  # also drops the flock
