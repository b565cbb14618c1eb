"""Factorized batch scoring: when a batch job scores a linear model per group row.

A linear model over a feature view with joined groups can be scored without materializing the
wide join (:mod:`fti.features.factorized` computes each group's term per group row and joins
those; :mod:`fti.inference.linear` applies the model's own link). The predictions are those of
the materialized path (to floating-point rounding, tested to 1e-9).

**Choice.** ``prefer="factorized"`` asks for it (an error says why when the model or view is
not eligible); ``prefer="fastest"`` takes it when eligible and when it does less work by this
rule, decided from the row counts alone (no timing):

* the materialized path produces ``spine_rows x (1 + F)`` values (the join's output, then the
  scorer's input), ``F`` the model's inputs;
* the factorized path reads ``group_rows x (1 + F_g)`` values per joined group ``g`` (one
  pass), and produces ``spine_rows x (1 + F_spine + K x G)`` (the narrow join: ``K`` scores per
  model output from each of ``G`` groups, plus the spine's own inputs);
* factorized is chosen when its count is at most half the materialized one (the join of partial
  scores is cheap but not free). So: spine rows well above group rows, several features per group.
  A 10M-row spine with two 100k-row groups of 50 features: 1.01e9 against 4.0e7 values.

``prefer="native"`` and ``"converted"`` never use it; neither does ``engine="spark"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.factorized import LinearScores
    from fti.features.feature_view import FeatureView
    from fti.inference.linear import FactorizedScorer
    from fti.project import Project

WIN = 0.5
"""Factorized is chosen automatically when it handles at most this fraction of the values."""


@dataclass(frozen=True)
class Plan:
    """A factorized scoring run: the reader of linear scores and the scorer of their link."""

    scores: LinearScores
    scorer: FactorizedScorer

    @property
    def columns(self) -> list[str]:
        """The scorer's input columns in each batch (the linear scores)."""
        return self.scores.columns

    def batches(self, start: datetime | None, end: datetime | None, rows: int) -> Iterator[pa.Table]:
        """Tables of the spine's keys and the linear scores, ``rows`` rows at a time."""
        return self.scores.stream(start, end, batch_rows=rows)


def plan(
    project: Project,
    version: Any,
    fv: FeatureView,
    prefer: str,
    start: datetime | None,
    end: datetime | None,
) -> Plan | None:
    """The factorized plan of a batch job, or None when the materialized path runs.

    Raises:
        ValidationError: ``prefer="factorized"`` and the model or the view is not eligible.
    """
    if prefer not in ("factorized", "fastest"):
        return None
    explicit = prefer == "factorized"
    from fti.features.factorized import LinearScores, ineligible
    from fti.inference.linear import is_linear_class, linear_form

    td_version = version.training_dataset_version
    cls = str(version.flavor_options.get("class", ""))
    if version.flavor != "sklearn" or not is_linear_class(cls):
        return _refuse(explicit, f"it is a {version.flavor} model {cls!r}, not a scikit-learn linear model")
    reason = ineligible(fv, td_version)
    if reason is not None:
        return _refuse(explicit, f"its feature view {fv.name!r} cannot be factorized: {reason}")
    from fti.registry.flavors.base import get_flavor

    form = linear_form(version.load(), get_flavor(version.flavor).predict)
    if form is None:
        return _refuse(explicit, f"{cls} does not score as X @ coef_.T + intercept_ followed by its link")
    scores = LinearScores(fv, form.weights, td_version)
    if not explicit and not _wins(project, fv, scores, start, end):
        return None
    return Plan(scores, form.scorer(scores.offset))


def _refuse(explicit: bool, reason: str) -> Plan | None:
    if explicit:
        raise ValidationError(
            f"prefer='factorized' cannot score this model: {reason}; use prefer='fastest' (the "
            "materialized join)"
        )
    return None


def _wins(
    project: Project, fv: FeatureView, scores: LinearScores, start: datetime | None, end: datetime | None
) -> bool:
    """The rule of the module docstring, from the row counts in the Delta logs."""
    from fti.storage.offline.scan import count_rows, table_source

    offline = project.backends.offline
    spine = fv.query.spine
    source = table_source(offline, spine.table_name)
    spine_rows = 0 if source is None else count_rows(source, spine.event_time, start, end)
    inputs = sum(scores.features_of(p) for p in scores.parts())
    joined = [p for p in scores.parts() if p]
    factorized = spine_rows * (1 + scores.features_of(0) + scores.outputs * len(joined))
    for index in joined:
        group = fv.query.parts[index].group
        if group.is_external:  # its rows are read from the source: no count without reading them
            return False
        source = table_source(offline, group.table_name)
        rows = 0 if source is None else count_rows(source, None, None, None)
        factorized += rows * (1 + scores.features_of(index))
    return bool(factorized <= WIN * spine_rows * (1 + inputs))
