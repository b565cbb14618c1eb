"""The model registry facade: register, find, alias, promote and delete model versions.

Thin by design: flavors save/load, ``aliases`` moves aliases, ``promotion`` gates, ``lineage``
resolves views and datasets, ``_artifacts`` stores files under ``models/<project>/<name>/<version>/``
with each SHA-256 in the catalog, verified on every load and download.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fti._names import check_name, check_version
from fti.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from fti.registry import aliases as _aliases
from fti.registry import records
from fti.registry.builders import Frameworks
from fti.registry.lineage import run_id as lineage_run_id
from fti.registry.metrics import check_metrics, current_user
from fti.registry.model_version import ModelVersion
from fti.registry.promotion import PromotionRejectedError, failures, parse_conditions, reason
from fti.types import ModelRef

if TYPE_CHECKING:
    from datetime import datetime

    from fti.paging import Page
    from fti.project import Project
    from fti.registry.aliases import AliasChange
    from fti.registry.evaluation import Evaluation
    from fti.registry.evaluation.slicing import SliceSpec
    from fti.registry.lineage import FeatureViewLike, RunLike
    from fti.registry.records import ModelInfo
    from fti.registry.schema import ModelSchema
    from fti.storage.artifacts.base import ArtifactStore
    from fti.storage.metadata.base import Catalog, Connection

T = TypeVar("T")


class ModelRegistry(Frameworks):
    """Models of one project (``project.model_registry``); ``mr.python.create_model(...).save(dir)``
    and its siblings (:class:`~fti.registry.builders.Frameworks`) register a directory as hsml does."""

    def __init__(self, project: Project) -> None:
        self._project = project

    @property
    def _catalog(self) -> Catalog:
        return self._project.backends.catalog

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
        feature_view: FeatureViewLike | tuple[str, int] | None = None,
        training_dataset_version: int | None = None,
        metrics: dict[str, float] | None = None,
        input_example: Any = None,
        description: str = "",
        flavor: str | None = None,
        trusted_types: list[str] | None = None,
        save_options: dict[str, Any] | None = None,
        artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
        allow_widening: bool = False,
        version: int | None = None,
        model_schema: ModelSchema | None = None,
    ) -> ModelVersion:
        """Save ``model`` as the next version of ``name`` (or as ``version``).

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
            save_options: Flavor options (``{"format": "json"}`` for XGBoost); ``{"file": "m.skops"}`` names the file.
            artifacts: Extra files stored with the version, ``{name: local path}`` such as
                ``{"confusion_matrix.png": "cm.png"}``; digest-checked like the model's own files
                and read back with ``mv.read_artifact(name)`` (``mv.artifacts`` lists every file).
            allow_widening: Let serving accept inputs of a narrower datatype that converts
                losslessly (INT32 for an INT64 input); by default a different datatype is a 400.
            version: An explicit version number, as in hsml (default: the next one).
            model_schema: hsml's ``ModelSchema(Schema(X), Schema(y))`` (:mod:`fti.registry.schema`),
                stored in the signature, whose inputs it names when there is no input example.

        Returns:
            The new :class:`ModelVersion`.

        Raises:
            ValidationError: unsupported model object, non-finite metrics, a training dataset
                version that does not belong to the feature view, a bad input example.
            NotFoundError: the run or the feature view does not exist.
            AlreadyExistsError: ``version`` exists.
        """
        from fti.registry import schema as hsml_schema
        from fti.registry import signature as sig
        from fti.registry._artifacts import add_files, digest_directory, name_model_file
        from fti.registry.flavors.base import detect_flavor, get_flavor
        from fti.registry.lineage import check_training_dataset, resolve_feature_view

        check_name(name, "model")
        check_version(version, "model", allow_none=True)
        if flavor is None:
            impl = detect_flavor(model)
        else:
            impl = get_flavor(flavor)
            if not impl.matches(model):
                raise ValidationError(f"flavor {flavor!r} does not accept a {type(model).__name__} object")
        checked_metrics = check_metrics(metrics)
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {type(description).__name__}")
        run_id = lineage_run_id(self._project, run)
        check_version(training_dataset_version, "training dataset", allow_none=True)
        fv = None
        with self._catalog.connect() as conn:
            if feature_view is not None:
                fv = resolve_feature_view(conn, self._project, feature_view, training_dataset_version)
                if training_dataset_version is not None:
                    check_training_dataset(conn, fv, training_dataset_version)
            elif training_dataset_version is not None:
                raise ValidationError(
                    "training_dataset_version needs the feature_view it belongs to; pass feature_view=fv"
                )
        example = sig.example_frame(input_example)
        names, dtypes = (None, None) if fv is None else fv.input_schema()
        names = sig.check_example_columns(example, names, set() if fv is None else fv.key_and_time_columns())
        outputs = None
        if example is not None:
            try:
                outputs = impl.predict(model, example)
            except Exception as exc:  # user models raise anything; report it as bad input
                raise ValidationError(
                    f"predicting on input_example with the {impl.name} flavor failed: {exc!r}; pass rows "
                    "of the features the model was trained on"
                ) from exc
        classes = sig.class_labels(model)
        signature = sig.infer_signature(
            example, outputs, feature_names=names, feature_dtypes=dtypes, classes=classes
        )
        signature = replace(signature, allow_widening=bool(allow_widening))
        if model_schema is not None:
            signature = hsml_schema.apply(signature, model_schema, example)
        if save_options is not None and not isinstance(save_options, dict):
            raise ValidationError(f"save_options must be a dict, got {type(save_options).__name__}")
        options: dict[str, Any] = dict(save_options or {})
        if trusted_types is not None:
            options["trusted_types"] = list(trusted_types)
        with tempfile.TemporaryDirectory(prefix="fti-register-") as tmp:
            directory = Path(tmp)
            file_name = options.pop("file", None)
            flavor_options = impl.save(model, directory, example=example, **options)
            flavor_options = name_model_file(directory, flavor_options, file_name)
            add_files(directory, artifacts)
            digests = digest_directory(directory)
            values = {
                "flavor": impl.name,
                "flavor_options": flavor_options,
                "artifacts": digests,
                "signature": signature.to_dict(),
                "metrics": checked_metrics,
                "input_example": sig.example_json(example),
                "description": description,
                "run_id": run_id,
                "feature_view_id": None if fv is None else fv.id,
                "feature_view_name": None if fv is None else fv.name,
                "feature_view_version": None if fv is None else fv.version,
                "training_dataset_version": training_dataset_version,
                "created_by": current_user(),
            }
            version = self._insert_version(name, values, directory, digests, version)
        return self.get_model(name, version=version)

    def _insert_version(
        self, name: str, values: dict[str, Any], directory: Path, digests: dict[str, str], wanted: int | None
    ) -> int:
        from fti.registry._artifacts import upload

        # The version row and the uploads share one transaction: a failed upload rolls the row
        # back (and removes partial files); a concurrent registration waits on the row and retries.
        def insert(conn: Connection) -> int:
            model_id = records.model_id(conn, self._project.id, name, create=True)
            assert model_id is not None
            version = records.next_version(conn, model_id) if wanted is None else wanted
            if wanted is not None and records.find_version(conn, model_id, name, wanted) is not None:
                raise AlreadyExistsError(f"model {name!r} already has version {wanted}; leave version= out")
            prefix = f"models/{self._project.name}/{name}/{version}"
            records.insert_version(conn, model_id, version, prefix, values)
            upload(self._store, prefix, directory, digests, f"model {name!r}")
            return version

        return records.write(
            self._catalog,
            insert,
            attempts=5,
            conflict=f"could not register a new version of model {name!r}: concurrent registrations "
            "kept taking the next version number; retry",
        )

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
        with self._catalog.connect() as conn:
            model_id = self._require_model(conn, base)
            if alias is not None:
                version = records.aliased_version(conn, model_id, alias)
                if version is None:
                    known = records.list_aliases(conn, model_id)
                    raise NotFoundError(
                        f"model {base!r} has no alias {alias!r} (aliases: {known or 'none'}); set one with "
                        f"set_alias({base!r}, version, {alias!r})"
                    )
            found = records.find_version(conn, model_id, base, version)
            if found is None:
                versions = records.version_numbers(conn, model_id)
                what = f"version {version}" if version is not None else "versions"
                raise NotFoundError(f"model {base!r} has no {what} (versions: {versions or 'none'})")
        return self._bind(found)

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """``"name@alias"``, ``"name"`` or ``"name:3"`` -> the version it points to now (serving polls it)."""
        return self.get_model(ref)

    def list_models(
        self,
        name: str | None = None,
        *,
        feature_view: FeatureViewLike | tuple[str, int] | None = None,
        run: RunLike | int | None = None,
    ) -> list[ModelVersion]:
        """Model versions, by name then version.

        Args:
            name: Only versions of this model.
            feature_view: Only versions trained from this FeatureView (or ``(name, version)``).
            run: Only versions registered from this run (or run id).
        """
        feature_view_id = None
        with self._catalog.connect() as conn:
            if name is not None:
                self._require_model(conn, name)
            if feature_view is not None:
                from fti.registry.lineage import resolve_feature_view

                feature_view_id = resolve_feature_view(conn, self._project, feature_view).id
            found = records.list_versions(
                conn,
                self._project.id,
                name=name,
                feature_view_id=feature_view_id,
                run_id=lineage_run_id(self._project, run),
            )
        return [self._bind(mv) for mv in found]

    def get_best_model(self, name: str, metric: str, direction: str = "max") -> ModelVersion:
        """The version of ``name`` with the highest (``max``) or lowest (``min``) ``metric``."""
        from fti.registry.search import best_version

        return best_version(self.list_models(name), name, metric, direction)

    def search_models(self, query: str = "", *, offset: int = 0, limit: int = 50) -> Page[ModelInfo]:
        """Models whose name or a version's description or tag contains ``query``, by name, one page
        at a time, with version counts and aliases (see :mod:`fti.registry.search`)."""
        from fti.registry.search import search_models

        return search_models(self._project, query, offset=offset, limit=limit)

    def search_model_versions(
        self, query: str = "", *, name: str | None = None, feature_view: tuple[str, int] | None = None,
        tag: str | None = None, order_by: str | None = None, offset: int = 0, limit: int = 50,
    ) -> Page[ModelVersion]:  # fmt: skip
        """A page of versions (of model ``name``, from ``feature_view=(name, version)``) matching
        ``query``, ordered by ``"version"``, ``"created_at"`` or ``"metrics.<name>"`` (``asc``/``desc``);
        see :mod:`fti.registry.search`."""
        from fti.registry.search import search_model_versions

        page = search_model_versions(self._project, query, name=name, feature_view=feature_view, tag=tag,
                                     order_by=order_by, offset=offset, limit=limit)  # fmt: skip
        return replace(page, items=[self._bind(mv) for mv in page.items])

    # --- aliases ----------------------------------------------------------------------------
    def set_alias(self, name: str, version: int, alias: str, *, reason: str = "") -> ModelVersion:
        """Point ``alias`` at ``version`` atomically (creating or moving it) and record the change."""
        _aliases.check_alias(alias)
        target = self.get_model(name, version=version)

        def move(conn: Connection) -> None:
            records.set_alias(conn, target.model_id, alias, target.id, target.version, current_user(), reason)

        self._write(move, f"set alias {alias!r} of model {name!r}")
        return target

    def rollback(self, name: str, alias: str = "production", *, reason: str) -> ModelVersion:
        """Move ``alias`` back to the version it held before (from the alias history, see
        :func:`fti.registry.aliases.rollback_target`), recording ``reason``. Deployments following
        ``name@alias`` hot-swap to it at their next poll, enriching with its own feature view version.

        Raises:
            ValidationError: an empty reason. NotFoundError: no such model or alias.
            ConflictError: the alias has no earlier version, or that version was deleted.
        """
        _aliases.check_alias(alias)
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("rollback needs a reason (what went wrong), e.g. reason='p99 doubled'")

        def move_back(conn: Connection) -> ModelVersion:
            model_id = self._require_model(conn, name)
            return records.roll_back(conn, model_id, name, alias, current_user(), reason)

        return self._bind(self._write(move_back, f"roll back {name}@{alias}"))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from model ``name`` (recorded in the history)."""
        _aliases.check_alias(alias)
        with self._catalog.begin() as conn:
            model_id = self._require_model(conn, name)
            records.delete_alias(conn, model_id, name, alias, current_user())

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` of model ``name``."""
        with self._catalog.connect() as conn:
            return records.list_aliases(conn, self._require_model(conn, name))

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every change of the model's aliases (who, when, from, to), oldest first."""
        if alias is not None:
            _aliases.check_alias(alias)
        with self._catalog.connect() as conn:
            return records.history(conn, self._require_model(conn, name), alias)

    def promote(
        self, name: str, version: int, alias: str, *, require: Mapping[str, str | list[str]] | None = None,
        compare_to: str | None = None, evaluation: int | None = None,
    ) -> ModelVersion:  # fmt: skip
        """Move ``alias`` to ``version`` only if it passes the gate (see :mod:`fti.registry.promotion`).

        Args:
            require: Conditions per metric, e.g. ``{"auc": ">= 0.9", "auc@slice": ">= 0.85",
                "demographic_parity_difference": "<= 0.1", "average_precision": ">= baseline"}``;
                judged on the version's latest evaluation (and its registered metrics).
            compare_to: An alias (usually the same one): the candidate's registered metrics must not
                be worse than those of the version it points to. No holder yet = nothing to beat.
            evaluation: Judge this evaluation number instead of the latest.

        Raises:
            PromotionRejectedError: lists each failed condition; the alias does not move.
            ValidationError: a malformed condition or an unknown metric (NotFoundError: evaluation).
        """
        from fti.registry.evaluation import store

        _aliases.check_alias(alias)
        conditions = parse_conditions(require)
        if compare_to is not None:
            _aliases.check_alias(compare_to)
        check_version(evaluation, "evaluation", allow_none=True)
        candidate = self.get_model(name, version=version)

        def gate_and_move(conn: Connection) -> None:
            incumbent = None
            if compare_to is not None:
                held = records.aliased_version(conn, candidate.model_id, compare_to, lock=True)
                if held is not None and held != candidate.version:
                    incumbent = records.find_version(conn, candidate.model_id, name, held)
                    assert incumbent is not None  # the alias row holds it (foreign key RESTRICT)
            # the latest evaluation, or the one asked for (NotFoundError when it does not exist)
            judged = (store.find if evaluation is None else store.get)(conn, candidate, evaluation)
            failed = failures(candidate.ref, candidate.metrics, conditions, evaluation=judged,
                              incumbent=None if incumbent is None else f"{incumbent.ref} ({compare_to})",
                              incumbent_metrics=None if incumbent is None else incumbent.metrics)  # fmt: skip
            if failed:
                raise PromotionRejectedError(
                    f"promotion of {candidate.ref} to {alias!r} refused: " + "; ".join(failed), failed
                )
            note = reason(conditions, compare_to, None if judged is None else judged.number)
            records.set_alias(
                conn, candidate.model_id, alias, candidate.id, candidate.version, current_user(), note
            )

        self._write(gate_and_move, f"promote model {candidate.ref} to {alias!r}")
        return candidate

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(
        self, model: str | ModelRef, *, split: str | None = None, start_time: datetime | None = None,
        end_time: datetime | None = None, slices: list[SliceSpec] | None = None,
        sensitive: list[SliceSpec] | None = None, baseline: str | ModelRef | None = None, min_rows: int = 50,
        label: str | None = None, prefer: str = "fastest",
    ) -> Evaluation:  # fmt: skip
        """Evaluate a model version on its feature view's data (the test split by default): metrics
        overall and per slice, fairness per sensitive feature, a baseline on the same rows; stored
        with the version. See :func:`fti.registry.evaluation.runner.evaluate` for the arguments."""
        from fti.registry.evaluation.runner import evaluate

        return evaluate(self._project, model, split=split, start_time=start_time, end_time=end_time,
                        slices=slices, sensitive=sensitive, baseline=baseline, min_rows=min_rows, label=label,
                        prefer=prefer)  # fmt: skip

    def evaluations(self, model: str | ModelRef) -> list[Evaluation]:
        """The stored evaluations of a model version (``"fraud:4"``, ``"fraud@production"``), oldest first."""
        from fti.registry.evaluation import store

        mv = self.get_model(model)
        with self._catalog.connect() as conn:
            return store.find_all(conn, mv)

    def get_evaluation(self, model: str | ModelRef, number: int | None = None) -> Evaluation:
        """Evaluation ``number`` of a model version (its latest by default); NotFoundError if none."""
        from fti.registry.evaluation import store

        mv = self.get_model(model)
        with self._catalog.connect() as conn:
            return store.get(conn, mv, number)

    # --- delete -----------------------------------------------------------------------------
    def delete_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Hard-delete a version: catalog row and artifact files.

        Raises:
            ConflictError: aliases point to it and ``force`` is False.
        """
        if not isinstance(force, bool):
            raise ValidationError(f"force must be True or False, got {force!r}")
        target = self.get_model(name, version=version)
        from fti.tags import records as tag_records

        def remove(conn: Connection) -> None:
            # an alias set concurrently makes the delete fail on its foreign key (RESTRICT); the
            # retry then sees it here
            pointing = records.aliases_of(conn, target.id)
            if pointing and not force:
                raise ConflictError(
                    f"model {target.ref} is pointed to by alias(es) {pointing}; move them first "
                    "(set_alias) or delete with force=True"
                )
            for alias in pointing:
                records.delete_alias(
                    conn, target.model_id, name, alias, current_user(), f"version {version} deleted"
                )
            # in the same transaction: a catalog id may be reused, and must not inherit old tags
            tag_records.forget(conn, self._project.id, "model_version", target.id)
            records.delete_version(conn, target.id)

        self._write(remove, f"delete model {target.ref}")
        self._store.delete(target.artifact_prefix)

    # --- internals --------------------------------------------------------------------------
    def _write(self, body: Callable[[Connection], T], what: str) -> T:
        """Run ``body`` in one transaction, retrying when a concurrent writer won a unique key."""
        conflict = f"could not {what}: concurrent changes kept conflicting; retry"
        return records.write(self._catalog, body, attempts=3, conflict=conflict)

    def _bind(self, mv: ModelVersion) -> ModelVersion:  # versions call back into their registry
        return replace(mv, registry=self)

    def _aliases_of(self, mv: ModelVersion) -> list[str]:
        with self._catalog.connect() as conn:
            return records.aliases_of(conn, mv.id)

    def _require_model(self, conn: Connection, name: str) -> int:
        check_name(name, "model")
        model_id = records.model_id(conn, self._project.id, name, create=False)
        if model_id is None:
            raise NotFoundError(
                f"model {name!r} not found in project {self._project.name!r} "
                f"(models: {records.model_names(conn, self._project.id) or 'none registered yet'})"
            )
        return model_id
