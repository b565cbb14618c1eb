"""Training datasets: versioned, materialized, reproducible snapshots of a feature view.

Creating one pins the Delta version of every input group, runs the point-in-time join on those
snapshots, assigns splits, fits the transformations on the training split only, writes the
(untransformed) rows as a Delta table under the offline store and records everything in the
catalog. Re-reading a version reads that table, so it returns identical data whatever was
inserted since (ARCHITECTURE.md invariant 3, "reproducible").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti.errors import NotFoundError, ValidationError
from fti.features import pit, records
from fti.features.records import SPLITS, TrainingDataset
from fti.features.transformations import fit
from fti.storage.offline.scan import table_source
from fti.types import arrow_type

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd

    from fti.features.feature_group import FeatureGroup
    from fti.features.feature_view import FeatureView
    from fti.features.query import Query
    from fti.features.transformations import Transformer
    from fti.storage.offline.base import OfflineStore

__all__ = ["ROW_COLUMN", "SPLITS", "SPLIT_COLUMN", "TrainingDataset"]

SPLIT_COLUMN = "__fti_split"
ROW_COLUMN = "__fti_row"


def snapshot(query: Query, offline: OfflineStore) -> tuple[list[Any], dict[str, int | None]]:
    """The latest Delta snapshot of every group of ``query`` (local files, a dataset, or an empty
    table for a group without data; see :func:`fti.storage.offline.scan.as_dataset`), and the
    versions read. An external group's rows are read from its source now (version None)."""
    sources: list[Any] = []
    versions: dict[str, int | None] = {}
    for part in query.parts:
        group = part.group
        if group.is_external:
            from fti.features import external

            sources.append(external.read(group))
            versions[group.table_name] = None
            continue
        version = offline.version(group.table_name)
        versions[group.table_name] = version
        if version is None:
            features = group.features or []
            sources.append(pa.schema([pa.field(f.name, arrow_type(f.dtype)) for f in features]).empty_table())
        else:
            sources.append(table_source(offline, group.table_name, version))
    return sources, versions


def assign_splits(table: pa.Table, split: dict[str, Any], event_time: str | None) -> np.ndarray:
    """The split of every row as its index in :data:`SPLITS` (an int8 numpy array); raises when
    a split would be empty (nothing is written)."""
    codes = split_codes(table.num_rows, split, None if event_time is None else table.column(event_time))
    if split["kind"] != "none":
        counts = np.bincount(codes, minlength=len(SPLITS))
        check_split_counts(split, dict(zip(SPLITS, map(int, counts), strict=True)), table.num_rows)
    return codes


def split_labels(rows: int, split: dict[str, Any], times: Any = None) -> np.ndarray:
    """The split name of each of ``rows`` rows (a numpy object array), see :func:`split_codes`."""
    labels: np.ndarray = np.asarray(SPLITS, dtype=object)[split_codes(rows, split, times)]
    return labels


def split_codes(rows: int, split: dict[str, Any], times: Any = None) -> np.ndarray:
    """The split of each of ``rows`` rows as its index in :data:`SPLITS` (an int8 numpy array):
    ``"random"`` draws a permutation of the row positions from the seed, ``"time"`` compares the
    event ``times`` (an Arrow array) with the split's start times. Engines that split in parallel
    call this (or :func:`split_labels`) with the same positions and times, so they split
    identically."""
    kind = split["kind"]
    codes = np.zeros(rows, dtype=np.int8)  # train
    if kind == "random":
        order = np.random.default_rng(split["seed"]).permutation(rows)
        start = 0
        for name in ("test", "validation"):
            size = split.get(f"{name}_size")
            if size is None:
                continue
            count = round(rows * size)
            codes[order[start : start + count]] = SPLITS.index(name)
            start += count
    elif kind == "time":
        assert times is not None
        for name in ("validation", "test"):  # test overrides validation from its start on
            when = split.get(f"{name}_start")
            if when is not None:
                mask = pc.greater_equal(times, pa.scalar(when, type=times.type)).to_numpy(
                    zero_copy_only=False
                )
                codes[mask] = SPLITS.index(name)
    return codes


def check_split_counts(split: dict[str, Any], counts: dict[str, int], rows: int) -> None:
    """Raise when a split of ``split`` holds no row (``counts``: rows per split name)."""
    kind = split["kind"]
    wanted = ["train", *[s for s in ("validation", "test") if _has(split, s)]]
    shown = {s: counts.get(s, 0) for s in wanted}
    empty = [s for s, c in shown.items() if c == 0]
    if empty:
        raise ValidationError(
            f"the {kind} split leaves the {', '.join(empty)} side empty ({shown} of {rows} rows); "
            + (
                "choose start times inside the data's event-time range"
                if kind == "time"
                else "use a larger dataset or other sizes"
            )
        )


def split_spec(split: str, seed: int, spine: FeatureGroup, **options: Any) -> dict[str, Any]:
    """Check split options and return the split description stored with a training dataset."""
    if split not in ("random", "time"):
        raise ValidationError(f"split must be 'random' or 'time', got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(f"seed must be an integer, got {seed!r}")
    spec: dict[str, Any] = {"kind": split}
    if split == "random":
        total = 0.0
        for name in ("validation", "test"):
            size = options.get(f"{name}_size")
            if f"{name}_size" not in options:
                continue
            if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < 1:
                raise ValidationError(f"{name}_size must be a fraction in (0, 1), got {size!r}")
            spec[f"{name}_size"] = float(size)
            total += float(size)
        if total >= 1:
            raise ValidationError(f"validation_size + test_size must be < 1, got {total}")
        spec["seed"] = seed
        return spec
    if spine.event_time is None:
        raise ValidationError(f"a time split needs an event time, but the spine {spine.name!r} has none")
    starts = []
    for name in ("validation", "test"):
        key = f"{name}_start"
        if key not in options or (name == "validation" and options.get("validation_size") is None):
            continue
        when = options.get(key)
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise ValidationError(f"split='time' needs {key} as a tz-aware datetime, got {when!r}")
        spec[key] = when
        starts.append(when)
    if len(starts) == 2 and not starts[0] < starts[1]:
        raise ValidationError("validation_start must be before test_start")
    return spec


def check_time_range(start_time: datetime | None, end_time: datetime | None, spine: FeatureGroup) -> None:
    """Check an optional ``[start_time, end_time)`` range on the spine's event times."""
    for label, value in (("start_time", start_time), ("end_time", end_time)):
        if value is None:
            continue
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValidationError(f"{label} must be a tz-aware datetime, got {value!r}")
        if spine.event_time is None:
            raise ValidationError(f"{label} filters on event time, but the spine {spine.name!r} has none")
    if start_time is not None and end_time is not None and not start_time < end_time:
        raise ValidationError(f"start_time {start_time} must be before end_time {end_time}")


def _has(split: dict[str, Any], name: str) -> bool:
    return split.get(f"{name}_size") is not None or split.get(f"{name}_start") is not None


def no_rows(fv: FeatureView, start_time: datetime | None, end_time: datetime | None) -> ValidationError:
    """The error of a training dataset without rows (nothing is written)."""
    return ValidationError(
        f"feature view {fv.name!r} has no spine rows"
        + (f" between {start_time} and {end_time}" if start_time or end_time else "")
        + f"; insert data into {fv.query.spine.name!r} or widen the time range"
    )


ENGINES = ("duckdb", "spark")
"""Query engines of feature views: DuckDB in this process, or Spark (:mod:`fti.spark`)."""


def check_engine(engine: object) -> str:
    """``engine`` if it is one of :data:`ENGINES`, else a ValidationError."""
    if engine not in ENGINES:
        raise ValidationError(
            f"engine must be one of {ENGINES}, got {engine!r} ('spark' runs on project.spark(); "
            "install fti[spark])"
        )
    return str(engine)


def create(
    fv: FeatureView,
    *,
    start_time: datetime | None,
    end_time: datetime | None,
    description: str,
    split: dict[str, Any],
    engine: str = "duckdb",
) -> tuple[TrainingDataset, Any]:
    """Join, split, fit and materialize a new training-dataset version of ``fv``; the rows are
    an Arrow table, or with ``engine="spark"`` a Spark DataFrame (:func:`fti.spark.training.create`)."""
    if check_engine(engine) == "spark":
        from fti.spark import training

        return training.create(
            fv, start_time=start_time, end_time=end_time, description=description, split=split
        )
    offline = fv.project.backends.offline
    query = fv.query
    sources, versions = snapshot(query, offline)
    table = pit.run(query, sources, start_time=start_time, end_time=end_time)
    if table.num_rows == 0:
        raise no_rows(fv, start_time, end_time)
    table = fv.on_demand_plan.apply_table(table)  # stored with the rows: re-reads compute nothing
    codes = assign_splits(table, split, query.spine.event_time)
    per_split = np.bincount(codes, minlength=len(SPLITS))
    counts = {"total": table.num_rows}
    for name, count in zip(SPLITS, per_split, strict=True):
        if name == "train" or count:
            counts[name] = int(count)
    specs = fv.transformation_specs
    train = table  # no copy of the rows unless some are not for training
    if specs and counts["train"] < table.num_rows:
        train = table.filter(pa.array(codes == 0))
    stats = fit(specs, {name: train.column(name) for name in specs})
    splits = pa.array(SPLITS, pa.string()).take(pa.array(codes))
    stored = table.append_column(SPLIT_COLUMN, splits).append_column(
        ROW_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64))
    )

    record = store(
        fv,
        start_time=start_time,
        end_time=end_time,
        description=description,
        split=split,
        input_versions=versions,
        stats=stats,
        counts=counts,
        write=lambda table_name: offline.write(table_name, stored),
    )
    return record, stored


def store(
    fv: FeatureView,
    *,
    start_time: datetime | None,
    end_time: datetime | None,
    description: str,
    split: dict[str, Any],
    input_versions: dict[str, int | None],
    stats: dict[str, dict[str, Any]],
    counts: dict[str, int],
    write: Callable[[str], int],
) -> TrainingDataset:
    """Allocate the next training-dataset version of ``fv``, materialize its rows with ``write``
    (given the offline table name, it returns the table's version) and record it in the catalog.

    Every engine that makes training datasets ends here, so they are the same catalog objects.
    """
    project = fv.project
    offline = project.backends.offline
    catalog = project.backends.catalog
    for _ in range(5):  # another process may take the same version number: retry with the next
        version = max(fv.training_dataset_versions(), default=0) + 1
        # A unique name per attempt: a concurrent writer of the same version never touches ours.
        table_name = f"{project.name}__fv_{fv.name}__v{fv.version}__td{version}_{uuid.uuid4().hex[:8]}"
        table_version = write(table_name)
        record = TrainingDataset(
            version=version,
            description=description,
            start_time=start_time,
            end_time=end_time,
            split=split,
            input_versions=input_versions,
            transformation_stats=stats,
            row_counts=counts,
            table_name=table_name,
            table_version=table_version,
            created_at=datetime.now(UTC),
        )
        try:
            stored_record = records.insert_training_dataset(catalog, fv.id, record)
        except BaseException:
            offline.delete(table_name)
            raise
        if not stored_record:  # the version was taken meanwhile
            offline.delete(table_name)
            continue
        return record
    raise ValidationError(f"could not allocate a training-dataset version for {fv.name!r}; retry")


def find(fv: FeatureView, version: int | None = None) -> list[TrainingDataset]:
    """Training datasets of ``fv`` by version (all, or the one ``version``)."""
    return records.find_training_datasets(fv.project.backends.catalog, fv.id, version)


def delete_view(fv: FeatureView) -> None:
    """Delete feature view ``fv``: its training datasets' tables, then its records."""
    offline = fv.project.backends.offline
    for record in find(fv):
        offline.delete(record.table_name)
    records.delete_feature_view(fv.project.backends.catalog, fv.id)


def delete(fv: FeatureView, version: int, *, force: bool) -> None:
    """Delete training-dataset ``version`` of ``fv``: its rows, then its record. Refused while a
    model version was trained on it, unless ``force``."""
    from fti.errors import ConflictError

    if not isinstance(force, bool):
        raise ValidationError(f"force must be True or False, got {force!r}")
    record = get(fv, version)
    models = [m for m in fv.models() if m.training_dataset_version == version]
    if models and not force:
        names = ", ".join(f"{m.name}:{m.version}" for m in models)
        raise ConflictError(
            f"training dataset version {version} of feature view {fv.name!r} was used to train "
            f"model version(s) {names}; delete them first, or pass force=True (their lineage keeps "
            "the version number, but they cannot be served with enrichment any more)"
        )
    fv.project.backends.offline.delete(record.table_name)
    records.delete_training_dataset(fv.project.backends.catalog, fv.id, version)


def get(fv: FeatureView, version: int) -> TrainingDataset:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"training dataset version must be an integer >= 1, got {version!r}")
    found = find(fv, version)
    if not found:
        raise NotFoundError(
            f"feature view {fv.name!r} v{fv.version} has no training dataset version {version} "
            f"(existing: {fv.training_dataset_versions()})"
        )
    return found[0]


def read(fv: FeatureView, record: TrainingDataset) -> pa.Table:
    """The stored rows of a training-dataset version, in their original order."""
    table = fv.project.backends.offline.dataset(record.table_name, version=record.table_version).to_table()
    rows = table.column(ROW_COLUMN)
    if (
        table.num_rows > 1
        and not pc.all(pc.greater(rows.slice(1), rows.slice(0, table.num_rows - 1))).as_py()
    ):
        table = table.take(pc.sort_indices(rows))
    return table


def split_parts(
    fv: FeatureView,
    record: TrainingDataset,
    names: Sequence[str | None],
    transformer: Transformer | None,
    engine: str,
) -> tuple[Any, ...]:
    """The ``X`` of each split in ``names`` (None: every row), then each ``y``, of a stored
    training-dataset version: pandas, or Spark DataFrames with ``engine="spark"``."""
    if engine == "spark":
        from fti.spark import training

        return training.get_training_data(fv, record, names, transformer)
    table = read(fv, record)
    parts = [
        features_and_labels(
            table if name is None else table.filter(pc.equal(table.column(SPLIT_COLUMN), name)),
            fv.feature_names(False),
            transformer,
            fv.labels,
        )
        for name in names
    ]
    return (*[x for x, _ in parts], *[y for _, y in parts])


def rows_with_labels(fv: FeatureView, rows: Any, transformer: Transformer, engine: str) -> Any:
    """Created training rows (``create``'s second value) as one frame: transformed features, then
    labels (pandas, or a Spark DataFrame with ``engine="spark"``)."""
    if engine == "spark":
        from fti.spark import training

        return training.with_labels(fv, rows, transformer)
    # one conversion of features and labels together: no second copy of the rows by pd.concat
    features = transformer.apply_table(rows)
    labels = fv.labels
    both = pa.table(
        [*features.columns, *(rows.column(name) for name in labels)], names=[*features.column_names, *labels]
    )
    return both.to_pandas()


def features_and_labels(
    table: pa.Table, inputs: Sequence[str], transformer: Transformer | None, labels: Sequence[str]
) -> tuple[pd.DataFrame, Any]:
    """Training rows as ``X, y``: the ``inputs`` columns, transformed by ``transformer`` (None: as
    stored); y is a Series for one label, a DataFrame for several, None without labels."""
    if transformer is not None:
        x = transformer.apply_table(table).to_pandas()
    else:
        x = pa.table([table.column(name) for name in inputs], names=list(inputs)).to_pandas()
    if not labels:
        return x, None
    y = table.select(list(labels)).to_pandas()
    return x, y[labels[0]] if len(labels) == 1 else y
