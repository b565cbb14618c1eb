"""The registry's metric records: the only module that touches ``model_version_metrics``.

Every metric value of a version is a row with its time and author: those given at registration
(written by :func:`record`) and those logged later (an evaluation run after registration). The
version's ``metrics`` column holds the latest value of each, which is what ``get_best_model`` and
promotion gates read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update

from fti.storage.metadata.tables import model_version_metrics, model_versions

if TYPE_CHECKING:
    from fti.storage.metadata.base import Connection


@dataclass(frozen=True)
class VersionMetric:
    """One logged value of a version's metric."""

    value: float
    logged_at: datetime
    logged_by: str

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "logged_at": self.logged_at.isoformat(), "logged_by": self.logged_by}


def record(conn: Connection, version_id: int, metrics: Mapping[str, float], at: datetime, by: str) -> None:
    """Append ``metrics`` to the version's history (no change to its ``metrics`` column)."""
    if metrics:
        conn.execute(
            insert(model_version_metrics),
            [
                {"model_version_id": version_id, "key": k, "value": v, "logged_at": at, "logged_by": by}
                for k, v in metrics.items()
            ],
        )


def log(
    conn: Connection, version_id: int, metrics: Mapping[str, float], at: datetime, by: str
) -> dict[str, float]:
    """Record ``metrics`` and make them the version's current values; returns all current values."""
    # FOR UPDATE (PostgreSQL): two concurrent logs merge into one another instead of one losing
    query = select(model_versions.c.metrics).where(model_versions.c.id == version_id).with_for_update()
    current = conn.execute(query).scalar_one()
    merged = {**(current or {}), **metrics}
    conn.execute(update(model_versions).where(model_versions.c.id == version_id).values(metrics=merged))
    record(conn, version_id, metrics, at, by)
    return merged


def history(conn: Connection, version_id: int) -> dict[str, list[VersionMetric]]:
    """Each metric's values in the order they were logged."""
    t = model_version_metrics
    rows = conn.execute(
        select(t.c.key, t.c.value, t.c.logged_at, t.c.logged_by)
        .where(t.c.model_version_id == version_id)
        .order_by(t.c.key, t.c.logged_at, t.c.id)
    )
    out: dict[str, list[VersionMetric]] = {}
    for key, value, logged_at, logged_by in rows:
        out.setdefault(key, []).append(VersionMetric(float(value), logged_at, logged_by))
    return out
