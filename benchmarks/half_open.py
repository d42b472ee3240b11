"""Half-open connections against a real ``mercato serve`` (issue 11's finding: 2,000 idle
connections held on both ports, with no limit). Opens N connections that never send a
byte to each port (the API and ``--md-port``), from ``--addresses`` loopback source
addresses (127.0.0.2, .3, ...), and reports how many the server admitted and refused, its
open sockets and RSS at the peak, and how many it still holds after the head timeout.

    .venv/bin/python benchmarks/half_open.py [--connections 2000] [--addresses 4]

One result line (JSON) on stdout. The server runs with 256 connections per address (its
default) and a 20 s head timeout (here: long enough for all to open before the first times out)
unless ``--per-address`` / ``--head-timeout`` say otherwise; ``--plain`` passes no limit
flags, to measure a build without them (``PYTHONPATH=OLD/src``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port


def server_sockets(pid: int) -> int:
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # (closed meanwhile)
            n += os.readlink(fd).startswith("socket:")
    return n


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=2_000, help="per port")
    ap.add_argument("--addresses", type=int, default=4)
    ap.add_argument("--per-address", type=int, default=256)
    ap.add_argument("--head-timeout", type=float, default=20.0, help="long enough to open all")
    ap.add_argument(
        "--plain", action="store_true", help="pass no limit flags (a build without them)"
    )
    args = ap.parse_args()
    port, md_port = free_port(), free_port()
    root = tempfile.mkdtemp(prefix="half-open-")
    cmd = [
        sys.executable,
        "-m",
        "mercato",
        "serve",
        "--data-dir",
        root,
        "--port",
        str(port),
        "--md-port",
        str(md_port),
    ]
    if not args.plain:
        cmd += ["--max-connections-per-address", str(args.per_address)]
        cmd += ["--head-timeout", str(args.head_timeout)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                socket.create_connection(("127.0.0.1", md_port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        time.sleep(0.5)
        base_sockets, base_rss = server_sockets(proc.pid), rss_mb(proc.pid)
        socks: list[socket.socket] = []
        started = time.monotonic()
        for target in (port, md_port):
            for i in range(args.connections):
                source = f"127.0.0.{2 + i % args.addresses}"
                socks.append(
                    socket.create_connection(("127.0.0.1", target), source_address=(source, 0))
                )
        opened = time.monotonic() - started
        time.sleep(0.5)
        poll = select.poll()  # the refused are answered 503 at once
        by_fd = {s.fileno(): s for s in socks}
        for fd in by_fd:
            poll.register(fd, select.POLLIN)
        refused = sum(by_fd[fd].recv(4096).startswith(b"HTTP/1.1 503") for fd, _ in poll.poll(200))
        peak_sockets, peak_rss = server_sockets(proc.pid), rss_mb(proc.pid)
        time.sleep(args.head_timeout + 1.0)
        after_sockets, after_rss = server_sockets(proc.pid), rss_mb(proc.pid)
        for s in socks:
            s.close()
        result = {
            "bench": "half_open",
            "connections": 2 * args.connections,
            "addresses": args.addresses,
            "per_address": None if args.plain else args.per_address,
            "head_timeout_s": None if args.plain else args.head_timeout,
            "opened_s": round(opened, 2),
            "refused_503": refused,
            "server_sockets": {"start": base_sockets, "peak": peak_sockets, "after": after_sockets},
            "rss_mb": {
                "start": round(base_rss, 1),
                "peak": round(peak_rss, 1),
                "after": round(after_rss, 1),
            },
        }
        print(json.dumps(result))
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
