"""Training runs: parameters, metric step series, status, and the code/environment they ran with.

A run is created by ``project.run(name, params=...)`` and is used as a context manager; leaving
the block marks it ``finished`` (or ``failed`` when an exception escapes). Params are immutable
once set (setting a key again to a different value is a ``ConflictError``). Metrics are
append-only step series: each ``log_metric`` adds a point at a step greater than the key's last
step. The git commit and dirty flag of the working directory (when inside a repository), the
Python version and the installed distributions are captured when the run starts.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from fti.errors import ConflictError, NotFoundError, ValidationError
from fti.registry.metrics import check_metrics, current_user
from fti.storage.metadata.tables import run_metrics, run_params, runs
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.project import Project
    from fti.registry.lineage import RunRecord
    from fti.registry.model_version import ModelVersion

RUN_STATUSES = ("running", "finished", "failed")


@dataclass(frozen=True)
class MetricPoint:
    """One point of a metric series."""

    step: int
    value: float
    logged_at: datetime


def _json_value(key: str, value: Any) -> Any:
    """Params are stored as JSON; numpy scalars become Python numbers, other types are refused."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"param {key!r} is {value!r}; params must be JSON values (finite numbers)")
        return value
    if isinstance(value, list | tuple):
        return [_json_value(key, v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(key, v) for k, v in value.items()}
    raise ValidationError(
        f"param {key!r} has type {type(value).__name__}; params must be JSON values "
        "(str, int, float, bool, None, lists and dicts of those)"
    )


def git_state(directory: Path | None = None) -> tuple[str | None, bool | None]:
    """The HEAD commit and whether tracked files have uncommitted changes; (None, None) outside git."""
    cwd = directory or Path.cwd()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # git not installed or hung
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip(), dirty


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version (``importlib.metadata``)."""
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found[str(name)] = str(dist.version)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


class Run:
    """A training run. Use ``with project.run("name", params={...}) as run:``.

    Attributes are read from the catalog, so a ``Run`` obtained later with
    ``project.model_registry.get_run(run_id)`` shows the same params, metrics and status.
    """

    def __init__(self, project: Project, run_id: int) -> None:
        self._project = project
        self.id = run_id

    # --- creation ---------------------------------------------------------------------------
    @classmethod
    def start(
        cls, project: Project, name: str, params: Mapping[str, Any] | None = None, description: str = ""
    ) -> Run:
        """Create a run in status ``running`` with the code and environment captured now."""
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ValidationError(
                f"run name must be a non-empty string of at most 255 characters, got {name!r}"
            )
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {type(description).__name__}")
        checked = _check_params(params)
        commit, dirty = git_state()
        with project.backends.catalog.engine.begin() as conn:
            run_id = conn.execute(
                insert(runs).values(
                    project_id=project.id,
                    name=name,
                    description=description,
                    status="running",
                    start_time=utcnow(),
                    git_commit=commit,
                    git_dirty=dirty,
                    python_version=sys.version.split()[0],
                    packages=installed_packages(),
                    created_by=current_user(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            for key, value in checked.items():
                conn.execute(insert(run_params).values(run_id=run_id, key=key, value=json.dumps(value)))
        return cls(project, int(run_id))

    # --- context manager --------------------------------------------------------------------
    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self.status == "running":
            self.end(
                "failed" if exc_type is not None else "finished", error=None if exc is None else repr(exc)
            )

    def end(self, status: str = "finished", *, error: str | None = None) -> None:
        """Mark the run ended with ``status`` (``finished`` or ``failed``)."""
        if status not in ("finished", "failed"):
            raise ValidationError(f"a run ends as 'finished' or 'failed', got {status!r}")
        with self._engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.id == self.id, runs.c.status == "running")
                .values(status=status, end_time=utcnow(), error=error)
            )
            if result.rowcount == 0:
                raise ConflictError(f"run {self.id} has already ended with status {self._status(conn)!r}")

    # --- params -----------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Set one param. Params are immutable: a key can be set again only to the same value."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Set several params at once (all or none)."""
        checked = _check_params(params)
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == self.id)
            ).all()
            existing = {key: json.loads(value) for key, value in rows}
            changed = {k: (existing[k], v) for k, v in checked.items() if k in existing and existing[k] != v}
            if changed:
                detail = "; ".join(f"{k}: set to {old!r}, given {new!r}" for k, (old, new) in changed.items())
                raise ConflictError(
                    f"params of run {self.id} are immutable once set ({detail}); start a new run to "
                    "change them",
                    details={"params": sorted(changed)},
                )
            for key, value in checked.items():
                if key not in existing:
                    conn.execute(insert(run_params).values(run_id=self.id, key=key, value=json.dumps(value)))

    @property
    def params(self) -> dict[str, Any]:
        """All params of the run."""
        query = select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == self.id)
        with self._engine.connect() as conn:
            return {key: json.loads(value) for key, value in sorted(conn.execute(query).all())}

    # --- metrics ----------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int | None = None) -> int:
        """Append ``value`` to the series ``key`` and return its step.

        Args:
            key: Metric name.
            value: A finite number.
            step: The step (>= 0) of this point; default: one after the series' last step (0 first).
                A step must be greater than the last logged step of the series (append-only).
        """
        return self.log_metrics({key: value}, step=step)[key]

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> dict[str, int]:
        """Append one point to each named series (all or none); returns the step of each."""
        checked = check_metrics(metrics)
        if not checked:
            raise ValidationError("log_metrics needs at least one metric, got an empty dict")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
            raise ValidationError(f"metric step must be an integer >= 0, got {step!r}")
        now = utcnow()
        steps: dict[str, int] = {}
        with self._engine.begin() as conn:
            if self._status(conn) != "running":
                raise ConflictError(f"run {self.id} has ended; metrics can only be logged while it runs")
            for key, value in checked.items():
                last = conn.execute(
                    select(func.max(run_metrics.c.step)).where(
                        run_metrics.c.run_id == self.id, run_metrics.c.key == key
                    )
                ).scalar_one_or_none()
                this = (0 if last is None else int(last) + 1) if step is None else step
                if last is not None and this <= int(last):
                    raise ConflictError(
                        f"metric {key!r} of run {self.id} already has step {int(last)}; series are "
                        f"append-only, log step {int(last) + 1} or later (got {this})"
                    )
                conn.execute(
                    insert(run_metrics).values(run_id=self.id, key=key, step=this, value=value, logged_at=now)
                )
                steps[key] = this
        return steps

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value (highest step) of each metric series."""
        return {key: points[-1].value for key, points in self.metric_history().items()}

    def metric_history(self) -> dict[str, list[MetricPoint]]:
        """Every metric series, points in step order."""
        query = (
            select(run_metrics.c.key, run_metrics.c.step, run_metrics.c.value, run_metrics.c.logged_at)
            .where(run_metrics.c.run_id == self.id)
            .order_by(run_metrics.c.key, run_metrics.c.step)
        )
        series: dict[str, list[MetricPoint]] = {}
        with self._engine.connect() as conn:
            for key, step, value, logged_at in conn.execute(query):
                series.setdefault(key, []).append(MetricPoint(int(step), float(value), logged_at))
        return series

    # --- recorded state ---------------------------------------------------------------------
    def _row(self) -> Any:
        with self._engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == self.id)).mappings().first()
        if row is None:
            raise NotFoundError(f"run {self.id} does not exist in project {self._project.name!r}")
        return row

    def _status(self, conn: Any) -> str | None:
        return conn.execute(select(runs.c.status).where(runs.c.id == self.id)).scalar_one_or_none()  # type: ignore[no-any-return]

    @property
    def _engine(self) -> Any:
        return self._project.backends.catalog.engine

    @property
    def name(self) -> str:
        return str(self._row()["name"])

    @property
    def status(self) -> str:
        """``running``, ``finished`` or ``failed``."""
        return str(self._row()["status"])

    def record(self) -> RunRecord:
        """Everything recorded about the run (params, latest metrics, code, environment)."""
        from fti.registry.lineage import read_run

        with self._engine.connect() as conn:
            found = read_run(conn, self.id)
        if found is None:
            raise NotFoundError(f"run {self.id} does not exist in project {self._project.name!r}")
        return found

    @property
    def description(self) -> str:
        return str(self._row()["description"])

    @property
    def start_time(self) -> datetime:
        return self._row()["start_time"]  # type: ignore[no-any-return]

    @property
    def end_time(self) -> datetime | None:
        return self._row()["end_time"]  # type: ignore[no-any-return]

    @property
    def git_commit(self) -> str | None:
        """HEAD of the git repository the run started in, or None outside a repository."""
        return self._row()["git_commit"]  # type: ignore[no-any-return]

    @property
    def git_dirty(self) -> bool | None:
        """Whether tracked files had uncommitted changes when the run started (None outside git)."""
        value = self._row()["git_dirty"]
        return None if value is None else bool(value)

    @property
    def python_version(self) -> str:
        return str(self._row()["python_version"])

    @property
    def packages(self) -> dict[str, str]:
        """Installed distributions and versions when the run started."""
        return dict(self._row()["packages"])

    def models(self) -> list[ModelVersion]:
        """Model versions registered from this run (lineage, the other direction)."""
        return self._project.model_registry.list_models(run=self)

    def __repr__(self) -> str:
        return f"Run(id={self.id}, project={self._project.name!r})"


def _check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ValidationError(f"params must be a dict of name -> value, got {type(params).__name__}")
    checked: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key or len(key) > 255:
            raise ValidationError(
                f"param names must be non-empty strings of at most 255 characters, got {key!r}"
            )
        checked[key] = _json_value(key, value)
    return checked


def list_runs(project: Project, name: str | None = None) -> list[Run]:
    """Runs of the project (optionally only those called ``name``), newest first."""
    query = select(runs.c.id).where(runs.c.project_id == project.id).order_by(runs.c.id.desc())
    if name is not None:
        query = query.where(runs.c.name == name)
    with project.backends.catalog.engine.connect() as conn:
        return [Run(project, int(i)) for i in conn.execute(query).scalars()]


def get_run(project: Project, run_id: int) -> Run:
    """The run with id ``run_id`` of this project; ``NotFoundError`` otherwise."""
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
        raise ValidationError(f"run ids are integers >= 1, got {run_id!r}")
    query = select(runs.c.id).where(runs.c.project_id == project.id, runs.c.id == run_id)
    with project.backends.catalog.engine.connect() as conn:
        if conn.execute(query).scalar_one_or_none() is None:
            raise NotFoundError(
                f"run {run_id} does not exist in project {project.name!r}; list runs with `fti runs list`"
            )
    return Run(project, run_id)
