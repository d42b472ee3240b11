"""An engine node on stdin/stdout: the process that the crash test kills and restarts.

Run ``python -m mercato.services.engine_worker DATA_DIR``. It recovers the node, then:

- writes ``{"ready": {"sources": {source: last_source_seq}, "seq": N, "hash": H}}``;
- reads frames ``u32 LE length | MessagePack [[source, source_seq, command], ...]`` from
  stdin, submits each frame as one batch and, after its commit, writes
  ``{"ack": [[source, source_seq], ...], "dup": [...], "err": [...]}``;
- at the end of its input, closes the node and writes ``{"bye": {"seq": N, "hash": H}}``.

Output is one JSON object per line, flushed after each. An acknowledged command is
durable; a ``dup`` was durable already. Anything else was not acknowledged: resend it.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Sequence
from typing import BinaryIO

import msgspec

from mercato.adapters.journal import DEFAULT_SEGMENT_BYTES
from mercato.domain.commands import AnyCommand, Command
from mercato.services.engine_node import EngineNode

FRAME = struct.Struct("<I")
_batch_decoder = msgspec.msgpack.Decoder(list[tuple[str, int, AnyCommand]])
_json = msgspec.json.Encoder()


def encode_batch(batch: Sequence[tuple[str, int, Command]]) -> bytes:
    """Frame a batch the way the worker reads it (used by clients and tests)."""
    payload = msgspec.msgpack.encode(batch)
    return FRAME.pack(len(payload)) + payload


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    """``n`` bytes, or None at a clean end of input (EOF before the first byte)."""
    data = stream.read(n)
    if not data:
        return None
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            raise EOFError("input ended inside a frame")
        data += more
    return data


def _emit(out: BinaryIO, message: object) -> None:
    out.write(_json.encode(message) + b"\n")
    out.flush()


def serve(node: EngineNode, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer batches from ``stdin`` until it ends."""
    state = {"sources": node.sources(), "seq": node.applied_seq, "hash": node.state_hash()}
    _emit(stdout, {"ready": state})
    while (header := _read_exactly(stdin, FRAME.size)) is not None:
        (length,) = FRAME.unpack(header)
        payload = _read_exactly(stdin, length)
        if payload is None:
            raise EOFError("input ended inside a frame")
        results = node.submit(_batch_decoder.decode(payload))
        ack: list[tuple[str, int]] = []
        dup: list[tuple[str, int]] = []
        err: list[tuple[str, int]] = []
        for r in results:
            pair = (r.source, r.source_seq)
            (dup if r.duplicate else err if r.error else ack).append(pair)
        _emit(stdout, {"ack": ack, "dup": dup, "err": err})
    node.close()
    _emit(stdout, {"bye": {"seq": node.applied_seq, "hash": node.state_hash()}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data_dir")
    parser.add_argument("--no-fsync", action="store_true", help="survive crashes, not power loss")
    parser.add_argument("--snapshot-every", type=int, default=100_000)
    parser.add_argument("--segment-bytes", type=int, default=DEFAULT_SEGMENT_BYTES)
    args = parser.parse_args(argv)
    node = EngineNode.open(
        args.data_dir,
        fsync=not args.no_fsync,
        snapshot_every=args.snapshot_every,
        segment_bytes=args.segment_bytes,
    )
    serve(node, sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
