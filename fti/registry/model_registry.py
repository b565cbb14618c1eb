"""The model registry facade: register, find, alias, promote and delete model versions.

Thin by design: flavors save/load, ``aliases`` moves aliases, ``promotion`` gates, ``lineage``
resolves feature views and training datasets, ``_artifacts`` moves and verifies files.
Artifacts go to ``models/<project>/<name>/<version>/`` in the project's artifact store, each
file's SHA-256 recorded in the catalog and verified on every load and download.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti._names import check_name, check_version
from fti.errors import BackendError, ConflictError, NotFoundError, ValidationError
from fti.registry import aliases as _aliases
from fti.registry.metrics import check_metrics, current_user
from fti.registry.model_version import ModelVersion
from fti.registry.promotion import PromotionRejectedError, evaluate, parse_conditions, reason
from fti.storage.metadata.tables import model_versions, models, runs
from fti.storage.metadata.tables._base import utcnow
from fti.types import ModelRef

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from fti.project import Project
    from fti.registry.aliases import AliasChange
    from fti.registry.lineage import RunLike
    from fti.storage.artifacts.base import ArtifactStore

_EXAMPLE_ROWS = 20


class ModelRegistry:
    """Models of one project. Get it as ``project.model_registry``."""

    def __init__(self, project: Project) -> None:
        self._project = project

    @property
    def _engine(self) -> Any:
        return self._project.backends.catalog.engine

    @property
    def _store(self) -> ArtifactStore:
        return self._project.backends.artifacts

    # --- register -------------------------------------------------------------------------
    def register(
        self,
        name: str,
        model: Any,
        *,
        run: RunLike | int | None = None,
        feature_view: Any = None,
        training_dataset_version: int | None = None,
        metrics: dict[str, float] | None = None,
        input_example: Any = None,
        description: str = "",
        flavor: str | None = None,
        trusted_types: list[str] | None = None,
        save_options: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Save ``model`` as the next version of ``name``.

        Args:
            name: Model name: 1-63 lowercase letters, digits or ``_``.
            model: A fitted native model; its flavor is detected (scikit-learn incl. pipelines,
                XGBoost, LightGBM, ``onnx.ModelProto``, TorchScript or ``torch.nn.Module`` with an
                input example, ``PythonModel``).
            run: The training run (or its id) for lineage.
            feature_view: The FeatureView it was trained from (or a ``(name, version)`` tuple);
                its transformed feature names become the signature's inputs.
            training_dataset_version: The training dataset version of that feature view.
            metrics: Evaluation metrics (finite numbers), used by ``get_best_model`` and ``promote``.
            input_example: A few rows of model input (DataFrame or 2-D array); the signature's
                outputs come from a prediction on it, and it is stored with the version.
            description: Free text.
            flavor: Force a flavor instead of detecting it.
            trusted_types: Extra types skops may construct when loading a scikit-learn model
                (types outside scikit-learn/numpy/scipy, e.g. your own transformer classes).
            save_options: Flavor-specific save options, e.g. ``{"format": "json"}`` for XGBoost.

        Returns:
            The new :class:`ModelVersion`.

        Raises:
            ValidationError: unsupported model object, non-finite metrics, a training dataset
                version that does not belong to the feature view, a bad input example.
            NotFoundError: the run or the feature view does not exist.
        """
        from fti.registry._artifacts import digest_directory, upload
        from fti.registry.flavors.base import detect_flavor, get_flavor
        from fti.registry.lineage import check_training_dataset, resolve_feature_view
        from fti.registry.signature import check_example_columns, example_frame, infer_signature

        check_name(name, "model")
        if flavor is None:
            impl = detect_flavor(model)
        else:
            impl = get_flavor(flavor)
            if not impl.matches(model):
                raise ValidationError(f"flavor {flavor!r} does not accept a {type(model).__name__} object")
        checked_metrics = check_metrics(metrics)
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {type(description).__name__}")
        run_id = self._run_id(run)
        check_version(training_dataset_version, "training dataset", allow_none=True)
        fv = None
        with self._engine.connect() as conn:
            if feature_view is not None:
                fv = resolve_feature_view(conn, self._project, feature_view, training_dataset_version)
                if training_dataset_version is not None:
                    check_training_dataset(conn, fv, training_dataset_version)
            elif training_dataset_version is not None:
                raise ValidationError(
                    "training_dataset_version needs the feature_view it belongs to; pass feature_view=fv"
                )
        example = example_frame(input_example)
        names, dtypes = (None, None) if fv is None else fv.input_schema()
        check_example_columns(example, names)
        outputs = None
        if example is not None:
            try:
                outputs = impl.predict(model, example)
            except Exception as exc:  # user models raise anything; report it as bad input
                raise ValidationError(
                    f"predicting on input_example with the {impl.name} flavor failed: {exc!r}; pass rows "
                    "of the features the model was trained on"
                ) from exc
        signature = infer_signature(example, outputs, feature_names=names, feature_dtypes=dtypes)
        if save_options is not None and not isinstance(save_options, dict):
            raise ValidationError(f"save_options must be a dict, got {type(save_options).__name__}")
        options: dict[str, Any] = dict(save_options or {})
        if trusted_types is not None:
            options["trusted_types"] = list(trusted_types)
        with tempfile.TemporaryDirectory(prefix="fti-register-") as tmp:
            directory = Path(tmp)
            flavor_options = impl.save(model, directory, example=example, **options)
            digests = digest_directory(directory)
            values = {
                "flavor": impl.name,
                "flavor_options": flavor_options,
                "artifacts": digests,
                "signature": signature.to_dict(),
                "metrics": checked_metrics,
                "input_example": _example_json(example),
                "description": description,
                "run_id": run_id,
                "feature_view_id": None if fv is None else fv.id,
                "feature_view_name": None if fv is None else fv.name,
                "feature_view_version": None if fv is None else fv.version,
                "training_dataset_version": training_dataset_version,
                "created_by": current_user(),
            }
            version = self._insert_version(name, values, directory, digests, upload)
        return self.get_model(name, version=version)

    def _insert_version(
        self, name: str, values: dict[str, Any], directory: Path, digests: Any, upload: Any
    ) -> int:
        # The version row and the uploads share one transaction: a failed upload rolls the row
        # back (and removes partial files); a concurrent registration waits on the row and retries.
        for attempt in range(5):
            prefix = ""
            try:
                with self._engine.begin() as conn:
                    model_id = self._model_id(conn, name, create=True)
                    assert model_id is not None
                    last = conn.execute(
                        select(func.max(model_versions.c.version)).where(
                            model_versions.c.model_id == model_id
                        )
                    ).scalar_one_or_none()
                    version = 1 if last is None else int(last) + 1
                    prefix = f"models/{self._project.name}/{name}/{version}"
                    conn.execute(
                        insert(model_versions).values(
                            model_id=model_id,
                            version=version,
                            artifact_prefix=prefix,
                            created_at=utcnow(),
                            **values,
                        )
                    )
                    try:
                        upload(self._store, prefix, directory, digests)
                    except BaseException as exc:
                        self._store.delete(prefix)
                        if isinstance(exc, OSError):
                            raise BackendError(
                                f"writing the artifacts of model {name!r} to {self._store.url} failed: {exc}"
                            ) from exc
                        raise
                return version
            except SqlIntegrityError:
                if attempt == 4:
                    raise ConflictError(
                        f"could not register a new version of model {name!r}: concurrent registrations "
                        "kept taking the next version number; retry"
                    ) from None
        raise AssertionError("unreachable")

    # --- find -----------------------------------------------------------------------------
    def get_model(self, name: str | ModelRef, version: int | None = None) -> ModelVersion:
        """A model version: ``get_model("fraud:3")`` or ``get_model("fraud", version=3)``,
        ``get_model("fraud@production")``, or ``get_model("fraud")`` for the latest version.

        Args:
            name: A model reference (see :class:`fti.types.ModelRef`).
            version: A version, for a reference that names neither a version nor an alias.

        Raises:
            ValidationError: a malformed reference, or a version given twice or with an alias.
            NotFoundError: unknown model, version or alias (the message lists what exists).
        """
        ref = ModelRef.parse(name).pin(version)
        base, version, alias = ref.name, ref.version, ref.alias
        with self._engine.connect() as conn:
            model_id = self._model_id(conn, base, create=False)
            if model_id is None:
                raise NotFoundError(
                    f"model {base!r} not found in project {self._project.name!r} "
                    f"(models: {self._model_names(conn) or 'none registered yet'})"
                )
            if alias is not None:
                version = _aliases.current(conn, model_id, alias)
                if version is None:
                    known = _aliases.list_aliases(conn, model_id)
                    raise NotFoundError(
                        f"model {base!r} has no alias {alias!r} (aliases: {known or 'none'}); set one with "
                        f"set_alias({base!r}, version, {alias!r})"
                    )
            query = select(model_versions).where(model_versions.c.model_id == model_id)
            if version is None:
                query = query.order_by(model_versions.c.version.desc()).limit(1)
            else:
                query = query.where(model_versions.c.version == version)
            row = conn.execute(query).mappings().first()
            if row is None:
                versions = self._versions(conn, model_id)
                what = f"version {version}" if version is not None else "versions"
                raise NotFoundError(f"model {base!r} has no {what} (versions: {versions or 'none'})")
        return ModelVersion.from_row(row, base, self)

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """``"name@alias"``, ``"name"`` (latest version) or ``"name:3"`` -> the version it points to now.

        Serving polls this to notice alias moves.
        """
        return self.get_model(ref)

    def list_models(
        self, name: str | None = None, *, feature_view: Any = None, run: RunLike | int | None = None
    ) -> list[ModelVersion]:
        """Model versions, by name then version.

        Args:
            name: Only versions of this model.
            feature_view: Only versions trained from this FeatureView (or ``(name, version)``).
            run: Only versions registered from this run (or run id).
        """
        query = (
            select(model_versions, models.c.name.label("model_name"))
            .select_from(model_versions.join(models, model_versions.c.model_id == models.c.id))
            .where(models.c.project_id == self._project.id)
            .order_by(models.c.name, model_versions.c.version)
        )
        with self._engine.connect() as conn:
            if name is not None:
                check_name(name, "model")
                if self._model_id(conn, name, create=False) is None:
                    raise NotFoundError(
                        f"model {name!r} not found in project {self._project.name!r} "
                        f"(models: {self._model_names(conn) or 'none registered yet'})"
                    )
                query = query.where(models.c.name == name)
            if feature_view is not None:
                from fti.registry.lineage import resolve_feature_view

                fv = resolve_feature_view(conn, self._project, feature_view)
                query = query.where(model_versions.c.feature_view_id == fv.id)
            if run is not None:
                query = query.where(model_versions.c.run_id == self._run_id(run))
            rows = conn.execute(query).mappings().all()
        return [ModelVersion.from_row(r, r["model_name"], self) for r in rows]

    def get_best_model(self, name: str, metric: str, direction: str = "max") -> ModelVersion:
        """The version of ``name`` with the highest (``max``) or lowest (``min``) ``metric``."""
        if direction not in ("max", "min"):
            raise ValidationError(f"direction must be 'max' or 'min', got {direction!r}")
        candidates = [mv for mv in self.list_models(name) if metric in mv.metrics]
        if not candidates:
            raise NotFoundError(f"no version of model {name!r} has metric {metric!r}")
        pick = max if direction == "max" else min
        return pick(
            candidates, key=lambda mv: (mv.metrics[metric], mv.version if direction == "max" else -mv.version)
        )

    # --- aliases ----------------------------------------------------------------------------
    def set_alias(self, name: str, version: int, alias: str, *, reason: str = "") -> ModelVersion:
        """Point ``alias`` at ``version`` atomically (creating or moving it) and record the change."""
        _aliases.check_alias(alias)
        target = self.get_model(name, version=version)

        def move(conn: Connection) -> None:
            _aliases.set_alias(
                conn, target.model_id, alias, target.id, target.version, current_user(), reason
            )

        self._write(move, f"set alias {alias!r} of model {name!r}")
        return target

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from model ``name`` (recorded in the history)."""
        _aliases.check_alias(alias)
        with self._engine.begin() as conn:
            model_id = self._require_model(conn, name)
            _aliases.delete_alias(conn, model_id, name, alias, current_user())

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` of model ``name``."""
        with self._engine.connect() as conn:
            return _aliases.list_aliases(conn, self._require_model(conn, name))

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every change of the model's aliases (who, when, from, to), oldest first."""
        if alias is not None:
            _aliases.check_alias(alias)
        with self._engine.connect() as conn:
            return _aliases.history(conn, self._require_model(conn, name), alias)

    def promote(
        self,
        name: str,
        version: int,
        alias: str,
        *,
        require: dict[str, str] | None = None,
        compare_to: str | None = None,
    ) -> ModelVersion:
        """Move ``alias`` to ``version`` only if it passes the gate.

        Args:
            require: Thresholds per metric, e.g. ``{"auc": ">= 0.9"}``.
            compare_to: An alias (usually the same one): the candidate must not be worse than the
                version it points to on the required metrics. No holder yet = nothing to beat.

        Raises:
            PromotionRejectedError: lists each failed condition; the alias does not move.
        """
        _aliases.check_alias(alias)
        conditions = parse_conditions(require)
        if compare_to is not None:
            _aliases.check_alias(compare_to)
        candidate = self.get_model(name, version=version)

        def gate_and_move(conn: Connection) -> None:
            incumbent = None
            if compare_to is not None:
                held = _aliases.current(conn, candidate.model_id, compare_to, lock=True)
                if held is not None and held != candidate.version:
                    row = (
                        conn.execute(
                            select(model_versions).where(
                                model_versions.c.model_id == candidate.model_id,
                                model_versions.c.version == held,
                            )
                        )
                        .mappings()
                        .one()
                    )
                    incumbent = ModelVersion.from_row(row, name, self)
            failures = evaluate(
                candidate.ref,
                candidate.metrics,
                conditions,
                incumbent=None if incumbent is None else f"{incumbent.ref} ({compare_to})",
                incumbent_metrics=None if incumbent is None else incumbent.metrics,
            )
            if failures:
                raise PromotionRejectedError(
                    f"promotion of {candidate.ref} to {alias!r} refused: " + "; ".join(failures), failures
                )
            _aliases.set_alias(
                conn,
                candidate.model_id,
                alias,
                candidate.id,
                candidate.version,
                current_user(),
                reason(conditions, compare_to),
            )

        self._write(gate_and_move, f"promote model {candidate.ref} to {alias!r}")
        return candidate

    # --- delete -----------------------------------------------------------------------------
    def delete_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Hard-delete a version: catalog row and artifact files.

        Raises:
            ConflictError: aliases point to it and ``force`` is False.
        """
        if not isinstance(force, bool):
            raise ValidationError(f"force must be True or False, got {force!r}")
        target = self.get_model(name, version=version)

        def remove(conn: Connection) -> None:
            # an alias set concurrently makes the delete fail on its foreign key (RESTRICT); the
            # retry then sees it here
            pointing = _aliases.aliases_of(conn, target.id)
            if pointing and not force:
                raise ConflictError(
                    f"model {target.ref} is pointed to by alias(es) {pointing}; move them first "
                    "(set_alias) or delete with force=True"
                )
            for alias in pointing:
                _aliases.delete_alias(
                    conn, target.model_id, name, alias, current_user(), f"version {version} deleted"
                )
            conn.execute(delete(model_versions).where(model_versions.c.id == target.id))

        self._write(remove, f"delete model {target.ref}")
        self._store.delete(target.artifact_prefix)

    # --- internals --------------------------------------------------------------------------
    def _write(self, body: Callable[[Connection], None], what: str) -> None:
        """Run ``body`` in one transaction, retrying when a concurrent writer won a unique key."""
        for attempt in range(3):
            try:
                with self._engine.begin() as conn:
                    body(conn)
                return
            except SqlIntegrityError as exc:
                if attempt == 2:
                    raise ConflictError(
                        f"could not {what}: concurrent changes kept conflicting; retry"
                    ) from exc

    def _aliases_of(self, mv: ModelVersion) -> list[str]:
        with self._engine.connect() as conn:
            return _aliases.aliases_of(conn, mv.id)

    def _model_id(self, conn: Connection, name: str, *, create: bool) -> int | None:
        query = select(models.c.id).where(models.c.project_id == self._project.id, models.c.name == name)
        found = conn.execute(query).scalar_one_or_none()
        if found is not None or not create:
            return None if found is None else int(found)
        result = conn.execute(
            insert(models).values(project_id=self._project.id, name=name, created_at=utcnow())
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _require_model(self, conn: Connection, name: str) -> int:
        check_name(name, "model")
        model_id = self._model_id(conn, name, create=False)
        if model_id is None:
            raise NotFoundError(
                f"model {name!r} not found in project {self._project.name!r} "
                f"(models: {self._model_names(conn) or 'none registered yet'})"
            )
        return model_id

    def _model_names(self, conn: Connection) -> list[str]:
        query = select(models.c.name).where(models.c.project_id == self._project.id).order_by(models.c.name)
        return list(conn.execute(query).scalars())

    def _versions(self, conn: Connection, model_id: int) -> list[int]:
        query = select(model_versions.c.version).where(model_versions.c.model_id == model_id)
        return sorted(int(v) for v in conn.execute(query).scalars())

    def _run_id(self, run: RunLike | int | None) -> int | None:
        if run is None:
            return None
        run_id = run if isinstance(run, int) else getattr(run, "id", None)
        if isinstance(run_id, bool) or not isinstance(run_id, int):
            raise ValidationError(f"run must be a Run or a run id, got {type(run).__name__}")
        query = select(runs.c.id).where(runs.c.id == run_id, runs.c.project_id == self._project.id)
        with self._engine.connect() as conn:
            if conn.execute(query).scalar_one_or_none() is None:
                raise NotFoundError(f"run {run_id} does not exist in project {self._project.name!r}")
        return run_id


def _example_json(example: Any) -> dict[str, Any] | None:
    """The first rows of the input example as JSON (stored in the catalog with the version)."""
    if example is None:
        return None
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        head = example.head(_EXAMPLE_ROWS)
        data = json.loads(head.to_json(orient="split", index=False, date_format="iso"))
        return {
            "columns": [str(c) for c in head.columns],
            "dtypes": {str(c): str(t) for c, t in head.dtypes.items()},
            "data": data["data"],
        }
    head = pd.DataFrame(example[:_EXAMPLE_ROWS])
    return {"columns": None, "dtypes": None, "data": json.loads(head.to_json(orient="values"))}
