"""The public names of the core packages: listed, importable, and nothing private."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["mercato.domain", "mercato.engine"])
def test_public_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert len(names) == len(set(names)), "duplicates in __all__"
    for name in names:
        assert not name.startswith("_"), name
        assert getattr(module, name) is not None, name
