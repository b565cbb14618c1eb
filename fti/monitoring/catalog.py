"""The monitors of a project (``project.monitoring``): create, get and list them, attach labels.

A :class:`~fti.monitoring.monitors.Monitor` owns everything else (run, backfill, results,
alerts). Creating one checks every argument, profiles the reference (so a run never reads the
training data again) and, with a ``schedule``, registers the built-in pipeline
``monitor_<name>`` with the pipeline scheduler; a bad argument writes nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti._names import check_name
from fti.errors import AlreadyExistsError, NotFoundError, ValidationError
from fti.monitoring import drift, records
from fti.monitoring.alerts import AlertSpec, parse_conditions
from fti.monitoring.data import MonitoredData, resolve
from fti.monitoring.monitors import Monitor, store_profile
from fti.monitoring.profiles import CATEGORICAL_DTYPES, NUMERIC_DTYPES, Profile

if TYPE_CHECKING:
    from fti.monitoring.abtest import VariantReadout
    from fti.monitoring.labels import LabelsResult
    from fti.monitoring.records import AlertRecord
    from fti.project import Project

MAX_NAME = 63 - len("_results")
PIPELINE_PREFIX = "monitor_"
PIPELINE_MODULE = "fti.monitoring.pipeline"


class Monitoring:
    """The monitors of one project. Get it as ``project.monitoring``."""

    def __init__(self, project: Project) -> None:
        self._project = project

    def create_monitor(
        self,
        name: str,
        *,
        deployment: str | None = None,
        feature_group: Any = None,
        feature_group_version: int | None = None,
        model: str | None = None,
        window: str | float | Any = "1h",
        schedule: str | None = None,
        timezone: str = "UTC",
        features: Sequence[str] | None = None,
        tests: str | Mapping[str, str | Sequence[str]] = "auto",
        thresholds: Mapping[str, float] | None = None,
        reference: int | tuple[datetime, datetime] | None = None,
        slices: Sequence[str | Mapping[str, Sequence[float]]] | None = None,
        performance: Mapping[str, str] | None = None,
        alert: AlertSpec | None = None,
        description: str = "",
    ) -> Monitor:
        """Create a monitor of a deployment's inference log or of a feature group.

        Args:
            name: 1-55 lowercase letters, digits or ``_``; results go to ``<name>_results``.
            deployment: Monitor this deployment's inference log (the untransformed features as
                served, and the predictions).
            feature_group: Or this feature group (name or object): batch predictions, or any
                group with an event time.
            feature_group_version: Its version (default: the latest).
            model: The model whose training data is the reference and whose labels and
                performance are judged (default for a deployment: the model it serves; for a
                feature group, required unless ``reference`` is a window).
            window: The length of a window (``"1h"``, ``"1d"``, seconds).
            schedule: A cron expression (``"5 * * * *"``): each fire evaluates the window that
                closed before it, through the pipeline scheduler. None: run by hand.
            timezone: The schedule's time zone.
            features: The columns to monitor (default: every model input in the data, plus the
                predictions).
            tests: ``"auto"``, one test for every column, or ``{column: test or [tests]}``
                (``ks``, ``chi2``, ``ztest``, ``psi``, ``jensenshannon``, ``wasserstein``).
            thresholds: By column or by test/check name, e.g. ``{"psi": 0.2, "amount": 0.05}``.
            reference: None (the model's training dataset, its train split), a training-dataset
                version of the model's feature view, or a ``(start, end)`` window of the data.
            slices: Columns to slice realized performance by: a name (one slice per frequent
                value) or ``{column: [edges]}`` (numeric bins).
            performance: Alert conditions on performance, e.g. ``{"roc_auc": "< 0.85"}`` or
                ``{"accuracy": "drop > 0.05"}`` (against the model's test split).
            alert: ``fti.alert(...)``: when and how to alert (None: record results only).
            description: Free text.

        Raises:
            ValidationError, NotFoundError, AlreadyExistsError: a bad argument, naming it;
                nothing is written.
        """
        from fti.monitoring import require_scipy
        from fti.pipelines.schedules import check_cron, check_timezone, parse_duration

        require_scipy()
        project = self._project
        catalog = project.backends.catalog
        check_name(name, "monitor")
        if len(name) > MAX_NAME:
            raise ValidationError(f"monitor name {name!r} is too long: use at most {MAX_NAME} characters")
        if records.find_monitor(catalog, project.id, name) is not None:
            raise AlreadyExistsError(
                f"monitor {name!r} already exists; get it with project.monitoring.get_monitor({name!r})"
            )
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {description!r}")
        data = resolve(project, deployment, feature_group, feature_group_version)
        span = parse_duration(window, "window")
        cron = None if schedule is None else check_cron(schedule)
        check_timezone(timezone)
        if alert is not None and not isinstance(alert, AlertSpec):
            raise ValidationError(f"alert must be fti.alert(...), got {alert!r}")
        conditions = parse_conditions(performance)
        if model is not None:
            if not isinstance(model, str):
                raise ValidationError(
                    f"model must be a model reference such as 'fraud@production', got {model!r}"
                )
            project.model_registry.get_model(model)  # NotFoundError lists the models
        elif data.kind == "deployment":
            model = project.serving.get(data.name).model
        feature_space, window_ref, td_version = self._reference_kind(data, model, reference)
        if features is not None and (
            isinstance(features, str) or not all(isinstance(f, str) for f in features)
        ):
            raise ValidationError(f"features must be a list of column names, got {features!r}")
        if window_ref is not None:
            profile = self._window_profile(data, features, window_ref)
            stored_reference: dict[str, Any] = {
                "kind": "window",
                "start": window_ref[0].isoformat(),
                "end": window_ref[1].isoformat(),
            }
        else:
            from fti.monitoring.reference import ModelReference

            assert model is not None
            mv = project.model_registry.get_model(model)
            profile = ModelReference(project, mv, td_version).profile(feature_space, None)
            stored_reference = {
                "kind": "training",
                "training_dataset_version": td_version,
                "model_version": mv.version,
            }
        columns = self._columns(data, profile, features)
        if conditions and not (profile.model or {}).get("task"):
            raise ValidationError(
                "performance conditions need a model with a label: pass model=... (and a training-data reference)"
            )
        config = {
            "features": columns[0],
            "predictions": columns[1],
            "feature_space": feature_space,
            "tests": _check_tests(tests, profile, [*columns[0], *columns[1]]),
            "thresholds": _check_thresholds(thresholds, [*columns[0], *columns[1]]),
            "slices": _check_slices(slices, data.schema(project) or profile.columns),
            "performance": dict(performance or {}),
            "alert": None if alert is None else alert.to_dict(),
        }
        # every argument is checked: now write (the profile, the record, the schedule)
        if window_ref is not None:
            stored_reference["profile"] = store_profile(project, name, "window", profile)
        else:
            key = f"{profile.model['name']}:{profile.model['version']}" if profile.model else "model"
            stored_reference["profiles"] = {key: store_profile(project, name, key, profile)}
        pipeline = None if cron is None else f"{PIPELINE_PREFIX}{name}"
        record = records.insert_monitor(
            catalog,
            project.id,
            name,
            source=data.to_dict(),
            model=model,
            window_seconds=span.total_seconds(),
            schedule=None if cron is None else {"cron": cron, "timezone": timezone},
            config=config,
            reference=stored_reference,
            pipeline=pipeline,
            description=description,
        )
        if pipeline is not None:
            try:
                self._schedule(pipeline, name, cron, timezone)  # type: ignore[arg-type]
            except BaseException:
                records.delete_monitor(catalog, record.id)
                project.backends.artifacts.delete(f"monitoring/{project.name}/{name}/")
                raise
        return Monitor(project, record)

    def get_monitor(self, name: str) -> Monitor:
        """The monitor ``name``; NotFoundError (listing the monitors) otherwise."""
        check_name(name, "monitor")
        record = records.find_monitor(self._project.backends.catalog, self._project.id, name)
        if record is None:
            known = [m.name for m in self.list_monitors()]
            raise NotFoundError(
                f"monitor {name!r} not found in project {self._project.name!r} (monitors: {known or 'none'}); "
                "create it with project.monitoring.create_monitor(...) or `fti monitor create`"
            )
        return Monitor(self._project, record)

    def list_monitors(self) -> builtins.list[Monitor]:
        """Every monitor of the project, by name."""
        return [
            Monitor(self._project, r)
            for r in records.list_monitors(self._project.backends.catalog, self._project.id)
        ]

    def log_labels(
        self,
        target: str,
        frame: Any,
        *,
        label: str | None = None,
        unknown: str = "error",
        model: str | None = None,
    ) -> LabelsResult:
        """Attach labels that arrived later to the predictions of deployment (or predictions
        feature group) ``target``; see :mod:`fti.monitoring.labels`.

        Args:
            target: A deployment name or a predictions feature group name.
            frame: pandas/polars/Arrow with ``request_id`` (and ``row``), or the key column(s)
                and event time of the monitored data, plus the label column.
            label: The label column (default: the model's label name, or the only other column).
            unknown: Keys that match no logged prediction: ``"error"`` (refuse all), ``"skip"``
                or ``"keep"`` (store them for predictions that are logged later).
            model: The model of a feature-group target (default: that of a monitor on it).
        """
        from fti.monitoring.labels import log_labels

        return log_labels(self._project, target, frame, label=label, unknown=unknown, model=model)

    def compare(
        self, deployment: str, *, prediction: str = "predict", start: datetime | None = None,
        end: datetime | None = None, alpha: float = 0.05,
    ) -> builtins.list[VariantReadout]:  # fmt: skip
        """A/B readout of ``deployment``'s variants: server figures, and realized accuracy (or MAE)
        from the labels logged for it, with 95 % intervals and a test against the champion (see
        :mod:`fti.monitoring.abtest`)."""
        from fti.monitoring.abtest import compare

        return compare(self._project, deployment, prediction=prediction, start=start, end=end, alpha=alpha)

    def alerts(self, monitor: str | None = None, limit: int | None = 50) -> builtins.list[AlertRecord]:
        """Alerts of every monitor (or of ``monitor``), newest first."""
        monitor_id = None if monitor is None else self.get_monitor(monitor)._record.id
        return records.list_alerts(
            self._project.backends.catalog, self._project.id, monitor_id=monitor_id, limit=limit
        )

    def latest_statistics(self) -> builtins.list[dict[str, Any]]:
        """Per monitor and column, the first drift test's statistic in the monitor's latest
        evaluated window (what the model server exports to Prometheus). One catalog query."""
        out: builtins.list[dict[str, Any]] = []
        for name, (record, run) in sorted(
            records.latest_runs(self._project.backends.catalog, self._project.id).items()
        ):
            base = {
                "monitor": name,
                "source_kind": record.source["kind"],
                "source": record.source["name"],
                "window_start": run.window_start,
                "window_end": run.window_end,
                "status": run.status,
                "dataset_drift": run.dataset_drift,
            }
            for column, info in (run.summary.get("columns") or {}).items():
                out.append({**base, "column": column, **info})
            if not run.summary.get("columns"):
                out.append({**base, "column": None})
        return out

    # --- checks ---------------------------------------------------------------------------
    def _reference_kind(
        self, data: MonitoredData, model: str | None, reference: Any
    ) -> tuple[str, tuple[datetime, datetime] | None, int | None]:
        """(feature space, reference window, training-dataset version)."""
        from fti.monitoring.reference import check_window

        feature_space = "raw"
        if data.kind == "deployment" and not self._project.serving.get(data.name).spec.enrich:
            feature_space = "transformed"  # a plain deployment's clients send the model's inputs
        if reference is None or (isinstance(reference, int) and not isinstance(reference, bool)):
            if model is None:
                raise ValidationError(
                    f"a monitor of {data.describe()} needs model='<name>@<alias>' (whose training data is the "
                    "reference) or reference=(start, end), a window of the data itself"
                )
            if reference is not None and reference < 1:
                raise ValidationError(f"reference training-dataset version must be >= 1, got {reference}")
            return feature_space, None, reference
        return feature_space, check_window(reference), None

    def _window_profile(
        self, data: MonitoredData, features: Sequence[str] | None, window: tuple[datetime, datetime]
    ) -> Profile:
        from fti.monitoring.reference import window_profile

        schema = data.schema(self._project)
        if not schema:
            raise ValidationError(
                f"{data.describe()} has no data yet, so a window of it cannot be the reference"
            )
        skip = set(data.key_columns(self._project))
        candidates = {
            n: d for n, d in schema.items() if n not in skip and d in (*NUMERIC_DTYPES, *CATEGORICAL_DTYPES)
        }
        if features is not None:
            unknown = [f for f in features if f not in candidates]
            if unknown:
                raise ValidationError(
                    f"unknown feature(s) {unknown} of {data.describe()}; it has {sorted(candidates)}"
                )
            candidates = {f: candidates[f] for f in features}
        outputs = {n for n in candidates if n.startswith(("predict", "proba_"))}
        columns = {n: (d, "prediction" if n in outputs else "feature") for n, d in candidates.items()}
        return window_profile(self._project, data, columns, *window)

    def _columns(
        self, data: MonitoredData, profile: Profile, features: Sequence[str] | None
    ) -> tuple[list[str], list[str]]:
        """The monitored (feature, prediction) columns: the profile's columns that the data has
        (every one for a deployment that has not logged yet), restricted to ``features``."""
        schema = data.schema(self._project)
        present = [
            c
            for c, ref in profile.columns.items()
            if not schema or any(n in schema for n in (c, *ref.aliases))
        ]
        if features is not None:
            unknown = [f for f in features if f not in profile.columns]
            if unknown:
                raise ValidationError(
                    f"unknown feature(s) {unknown}: the monitored columns of {data.describe()} are {sorted(present)}"
                )
            present = [c for c in present if c in features]
        chosen_features = [c for c in present if profile.columns[c].role == "feature"]
        chosen_predictions = [c for c in present if profile.columns[c].role == "prediction"]
        if features is None and (profile.model or {}).get("task") == "binary":
            # a binary classifier's two probabilities mirror each other: monitor the positive one
            chosen_predictions = [c for c in chosen_predictions if c != "predict_proba_0"]
        if not chosen_features and not chosen_predictions:
            raise ValidationError(
                f"{data.describe()} shares no column with the reference ({sorted(profile.columns)}); choose "
                "the model whose features or predictions it holds, or reference=(start, end)"
            )
        return chosen_features, chosen_predictions

    def _schedule(self, pipeline: str, monitor: str, cron: str, timezone: str) -> None:
        from fti.pipelines.definitions import PipelineSpec, Signature
        from fti.pipelines.schedules import Schedule

        spec = PipelineSpec(
            name=pipeline,
            kind="monitoring",
            function="run_monitor",
            schedule=Schedule(cron=cron, timezone=timezone),
            trigger=None,
            retries=2,
            retry_backoff=60.0,
            timeout=3600.0,
            concurrency="forbid",
            missed="latest",
            signature=Signature(("start", "end"), (), False, True, False, True),
            description=f"Runs monitor {monitor!r} on the window that closed before each fire time.",
        )
        pipelines = self._project.pipelines
        pipelines.deploy_builtin(spec, PIPELINE_MODULE)
        if pipelines.get(pipeline).paused:  # re-created after a delete paused it
            pipelines.resume(pipeline)


def _check_tests(tests: Any, profile: Profile, columns: list[str]) -> str | dict[str, list[str]]:
    if isinstance(tests, str):
        if tests == "auto":
            return "auto"
        for column in columns:
            drift.check_test(tests, column, profile.columns[column])
        return {column: [tests] for column in columns}
    if not isinstance(tests, Mapping):
        raise ValidationError(f"tests must be 'auto', a test name or {{column: test}}, got {tests!r}")
    out: dict[str, list[str]] = {}
    for column, chosen in tests.items():
        if column not in columns:
            raise ValidationError(
                f"tests name unknown column {column!r}; the monitored columns are {columns}"
            )
        names = (
            [chosen] if isinstance(chosen, str) else list(chosen) if isinstance(chosen, Sequence) else None
        )
        if not names:
            raise ValidationError(f"tests[{column!r}] must be a test name or a list of them, got {chosen!r}")
        out[column] = [
            n if n == "auto" else drift.check_test(n, column, profile.columns[column]) for n in names
        ]
    return out


def _check_thresholds(thresholds: Any, columns: list[str]) -> dict[str, float]:
    if thresholds is None:
        return {}
    if not isinstance(thresholds, Mapping):
        raise ValidationError(
            f"thresholds must be a dict of column or test name -> number, got {thresholds!r}"
        )
    out = {}
    for key, value in thresholds.items():
        if key not in columns and key not in drift.DEFAULT_THRESHOLDS:
            raise ValidationError(
                f"thresholds name {key!r}, which is neither a monitored column ({columns}) nor a test or check "
                f"({', '.join(drift.DEFAULT_THRESHOLDS)})"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValidationError(f"threshold {key!r} must be a number > 0, got {value!r}")
        if key in drift.P_VALUE_TESTS and value >= 1:
            raise ValidationError(
                f"threshold {key!r} is a significance level: use a number between 0 and 1, got {value!r}"
            )
        out[key] = float(value)
    return out


def _check_slices(slices: Any, known: Mapping[str, Any]) -> list[dict[str, Any]]:
    if slices is None:
        return []
    if isinstance(slices, str | Mapping) or not isinstance(slices, Sequence):
        raise ValidationError(f"slices must be a list of column names or {{column: [edges]}}, got {slices!r}")
    out: list[dict[str, Any]] = []
    for item in slices:
        pairs = (
            [(item, None)]
            if isinstance(item, str)
            else list(item.items())
            if isinstance(item, Mapping)
            else None
        )
        if pairs is None:
            raise ValidationError(f"a slice is a column name or {{column: [edges]}}, got {item!r}")
        for column, edges in pairs:
            if column not in known:
                raise ValidationError(
                    f"slice column {column!r} is not in the monitored data ({sorted(known)})"
                )
            if edges is not None:
                if (
                    isinstance(edges, str)
                    or not isinstance(edges, Sequence)
                    or not edges
                    or not all(isinstance(e, int | float) and not isinstance(e, bool) for e in edges)
                    or list(edges) != sorted(set(edges))
                ):
                    raise ValidationError(
                        f"slice edges of {column!r} must be increasing numbers, got {edges!r}"
                    )
                edges = [float(e) for e in edges]
            out.append({"column": column, "edges": edges})
    return out
