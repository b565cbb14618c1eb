"""What an evaluation found, as stored with the model version: figures overall, per slice, per
sensitive feature, and the baseline's figures on the same rows; and its text report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fti.registry.evaluation.metrics import FAIRNESS_METRICS, GROUP_METRICS, HEADLINE


@dataclass(frozen=True)
class SliceResult:
    """The rows whose ``feature`` is ``value``: how many, and the metrics on them.

    ``gated`` is False for a slice with fewer than the evaluation's ``min_rows`` rows: reported,
    never judged by an ``@slice`` condition. ``baseline`` holds the baseline's metrics on the same
    rows (None without a baseline).
    """

    feature: str
    value: str
    rows: int
    metrics: dict[str, float]
    gated: bool
    baseline: dict[str, float] | None = None

    @property
    def name(self) -> str:
        """``category=travel``."""
        return f"{self.feature}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": self.value,
            "rows": self.rows,
            "metrics": self.metrics,
            "gated": self.gated,
            "baseline": self.baseline,
        }


@dataclass(frozen=True)
class GroupResult:
    """One group of a sensitive feature: its rows and rates (see ``metrics.GROUP_METRICS``)."""

    value: str
    rows: int
    positives: int
    metrics: dict[str, float]
    eligible: bool
    """Whether the group has ``min_rows`` rows and so counts in the disparities."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "rows": self.rows,
            "positives": self.positives,
            "metrics": self.metrics,
            "eligible": self.eligible,
        }


@dataclass(frozen=True)
class FairnessResult:
    """Fairlearn's disparities of one sensitive feature over its eligible groups, every group's
    rates, and the baseline's disparities on the same rows (None without a baseline)."""

    feature: str
    metrics: dict[str, float]
    groups: list[GroupResult]
    baseline: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "metrics": self.metrics,
            "groups": [g.to_dict() for g in self.groups],
            "baseline": self.baseline,
        }


@dataclass(frozen=True)
class Comparison:
    """The baseline, scored on the candidate's rows.

    Attributes:
        ref: The baseline as given (``"fraud@production"``).
        model: The version it resolved to (``"fraud:3"``), or None when the alias pointed
            nowhere: then there is nothing to beat and ``baseline`` conditions hold.
        metrics: The baseline's overall metrics on the same rows.
    """

    ref: str
    model: str | None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "model": self.model, "metrics": self.metrics}


@dataclass(frozen=True)
class Evaluation:
    """A stored evaluation of one model version on data.

    Attributes:
        name, version: The evaluated model version.
        number: 1, 2, ... per model version.
        task: ``binary``, ``multiclass`` or ``regression``.
        rows: Evaluated rows (with a label).
        source: Where the rows came from: feature view, training dataset version and split, or
            the time range.
        metrics: Overall metrics by name.
        by_slice: Per slice: rows, metrics, whether it is gated, the baseline's metrics.
        fairness: Per sensitive feature: disparities, group rates, the baseline's disparities.
        compare: The baseline on the same rows, or None when none was asked for.
        slices, sensitive: How the rows were sliced and grouped (descriptions).
        min_rows: Slices and groups with fewer rows are reported but not gated.
    """

    name: str
    version: int
    number: int
    task: str
    rows: int
    source: dict[str, Any]
    metrics: dict[str, float]
    by_slice: list[SliceResult]
    fairness: dict[str, FairnessResult]
    compare: Comparison | None
    slices: list[str]
    sensitive: list[str]
    min_rows: int
    label: str
    scorer: str
    seconds: float
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        """``name:version`` of the evaluated model."""
        return f"{self.name}:{self.version}"

    @property
    def delta(self) -> dict[str, float]:
        """Overall metric minus the baseline's, for the metrics both have."""
        if self.compare is None:
            return {}
        base = self.compare.metrics
        return {k: v - base[k] for k, v in self.metrics.items() if k in base}

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "version": self.version,
            "number": self.number,
            "task": self.task,
            "rows": self.rows,
            "source": self.source,
            "label": self.label,
            "metrics": self.metrics,
            "by_slice": [s.to_dict() for s in self.by_slice],
            "fairness": {k: f.to_dict() for k, f in self.fairness.items()},
            "compare": None if self.compare is None else self.compare.to_dict(),
            "slices": self.slices,
            "sensitive": self.sensitive,
            "min_rows": self.min_rows,
            "scorer": self.scorer,
            "seconds": round(self.seconds, 3),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }

    @classmethod
    def from_content(
        cls,
        name: str,
        version: int,
        number: int,
        content: dict[str, Any],
        created_at: datetime,
        created_by: str,
    ) -> Evaluation:
        """An evaluation from its stored columns (see ``fti.registry.records.evaluations``)."""
        settings = content["settings"]
        baseline = content["baseline"]
        return cls(
            name=name,
            version=version,
            number=number,
            task=content["task"],
            rows=int(content["rows"]),
            source=dict(content["source"]),
            metrics=dict(content["metrics"]),
            by_slice=[SliceResult(**s) for s in content["slices"]],
            fairness={
                k: FairnessResult(
                    feature=f["feature"],
                    metrics=f["metrics"],
                    groups=[GroupResult(**g) for g in f["groups"]],
                    baseline=f["baseline"],
                )
                for k, f in content["fairness"].items()
            },
            compare=None if baseline is None else Comparison(**baseline),
            slices=list(settings["slices"]),
            sensitive=list(settings["sensitive"]),
            min_rows=int(settings["min_rows"]),
            label=settings["label"],
            scorer=content["scorer"],
            seconds=float(content["seconds"]),
            created_at=created_at,
            created_by=created_by,
        )

    def report(self) -> str:
        """The evaluation as plain text: what `fti models evaluate` prints."""
        return "\n".join(_report(self))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Fixed-width columns: the first left-aligned, the figures right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return ["  " + line(header).rstrip(), *("  " + line(r).rstrip() for r in rows)]


def _source(ev: Evaluation) -> str:
    s = ev.source
    view = f"feature view {s['feature_view']} v{s['feature_view_version']}"
    if "split" in s:
        return f"{view}, training dataset v{s['training_dataset_version']}, split {s['split']!r}"
    return f"{view}, rows from {s.get('start_time') or 'the start'} to {s.get('end_time') or 'the end'}"


def _report(ev: Evaluation) -> list[str]:
    lines = [
        f"evaluation {ev.number} of {ev.ref} ({ev.task}, label {ev.label!r}): {ev.rows:,} rows of {_source(ev)}",
        f"scored with the {ev.scorer} scorer in {ev.seconds:.1f} s on {ev.created_at:%Y-%m-%d %H:%M} UTC by "
        f"{ev.created_by}",
        "",
    ]
    compare = ev.compare
    header = ["metric", ev.ref]
    if compare is not None and compare.model is not None:
        header += [f"baseline {compare.model}", "delta"]
    rows = []
    for name, value in ev.metrics.items():
        row = [name, _num(value)]
        if len(header) > 2 and compare is not None:
            base = compare.metrics.get(name)
            row += [_num(base), "" if base is None else _signed(value - base)]
        rows.append(row)
    lines += [
        "metrics"
        + ("" if compare is None or compare.model is None else f" (baseline {compare.ref} on the same rows)"),
        *_table(header, rows),
    ]
    if compare is not None and compare.model is None:
        lines.append(f"  baseline {compare.ref}: the alias points to no version, nothing to compare")
    if ev.by_slice:
        shown = [m for m in HEADLINE[ev.task] if any(m in s.metrics for s in ev.by_slice)]
        with_base = compare is not None and compare.model is not None and bool(shown)
        header = ["slice", "rows", *shown] + ([f"baseline {shown[0]}"] if with_base else [])
        rows = []
        for s in ev.by_slice:
            row = [
                s.name + ("" if s.gated else " *"),
                f"{s.rows:,}",
                *(_num(s.metrics.get(m)) for m in shown),
            ]
            if with_base:
                row.append(_num((s.baseline or {}).get(shown[0])))
            rows.append(row)
        lines += ["", f"slices ({', '.join(ev.slices)}; * = fewer than {ev.min_rows} rows, not gated)"]
        lines += _table(header, rows)
    for feature, result in ev.fairness.items():
        lines += ["", f"fairness by {feature}"]
        header = ["metric", ev.ref] + (["baseline"] if result.baseline is not None else [])
        rows = [
            [m, _num(result.metrics.get(m))]
            + ([_num(result.baseline.get(m))] if result.baseline is not None else [])
            for m in FAIRNESS_METRICS
        ]
        lines += _table(header, rows)
        header = ["group", "rows", "positives", *GROUP_METRICS]
        rows = [
            [g.value + ("" if g.eligible else " *"), f"{g.rows:,}", f"{g.positives:,}"]
            + [_num(g.metrics.get(m)) for m in GROUP_METRICS]
            for g in result.groups
        ]
        lines += _table(header, rows)
    return lines
