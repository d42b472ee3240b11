"""The persister benchmark runs end to end and stores what it claims: its result line counts
the events the replica wrote and the orders it stored whole (none with --no-views)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

import mercato.services.persister as persister_module
import persister as bench


@pytest.mark.parametrize("views", [True, False])
def test_the_benchmark_reports_what_it_stored(
    views: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persister_module, "touched_orders", persister_module.touched_orders)
    bench.main(["--commands", "400", *([] if views else ["--no-views"])])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bench"] == "persister" and result["views"] is views
    assert result["events"] > result["commands"] > 400
    assert (result["order_views"] > 50) is views
