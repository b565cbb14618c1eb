"""A registered model version: its catalog record and what you do with it (load, download, delete).

Signature, lineage and artifact digests are fixed at registration; metrics can be added later
(``log_metrics``, each value recorded with its time). Aliases and tags are read live because
they move.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.registry.signature import ModelSignature

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from fti.registry.evaluation import Evaluation
    from fti.registry.flavors.base import Flavor
    from fti.registry.lineage import Lineage
    from fti.registry.manifest import ModelDir
    from fti.registry.model_registry import ModelRegistry
    from fti.registry.records.metrics import VersionMetric


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model.

    Attributes:
        name: Model name.
        version: Version number (1, 2, ...), assigned at registration.
        flavor: The flavor that saved it (``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``,
            ``pytorch``, ``pyfunc``).
        metrics: The latest value of each metric (given at registration or logged after).
        signature: Input/output tensors in Open Inference Protocol datatypes.
        feature_view_name: Name of the feature view it was trained from, or None.
        feature_view_version: Its version, or None.
        training_dataset_version: The training dataset version it was trained on, or None.
        run_id: The training run, or None.
        artifacts: ``{relative path: sha256}`` of every stored file: the model's own files and the
            extra files given at registration (``read_artifact(name)`` reads one).
        created_at: Registration time (UTC).
    """

    id: int
    model_id: int
    name: str
    version: int
    flavor: str
    flavor_options: dict[str, Any]
    artifacts: dict[str, str]
    artifact_prefix: str
    signature: ModelSignature
    metrics: dict[str, float]
    description: str
    run_id: int | None
    feature_view_id: int | None
    feature_view_name: str | None
    feature_view_version: int | None
    training_dataset_version: int | None
    created_at: datetime
    created_by: str
    example: dict[str, Any] | None = field(default=None, repr=False)
    registry: ModelRegistry | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        from fti._display import short_repr

        metrics = {k: round(v, 4) for k, v in list(self.metrics.items())[:3]} or None
        return short_repr("ModelVersion", self.ref, flavor=self.flavor, metrics=metrics)

    def _repr_html_(self) -> str:
        """The version in a notebook: metrics, aliases, lineage, signature and artifacts."""
        from fti._display import Card

        card = Card("ModelVersion", self.ref)
        view = (
            None
            if self.feature_view_name is None
            else f"{self.feature_view_name}:{self.feature_view_version}"
        )
        card.fields = [
            ("flavor", self.flavor),
            ("metrics", self.metrics),
            ("aliases", self.aliases if self.registry is not None else None),
            ("description", self.description),
            ("feature view", view and f"{view} (training dataset {self.training_dataset_version})"),
            ("run", self.run_id),
            ("created", f"{self.created_at.isoformat(timespec='seconds')} by {self.created_by}"),
        ]
        card.tables.append(
            (
                "signature",
                ["", "name", "datatype", "shape"],
                [["input", s.name, s.datatype, s.shape] for s in self.signature.inputs]
                + [["output", s.name, s.datatype, s.shape] for s in self.signature.outputs],
            )
        )
        card.tables.append(
            (
                "artifacts",
                ["file", "sha256"],
                [[name, digest[:16] + "…"] for name, digest in sorted(self.artifacts.items())],
            )
        )
        return card.html()

    @property
    def _registry(self) -> ModelRegistry:
        assert self.registry is not None, "this ModelVersion is detached from a registry"
        return self.registry

    @property
    def ref(self) -> str:
        """``name:version``, for messages."""
        return f"{self.name}:{self.version}"

    @property
    def aliases(self) -> list[str]:
        """The aliases that currently point to this version."""
        return self._registry._aliases_of(self)

    def add_tag(self, tag: str) -> None:
        """Tag this model version (e.g. ``"champion"``); see :mod:`fti.tags`."""
        from fti import tags

        tags.add(self._registry._project, "model_version", self.id, tag)

    def remove_tag(self, tag: str) -> None:
        """Remove a tag; NotFoundError when the version does not have it."""
        from fti import tags

        tags.remove(self._registry._project, "model_version", self.id, tag, what=f"model {self.ref}")

    @property
    def tags(self) -> list[str]:
        """This version's tags, sorted (read live: tags change)."""
        from fti import tags

        return tags.tags_of(self._registry._project, "model_version", self.id)

    @property
    def lineage(self) -> Lineage:
        """Run (params, metrics, code, environment) -> feature view -> training dataset -> inputs."""
        from fti.registry.lineage import lineage_of

        return lineage_of(self._registry._project, self)

    def evaluations(self) -> list[Evaluation]:
        """This version's stored evaluations on data, oldest first (see ``mr.evaluate``)."""
        return self._registry.evaluations(self.ref)

    @property
    def flavor_impl(self) -> Flavor:
        """The flavor object (``.predict(model, X)`` is the one prediction path)."""
        from fti.registry.flavors.base import get_flavor

        return get_flavor(self.flavor)

    def feature_view(self) -> Any:
        """The feature view it was trained from (a ``FeatureView``), or None."""
        if self.feature_view_name is None or self.feature_view_version is None:
            return None
        fs = self._registry._project.feature_store
        return fs.get_feature_view(self.feature_view_name, self.feature_view_version)  # type: ignore[attr-defined]

    def get_feature_view(self) -> Any:
        """Hopsworks' name for :meth:`feature_view`: the view this version was trained from."""
        return self.feature_view()

    def input_example(self) -> pd.DataFrame | np.ndarray | None:
        """The stored input example (first rows given at registration), or None."""
        if self.example is None:
            return None
        import numpy as np
        import pandas as pd

        if self.example.get("columns") is None:
            return np.asarray(self.example["data"])
        frame = pd.DataFrame(self.example["data"], columns=self.example["columns"])
        for column, dtype in (self.example.get("dtypes") or {}).items():
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):  # e.g. tz-aware timestamps stay as parsed
                continue
        return frame

    @property
    def model_schema(self) -> dict[str, Any] | None:
        """hsml's model schema given at registration (``ModelSchema(...).to_dict()``), or None."""
        return self.signature.model_schema

    def download(self, dest: str | Path | None = None) -> ModelDir:
        """Copy the version's files into a directory after verifying their SHA-256, with a manifest.

        The directory describes itself: ``fti_model.json`` holds the flavor, signature, metrics
        and their history, lineage, file digests and requirements, and ``requirements.txt`` pins
        those requirements (see :mod:`fti.registry.manifest`).

        Args:
            dest: The directory (created if needed); default: a new temporary directory, which
                the caller removes when done.

        Returns:
            The directory: a ``Path`` that also concatenates with strings like hsml's
            (``mv.download() + "/model.json"``).

        Raises:
            IntegrityError: a stored file does not match its recorded digest.
        """
        from fti.registry import manifest

        if dest is None:
            target = manifest.ModelDir(tempfile.mkdtemp(prefix=f"fti-{self.name}-{self.version}-"))
        else:
            target = manifest.ModelDir(dest)
            target.mkdir(parents=True, exist_ok=True)
        self._fetch(target)
        manifest.write(self, target)
        return target

    def _fetch(self, target: Path) -> Path:
        from fti.registry._artifacts import fetch

        return fetch(self._registry._store, self.artifact_prefix, self.artifacts, target)

    # --- metrics after registration ---------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float]) -> ModelVersion:
        """Add or update metrics after registration (e.g. an evaluation run later); each value is
        recorded with its time and author (:meth:`metric_history`), and the latest value of each
        is what ``get_best_model`` and promotion gates read.

        Returns:
            The version with its current metrics (this object keeps the ones it was read with).

        Raises:
            ValidationError: no metrics, or a name or value that is not a finite number.
        """
        from fti.registry.metrics import check_metrics, current_user
        from fti.registry.records import metrics as records

        checked = check_metrics(dict(metrics) if isinstance(metrics, Mapping) else metrics)
        if not checked:
            raise ValidationError("log_metrics needs at least one metric, e.g. {'auc': 0.93}")
        with self._registry._project.backends.catalog.begin() as conn:
            current = records.log(conn, self.id, checked, datetime.now(UTC), current_user())
        return replace(self, metrics=current)

    def log_metric(self, key: str, value: float) -> ModelVersion:
        """:meth:`log_metrics` for one metric."""
        return self.log_metrics({key: value})

    def metric_history(self) -> dict[str, list[VersionMetric]]:
        """Every value each metric had, in the order logged (registration first), with its time."""
        from fti.registry.records import metrics as records

        with self._registry._project.backends.catalog.connect() as conn:
            return records.history(conn, self.id)

    def read_artifact(self, name: str) -> bytes:
        """The bytes of one stored file (e.g. ``"confusion_matrix.png"``), after checking its SHA-256.

        Raises:
            NotFoundError: the version has no artifact ``name`` (the message lists them).
            IntegrityError: the stored file does not match its recorded digest.
        """
        from fti.registry._artifacts import read

        return read(self._registry._store, self.artifact_prefix, self.artifacts, name)

    def verify(self) -> None:
        """Check the version's stored files against their recorded SHA-256, copying nothing.

        Raises:
            IntegrityError: a stored file is missing or does not match its recorded digest.
        """
        from fti.registry._artifacts import verify

        verify(self._registry._store, self.artifact_prefix, self.artifacts)

    def load(self) -> Any:
        """Load the native model object (digests verified first; no pickle is ever involved).

        For the ``pyfunc`` flavor this imports the referenced Python module: that executes code.
        """
        flavor = self.flavor_impl
        with tempfile.TemporaryDirectory(prefix="fti-model-") as tmp:
            directory = self._fetch(Path(tmp))
            return flavor.load(directory, self.flavor_options)

    def predict(self, X: Any, model: Any = None) -> dict[str, np.ndarray]:
        """Predict with the flavor's prediction path (loads the model unless ``model`` is given)."""
        return self.flavor_impl.predict(self.load() if model is None else model, X)

    def delete(self, force: bool = False) -> None:
        """Hard-delete this version: catalog rows and artifact files.

        Args:
            force: Also remove aliases pointing to it (recorded in the alias history); without
                it, deleting an aliased version raises ``ConflictError``.
        """
        self._registry.delete_version(self.name, self.version, force=force)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON output."""
        return {
            "name": self.name,
            "version": self.version,
            "flavor": self.flavor,
            "metrics": self.metrics,
            "signature": self.signature.to_dict(),
            "aliases": self.aliases,
            "description": self.description,
            "run_id": self.run_id,
            "feature_view": self.feature_view_name,
            "feature_view_version": self.feature_view_version,
            "training_dataset_version": self.training_dataset_version,
            "artifacts": self.artifacts,
            "artifact_prefix": self.artifact_prefix,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }
