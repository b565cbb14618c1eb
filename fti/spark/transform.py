"""Model-dependent transformations in Spark: fitted with Spark aggregations, applied by the one
:class:`~fti.features.transformations.Transformer` on the executors' Arrow batches.

Applying: every executor builds the same ``Transformer`` from the view's specs and fitted
statistics and runs it over each Arrow batch (``mapInArrow``), so Spark training data, batch data
and online vectors pass through one implementation (ARCHITECTURE.md invariant 2, "no skew").

Fitting on the training split: encoders' categories and ``min_max_scaler`` bounds are exact;
``standard_scaler`` combines per-partition sums and squared deviations
(:func:`~fti.features.transformations.combine_statistics`, as federated training does) and
``robust_scaler`` takes Spark's exact ``percentile``, so their statistics equal the embedded
engine's up to floating-point rounding (the order of the additions differs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from fti.features.transformations import Spec, Transformer


def fit(specs: Mapping[str, Spec], train: DataFrame) -> dict[str, dict[str, Any]]:
    """Fitted statistics per transformed feature of the rows of ``train`` (the training split),
    in the form :func:`fti.features.transformations.fit` returns them."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    from fti.features.transformations import combine_statistics, sufficient_statistics

    combinable = {f: s for f, s in specs.items() if s.needs_fit and s.kind != "robust_scaler"}
    quantiled = [f for f, s in specs.items() if s.kind == "robust_scaler"]
    stats: dict[str, dict[str, Any]] = {}
    if combinable:
        columns = train.select(*[F.col(f"`{name}`") for name in combinable])
        empty = _arrow_schema(columns).empty_table()

        def partition_statistics(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            pieces = list(batches)
            table = pa.Table.from_batches(pieces) if pieces else empty
            part = sufficient_statistics(combinable, {name: table.column(name) for name in combinable})
            yield pa.RecordBatch.from_arrays([pa.array([json.dumps(part)])], names=["stats"])

        parts = [
            json.loads(row["stats"])
            for row in columns.mapInArrow(partition_statistics, "stats string").collect()
        ]
        stats.update(combine_statistics(combinable, parts))
    if quantiled:
        aggregates = []
        for name in quantiled:
            value = F.col(f"`{name}`").cast("double")
            kept = F.when(value.isNotNull() & ~F.isnan(value), value)
            aggregates.append(F.percentile(kept, [0.25, 0.5, 0.75]).alias(name))
        row = train.agg(*aggregates).collect()[0]
        for name in quantiled:
            q25, median, q75 = (
                row[name] if row[name] is not None and None not in row[name] else (0.0, 0.0, 1.0)
            )
            stats[name] = {"median": float(median), "q25": float(q25), "q75": float(q75)}
    return {name: stats[name] for name in specs if name in stats}


def _arrow_schema(df: DataFrame) -> pa.Schema:
    """The Arrow schema of ``df``'s batches (an empty partition still needs one)."""
    import pyarrow as pa

    from fti.spark.types import dtype_of
    from fti.types import arrow_type

    fields = []
    for field in df.schema.fields:
        dtype = dtype_of(field.dataType)
        fields.append(pa.field(field.name, arrow_type(dtype) if dtype else pa.null()))
    return pa.schema(fields)


def apply(
    df: DataFrame, transformer: Transformer, *, before: Sequence[str] = (), after: Sequence[str] = ()
) -> DataFrame:
    """``df``'s model inputs transformed by ``transformer`` (a feature view's fitted
    transformations): the ``before`` columns (keys) that are not model inputs themselves, the
    transformed inputs in the view's order, then the ``after`` columns (labels, row numbers) as
    they are. Row order within partitions is kept, so a sorted ``df`` stays sorted.

    The transformer travels to the executors (a custom transformation's module must be
    importable there, as on the driver).
    """
    import pyarrow as pa

    from fti.spark.types import dtype_of, struct_of
    from fti.types import arrow_type

    given = {field.name: dtype_of(field.dataType) for field in df.schema.fields}
    leading = [k for k in before if k not in transformer.output_names]
    pairs = [
        *[(k, str(given[k])) for k in leading],
        *transformer.output_dtypes.items(),
        *[(k, str(given[k])) for k in after],
    ]
    target = pa.schema([pa.field(name, arrow_type(dtype)) for name, dtype in pairs])
    inputs = list(dict.fromkeys([*leading, *transformer.input_names, *after]))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            out = transformer.apply_table(table, leading)
            for name in after:
                out = out.append_column(name, table.column(name))
            yield from out.cast(target).to_batches()

    return df.select(*[f"`{c}`" for c in inputs]).mapInArrow(run, struct_of(pairs))
