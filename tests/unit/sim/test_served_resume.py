"""`mercato demo --data-dir DIR` on a directory that holds its market resumes it: the
orders and accounts are still there, the same keys work, and the simulator trades on."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from mercato.sim.resume import STATE_FILE, ServedDemoError, open_state
from mercato.sim.served import ServedConfig

from .demo_helpers import RunningDemo, free_port


def _trades(url: str) -> list[dict[str, object]]:
    r = httpx.get(url + "/v1/marketdata/AAPL/trades", params={"limit": 1000}, timeout=5)
    assert r.status_code == 200, r.text
    return list(r.json())


def test_a_second_run_on_the_same_directory_resumes_the_market(tmp_path: Path) -> None:
    cfg = ServedConfig(
        symbols=("AAPL", "MSFT"), rate=300, port=0, data_dir=str(tmp_path), duration=120
    )
    first = RunningDemo(cfg)
    creds = first.ready()
    h = {"Authorization": f"Bearer {creds['key_id']}:{creds['secret']}"}
    r = httpx.post(
        creds["url"] + "/v1/orders",
        headers=h,
        json={"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "3", "price": "1.00"},
        timeout=5,
    )
    assert r.status_code == 201, r.text
    resting = r.json()["id"]
    first.join(stop=True)
    ids_to = json.loads((tmp_path / STATE_FILE).read_text())["order_ids_reserved_to"]

    second = RunningDemo(ServedConfig(rate=300, port=0, data_dir=str(tmp_path), duration=120))
    creds2 = second.ready()
    try:
        assert creds2["key_id"] == creds["key_id"] and creds2["url"] != creds["url"]
        url = creds2["url"]
        order = httpx.get(f"{url}/v1/orders/{resting}", headers=h, timeout=5)
        assert order.status_code == 200, order.text
        assert order.json()["status"] in ("accepted", "new", "open"), order.json()
        acct = httpx.get(url + "/v1/account", headers=h, timeout=5).json()
        assert acct["account"] == creds["account"] and acct["open_orders"] == 1
        n0 = len(_trades(url))
        assert n0 > 0  # the first run's trades are still on the tape
        # the simulator trades on
        deadline = time.monotonic() + 3
        while len(_trades(url)) <= n0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_trades(url)) > n0 or n0 == 1000, "no trades after the restart"
    finally:
        second.join(stop=True)
    assert "resumed" in second.out.getvalue()
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["runs"] == 2 and state["order_ids_reserved_to"] > ids_to
    assert state["symbols"] == ["AAPL", "MSFT"]


def test_a_directory_it_cannot_resume_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "users.sqlite").write_text("")  # a `mercato serve` directory, say
    with pytest.raises(ServedDemoError, match="mercato serve --data-dir"):
        open_state(tmp_path, ("AAPL",), 1, False)
    other = tmp_path / "other"
    (other / "node").mkdir(parents=True)
    (other / STATE_FILE).write_text(
        json.dumps(
            {
                "symbols": ["AAPL"],
                "seed": 1,
                "order_ids_reserved_to": 10,
                "runs": 1,
                "ready": True,
            }
        )
    )
    with pytest.raises(ServedDemoError, match="--symbols AAPL"):
        open_state(other, ("MSFT",), 1, True)
    assert open_state(other, ("AAPL",), 1, False).resumed


def test_a_port_in_use_is_one_error_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = RunningDemo(ServedConfig(symbols=("AAPL",), port=port, data_dir=str(tmp_path)))
        demo.thread.join(20)
        assert demo.error and isinstance(demo.error[0], ServedDemoError)
        assert "--port" in str(demo.error[0]) and "in use" in str(demo.error[0])
        md = RunningDemo(
            ServedConfig(symbols=("AAPL",), port=free_port(), md_port=port, data_dir=str(tmp_path))
        )
        md.thread.join(20)
        assert md.error and "--md-port" in str(md.error[0])
    assert not (tmp_path / "node").exists()  # nothing was created
