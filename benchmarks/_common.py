"""What the benchmarks that run a real server share: a free port, a server process of
the benchmark module itself (``--serve``) that prints one JSON line once set up, percentiles,
the process's CPU and memory as the kernel counts them, and the generator's uvloop."""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from typing import Any

CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_server(
    script: str, port: int, args: list[str], timeout: float = 20.0
) -> tuple[subprocess.Popen[str], Any]:
    """Run ``script --serve PORT *args``; return the process and the JSON line it prints
    when set up, once its port accepts connections."""
    cmd = [sys.executable, script, "--serve", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"the server did not start (exit {proc.returncode})")
    deadline = time.monotonic() + timeout
    while True:  # wait for the port
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the server did not listen") from None
            time.sleep(0.05)
    return proc, json.loads(line)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pct(sorted_ns: list[int], p: float, unit: float = 1e3) -> float | None:
    """The ``p``-th percentile of sorted nanoseconds, in µs (``unit`` 1e3) or ms (1e6)."""
    if not sorted_ns:
        return None
    i = min(len(sorted_ns) - 1, int(len(sorted_ns) * p / 100))
    return round(sorted_ns[i] / unit, 1 if unit == 1e3 else 2)


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) / CLOCK_TICK, int(fields[12]) / CLOCK_TICK  # utime, stime


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def raise_fd_limit() -> int:
    """Open files up to the hard limit (a connection is a file); the new soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


def uvloop_run(coro: Any) -> Any:
    """The load generator runs on uvloop too (as the server)."""
    import uvloop

    return uvloop.run(coro)
