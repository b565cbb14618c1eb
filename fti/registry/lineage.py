"""Lineage: model version -> run -> feature view version -> training dataset -> input Delta versions.

Queryable both ways: ``model.lineage`` walks from a version to what produced it;
``mr.list_models(feature_view=fv)`` / ``fv.models()`` and ``run.models()`` find the versions a
feature view or a run produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from fti.errors import FtiError, NotFoundError, ValidationError
from fti.features import records as feature_records
from fti.training import records as training_records
from fti.training.records import RunRecord

if TYPE_CHECKING:
    from fti.project import Project
    from fti.registry.model_version import ModelVersion
    from fti.storage.metadata.base import Connection


class RunLike(Protocol):
    """Anything with the catalog id of a training run (``fti.training.runs.Run``)."""

    id: int


class FeatureViewLike(Protocol):
    """What the registry needs of a feature view (``fti.features.feature_view.FeatureView``)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    def feature_names(
        self, transformed: bool = ..., training_dataset_version: int | None = ...
    ) -> list[str]: ...

    def feature_dtypes(
        self, transformed: bool = ..., training_dataset_version: int | None = ...
    ) -> dict[str, str]: ...


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
        input_versions: ``{offline table: Delta version}`` the training dataset was read from
            (None for a group that had no commit yet), or None when unknown.
    """

    model: str
    version: int
    run: RunRecord | None
    feature_view_name: str | None
    feature_view_version: int | None
    training_dataset_version: int | None
    input_versions: dict[str, int | None] | None

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
    inputs: dict[str, int | None] | None = None
    with project.backends.catalog.connect() as conn:
        run = None if mv.run_id is None else training_records.read_run(conn, mv.run_id)
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
    view: FeatureViewLike | None = None
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

    def key_and_time_columns(self) -> set[str]:
        """The view's entity-key and event-time columns: a model may be trained without them
        (Hopsworks' views return them among the features and its tutorials drop them)."""
        columns = {str(k) for k in getattr(self.view, "primary_key", None) or []}
        event_time = getattr(self.view, "event_time", None)
        return columns | ({str(event_time)} if event_time else set())


def resolve_feature_view(
    conn: Connection,
    project: Project,
    feature_view: FeatureViewLike | tuple[str, int],
    training_dataset_version: int | None = None,
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


def run_id(project: Project, run: Any) -> int | None:
    """The id of a training run given as a Run or an id (None for None), checked to exist.

    Raises:
        ValidationError: neither a Run nor an int. NotFoundError: no such run in the project.
    """
    if run is None:
        return None
    found = run if isinstance(run, int) else getattr(run, "id", None)
    if isinstance(found, bool) or not isinstance(found, int):
        raise ValidationError(f"run must be a Run or a run id, got {type(run).__name__}")
    with project.backends.catalog.connect() as conn:
        if not training_records.run_exists(conn, project.id, found):
            raise NotFoundError(f"run {found} does not exist in project {project.name!r}")
    return found
