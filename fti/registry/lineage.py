"""Lineage: model version -> run -> feature view version -> training dataset -> input Delta versions.

Queryable both ways: ``model.lineage`` walks from a version to what produced it;
``mr.list_models(feature_view=fv)`` / ``fv.models()`` and ``run.models()`` find the versions a
feature view or a run produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from fti.errors import FtiError, NotFoundError, ValidationError
from fti.features import records as feature_records
from fti.storage.metadata.tables import run_metrics, run_params, runs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from fti.project import Project
    from fti.registry.model_version import ModelVersion


class RunLike(Protocol):
    """Anything with the catalog id of a training run (``fti.training.runs.Run``)."""

    id: int


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


def read_run(conn: Connection, run_id: int) -> RunRecord | None:
    """The run's record with its params and the latest value of each metric, or None."""
    row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        return None
    rows = conn.execute(
        select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == run_id)
    ).all()
    params = {key: json.loads(value) for key, value in rows}
    metrics: dict[str, float] = {}
    query = (
        select(run_metrics.c.key, run_metrics.c.value)
        .where(run_metrics.c.run_id == run_id)
        .order_by(run_metrics.c.key, run_metrics.c.step)
    )
    for key, value in conn.execute(query):
        metrics[key] = float(value)  # ordered by step: the last one wins
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
        params=dict(sorted(params.items())),
        metrics=metrics,
    )


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from.

    Attributes:
        model: Model name.
        version: Model version.
        run: The training run (params, metrics, start/end, status, git commit and dirty flag,
            Python version, packages), or None.
        feature_view_name: Feature view name, or None.
        feature_view_version: Feature view version, or None.
        training_dataset_version: Training dataset version, or None.
        input_versions: ``{offline table: Delta version}`` the training dataset was read from, or
            None when unknown.
    """

    model: str
    version: int
    run: RunRecord | None
    feature_view_name: str | None
    feature_view_version: int | None
    training_dataset_version: int | None
    input_versions: dict[str, int] | None

    def to_dict(self) -> dict[str, Any]:
        # the full package list is in `fti runs show`
        run = None if self.run is None else self.run.to_dict(packages=False)
        return {
            "model": self.model,
            "version": self.version,
            "run": run,
            "feature_view": self.feature_view_name,
            "feature_view_version": self.feature_view_version,
            "training_dataset_version": self.training_dataset_version,
            "input_versions": self.input_versions,
        }


def lineage_of(project: Project, mv: ModelVersion) -> Lineage:
    """The lineage record of a model version."""
    inputs: dict[str, int] | None = None
    with project.backends.catalog.engine.connect() as conn:
        run = None if mv.run_id is None else read_run(conn, mv.run_id)
        if mv.feature_view_id is not None and mv.training_dataset_version is not None:
            inputs = feature_records.training_dataset_inputs(
                conn, mv.feature_view_id, mv.training_dataset_version
            )
    return Lineage(
        model=mv.name,
        version=mv.version,
        run=run,
        feature_view_name=mv.feature_view_name,
        feature_view_version=mv.feature_view_version,
        training_dataset_version=mv.training_dataset_version,
        input_versions=inputs,
    )


@dataclass(frozen=True)
class FeatureViewRef:
    """The catalog identity of a feature view (and the FeatureView object when one was given)."""

    id: int
    name: str
    version: int
    view: Any = None
    training_dataset_version: int | None = None

    def input_schema(self) -> tuple[list[str] | None, dict[str, str] | None]:
        """The transformed feature names and dtypes (model-input order), or (None, None).

        None when only ``(name, version)`` was given, or when the view cannot name its
        transformed columns yet (e.g. transformations not fitted: no training dataset).
        """
        if self.view is None or not hasattr(self.view, "feature_names"):
            return None, None
        kwargs: dict[str, Any] = {"transformed": True}
        if self.training_dataset_version is not None:
            kwargs["training_dataset_version"] = self.training_dataset_version
        try:
            names = [str(n) for n in self.view.feature_names(**kwargs)]
            dtypes = {str(k): str(v) for k, v in self.view.feature_dtypes(**kwargs).items()}
        except FtiError:
            return None, None
        return names, dtypes


def resolve_feature_view(
    conn: Connection, project: Project, feature_view: Any, training_dataset_version: int | None = None
) -> FeatureViewRef:
    """A FeatureView object or a ``(name, version)`` pair -> its catalog row in this project.

    With a FeatureView object, its transformed feature names and dtypes (fitted on
    ``training_dataset_version`` when given) are included for the signature.
    """
    if isinstance(feature_view, tuple) and len(feature_view) == 2:
        name, version = feature_view
        obj = None
    elif hasattr(feature_view, "name") and hasattr(feature_view, "version"):
        name, version, obj = feature_view.name, feature_view.version, feature_view
    else:
        raise ValidationError(
            f"feature_view must be a FeatureView or a (name, version) tuple, got {type(feature_view).__name__}"
        )
    key = feature_records.find_view_key(conn, project.id, name, version)
    if key is None:
        raise NotFoundError(
            f"feature view {name!r} version {version!r} not found in project {project.name!r}"
        )
    return FeatureViewRef(key.id, key.name, key.version, obj, training_dataset_version)


def check_training_dataset(conn: Connection, fv: FeatureViewRef, td_version: int) -> None:
    """``ValidationError`` unless ``td_version`` is a training dataset of the feature view."""
    existing = feature_records.training_dataset_numbers(conn, fv.id)
    if td_version not in existing:
        raise ValidationError(
            f"training dataset version {td_version} does not belong to feature view {fv.name!r} version "
            f"{fv.version} (its training dataset versions: {existing or 'none'}); create it with "
            "fv.create_training_data(...) or pass the version that was used"
        )
