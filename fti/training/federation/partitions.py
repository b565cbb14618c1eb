"""Partitions of a training dataset: one per value of a column, read with the filter pushed down.

A client of federated training reads :func:`read_partition` for its own value only: the filter
``column == value`` goes to the Delta table's Arrow scanner, so the rows of other partitions are
never returned to it. The server side sees :func:`summarize` only: per partition and split, the
number of rows and positive labels — sizes, never rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_view import FeatureView
    from fti.features.training_data import TrainingDataset

PARTITION_TYPES = ("string", "int8", "int16", "int32", "int64", "bool")
"""fti dtypes a partition column may have (one client per distinct value)."""


@dataclass(frozen=True)
class PartitionSize:
    """Rows and positive labels of one partition per split (no feature values)."""

    value: Any
    rows: dict[str, int]
    positives: dict[str, int]

    @property
    def name(self) -> str:
        """The partition's value as text (how clients and run records name it)."""
        return partition_name(self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": dict(self.rows), "positives": dict(self.positives)}


def partition_name(value: Any) -> str:
    """The text name of a partition value (``"visa"``, ``"3"``, ``"true"``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def column_dtypes(fv: FeatureView) -> dict[str, str]:
    """The columns a training dataset of ``fv`` stores: the query's columns and the spine's keys."""
    spine = fv.query.spine
    dtypes = {f.name: f.dtype for f in spine.features or [] if f.name in spine.key_columns}
    dtypes.update({c.name: c.dtype for c in fv.query.columns()})
    return dtypes


def check_column(fv: FeatureView, column: object) -> str:
    """``column`` must be a non-label column of the view's training data (a query column or a
    key of the spine) with a discrete dtype.

    Raises:
        SchemaError: unknown column, a label, or a float/time column.
    """
    dtypes = column_dtypes(fv)
    if not isinstance(column, str) or column not in dtypes:
        raise SchemaError(
            f"partition_by={column!r} is not a column of feature view {fv.name!r} "
            f"(columns: {sorted(dtypes)}); partition by one of them, e.g. a bank or region id"
        )
    if column in fv.labels:
        raise SchemaError(f"partition_by={column!r} is a label of {fv.name!r}; partition by a feature column")
    if dtypes[column] not in PARTITION_TYPES:
        raise SchemaError(
            f"partition_by={column!r} has dtype {dtypes[column]}; a partition column needs discrete "
            f"values ({', '.join(PARTITION_TYPES)})"
        )
    return column


def parse_value(fv: FeatureView, column: str, text: str) -> Any:
    """A partition value given as text (command line) in the column's type."""
    dtype = column_dtypes(fv)[column]
    if dtype == "string":
        return text
    if dtype == "bool":
        if text.lower() not in ("true", "false"):
            raise ValidationError(f"partition {column}={text!r}: {column} is bool, use true or false")
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"partition {column}={text!r}: {column} is {dtype}, give an integer") from None


def summarize(fv: FeatureView, record: TrainingDataset, column: str) -> dict[str, PartitionSize]:
    """Rows and positive labels per partition and split, by partition name, ordered by name.

    Reads only the partition, split and label columns.

    Raises:
        ValidationError: rows without a partition value, or labels other than 0/1.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from fti.features.training_data import SPLIT_COLUMN

    label = fv.labels[0]
    table = _dataset(fv, record).to_table(columns=[column, SPLIT_COLUMN, label])
    nulls = table.column(column).null_count
    if nulls:
        raise ValidationError(
            f"{nulls} rows of training dataset v{record.version} have no {column!r} value, so they "
            "belong to no partition; fill the column or filter those rows out of the feature view"
        )
    labels = pc.cast(table.column(label), pa.int64(), safe=False)
    if not pc.all(pc.is_in(labels, value_set=pa.array([0, 1], pa.int64()))).as_py():
        found = pc.unique(table.column(label)).to_pylist()[:10]
        raise ValidationError(
            f"label {label!r} must be 0/1 (or bool) for federated binary classification; found {found}"
        )
    grouped = (
        pa.table({"p": table.column(column), "s": table.column(SPLIT_COLUMN), "y": labels})
        .group_by(["p", "s"])
        .aggregate([("y", "count"), ("y", "sum")])
        .to_pylist()
    )
    sizes: dict[str, PartitionSize] = {}
    for row in grouped:
        name = partition_name(row["p"])
        size = sizes.setdefault(name, PartitionSize(row["p"], {}, {}))
        size.rows[row["s"]] = int(row["y_count"])
        size.positives[row["s"]] = int(row["y_sum"] or 0)
    return dict(sorted(sizes.items()))


def check_partitions(
    sizes: dict[str, PartitionSize], wanted: list[str] | None, column: str, version: int
) -> dict[str, PartitionSize]:
    """The partitions to train on: ``wanted`` (default: all), each with training rows of both classes.

    Raises:
        NotFoundError: a wanted partition has no rows.
        ValidationError: a partition's training rows are all of one class, or fewer than 2 partitions.
    """
    trained = [n for n, s in sizes.items() if s.rows.get("train")]
    names = trained if wanted is None else list(dict.fromkeys(wanted))
    missing = [n for n in names if n not in trained]
    if missing:
        raise NotFoundError(
            f"partition(s) {missing} of {column!r} have no training rows in training dataset v{version} "
            f"(partitions with training rows: {trained})"
        )
    left_out = [n for n in trained if n not in names]
    if left_out:
        raise ValidationError(
            f"partitions {left_out} of {column!r} have training rows but no client; every training "
            f"row of dataset v{version} belongs to one client, because the transformation statistics "
            "the model is served with were fitted on all of them. List all partitions, or build a "
            "feature view without those rows"
        )
    for name in names:
        size = sizes[name]
        train, positives = size.rows["train"], size.positives.get("train", 0)
        if positives in (0, train):
            raise ValidationError(
                f"partition {column}={name!r} has {train} training rows, all of class "
                f"{1 if positives else 0}; a client cannot train a classifier on one class. Leave it "
                "out with partitions=[...] or merge it with another partition"
            )
    if len(names) < 2:
        raise ValidationError(
            f"federated training needs at least 2 partitions, {column!r} gives {names}; partition by "
            "another column or train centrally"
        )
    return {n: sizes[n] for n in names}


def read_partition(
    fv: FeatureView, record: TrainingDataset, column: str, value: Any, columns: list[str]
) -> pa.Table:
    """The rows of one partition (``column == value``) with ``columns`` and the split column, in
    the training dataset's row order. The filter runs inside the scan: other partitions' rows are
    skipped by the reader and never returned."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from fti.features.training_data import ROW_COLUMN, SPLIT_COLUMN

    wanted = list(dict.fromkeys([*columns, SPLIT_COLUMN, ROW_COLUMN]))
    table = _dataset(fv, record).to_table(columns=wanted, filter=ds.field(column) == value)
    return table.take(pc.sort_indices(table.column(ROW_COLUMN))).drop_columns([ROW_COLUMN])


def _dataset(fv: FeatureView, record: TrainingDataset) -> Any:
    return fv.project.backends.offline.dataset(record.table_name, version=record.table_version)
