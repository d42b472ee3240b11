"""Run the served demo in a thread, as a test: wait for its "ready" line, stop it."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

from mercato.sim.served import ServedConfig, serve_demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningDemo:
    """``serve_demo`` on its own loop in a thread; ``ready()`` waits for the ready line."""

    def __init__(self, cfg: ServedConfig) -> None:
        self.cfg = cfg
        self.out = io.StringIO()
        self.result: list[Any] = []
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def run() -> Any:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            return await serve_demo(self.cfg, self.out, self.stop_event)

        try:
            self.result.append(asyncio.run(run()))
        except BaseException as e:
            self.error.append(e)

    def stop(self) -> None:
        """End the demo now (rather than after its duration)."""
        self.loop.call_soon_threadsafe(self.stop_event.set)

    def ready(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while "ready:" not in self.out.getvalue():
            assert not self.error, self.error
            assert self.thread.is_alive() or "ready:" in self.out.getvalue(), self.out.getvalue()
            assert time.monotonic() < deadline, self.out.getvalue()
            time.sleep(0.01)
        assert self.cfg.data_dir is not None
        return dict(json.loads((Path(self.cfg.data_dir) / "credentials.json").read_text()))

    def join(self, timeout: float = 30.0, stop: bool = False) -> None:
        if stop:
            self.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), self.out.getvalue()
        assert not self.error, self.error
