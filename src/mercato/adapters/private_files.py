"""Files that only their owner may read: secrets (credentials.json) and the platform's data.

Created with mode 0600 from the start (never written first and narrowed after, which would
leave a moment when another user could open the file and keep it open), and replaced
atomically.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600) through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
