"""`mercato --version` says the version and which build runs (make test-compiled runs this
again on the compiled tree, with MERCATO_EXPECT_COMPILED=1)."""

from __future__ import annotations

import os
import subprocess
import sys

from mercato import __version__


def test_version_says_which_build_runs() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mercato", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr
    line = r.stdout.strip()
    assert line.startswith(f"mercato {__version__}, ") and "\n" not in line
    if os.environ.get("MERCATO_EXPECT_COMPILED") == "1":
        assert "compiled build (mypyc:" in line, line
    else:
        assert "plain Python build" in line, line
