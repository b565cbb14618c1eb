"""Feast, the incumbent feature store, on the same data as a benchmark (issue 21: its figure is
printed in the same run when Feast is available).

Feast is not a dependency (its pins conflict with fti's, e.g. pandas), so it usually lives in a
virtualenv of its own: pass ``--feast-python that-venv/bin/python``. Its measurement then runs in
a child process of that interpreter, with this repository on ``PYTHONPATH`` (``import fti``
needs nothing beyond the standard library). Without the flag Feast runs in this interpreter when
it is importable, and is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._report import run_child


def interpreter(flag: str | None) -> str | None:
    """The Python that runs Feast: ``flag`` when given, else this one when Feast imports, else None."""
    if flag:
        return flag
    return sys.executable if importlib.util.find_spec("feast") is not None else None


def run(python: str, module: str, *args: str) -> dict[str, Any]:
    """``python -m module *args`` (a benchmark's Feast child) and the JSON its last line holds."""
    return run_child(module, *args, python=python)


def online_store(
    repo: Path, sources: dict[str, tuple[Path, list[str], dict[str, str]]], key: str = "uid"
) -> Any:
    """A Feast repository in ``repo`` with SQLite online and file offline stores, one feature view
    per source ``name -> (Parquet file with the int64 ``key`` and "ts", feature names, their Feast
    types)``, applied (nothing materialized yet)."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast import types as feast_types

    user = Entity(name="entity", join_keys=[key])
    views = [
        FeatureView(
            name=name,
            entities=[user],
            ttl=timedelta(days=3650),
            schema=[
                Field(name=key, dtype=feast_types.Int64),
                *(Field(name=f, dtype=getattr(feast_types, kinds[f])) for f in features),
            ],
            source=FileSource(path=str(path), timestamp_field="ts"),
            online=True,
        )
        for name, (path, features, kinds) in sources.items()
    ]
    config = RepoConfig(
        project="fti_bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store={"type": "file"},
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    store.apply([user, *views])
    return store


def materialize(store: Any) -> None:
    """Feast's catch-up of its online store from the offline files (every row ever written)."""
    store.materialize(start_date=datetime(2000, 1, 1), end_date=datetime(2100, 1, 1))
