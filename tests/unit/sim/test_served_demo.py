"""`mercato demo --port`: the API served while simulated traders trade; a script reads
credentials.json and its market order fills at once against the market makers."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from mercato.sim.served import ServedConfig, serve_demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_script_trades_against_the_served_demo(tmp_path: Path) -> None:
    md_port = free_port()
    cfg = ServedConfig(
        symbols=("AAPL", "MSFT"),
        rate=300,
        port=free_port(),
        md_port=md_port,
        data_dir=str(tmp_path),
        duration=6,
    )
    out = io.StringIO()
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(asyncio.run(serve_demo(cfg, out))))
    thread.start()
    try:
        creds_path = tmp_path / "credentials.json"
        deadline = time.monotonic() + 5
        creds = None
        while time.monotonic() < deadline:
            if creds_path.exists():
                creds = json.loads(creds_path.read_text())
                try:
                    httpx.get(creds["url"] + "/v1/instruments", timeout=1)
                    break
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        assert creds is not None, out.getvalue()
        assert oct(creds_path.stat().st_mode & 0o777) == "0o600"
        h = {"Authorization": f"Bearer {creds['key_id']}:{creds['secret']}"}
        time.sleep(0.5)  # the makers quote
        r = httpx.post(
            creds["url"] + "/v1/orders",
            headers=h,
            json={"symbol": "AAPL", "side": "buy", "type": "market", "qty": "5"},
            timeout=5,
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "filled"
        admin = {"Authorization": f"Bearer {creds['admin_key_id']}:{creds['admin_secret']}"}
        assert httpx.get(creds["url"] + "/v1/admin/accounts", headers=admin).status_code == 405
        acct = httpx.get(creds["url"] + "/v1/account", headers=h).json()
        assert acct["account"] == creds["account"] and acct["cash"] != "1000000.00"
        # the fan-out's fast path, batched: the simulated market's trades arrive there too
        with connect(f"ws://127.0.0.1:{md_port}/v1/md?interval=250") as ws:
            ws.send(json.dumps({"op": "subscribe", "channels": ["trades:AAPL"]}))
            assert json.loads(ws.recv(timeout=5))["channels"] == ["trades:AAPL"]
            snapshot = json.loads(ws.recv(timeout=5))
            update = json.loads(ws.recv(timeout=5))
            assert (update["type"], update["seq"]) == ("update", snapshot["seq"] + 1)
            assert update["trades"]
        assert f"ws://127.0.0.1:{md_port}/v1/md" in out.getvalue()
    finally:
        thread.join(timeout=15)
    assert done and not thread.is_alive()
