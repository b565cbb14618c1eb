"""A monitor: one deployment's (or feature group's) data compared with a reference, window by window.

:class:`Monitor` owns its behaviour: :meth:`~Monitor.run` evaluates one window (stream, tests,
performance), stores the run in the catalog and its rows in ``<monitor>_results``, and raises
alerts; :meth:`~Monitor.backfill` runs consecutive past windows. Scheduled monitors run through
the pipeline scheduler as the built-in pipeline ``monitor_<name>`` (retries, history and logs
like any pipeline). Get monitors from ``project.monitoring``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import IntegrityError, ValidationError
from fti.monitoring import records
from fti.monitoring.alerts import AlertSpec, Breach, deliver, parse_conditions
from fti.monitoring.data import MonitoredData
from fti.monitoring.profiles import Profile
from fti.monitoring.results import (
    RESULTS_COLUMNS,
    RESULTS_KEY,
    RESULTS_TIME,
    MonitorResult,
    results_group_name,
)

if TYPE_CHECKING:
    import pandas as pd

    from fti.features.feature_group import FeatureGroup
    from fti.monitoring.records import AlertRecord, MonitorRecord, RunRecord
    from fti.project import Project

log = logging.getLogger("fti.monitoring")

MAX_WINDOWS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def aligned_end(t: datetime, window: timedelta) -> datetime:
    """The latest multiple of ``window`` since the Unix epoch at or before ``t`` (UTC)."""
    steps = (t - _EPOCH) // window
    return _EPOCH + steps * window


def check_time(value: Any, label: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"{label} must be a timezone-aware datetime, e.g. datetime(2026, 1, 1, tzinfo=UTC), got {value!r}"
        )
    return value.astimezone(UTC)


class Monitor:
    """A monitor. Create one with ``project.monitoring.create_monitor(...)``."""

    def __init__(self, project: Project, record: MonitorRecord) -> None:
        self._project = project
        self._record = record

    # --- definition -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def data(self) -> MonitoredData:
        """What it watches: a deployment's inference log or a feature group."""
        return MonitoredData.from_dict(self._record.source)

    @property
    def model(self) -> str | None:
        """The model reference whose training data, predictions and labels it judges."""
        return self._record.model

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self._record.window_seconds)

    @property
    def schedule(self) -> str | None:
        """The cron expression it runs on (None: by hand only)."""
        return None if self._record.schedule is None else str(self._record.schedule.get("cron"))

    @property
    def features(self) -> list[str]:
        return list(self._record.config["features"])

    @property
    def predictions(self) -> list[str]:
        return list(self._record.config["predictions"])

    @property
    def tests(self) -> str | dict[str, list[str]]:
        tests = self._record.config.get("tests", "auto")
        return tests if isinstance(tests, str) else {k: list(v) for k, v in tests.items()}

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self._record.config.get("thresholds") or {})

    @property
    def alert(self) -> AlertSpec | None:
        spec = self._record.config.get("alert")
        return None if spec is None else AlertSpec.from_dict(spec)

    @property
    def pipeline(self) -> str | None:
        """The built-in pipeline that schedules it (``fti pipelines runs <name>``)."""
        return self._record.pipeline

    @property
    def results_group(self) -> str:
        """The feature group its rows are written to."""
        return results_group_name(self.name)

    @property
    def description(self) -> str:
        return self._record.description

    def __repr__(self) -> str:
        return f"Monitor(name={self.name!r}, {self.data.describe()})"

    def _repr_html_(self) -> str:
        """The monitor in a notebook: what it watches and its last windows (status, drift)."""
        from fti._display import Card

        card = Card("Monitor", repr(self.name))
        card.fields = [
            ("watches", self.data.describe()),
            ("model", self.model),
            ("window", self.window),
            ("schedule", self.schedule or "run by hand"),
            ("columns", [*self.features, *self.predictions]),
            ("results", self.results_group),
        ]
        windows = [[r.window_start, r.status, r.rows, r.drifted] for r in self.runs(limit=20)]
        card.tables = [("last windows", ["window start", "status", "rows", "drifted"], windows)]
        return card.html()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (CLI ``--json`` and the UI)."""
        config = self._record.config
        return {
            "name": self.name,
            "source": self.data.to_dict(),
            "model": self.model,
            "window_seconds": self._record.window_seconds,
            "schedule": self._record.schedule,
            "pipeline": self.pipeline,
            "features": self.features,
            "predictions": self.predictions,
            "tests": self.tests,
            "thresholds": self.thresholds,
            "slices": config.get("slices") or [],
            "performance": config.get("performance") or {},
            "alert": config.get("alert"),
            "reference": {k: v for k, v in self._record.reference.items() if k != "profiles"},
            "results_group": self.results_group,
            "description": self.description,
            "created_at": self._record.created_at.isoformat(),
        }

    # --- reference ------------------------------------------------------------------------
    def reference(self) -> Profile:
        """The reference profile runs compare with now: for a training-data reference that of the
        model version the monitor's model reference resolves to (profiled once per version)."""
        ref = self._record.reference
        if ref["kind"] == "window":
            return load_profile(self._project, ref["profile"])
        assert self.model is not None
        mv = self._project.model_registry.get_model(self.model)
        key = f"{mv.name}:{mv.version}"
        stored = (ref.get("profiles") or {}).get(key)
        if stored is not None:
            return load_profile(self._project, stored)
        from fti.monitoring.reference import ModelReference

        log.info("monitor %s: profiling the training data of %s", self.name, key)
        profile = ModelReference(self._project, mv, ref.get("training_dataset_version")).profile(
            self._record.config["feature_space"], self.features
        )
        stored = store_profile(self._project, self.name, key, profile)
        fresh = records.find_monitor(self._project.backends.catalog, self._project.id, self.name)
        assert fresh is not None
        profiles = {**(fresh.reference.get("profiles") or {}), key: stored}
        records.update_monitor(
            self._project.backends.catalog, fresh.id, reference={**fresh.reference, "profiles": profiles}
        )
        self._record = (
            records.find_monitor(self._project.backends.catalog, self._project.id, self.name) or fresh
        )
        return profile

    # --- runs -----------------------------------------------------------------------------
    def last_window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The most recent complete window (windows are multiples of ``window`` since the epoch)."""
        end = aligned_end(now or datetime.now(UTC), self.window)
        return end - self.window, end

    def run(
        self, start: datetime | None = None, end: datetime | None = None, *, trigger: str = "manual"
    ) -> MonitorResult:
        """Evaluate ``[start, end)`` (default: the most recent complete window).

        Reads the window as a stream, runs every column's drift tests and data-quality checks,
        CBPE and (with labels) realized performance; records the run, writes its rows to
        ``<monitor>_results`` and raises the alerts it calls for. An empty window gives a
        ``"no_data"`` result, never drift.

        Raises:
            ValidationError: bad times (naive, or end not after start).
        """
        if start is None and end is None:
            start, end = self.last_window()
        if start is None or end is None:
            raise ValidationError("pass both start and end (or neither, for the most recent window)")
        start, end = check_time(start, "start"), check_time(end, "end")
        if end <= start:
            raise ValidationError(f"end {end.isoformat()} must be after start {start.isoformat()}")
        from fti.monitoring import require_scipy
        from fti.monitoring.evaluation import evaluate

        require_scipy()
        started = datetime.now(UTC)
        catalog = self._project.backends.catalog
        try:
            profile = self.reference()
            result = evaluate(self._project, self.data, profile, self._record.config, self.name, start, end)
        except Exception as exc:
            records.record_run(
                catalog, self._record.id, window_start=start, window_end=end, trigger=trigger, status="failed",
                rows=0, dataset_drift=False, drifted=[], summary={}, error=f"{type(exc).__name__}: {exc}",
                started_at=started, finished_at=datetime.now(UTC),
            )  # fmt: skip
            raise
        run = records.record_run(
            catalog,
            self._record.id,
            window_start=start,
            window_end=end,
            trigger=trigger,
            status=result.status,
            rows=result.rows,
            dataset_drift=result.dataset_drift,
            drifted=result.drifted_columns,
            summary=_summary(result),
            error=None,
            started_at=started,
            finished_at=datetime.now(UTC),
        )
        result = _with(result, run_id=run.id)
        self._results_group().insert(result.to_table(), statistics=False)
        alerts = self._alerts(run, result, profile)
        return _with(result, alerts=alerts)

    def backfill(self, start: datetime, end: datetime) -> list[MonitorResult]:
        """Run every window of ``[start, end)``, oldest first (windows of ``window`` length,
        aligned to the epoch; the first and last are clipped to the range)."""
        start, end = check_time(start, "start"), check_time(end, "end")
        if end <= start:
            raise ValidationError(f"backfill end {end.isoformat()} must be after start {start.isoformat()}")
        edges = [start]
        t = aligned_end(start, self.window) + self.window
        while t < end:
            edges.append(t)
            t += self.window
            if len(edges) > MAX_WINDOWS:
                raise ValidationError(f"the range spans more than {MAX_WINDOWS:,} windows of {self.window}")
        edges.append(end)
        return [self.run(a, b, trigger="backfill") for a, b in itertools.pairwise(edges)]

    def runs(
        self, limit: int | None = 50, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[RunRecord]:
        """Recorded runs, newest window first."""
        return records.list_runs(
            self._project.backends.catalog, self._record.id, limit=limit, start=start, end=end
        )

    def alerts(self, limit: int | None = 50) -> list[AlertRecord]:
        """Recorded alerts (delivered and suppressed), newest first."""
        return records.list_alerts(
            self._project.backends.catalog, self._project.id, monitor_id=self._record.id, limit=limit
        )

    def results(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """The stored result rows of windows starting in ``[start, end)``, oldest window first."""
        import pyarrow as pa

        from fti.storage.offline.scan import iter_batches, table_source
        from fti.types import arrow_type

        schema = pa.schema([(n, arrow_type(d)) for n, d in RESULTS_COLUMNS])
        group = self._results_group()
        source = table_source(self._project.backends.offline, group.table_name)
        batches = (
            []
            if source is None
            else list(iter_batches(source, schema.names, time_column=RESULTS_TIME, start=start, end=end))
        )
        frame: pd.DataFrame = pa.Table.from_batches(batches, schema=schema).to_pandas()
        return frame.sort_values(["window_start", "kind", "feature", "test"], ignore_index=True)

    # --- lifecycle ------------------------------------------------------------------------
    def pause(self) -> None:
        """Stop its schedule (runs by hand still work)."""
        if self.pipeline is not None:
            self._project.pipelines.pause(self.pipeline)

    def resume(self) -> None:
        if self.pipeline is not None:
            self._project.pipelines.resume(self.pipeline)

    def delete(self) -> None:
        """Delete the monitor, its runs and alerts and its reference profiles; its schedule is
        paused (the pipeline's run history stays). The results group is kept."""
        self.pause()
        self._project.backends.artifacts.delete(f"monitoring/{self._project.name}/{self.name}/")
        records.delete_monitor(self._project.backends.catalog, self._record.id)

    # --- internals ------------------------------------------------------------------------
    def _results_group(self) -> FeatureGroup:
        from fti.types import Feature

        return self._project.feature_store.get_or_create_feature_group(
            self.results_group,
            1,
            primary_key=list(RESULTS_KEY),
            event_time=RESULTS_TIME,
            features=[Feature(n, d) for n, d in RESULTS_COLUMNS],
            description=f"Results of monitor {self.name!r}: one row per window, column and test.",
        )

    def _alerts(self, run: RunRecord, result: MonitorResult, profile: Profile) -> list[AlertRecord]:
        spec = self.alert
        if spec is None or result.status != "ok":
            return []
        breaches: list[Breach] = []
        drifted = result.drifted_columns
        if (spec.drift == "dataset" and result.dataset_drift) or (spec.drift == "any" and drifted):
            hits = drifted
        elif isinstance(spec.drift, tuple):
            hits = [c for c in drifted if c in spec.drift]
        else:
            hits = []
        if hits:
            details = [
                o.to_dict() for o in result.outcomes if o.kind == "drift" and o.drifted and o.column in hits
            ]
            breaches.append(Breach("drift", details))
        details = []
        for condition in parse_conditions(self._record.config.get("performance")):
            for kind in ("realized", "estimated"):  # realized when labels exist, else the estimate
                value = result.metric(condition.metric, kind)
                if value is None:
                    continue
                reference = ((profile.model or {}).get("test_metrics") or {}).get(condition.metric)
                if condition.breached(value, reference):
                    details.append(
                        {
                            "condition": condition.text(),
                            "metric": condition.metric,
                            "kind": kind,
                            "value": value,
                            "reference": reference,
                        }
                    )
                break
        if details:
            breaches.append(Breach("performance", details))
        extra = {
            "dataset_drift": result.dataset_drift,
            "drift_share": result.drift_share,
            "model": self.model,
        }
        return [deliver(self._project, self._record, run, spec, breach, extra) for breach in breaches]


def _with(result: MonitorResult, **changes: Any) -> MonitorResult:
    from dataclasses import replace

    return replace(result, **changes)


def _summary(result: MonitorResult) -> dict[str, Any]:
    """What the catalog keeps of a run: each column's first drift test and the performance."""
    columns: dict[str, Any] = {}
    for o in result.outcomes:
        if o.kind == "drift" and o.column not in columns and o.statistic == o.statistic:
            columns[o.column] = {
                "test": o.test,
                "statistic": o.statistic,
                "threshold": o.threshold,
                "p_value": o.p_value,
                "drifted": o.drifted,
            }
    performance = {
        f"{p.kind}:{p.metric}": p.value for p in result.performance if p.model_version == 0 and not p.slice
    }
    return {"columns": columns, "drift_share": result.drift_share, "performance": performance}


def store_profile(project: Project, monitor: str, key: str, profile: Profile) -> dict[str, str]:
    """Store a reference profile as a JSON artifact; returns its key and SHA-256."""
    data = json.dumps(profile.to_dict(), separators=(",", ":")).encode()
    slug = key.replace(":", "_v")
    artifact = f"monitoring/{project.name}/{monitor}/reference-{slug}.json"
    digest = project.backends.artifacts.put_bytes(artifact, data)
    return {"key": artifact, "sha256": digest}


def load_profile(project: Project, stored: dict[str, str]) -> Profile:
    """A stored reference profile, its digest checked."""
    data = project.backends.artifacts.get_bytes(stored["key"])
    if hashlib.sha256(data).hexdigest() != stored["sha256"]:
        raise IntegrityError(
            f"the reference profile {stored['key']!r} does not match its recorded SHA-256; it was modified "
            "after it was stored"
        )
    return Profile.from_dict(json.loads(data))
