"""The monitoring domain's catalog records: the only module that touches ``monitors``,
``monitor_runs`` and ``monitor_alerts`` (``fti.storage.metadata.tables.monitoring``).

Each function is one transaction. Rows come back as frozen records: :class:`MonitorRecord` (a
monitor's definition), :class:`RunRecord` (one evaluated window) and :class:`AlertRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.errors import AlreadyExistsError
from fti.storage.metadata.tables import monitor_alerts, monitor_runs, monitors
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog


@dataclass(frozen=True)
class MonitorRecord:
    """A monitor's stored definition."""

    id: int
    project_id: int
    name: str
    source: dict[str, Any]
    """``{"kind": "deployment" | "feature_group", "name": ..., "version": ...}``."""
    model: str | None
    window_seconds: float
    schedule: dict[str, Any] | None
    config: dict[str, Any]
    reference: dict[str, Any]
    pipeline: str | None
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RunRecord:
    """One evaluated window of a monitor."""

    id: int
    monitor_id: int
    window_start: datetime
    window_end: datetime
    trigger: str
    status: str
    """``ok``, ``no_data`` or ``failed``."""
    rows: int
    dataset_drift: bool
    drifted: list[str]
    summary: dict[str, Any]
    error: str | None
    started_at: datetime
    finished_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "trigger": self.trigger,
            "status": self.status,
            "rows": self.rows,
            "dataset_drift": self.dataset_drift,
            "drifted": list(self.drifted),
            "summary": self.summary,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }


@dataclass(frozen=True)
class AlertRecord:
    """An alert: what breached in which window, and how it was delivered (or why not)."""

    id: int
    monitor_id: int
    monitor: str
    run_id: int | None
    window_start: datetime
    window_end: datetime
    kind: str
    """``drift`` or ``performance``."""
    breaches: list[dict[str, Any]]
    status: str
    """``delivered``, or ``suppressed`` (within the cooldown of an earlier alert of its kind)."""
    event_id: int | None
    webhook: dict[str, Any] | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "monitor": self.monitor,
            "run_id": self.run_id,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "kind": self.kind,
            "breaches": self.breaches,
            "status": self.status,
            "event_id": self.event_id,
            "webhook": self.webhook,
            "created_at": self.created_at.isoformat(),
        }


# --- monitors --------------------------------------------------------------------------------
def _monitor(row: Any) -> MonitorRecord:
    m = row._mapping
    return MonitorRecord(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        source=dict(m["source"]),
        model=m["model"],
        window_seconds=float(m["window_seconds"]),
        schedule=m["schedule"],
        config=dict(m["config"]),
        reference=dict(m["reference"]),
        pipeline=m["pipeline"],
        description=m["description"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def insert_monitor(catalog: Catalog, project_id: int, name: str, **values: Any) -> MonitorRecord:
    """Store a new monitor; AlreadyExistsError when the name is taken."""
    now = utcnow()
    try:
        with catalog.engine.begin() as conn:
            conn.execute(
                insert(monitors).values(
                    project_id=project_id, name=name, created_at=now, updated_at=now, **values
                )
            )
    except SqlIntegrityError:
        raise AlreadyExistsError(
            f"monitor {name!r} already exists; get it with project.monitoring.get_monitor({name!r}) "
            "or choose another name"
        ) from None
    found = find_monitor(catalog, project_id, name)
    assert found is not None
    return found


def update_monitor(catalog: Catalog, monitor_id: int, **values: Any) -> None:
    with catalog.engine.begin() as conn:
        conn.execute(
            update(monitors).where(monitors.c.id == monitor_id).values(updated_at=utcnow(), **values)
        )


def delete_monitor(catalog: Catalog, monitor_id: int) -> None:
    """Delete a monitor with its runs and alerts."""
    with catalog.engine.begin() as conn:
        conn.execute(delete(monitor_alerts).where(monitor_alerts.c.monitor_id == monitor_id))
        conn.execute(delete(monitor_runs).where(monitor_runs.c.monitor_id == monitor_id))
        conn.execute(delete(monitors).where(monitors.c.id == monitor_id))


def find_monitor(catalog: Catalog, project_id: int, name: str) -> MonitorRecord | None:
    query = select(monitors).where(monitors.c.project_id == project_id, monitors.c.name == name)
    with catalog.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _monitor(row)


def find_by_pipeline(catalog: Catalog, project_id: int, pipeline: str) -> MonitorRecord | None:
    """The monitor scheduled by the built-in pipeline ``pipeline``."""
    query = select(monitors).where(monitors.c.project_id == project_id, monitors.c.pipeline == pipeline)
    with catalog.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _monitor(row)


def list_monitors(catalog: Catalog, project_id: int) -> list[MonitorRecord]:
    query = select(monitors).where(monitors.c.project_id == project_id).order_by(monitors.c.name)
    with catalog.connect() as conn:
        return [_monitor(r) for r in conn.execute(query)]


# --- runs ------------------------------------------------------------------------------------
def _run(row: Any) -> RunRecord:
    m = row._mapping
    return RunRecord(
        id=m["id"],
        monitor_id=m["monitor_id"],
        window_start=m["window_start"],
        window_end=m["window_end"],
        trigger=m["trigger"],
        status=m["status"],
        rows=int(m["rows"]),
        dataset_drift=bool(m["dataset_drift"]),
        drifted=list(m["drifted"] or []),
        summary=dict(m["summary"] or {}),
        error=m["error"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


def record_run(catalog: Catalog, monitor_id: int, **values: Any) -> RunRecord:
    with catalog.engine.begin() as conn:
        result = conn.execute(insert(monitor_runs).values(monitor_id=monitor_id, **values))
        run_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        row = conn.execute(select(monitor_runs).where(monitor_runs.c.id == run_id)).one()
    return _run(row)


def list_runs(
    catalog: Catalog,
    monitor_id: int,
    *,
    limit: int | None = 50,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[RunRecord]:
    """Runs of a monitor, newest window first (for each window, the latest run first)."""
    query = select(monitor_runs).where(monitor_runs.c.monitor_id == monitor_id)
    if start is not None:
        query = query.where(monitor_runs.c.window_start >= start)
    if end is not None:
        query = query.where(monitor_runs.c.window_end <= end)
    query = query.order_by(monitor_runs.c.window_start.desc(), monitor_runs.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with catalog.connect() as conn:
        return [_run(r) for r in conn.execute(query)]


def latest_runs(catalog: Catalog, project_id: int) -> dict[str, tuple[MonitorRecord, RunRecord]]:
    """Per monitor of the project, its definition and its most recent run (by window, then id)."""
    newest = (
        select(monitor_runs.c.monitor_id, func.max(monitor_runs.c.window_start).label("window_start"))
        .group_by(monitor_runs.c.monitor_id)
        .subquery()
    )
    query = (
        select(monitor_runs, monitors.c.name)
        .join(
            newest,
            (newest.c.monitor_id == monitor_runs.c.monitor_id)
            & (newest.c.window_start == monitor_runs.c.window_start),
        )
        .join(monitors, monitors.c.id == monitor_runs.c.monitor_id)
        .where(monitors.c.project_id == project_id, monitor_runs.c.status != "failed")
        .order_by(monitor_runs.c.id)
    )
    out: dict[str, tuple[MonitorRecord, RunRecord]] = {}
    with catalog.connect() as conn:
        runs = [(r._mapping["name"], _run(r)) for r in conn.execute(query)]
        records = {
            r.name: r
            for r in (
                _monitor(row)
                for row in conn.execute(select(monitors).where(monitors.c.project_id == project_id))
            )
        }
    for name, run in runs:  # later ids win for the same window
        out[name] = (records[name], run)
    return out


# --- alerts ----------------------------------------------------------------------------------
def _alert(row: Any) -> AlertRecord:
    m = row._mapping
    return AlertRecord(
        id=m["id"],
        monitor_id=m["monitor_id"],
        monitor=m["name"],
        run_id=m["run_id"],
        window_start=m["window_start"],
        window_end=m["window_end"],
        kind=m["kind"],
        breaches=list(m["breaches"] or []),
        status=m["status"],
        event_id=m["event_id"],
        webhook=m["webhook"],
        created_at=m["created_at"],
    )


def _alerts() -> Any:
    return select(monitor_alerts, monitors.c.name).join(
        monitors, monitors.c.id == monitor_alerts.c.monitor_id
    )


def record_alert(catalog: Catalog, monitor_id: int, **values: Any) -> AlertRecord:
    with catalog.engine.begin() as conn:
        result = conn.execute(insert(monitor_alerts).values(monitor_id=monitor_id, **values))
        alert_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    return get_alert(catalog, alert_id)


def update_alert(catalog: Catalog, alert_id: int, **values: Any) -> AlertRecord:
    with catalog.engine.begin() as conn:
        conn.execute(update(monitor_alerts).where(monitor_alerts.c.id == alert_id).values(**values))
    return get_alert(catalog, alert_id)


def get_alert(catalog: Catalog, alert_id: int) -> AlertRecord:
    with catalog.connect() as conn:
        return _alert(conn.execute(_alerts().where(monitor_alerts.c.id == alert_id)).one())


def last_delivered(catalog: Catalog, monitor_id: int, kind: str) -> AlertRecord | None:
    """The monitor's most recent delivered alert of ``kind`` (what a cooldown counts from)."""
    query = (
        _alerts()
        .where(
            monitor_alerts.c.monitor_id == monitor_id,
            monitor_alerts.c.kind == kind,
            monitor_alerts.c.status == "delivered",
        )
        .order_by(monitor_alerts.c.created_at.desc(), monitor_alerts.c.id.desc())
        .limit(1)
    )
    with catalog.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _alert(row)


def list_alerts(
    catalog: Catalog, project_id: int, *, monitor_id: int | None = None, limit: int | None = 50
) -> list[AlertRecord]:
    """Alerts of the project (or of one monitor), newest first."""
    query = _alerts().where(monitors.c.project_id == project_id)
    if monitor_id is not None:
        query = query.where(monitor_alerts.c.monitor_id == monitor_id)
    query = query.order_by(monitor_alerts.c.created_at.desc(), monitor_alerts.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with catalog.connect() as conn:
        return [_alert(r) for r in conn.execute(query)]
