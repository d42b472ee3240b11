"""Mirror a package's Python sources into the compiled tree, keeping its built extensions.

Usage: python scripts/sync_tree.py SRC DST. Copies every file of SRC that is new or
changed, and removes from DST the sources that SRC no longer has (never *.so files).
"""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path


def main(src: Path, dst: Path) -> None:
    for f in src.rglob("*"):
        if f.is_dir() or "__pycache__" in f.parts:
            continue
        target = dst / f.relative_to(src)
        if not target.exists() or not filecmp.cmp(f, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    for f in dst.rglob("*"):
        if f.is_file() and f.suffix != ".so" and "__pycache__" not in f.parts:
            if not (src / f.relative_to(dst)).exists():
                f.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
