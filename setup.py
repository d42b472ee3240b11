"""Mercato's build: the hot modules (``src/mercato/compiled.txt``) compiled by mypyc at
install time, from the same ``.py`` source, as other mypyc-compiled projects do.

``pip install .`` gives the compiled build. It falls back to plain Python, with a warning,
where mypyc or a C compiler is missing or the compile fails, and when ``MERCATO_NO_COMPILE=1``
(set by ``make`` for the editable install the tests run on, so that no built module
shadows the source). Everything else about the package is in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
HOT = [
    line.strip()
    for line in (ROOT / "src" / "mercato" / "compiled.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def _warn(message: str) -> None:
    print(f"WARNING: mercato: {message}: installing plain Python", file=sys.stderr)


class BuildExtOrPlain(build_ext):
    """build_ext that installs plain Python when compiling fails (no C compiler...):
    the compiled modules are all or nothing (mypyc links them into one shared library)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # CompileError, DistutilsError, a missing compiler
            _warn(f"compiling the hot modules failed ({e})")
            for ext in self.extensions:
                for path in (self.get_ext_fullpath(ext.name),):
                    if os.path.exists(path):
                        os.remove(path)
            self.extensions = []


# The commands that build the package (setuptools' PEP 517 hooks run ``bdist_wheel`` and
# ``editable_wheel``); the metadata hooks (``egg_info``, ``dist_info``) need no compiling.
BUILDS = {"bdist_wheel", "build", "build_ext", "install", "editable_wheel", "develop"}


def ext_modules() -> list[Any]:
    if not BUILDS & set(sys.argv[1:]):
        return []
    if os.environ.get("MERCATO_NO_COMPILE", "") not in ("", "0"):
        print("mercato: MERCATO_NO_COMPILE is set: plain Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as e:
        _warn(f"mypyc is not available ({e})")
        return []
    old = os.getcwd()
    os.chdir(ROOT / "src")  # module names from the package tree (mercato.engine.book, ...)
    try:
        return list(mypycify(HOT, opt_level="3", target_dir=str(ROOT / "build" / "mypyc-c")))
    except BaseException as e:  # mypyc reports type errors by exiting
        _warn(f"mypyc could not translate the hot modules ({e!r})")
        return []
    finally:
        os.chdir(old)


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExtOrPlain})
