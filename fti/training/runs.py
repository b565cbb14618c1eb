"""Training runs: parameters, metric step series, status, and the code/environment they ran with.

A run is created by ``project.run(name, params=...)`` and is used as a context manager; leaving
the block marks it ``finished`` (or ``failed`` when an exception escapes). Params are immutable
once set (setting a key again to a different value is a ``ConflictError``). Metrics are
append-only step series: each ``log_metric`` adds a point at a step greater than the key's last
step. The git commit and dirty flag of the working directory (when inside a repository), the
Python version and the installed distributions are captured when the run starts.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ConflictError, NotFoundError, ValidationError
from fti.registry.metrics import check_metrics, current_user
from fti.training import records
from fti.training.records import MetricPoint, RunRecord

if TYPE_CHECKING:
    from fti.paging import Page
    from fti.project import Project
    from fti.registry.model_version import ModelVersion
    from fti.storage.metadata.base import Catalog

__all__ = [
    "RUN_STATUSES",
    "MetricPoint",
    "Run",
    "RunRecord",
    "get_run",
    "git_state",
    "installed_packages",
    "list_runs",
    "search_runs",
]

RUN_STATUSES = ("running", "finished", "failed")


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
    """Every installed distribution and the version that imports (``importlib.metadata``)."""
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():  # in sys.path order
        name = dist.metadata["Name"]
        # the first on sys.path is the one imported: in a pipeline's isolated environment its own
        # pins come before the scheduler's packages, which can hold other versions of them
        if name and str(name) not in found:
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
        start = records.RunStart(
            name=name,
            description=description,
            git_commit=commit,
            git_dirty=dirty,
            python_version=sys.version.split()[0],
            packages=installed_packages(),
            created_by=current_user(),
        )
        return cls(project, records.create_run(project.backends.catalog, project.id, start, checked))

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
        if not records.end_run(self._catalog, self.id, status, error):
            # an ended run never changes status again, so this read gives the one that refused us
            raise ConflictError(f"run {self.id} has already ended with status {self._status()!r}")

    # --- params -----------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Set one param. Params are immutable: a key can be set again only to the same value."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Set several params at once (all or none)."""
        checked = _check_params(params)
        changed = records.add_params(self._catalog, self.id, checked)
        if changed:
            detail = "; ".join(f"{k}: set to {old!r}, given {new!r}" for k, (old, new) in changed.items())
            raise ConflictError(
                f"params of run {self.id} are immutable once set ({detail}); start a new run to change them",
                details={"params": sorted(changed)},
            )

    @property
    def params(self) -> dict[str, Any]:
        """All params of the run."""
        with self._catalog.connect() as conn:
            return records.run_params_of(conn, self.id)

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
        return records.append_metrics(self._catalog, self.id, checked, step, datetime.now(UTC))

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value (highest step) of each metric series."""
        return {key: points[-1].value for key, points in self.metric_history().items()}

    def metric_history(self) -> dict[str, list[MetricPoint]]:
        """Every metric series, points in step order."""
        return records.metric_history(self._catalog, self.id)

    # --- recorded state ---------------------------------------------------------------------
    @property
    def _catalog(self) -> Catalog:
        return self._project.backends.catalog

    def _status(self) -> str:
        with self._catalog.connect() as conn:
            found = records.run_status(conn, self.id)
        if found is None:
            raise NotFoundError(f"run {self.id} does not exist in project {self._project.name!r}")
        return found

    @property
    def name(self) -> str:
        return self.record().name

    @property
    def status(self) -> str:
        """``running``, ``finished`` or ``failed``."""
        return self._status()

    def record(self) -> RunRecord:
        """Everything recorded about the run (params, latest metrics, code, environment)."""
        with self._catalog.connect() as conn:
            found = records.read_run(conn, self.id)
        if found is None:
            raise NotFoundError(f"run {self.id} does not exist in project {self._project.name!r}")
        return found

    @property
    def description(self) -> str:
        return self.record().description

    @property
    def start_time(self) -> datetime:
        return self.record().start_time

    @property
    def end_time(self) -> datetime | None:
        return self.record().end_time

    @property
    def git_commit(self) -> str | None:
        """HEAD of the git repository the run started in, or None outside a repository."""
        return self.record().git_commit

    @property
    def git_dirty(self) -> bool | None:
        """Whether tracked files had uncommitted changes when the run started (None outside git)."""
        return self.record().git_dirty

    @property
    def python_version(self) -> str:
        return self.record().python_version

    @property
    def packages(self) -> dict[str, str]:
        """Installed distributions and versions when the run started."""
        return dict(self.record().packages)

    def add_tag(self, tag: str) -> None:
        """Tag this run (e.g. ``"baseline"``); see :mod:`fti.tags`."""
        from fti import tags

        tags.add(self._project, "run", self.id, tag)

    def remove_tag(self, tag: str) -> None:
        """Remove a tag; NotFoundError when the run does not have it."""
        from fti import tags

        tags.remove(self._project, "run", self.id, tag, what=f"run {self.id}")

    @property
    def tags(self) -> list[str]:
        """The run's tags, sorted."""
        from fti import tags

        return tags.tags_of(self._project, "run", self.id)

    def models(self) -> list[ModelVersion]:
        """Model versions registered from this run (lineage, the other direction)."""
        return self._project.model_registry.list_models(run=self)

    # --- artifacts (fti.training.run_artifacts) --------------------------------------------
    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> list[str]:
        """Store a file (or every file of a directory) with the run, digest-checked on reads.

        Args:
            path: A local file or directory.
            name: Its name in the run (default: the file or directory name); a relative path
                such as ``"plots/roc.png"``. Logging a name again replaces the file.

        Returns:
            The names logged.
        """
        from fti.training import run_artifacts

        return run_artifacts.log_file(self._project, self.id, path, name)

    def log_figure(self, figure: Any, name: str) -> str:
        """Store a matplotlib figure as ``name``; its extension (png, svg, pdf, jpg) picks the format."""
        from fti.training import run_artifacts

        return run_artifacts.log_figure(self._project, self.id, figure, name)

    @property
    def artifacts(self) -> dict[str, str]:
        """``{name: sha256}`` of the files the run logged."""
        from fti.training import run_artifacts

        return run_artifacts.digests(self._project, self.id)

    def read_artifact(self, name: str) -> bytes:
        """A logged file's bytes (``IntegrityError`` if it no longer matches its SHA-256)."""
        from fti.training import run_artifacts

        return run_artifacts.read_file(self._project, self.id, name)

    def download_artifacts(self, dest: str | os.PathLike[str] | None = None) -> Path:
        """Every logged file into ``dest`` (default: a new temporary directory)."""
        from fti.training import run_artifacts

        return run_artifacts.download(self._project, self.id, dest)

    def __repr__(self) -> str:
        return f"Run(id={self.id}, project={self._project.name!r})"

    def _repr_html_(self) -> str:
        """The run in a notebook: status, times, params, final metrics, code and environment."""
        from fti._display import Card

        record = self.record()
        card = Card("Run", f"{record.id} {record.name!r}")
        card.fields = [
            ("status", record.status),
            ("started", record.start_time),
            ("ended", record.end_time),
            ("description", record.description),
            ("git", record.git_commit and record.git_commit + (" (dirty)" if record.git_dirty else "")),
            ("python", record.python_version),
        ]
        card.tables.append(("params", ["name", "value"], [[k, v] for k, v in record.params.items()]))
        card.tables.append(
            ("metrics (last value)", ["name", "value"], [[k, v] for k, v in record.metrics.items()])
        )
        return card.html()


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
    return [Run(project, i) for i in records.run_ids(project.backends.catalog, project.id, name)]


def search_runs(
    project: Project,
    query: str = "",
    *,
    name: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[RunRecord]:
    """A page of the project's runs, newest first, whose name, description or a tag contains
    ``query`` (case-insensitive); each record holds the params and latest metrics.

    Args:
        name: Only runs with exactly this name.
        status: Only ``running``, ``finished`` or ``failed`` runs.
        tag: Only runs with exactly this tag.
    """
    from fti import tags
    from fti.paging import Page, check_page, check_text

    text = check_text(query)
    offset, limit = check_page(offset, limit)
    if status is not None and status not in RUN_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
    if name is not None and not isinstance(name, str):
        raise ValidationError(f"name must be a string, got {name!r}")
    if tag is not None:
        tags.check_tag(tag)
    with project.backends.catalog.connect() as conn:
        by_tag = tags.find(project, "run", text, conn=conn) if text else []
        only = None if tag is None else tags.find(project, "run", tag, exact=True, conn=conn)
        found, total = records.search_runs(
            conn,
            project.id,
            text=text,
            name=name,
            status=status,
            also_ids=by_tag,
            only_ids=only,
            offset=offset,
            limit=limit,
        )
    return Page(found, total, offset, limit)


def get_run(project: Project, run_id: int) -> Run:
    """The run with id ``run_id`` of this project; ``NotFoundError`` otherwise."""
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
        raise ValidationError(f"run ids are integers >= 1, got {run_id!r}")
    with project.backends.catalog.connect() as conn:
        if not records.run_exists(conn, project.id, run_id):
            raise NotFoundError(
                f"run {run_id} does not exist in project {project.name!r}; list runs with `fti runs list`"
            )
    return Run(project, run_id)


def compare_runs(project: Project, run_ids: Sequence[int]) -> dict[str, Any]:
    """Params and final metrics of several runs side by side (``fti runs compare 3 4``).

    Returns:
        ``{"runs": [{id, name, status, git_commit}], "params": {key: [value per run]},
        "metrics": {key: [latest value per run]}, "differ": [keys whose values differ]}``; a run
        without a key has None there. Keys are sorted.

    Raises:
        ValidationError: fewer than two run ids, or one given twice.
        NotFoundError: a run does not exist.
    """
    ids = list(run_ids)
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise ValidationError(f"compare needs two or more different run ids, got {ids}")
    runs = [get_run(project, run_id) for run_id in ids]
    params = [r.params for r in runs]
    metrics = [r.metrics for r in runs]
    out: dict[str, Any] = {
        "runs": [{"id": r.id, "name": r.name, "status": r.status, "git_commit": r.git_commit} for r in runs],
        "params": {k: [p.get(k) for p in params] for k in sorted({k for p in params for k in p})},
        "metrics": {k: [m.get(k) for m in metrics] for k in sorted({k for m in metrics for k in m})},
    }
    out["differ"] = [
        key
        for section in ("params", "metrics")
        for key, values in out[section].items()
        if any(v != values[0] for v in values[1:])
    ]
    return out
