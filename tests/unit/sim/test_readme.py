"""The README's quick starts, run as written: the demo's against a running demo (its data
directory at ``.demo`` of the working directory), the API's against ``mercato serve``."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mercato.sim.served import ServedConfig

from .demo_helpers import RunningDemo

ROOT = Path(__file__).resolve().parents[3]


def block(marker: str) -> str:
    """The ```sh block between ``<!-- marker -->`` and ``<!-- /marker -->``."""
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {marker} -->\s*```sh\n(.*?)```\s*<!-- /{marker} -->", text, re.S)
    assert m, f"README.md has no {marker} block"
    return m.group(1)


def run_block(script: str, cwd: Path) -> str:
    assert shutil.which("curl") and shutil.which("python3")
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, f"{script}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def test_the_demo_quick_start_works_against_the_demo(tmp_path: Path) -> None:
    demo = RunningDemo(
        ServedConfig(rate=300, port=0, data_dir=str(tmp_path / ".demo"), duration=120)
    )
    try:
        demo.ready()
        time.sleep(0.5)  # the makers quote
        out = run_block(block("quick-start"), tmp_path)
        assert '"status":"filled"' in out.replace(" ", ""), out
        assert '"client_order_id":"my-first"' in out.replace(" ", ""), out
        again = run_block(block("quick-start"), tmp_path)  # idempotent: it can be re-run
        assert '"client_order_id":"my-first"' in again.replace(" ", ""), again
    finally:
        demo.join(stop=True)


def test_the_api_quick_start_works_against_mercato_serve(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mercato", "serve", "--data-dir", "d", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        printed: queue.Queue[str] = queue.Queue()
        stdout = server.stdout
        threading.Thread(target=lambda: [printed.put(x) for x in stdout], daemon=True).start()
        lines: list[str] = []
        while not lines or not lines[-1].startswith("ready:"):
            try:
                lines.append(printed.get(timeout=30))
            except queue.Empty:
                pytest.fail(f"no ready line from mercato serve: {lines}")
        url = json.loads((tmp_path / "d" / "credentials.json").read_text())["url"]
        assert url in lines[-1]
        out = run_block(block("serve-quick-start"), tmp_path)
        assert '"symbol":"AAPL"' in out.replace(" ", ""), out
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail("mercato serve did not stop on SIGTERM")
