"""setup.py's build: plain Python when asked (MERCATO_NO_COMPILE=1, as the editable install
of the tests is) and, with MERCATO_BUILD_TESTS=1, the fallback to plain Python with a
warning when compiling fails (no C compiler), and the compiled build otherwise.

Each builds a wheel of a copy of the source with pip, as `pip install .` does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LONG = pytest.mark.skipif(
    os.environ.get("MERCATO_BUILD_TESTS") != "1",
    reason="compiles with mypyc for minutes: MERCATO_BUILD_TESTS=1 runs it",
)


def build_wheel(tmp: Path, **env: str) -> tuple[Path, str]:
    src = tmp / "src-copy"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, **env},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp / "dist").glob("mercato-*.whl")
    return wheel, r.stdout + r.stderr


def compiled_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return [n for n in z.namelist() if n.endswith((".so", ".pyd"))]


def test_no_compile_builds_plain_python(tmp_path: Path) -> None:
    wheel, _ = build_wheel(tmp_path, MERCATO_NO_COMPILE="1")
    assert wheel.name.endswith("-py3-none-any.whl") and compiled_files(wheel) == []
    with zipfile.ZipFile(wheel) as z:
        assert "mercato/compiled.txt" in z.namelist()  # what --version reads
        meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    assert "License-Expression: LicenseRef-Proprietary" in meta


@LONG
def test_a_failed_compile_falls_back_to_plain_python(tmp_path: Path) -> None:
    wheel, log = build_wheel(tmp_path, CC="false", LDSHARED="false")
    assert compiled_files(wheel) == []
    assert "WARNING: mercato: compiling the hot modules failed" in log


@LONG
def test_pip_install_builds_the_compiled_modules(tmp_path: Path) -> None:
    wheel, _ = build_wheel(tmp_path)
    names = compiled_files(wheel)
    assert any(n.startswith("mercato/engine/core.") for n in names), names
