"""The training domain's catalog records: the only module that touches ``runs``, ``run_params``
and ``run_metrics`` (``fti.storage.metadata.tables.training``).

``fti.training.runs`` (the ``Run`` entity) and other domains (the registry's lineage and its
check that a run exists) go through these functions. Functions that take a ``Catalog`` are one
transaction each; those that take a ``Connection`` run in the caller's, so they can share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, or_, select, update

from fti.errors import ConflictError
from fti.storage.metadata.tables import run_artifacts, run_metrics, run_params, runs
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog, Connection


@dataclass(frozen=True)
class MetricPoint:
    """One point of a metric series."""

    step: int
    value: float
    logged_at: datetime


@dataclass(frozen=True)
class RunRecord:
    """What the catalog holds about a training run, read in one go."""

    id: int
    name: str
    description: str
    status: str
    start_time: datetime
    end_time: datetime | None
    error: str | None
    git_commit: str | None
    git_dirty: bool | None
    python_version: str
    packages: dict[str, str]
    created_by: str
    params: dict[str, Any]
    metrics: dict[str, float]

    def to_dict(self, *, packages: bool = True) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("start_time", "end_time"):
            data[key] = None if data[key] is None else data[key].isoformat()
        if not packages:
            data["packages"] = len(self.packages)
        return data


@dataclass(frozen=True)
class RunStart:
    """What a run records when it starts: its name and the code and environment it runs with."""

    name: str
    description: str
    git_commit: str | None
    git_dirty: bool | None
    python_version: str
    packages: dict[str, str]
    created_by: str


# --- runs ------------------------------------------------------------------------------------
def create_run(catalog: Catalog, project_id: int, start: RunStart, params: Mapping[str, Any]) -> int:
    """Insert a run in status ``running`` with its params (JSON values); returns its id."""
    with catalog.begin() as conn:
        run_id = conn.execute(
            insert(runs).values(
                project_id=project_id,
                name=start.name,
                description=start.description,
                status="running",
                start_time=utcnow(),
                git_commit=start.git_commit,
                git_dirty=start.git_dirty,
                python_version=start.python_version,
                packages=start.packages,
                created_by=start.created_by,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        for key, value in params.items():
            conn.execute(insert(run_params).values(run_id=run_id, key=key, value=json.dumps(value)))
    return int(run_id)


def end_run(catalog: Catalog, run_id: int, status: str, error: str | None) -> bool:
    """Mark a ``running`` run ended with ``status``; False when it had already ended."""
    with catalog.begin() as conn:
        result = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == "running")
            .values(status=status, end_time=utcnow(), error=error)
        )
    return bool(result.rowcount == 1)


def run_status(conn: Connection, run_id: int) -> str | None:
    """``running``, ``finished`` or ``failed``; None when there is no such run."""
    found = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar_one_or_none()
    return None if found is None else str(found)


def run_exists(conn: Connection, project_id: int, run_id: int) -> bool:
    """Whether run ``run_id`` exists in the project."""
    query = select(runs.c.id).where(runs.c.project_id == project_id, runs.c.id == run_id)
    return conn.execute(query).scalar_one_or_none() is not None


def run_ids(catalog: Catalog, project_id: int, name: str | None = None) -> list[int]:
    """Ids of the project's runs (optionally only those called ``name``), newest first."""
    query = select(runs.c.id).where(runs.c.project_id == project_id).order_by(runs.c.id.desc())
    if name is not None:
        query = query.where(runs.c.name == name)
    with catalog.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


def read_run(conn: Connection, run_id: int) -> RunRecord | None:
    """The run's record with its params and the latest value of each metric, or None."""
    row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        return None
    metrics: dict[str, float] = {}
    query = (
        select(run_metrics.c.key, run_metrics.c.value)
        .where(run_metrics.c.run_id == run_id)
        .order_by(run_metrics.c.key, run_metrics.c.step)
    )
    for key, value in conn.execute(query):
        metrics[key] = float(value)  # ordered by step: the last one wins
    return _record(row, run_params_of(conn, run_id), metrics)


def _record(row: Any, params: dict[str, Any], metrics: dict[str, float]) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        name=row["name"],
        description=row["description"],
        status=row["status"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        error=row["error"],
        git_commit=row["git_commit"],
        git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
        python_version=row["python_version"],
        packages=dict(row["packages"]),
        created_by=row["created_by"],
        params=params,
        metrics=metrics,
    )


# --- params ----------------------------------------------------------------------------------
def run_params_of(conn: Connection, run_id: int) -> dict[str, Any]:
    """All params of a run, by key."""
    query = select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == run_id)
    return {key: json.loads(value) for key, value in sorted(conn.execute(query).all())}


def add_params(catalog: Catalog, run_id: int, params: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the params not set yet (all or none); returns ``{key: (stored, given)}`` conflicts.

    Params are immutable: when a key is already set to a different value nothing is written and
    the conflicting keys are returned.
    """
    with catalog.begin() as conn:
        existing = run_params_of(conn, run_id)
        changed = {k: (existing[k], v) for k, v in params.items() if k in existing and existing[k] != v}
        if changed:
            return changed
        for key, value in params.items():
            if key not in existing:
                conn.execute(insert(run_params).values(run_id=run_id, key=key, value=json.dumps(value)))
    return {}


# --- metrics ---------------------------------------------------------------------------------
def append_metrics(
    catalog: Catalog, run_id: int, metrics: Mapping[str, float], step: int | None, now: datetime
) -> dict[str, int]:
    """Append one point to each series (all or none) while the run runs; returns each step.

    Raises:
        ConflictError: the run has ended, or ``step`` is not after a series' last step.
    """
    steps: dict[str, int] = {}
    with catalog.begin() as conn:
        if run_status(conn, run_id) != "running":
            raise ConflictError(f"run {run_id} has ended; metrics can only be logged while it runs")
        for key, value in metrics.items():
            last = conn.execute(
                select(func.max(run_metrics.c.step)).where(
                    run_metrics.c.run_id == run_id, run_metrics.c.key == key
                )
            ).scalar_one_or_none()
            this = (0 if last is None else int(last) + 1) if step is None else step
            if last is not None and this <= int(last):
                raise ConflictError(
                    f"metric {key!r} of run {run_id} already has step {int(last)}; series are "
                    f"append-only, log step {int(last) + 1} or later (got {this})"
                )
            conn.execute(
                insert(run_metrics).values(run_id=run_id, key=key, step=this, value=value, logged_at=now)
            )
            steps[key] = this
    return steps


def metric_history(catalog: Catalog, run_id: int) -> dict[str, list[MetricPoint]]:
    """Every metric series of a run, points in step order."""
    query = (
        select(run_metrics.c.key, run_metrics.c.step, run_metrics.c.value, run_metrics.c.logged_at)
        .where(run_metrics.c.run_id == run_id)
        .order_by(run_metrics.c.key, run_metrics.c.step)
    )
    series: dict[str, list[MetricPoint]] = {}
    with catalog.connect() as conn:
        for key, step, value, logged_at in conn.execute(query):
            series.setdefault(key, []).append(MetricPoint(int(step), float(value), logged_at))
    return series


# --- listings and search (the web UI) ----------------------------------------------------------
def search_runs(
    conn: Connection,
    project_id: int,
    *,
    text: str,
    name: str | None = None,
    status: str | None = None,
    also_ids: Sequence[int] = (),
    only_ids: Sequence[int] | None = None,
    offset: int,
    limit: int,
) -> tuple[list[RunRecord], int]:
    """A page of the project's runs, newest first, and how many match.

    Args:
        text: Lowercase text the run name or description contains ("" for all).
        name: Only runs with exactly this name. status: Only runs in this status.
        also_ids, only_ids: Runs that match anyway / the only runs allowed (tags).
    """
    r = runs.c
    where = [r.project_id == project_id]
    if text:
        conditions = [
            func.lower(r.name).contains(text, autoescape=True),
            func.lower(r.description).contains(text, autoescape=True),
        ]
        if also_ids:
            conditions.append(r.id.in_(list(also_ids)))
        where.append(or_(*conditions))
    if name is not None:
        where.append(r.name == name)
    if status is not None:
        where.append(r.status == status)
    if only_ids is not None:
        where.append(r.id.in_(list(only_ids)))
    total = int(conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one())
    if not limit or offset >= total:
        return [], total
    rows = conn.execute(
        select(runs).where(*where).order_by(r.id.desc()).offset(offset).limit(limit)
    ).mappings()
    page = list(rows)
    ids = [int(row["id"]) for row in page]
    params: dict[int, dict[str, Any]] = {i: {} for i in ids}
    for run_id, key, value in conn.execute(
        select(run_params.c.run_id, run_params.c.key, run_params.c.value)
        .where(run_params.c.run_id.in_(ids))
        .order_by(run_params.c.key)
    ):
        params[int(run_id)][key] = json.loads(value)
    metrics: dict[int, dict[str, float]] = {i: {} for i in ids}
    m = run_metrics.c
    for run_id, key, value in conn.execute(
        select(m.run_id, m.key, m.value).where(m.run_id.in_(ids)).order_by(m.run_id, m.key, m.step)
    ):
        metrics[int(run_id)][key] = float(value)  # ordered by step: the last one wins
    return [_record(row, params[int(row["id"])], metrics[int(row["id"])]) for row in page], total


# --- artifacts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunArtifact:
    """A file a run logged: where it is in the artifact store and its SHA-256."""

    name: str
    key: str
    sha256: str
    size: int
    logged_at: datetime


def put_artifact(catalog: Catalog, run_id: int, artifact: RunArtifact) -> None:
    """Record ``artifact`` (replacing a file logged under the same name before)."""
    t = run_artifacts
    with catalog.begin() as conn:
        conn.execute(delete(t).where(t.c.run_id == run_id, t.c.name == artifact.name))
        conn.execute(
            insert(t).values(
                run_id=run_id,
                name=artifact.name,
                key=artifact.key,
                sha256=artifact.sha256,
                size=artifact.size,
                logged_at=artifact.logged_at,
            )
        )


def artifacts_of(conn: Connection, run_id: int) -> dict[str, RunArtifact]:
    """The files a run logged, by name."""
    t = run_artifacts
    rows = conn.execute(
        select(t.c.name, t.c.key, t.c.sha256, t.c.size, t.c.logged_at)
        .where(t.c.run_id == run_id)
        .order_by(t.c.name)
    )
    return {r.name: RunArtifact(r.name, r.key, r.sha256, int(r.size), r.logged_at) for r in rows}
