"""Alembic migrations for the SQL store, shipped inside the package and run from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from mercato.adapters.sql.urls import sqlalchemy_url

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)


def config() -> Config:
    """An Alembic config that needs no ``alembic.ini``: it points at this directory."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; a no-op when it is already there."""
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.begin() as conn:
            cfg = config()
            cfg.attributes["connection"] = conn  # env.py runs on it, inside this transaction
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
