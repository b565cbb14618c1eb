"""What one monitor run found, and its rows in the ``<monitor>_results`` feature group.

Each run writes one row per (column, test) -- drift tests and data-quality checks --, one
``dataset`` row (the share of drifted columns) and one row per performance metric (realized
from labels, estimated by CBPE; overall, per model version and per slice). The group is keyed by
``feature``, ``test``, ``slice`` and ``model_version`` with ``window_start`` as event time, so
re-running a window replaces its rows, every window stays queryable and time-travelled, and the
UI can plot a column's statistic over windows. An empty window writes ``status = "no_data"`` rows
(never a drift).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.monitoring.drift import Outcome

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from fti.monitoring.records import AlertRecord

RESULTS_SUFFIX = "_results"
RESULTS_KEY = ("feature", "test", "slice", "model_version")
RESULTS_TIME = "window_start"
RESULTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("window_start", "timestamp"),
    ("window_end", "timestamp"),
    ("feature", "string"),
    ("test", "string"),
    ("kind", "string"),
    ("role", "string"),
    ("slice", "string"),
    ("model_version", "int64"),
    ("statistic", "float64"),
    ("threshold", "float64"),
    ("p_value", "float64"),
    ("drifted", "bool"),
    ("status", "string"),
    ("reference_rows", "int64"),
    ("current_rows", "int64"),
    ("reason", "string"),
    ("run_id", "int64"),
)
"""The columns of ``<monitor>_results`` with their fti dtypes."""


def results_group_name(monitor: str) -> str:
    return f"{monitor}{RESULTS_SUFFIX}"


@dataclass(frozen=True)
class PerformanceValue:
    """One performance metric of a window."""

    metric: str
    value: float | None
    kind: str
    """``"realized"`` (from labels) or ``"estimated"`` (CBPE)."""
    rows: int
    """Labelled rows (realized) or scored rows (estimated)."""
    model_version: int = 0
    """0 for all versions together."""
    slice: str = ""
    """``""`` for all rows, else e.g. ``"category=travel"`` or ``"amount=[50, 200)"``."""
    reference: float | None = None
    """The model's value on its test split."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "kind": self.kind,
            "rows": self.rows,
            "model_version": self.model_version,
            "slice": self.slice,
            "reference": self.reference,
        }


@dataclass(frozen=True)
class MonitorResult:
    """The result of a monitor run over one window (``mon.run(...)``)."""

    monitor: str
    window_start: datetime
    window_end: datetime
    status: str
    """``"ok"``, or ``"no_data"`` when the window holds no rows."""
    rows: int
    reference_rows: int
    outcomes: list[Outcome]
    """Every drift test and data-quality check, per column."""
    roles: dict[str, str]
    """Column -> ``"feature"`` or ``"prediction"``."""
    dataset_drift: bool
    drift_share: float
    performance: list[PerformanceValue] = field(default_factory=list)
    run_id: int | None = None
    alerts: list[AlertRecord] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[str]:
        """Columns (features and predictions) with at least one drifted test."""
        return list(dict.fromkeys(o.column for o in self.outcomes if o.kind == "drift" and o.drifted))

    @property
    def drifted_features(self) -> list[str]:
        return [c for c in self.drifted_columns if self.roles.get(c) == "feature"]

    @property
    def drifted_predictions(self) -> list[str]:
        return [c for c in self.drifted_columns if self.roles.get(c) == "prediction"]

    @property
    def failed_checks(self) -> list[Outcome]:
        """Data-quality checks that failed."""
        return [o for o in self.outcomes if o.kind == "quality" and o.drifted]

    def metric(
        self, name: str, kind: str = "realized", model_version: int = 0, slice: str = ""
    ) -> float | None:
        """One performance value (None when not computed)."""
        for p in self.performance:
            if (p.metric, p.kind, p.model_version, p.slice) == (name, kind, model_version, slice):
                return p.value
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "status": self.status,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_features": self.drifted_features,
            "drifted_predictions": self.drifted_predictions,
            "outcomes": [{**o.to_dict(), "role": self.roles.get(o.column, "")} for o in self.outcomes],
            "performance": [p.to_dict() for p in self.performance],
            "run_id": self.run_id,
            "alerts": [a.to_dict() for a in self.alerts],
        }

    def _share_reason(self) -> str:
        features = [c for c, role in self.roles.items() if role == "feature"]
        counted, what = (features, "features") if features else (list(self.roles), "columns")
        drifted = [c for c in self.drifted_columns if c in counted]
        return f"{len(drifted)} of {len(counted)} {what} drifted (dataset drift at >= 50 %)"

    def to_table(self) -> pa.Table:
        """The rows this run writes to ``<monitor>_results``."""
        import pyarrow as pa

        from fti.types import arrow_type

        rows: list[dict[str, Any]] = []
        base = {
            "window_start": self.window_start,
            "window_end": self.window_end,
            "slice": "",
            "model_version": 0,
            "status": self.status,
            "reference_rows": self.reference_rows,
            "run_id": self.run_id or 0,
        }
        for o in self.outcomes:
            rows.append(
                {
                    **base,
                    "feature": o.column,
                    "test": o.test,
                    "kind": o.kind,
                    "role": self.roles.get(o.column, ""),
                    "statistic": _finite(o.statistic),
                    "threshold": o.threshold,
                    "p_value": o.p_value,
                    "drifted": o.drifted,
                    "current_rows": self.rows,
                    "reason": o.reason,
                }
            )
        rows.append(
            {
                **base,
                "feature": "__dataset__",
                "test": "drift_share",
                "kind": "dataset",
                "role": "",
                "statistic": self.drift_share,
                "threshold": 0.5,
                "p_value": None,
                "drifted": self.dataset_drift,
                "current_rows": self.rows,
                "reason": self._share_reason(),
            }
        )
        for p in self.performance:
            rows.append(
                {
                    **base,
                    "feature": p.metric,
                    "test": p.kind,
                    "kind": "performance",
                    "role": "",
                    "slice": p.slice,
                    "model_version": p.model_version,
                    "statistic": _finite(p.value),
                    "threshold": p.reference,
                    "p_value": None,
                    "drifted": False,
                    "current_rows": p.rows,
                    "reason": "reference = the model's value on its test split"
                    if p.reference is not None
                    else "",
                }
            )
        return pa.table(
            {name: pa.array([r[name] for r in rows], arrow_type(dtype)) for name, dtype in RESULTS_COLUMNS}
        )

    def to_frame(self) -> pd.DataFrame:
        """The run's rows as a pandas DataFrame (as stored in ``<monitor>_results``)."""
        frame: pd.DataFrame = self.to_table().to_pandas()
        return frame


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
