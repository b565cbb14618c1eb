"""Building a monitor's reference profile: from a model's training dataset, or from a window.

**Training dataset** (the default): the train split of the training-dataset version the model
was trained on (or another version of its feature view), read as a stream from its Delta table.
Features are profiled as the monitored data holds them: untransformed for feature groups and
enriched deployments (whose logs hold the raw values as served), transformed for plain
deployments (whose clients send model inputs). Predictions are profiled from the model's own
outputs on those rows. For a classifier with a test split, the model's scores there calibrate
CBPE (:func:`fti.monitoring.performance.calibrate`) and its realized metrics there are the
reference for ``"drop > x"`` performance conditions.

**Window**: a window of the monitored data itself (``reference=(start, end)``), when there is
no model or its training data is not the right baseline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from fti.errors import ValidationError
from fti.monitoring import performance
from fti.monitoring.profiles import CATEGORICAL_DTYPES, NUMERIC_DTYPES, Profile, ProfileBuilder

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.monitoring.data import MonitoredData
    from fti.project import Project


def output_columns(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A model's outputs as inference-log columns: ``name``, or ``name_<j>`` for k-wide outputs."""
    out: dict[str, np.ndarray] = {}
    for name, values in outputs.items():
        array = np.asarray(values)
        if array.ndim == 1:
            out[name] = array
        else:
            for j in range(array.reshape(len(array), -1).shape[1]):
                out[f"{name}_{j}"] = array.reshape(len(array), -1)[:, j]
    return out


def batch_aliases(column: str, classes: Sequence[Any] | None) -> tuple[str, ...]:
    """The name of a log output column in batch predictions (``prediction``, ``proba_<class>``)."""
    if column == "predict":
        return ("prediction",)
    if column.startswith("predict_proba_"):
        j = int(column.rsplit("_", 1)[1])
        slugs = [re.sub(r"[^a-z0-9_]", "_", str(c).lower()) or "_" for c in classes or []]
        if classes is not None and len(set(slugs)) == len(slugs) and j < len(slugs):
            return (f"proba_{slugs[j]}", f"proba_{j}")
        return (f"proba_{j}",)
    if column.startswith("predict_"):
        return (f"prediction_{column.rsplit('_', 1)[1]}",)
    return ()


def _dtype(values: np.ndarray) -> str:
    kind = values.dtype.kind
    if kind == "f":
        return "float64"
    if kind in "iu":
        return "int64"
    if kind == "b":
        return "bool"
    return "string"


def _arrow_column(values: np.ndarray) -> pa.Array:
    import pyarrow as pa

    if values.dtype.kind in "OUS":
        return pa.array([None if v is None else str(v) for v in values.tolist()], pa.string())
    return pa.array(values)


class ModelReference:
    """A registered model version with its feature view and training dataset (checked)."""

    def __init__(self, project: Project, version: Any, training_dataset_version: int | None = None) -> None:
        self.version = mv = version
        self.fv = mv.feature_view()
        if self.fv is None:
            raise ValidationError(
                f"model {mv.ref} was registered without a feature view, so it has no training data to "
                "compare with; pass reference=(start, end) to use a window of the monitored data"
            )
        td = training_dataset_version if training_dataset_version is not None else mv.training_dataset_version
        if td is None:
            raise ValidationError(
                f"model {mv.ref} has no training-dataset version; pass reference=<version> of feature view "
                f"{self.fv.name!r} or reference=(start, end)"
            )
        self.dataset = self.fv.training_dataset(td)  # NotFoundError names the versions that exist
        self.td_version = td

    def raw_dtypes(self) -> dict[str, str]:
        return dict(self.fv.feature_dtypes(transformed=False))

    def transformed_dtypes(self) -> dict[str, str]:
        return dict(self.fv.feature_dtypes(transformed=True, training_dataset_version=self.td_version))

    def label(self) -> tuple[str, str] | None:
        """The label column and its dtype (the first label of the feature view), or None."""
        if not self.fv.labels:
            return None
        name = self.fv.labels[0]
        dtypes = {c.name: c.dtype for c in self.fv.query.columns()}
        return name, dtypes[name]

    def _split(self, split: str, columns: Sequence[str]) -> Iterator[pa.Table]:
        import pyarrow as pa
        import pyarrow.compute as pc

        from fti.features.training_data import SPLIT_COLUMN
        from fti.storage.offline.scan import iter_batches, table_source

        offline = self.fv.project.backends.offline
        source = table_source(offline, self.dataset.table_name, self.dataset.table_version)
        unsplit = self.dataset.split.get("kind") == "none"
        for batch in iter_batches(source, [*columns, SPLIT_COLUMN], batch_rows=65_536):
            if not unsplit:
                batch = batch.filter(pc.equal(batch.column(SPLIT_COLUMN), split))
            if batch.num_rows:
                yield pa.Table.from_batches([batch]).drop_columns([SPLIT_COLUMN])

    def profile(self, feature_space: str, features: Sequence[str] | None) -> Profile:
        """The reference profile (see the module docs)."""
        import pyarrow as pa

        from fti.inference.matrix import to_matrix

        mv = self.version
        transformer = self.fv.transformer(self.td_version)
        raw = self.raw_dtypes()
        space = raw if feature_space == "raw" else self.transformed_dtypes()
        chosen = [f for f in (features if features is not None else space) if f in space]
        chosen = [f for f in chosen if space[f] in (*NUMERIC_DTYPES, *CATEGORICAL_DTYPES)]
        model = mv.load()
        flavor = mv.flavor_impl
        classes = getattr(model, "classes_", None)
        classes = None if classes is None else [v.item() if hasattr(v, "item") else v for v in classes]
        inputs = transformer.output_names
        label = self.label()
        builder: ProfileBuilder | None = None
        for table in self._split("train", list(raw)):
            transformed = transformer.apply_table(table)
            predictions = output_columns(flavor.predict(model, to_matrix(transformed, inputs)))
            source = table if feature_space == "raw" else transformed
            if builder is None:
                columns = {f: (space[f], "feature") for f in chosen}
                columns.update({name: (_dtype(v), "prediction") for name, v in predictions.items()})
                aliases = {name: batch_aliases(name, classes) for name in predictions}
                builder = ProfileBuilder(columns, aliases)
            frame = pa.table(
                [*(source.column(f) for f in chosen), *(_arrow_column(v) for v in predictions.values())],
                names=[*chosen, *predictions],
            )
            builder.update(frame)
        source_info = {
            "kind": "training_dataset",
            "model": mv.name,
            "model_version": mv.version,
            "feature_view": self.fv.name,
            "feature_view_version": self.fv.version,
            "training_dataset_version": self.td_version,
            "split": "train" if self.dataset.split.get("kind") != "none" else "all",
        }
        if builder is None:
            raise ValidationError(
                f"training dataset {self.td_version} of feature view {self.fv.name!r} has no training rows"
            )
        info: dict[str, Any] = {
            "name": mv.name,
            "version": mv.version,
            "classes": classes,
            "task": "regression" if classes is None else ("binary" if len(classes) == 2 else "multiclass"),
            "label": None if label is None else label[0],
            "label_dtype": None if label is None else label[1],
            "calibration": None,
            "test_metrics": {},
        }
        if label is not None and "test" in self.dataset.splits:
            info.update(self._test_split(model, flavor, transformer, inputs, label[0], classes))
        return builder.finish(source_info, info)

    def _test_split(
        self, model: Any, flavor: Any, transformer: Any, inputs: Sequence[str], label: str, classes: Any
    ) -> dict[str, Any]:
        """CBPE's calibration and the realized metrics on the test split."""
        from fti.inference.matrix import to_matrix

        labels: list[np.ndarray] = []
        outputs: dict[str, list[np.ndarray]] = {}
        for table in self._split("test", [*self.raw_dtypes(), label]):
            predicted = flavor.predict(model, to_matrix(transformer.apply_table(table), inputs))
            for name, values in predicted.items():
                outputs.setdefault(name, []).append(np.asarray(values))
            labels.append(table.column(label).to_numpy(zero_copy_only=False))
        if not labels:
            return {}
        y = np.concatenate(labels)
        joined = {name: np.concatenate(parts) for name, parts in outputs.items()}
        if classes is None:
            return {"test_metrics": performance.regression_metrics(y, joined["predict"].reshape(len(y)))}
        proba = joined.get("predict_proba")
        if len(classes) == 2 and proba is not None:
            scores = proba[:, 1]
            positive = y == classes[1]
            return {
                "calibration": performance.calibrate(scores, positive).to_dict(),
                "test_metrics": performance.binary_metrics(positive.astype(np.int64), scores),
            }
        index = {c: i for i, c in enumerate(classes)}
        return {
            "test_metrics": performance.multiclass_metrics(
                np.array([index.get(v, -1) for v in y.tolist()]),
                np.array([index.get(v, -1) for v in joined["predict"].tolist()]),
                proba,
            )
        }


def window_profile(
    project: Project,
    data: MonitoredData,
    columns: dict[str, tuple[str, str]],
    start: datetime,
    end: datetime,
) -> Profile:
    """The profile of ``columns`` of the monitored data in ``[start, end)``."""
    builder = ProfileBuilder(columns)
    builder.update_all(data.batches(project, list(columns), start, end))
    if not builder.rows:
        raise ValidationError(
            f"the reference window [{start.isoformat()}, {end.isoformat()}) of {data.describe()} has no rows; "
            "choose a window with data"
        )
    return builder.finish({"kind": "window", "start": start.isoformat(), "end": end.isoformat()})


def check_window(value: Any) -> tuple[datetime, datetime]:
    """``reference=(start, end)``: two tz-aware datetimes, start before end."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValidationError(
            f"reference must be None (the model's training data), a training-dataset version (int) or a "
            f"(start, end) window, got {value!r}"
        )
    start, end = value
    for label, t in (("start", start), ("end", end)):
        if not isinstance(t, datetime) or t.tzinfo is None:
            raise ValidationError(f"reference window {label} must be a timezone-aware datetime, got {t!r}")
    if end <= start:
        raise ValidationError(
            f"reference window end {end.isoformat()} must be after start {start.isoformat()}"
        )
    return start, end
