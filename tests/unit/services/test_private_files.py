"""The platform's data files are its owner's alone: 0600 files, 0700 directories, whatever
the umask (users.sqlite with its pepper, the journal, snapshots, credentials.json)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from mercato.adapters.private_files import write_private
from mercato.domain.commands import AddInstrument
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_data_files_are_private(tmp_path: Path, open_umask: None) -> None:
    root = tmp_path / "data"

    async def run() -> None:
        platform = Platform(root / "node", fsync=False)
        platform.start()
        await platform.submit(AddInstrument(symbol="XYZ", ts=platform.now()))
        await platform.stop()  # writes a snapshot

    asyncio.run(run())
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{root / 'users.sqlite'}", hasher=hasher)
    auth.create_user("alice", "correct horse battery")
    auth.close()
    write_private(root / "credentials.json", "{}\n")

    seen = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            mode = stat.S_IMODE((Path(dirpath) / d).stat().st_mode)
            assert mode == 0o700, (d, oct(mode))
        for f in filenames:
            mode = stat.S_IMODE((Path(dirpath) / f).stat().st_mode)
            assert mode == 0o600, (f, oct(mode))
            seen.add(f if not f.endswith((".seg", ".snap")) else f.rsplit(".", 1)[1])
    assert {"users.sqlite", "credentials.json", "seg", "snap", "COMMIT", "LOCK"} <= seen


def test_an_existing_users_file_is_made_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "users.sqlite"
    path.touch(mode=0o644)
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    AuthStore(f"sqlite:///{path}", hasher=hasher).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
