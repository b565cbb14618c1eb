"""Linear scores of a feature view's rows without materializing its join (factorized scoring).

A linear function of a row's model inputs, ``x @ W.T``, is a sum over the groups the features
come from: ``x_spine @ W_spine.T + x_1 @ W_1.T + ...``. Each joined group's term depends only on
the group row the point-in-time join picks, so it is computed once per group row (per key and
event time: at the group's row count, not the spine's) and those few partial scores are joined
to the spine instead of the group's features (Morpheus, "factorized learning"). Every spine row
gets its term from exactly the row the materialized point-in-time join would give it, and nulls
where that join gives nulls (no row, or one older than ``max_age``; an inner join drops the row):
the groups are looked up as the spine is read, by the rules the materialized stream follows too
(:class:`~fti.features.asof.PartLookup`).

The view's transformations are respected exactly as :class:`~fti.features.transformations.Transformer`
applies them: a scaler, ``(x - center) / scale``, folds into the weights (``W / scale``) and a
constant :attr:`LinearScores.offset`; every other built-in transformation (encoders, ``log1p``,
``bucketize``) and a custom one (documented as element-wise) depends only on the value of its own
row, so it is applied per group row before the product. A view with on-demand features (computed
from the joined row, possibly across groups) or a filter is not eligible (:func:`ineligible`).
A missing value gives a NaN term, as it gives a NaN input on the materialized path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_view import FeatureView

SCORE = "__fti_score_{}"
"""The name of the ``k``-th linear score column (one per row of the weights)."""


def ineligible(fv: FeatureView, training_dataset_version: int | None) -> str | None:
    """Why ``fv``'s linear scores cannot be computed per group row, or None when they can."""
    query = fv.query
    if query.condition is not None:
        return "its query has a filter, which reads the joined rows"
    if fv.on_demand_plan.outputs:
        return "it has on-demand features, computed from the joined row"
    if len(query.parts) < 2:
        return "it joins no feature group (there is nothing to factorize)"
    owner = {c.name: c.part for c in query.columns()}
    transformer = fv.transformer(training_dataset_version)
    for name in transformer.input_names:
        if name not in owner:
            return f"its model input {name!r} is not a column of one group"
        if any(transformer.output_dtypes[o] not in _NUMBERS for o in transformer.outputs_of[name]):
            return f"its model input {name!r} is not numeric"
    return None


_NUMBERS = {"int8", "int16", "int32", "int64", "float32", "float64", "bool"}


class LinearScores:
    """``x @ weights.T`` for every row of a feature view's batch data, computed per group row.

    Args:
        fv: The feature view.
        weights: A ``(K, F)`` matrix over the view's model inputs
            (``fv.feature_names(transformed=True)`` order).
        training_dataset_version: Whose fitted transformations apply (None: the serving one).

    Raises:
        ValidationError: the view is not eligible (see :func:`ineligible`) or the weights do not
            match its model inputs.
    """

    def __init__(self, fv: FeatureView, weights: np.ndarray, training_dataset_version: int | None) -> None:
        reason = ineligible(fv, training_dataset_version)
        if reason is not None:
            raise ValidationError(f"feature view {fv.name!r} cannot be scored factorized: {reason}")
        self.fv = fv
        self.transformer = transformer = fv.transformer(training_dataset_version)
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if weights.shape[1] != len(transformer.output_names):
            raise ValidationError(
                f"the linear model has {weights.shape[1]} inputs but feature view {fv.name!r} gives "
                f"{len(transformer.output_names)} ({transformer.output_names})"
            )
        self.outputs = weights.shape[0]
        self.columns = [SCORE.format(k) for k in range(self.outputs)]
        position = {name: i for i, name in enumerate(transformer.output_names)}
        owner = {c.name: c.part for c in fv.query.columns()}
        self.offset = np.zeros(self.outputs)
        """What the folded scalers add to every row's scores: ``-sum(W * center / scale)``."""
        self._terms: dict[int, list[tuple[str, np.ndarray]]] = {}
        for name in transformer.input_names:
            w = weights[:, [position[o] for o in transformer.outputs_of[name]]]  # (K, outputs)
            if name in transformer.affine:
                center, scale = transformer.affine[name]
                w = w / scale
                self.offset -= w[:, 0] * center
            self._terms.setdefault(owner[name], []).append((name, w))

    def parts(self) -> list[int]:
        """The query parts holding model inputs (0 is the spine)."""
        return sorted(self._terms)

    def features_of(self, part: int) -> int:
        """How many model inputs come from ``part``."""
        return sum(w.shape[1] for _, w in self._terms.get(part, []))

    def partials(self, part: int, table: pa.Table) -> list[np.ndarray]:
        """The ``K`` partial scores of each row of ``table`` (which holds ``part``'s inputs)."""
        n = table.num_rows
        total = np.zeros((n, self.outputs))
        steps = dict(zip(self.transformer.input_names, self.transformer.steps, strict=True))
        for name, w in self._terms.get(part, []):
            column = table.column(name)
            step = steps[name]
            if name in self.transformer.affine or step is None:
                values = [_floats(column)]  # a scaler is folded into w
            else:
                values = [np.asarray(v, dtype=np.float64) for v in step(column)]
            for j, value in enumerate(values):
                total += value[:, None] * w[:, j]
        return list(total.T)

    def stream(
        self,
        start_time: datetime | None,
        end_time: datetime | None,
        *,
        batch_rows: int,
    ) -> Iterator[pa.Table]:
        """The spine's key columns and the :attr:`columns` (scores without the :attr:`offset`) of
        the rows of ``fv.iter_batch_data`` over ``[start_time, end_time)``, in tables of at most
        ``batch_rows`` rows: the groups' partial scores are computed first (one pass over each
        group), then the spine is read batch by batch and each row picks up the partial scores of
        the group rows the point-in-time join gives it (:class:`~fti.features.asof.PartLookup`,
        as the materialized stream does: no sort of the spine, memory of one batch).
        """
        from fti.features import training_data

        query = self.fv.query
        training_data.check_time_range(start_time, end_time, query.spine)
        sources, _ = training_data.snapshot(query, self.fv.project.backends.offline)
        return self._lookups(sources, start_time, end_time, batch_rows)

    def _group(self, index: int, source: Any, columns: Sequence[str]) -> tuple[pa.Table, np.ndarray | None]:
        """``columns`` of joined part ``index``'s rows, and their partial scores (n x K) or None."""
        import pyarrow as pa

        from fti.storage.offline.scan import as_dataset

        inputs = [name for name, _ in self._terms.get(index, [])]
        stored = {c.name: c.column for c in self.fv.query.columns() if c.part == index}
        wanted = list(dict.fromkeys([*columns, *(stored[n] for n in inputs)]))
        rows = source if index == 0 else as_dataset(source).to_table(columns=wanted)
        if not inputs:  # a group joined for its labels or its inner join only: no term
            return rows.select(list(columns)), None
        table = pa.table([rows.column(stored[n]) for n in inputs], names=inputs)
        return rows.select(list(columns)), np.column_stack(self.partials(index, table))

    def _lookups(
        self, sources: list[Any], start: datetime | None, end: datetime | None, batch_rows: int
    ) -> Iterator[pa.Table]:
        import pyarrow as pa

        from fti.features import pit
        from fti.features.asof import PartLookup, micros

        query = self.fv.query
        spine_time = query.spine.event_time
        groups = []
        for index, part in enumerate(query.parts[1:], start=1):
            group_time = part.group.event_time
            rows, partials = self._group(
                index, sources[index], [*part.on, *([group_time] if group_time else [])]
            )
            groups.append((PartLookup(part, rows, spine_time), partials))
        keys = query.key_columns()
        for batch in pit.rebatch(pit.spine_reader(query, sources[0], start, end, batch_rows), batch_rows):
            total = np.zeros((batch.num_rows, self.outputs))
            if 0 in self._terms:
                total += self._group(0, batch, [])[1]
            moments = None if spine_time is None else micros(batch.column(spine_time))
            keep = np.ones(batch.num_rows, dtype=bool)
            for lookup, partials in groups:
                rows, found, valid = lookup.pick(batch, moments)
                if lookup.part.join_type == "inner":
                    keep &= found
                if partials is None:
                    continue
                values = partials[np.where(valid, rows, 0)]
                values[~valid] = np.nan  # no row, or one older than max_age: nulls
                total += values
            columns = [batch.column(k) for k in keys] + [pa.array(total[:, k]) for k in range(self.outputs)]
            table = pa.table(columns, names=[*keys, *self.columns])
            yield table if keep.all() else table.filter(pa.array(keep))


def _floats(column: Any) -> np.ndarray:
    """An Arrow column as float64, nulls as NaN (as :func:`fti.inference.matrix.to_matrix` reads it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return np.asarray(
        pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64
    )
