"""Feature logging of a feature view, with Hopsworks' names: ``fv.log(features, predictions)``
and ``fv.read_log()``.

The rows go to fti's inference-log format (the model server's ``<deployment>_inference_log``
groups: ``request_id``, ``row``, ``timestamp``, ``model_name``, ``model_version``, ``variant``,
then the inputs, then the outputs), in two feature groups of the view: ``<view>_v<version>_log``
for untransformed features and ``<view>_v<version>_log_transformed`` for transformed ones. So
monitoring reads a batch job's log like a deployment's, and labels join on the key columns when
the logged frame has them (``fv.get_batch_data(primary_key=True, event_time=True)``).

Logging is synchronous: a row is in the log when ``log`` returns. Hopsworks' materialization
controls (``enable_logging``, ``pause_logging``, ``resume_logging``, ``materialize_log``) are
accepted and have nothing to do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features._project import FeatureProject
    from fti.features.feature_group import FeatureGroup

LOG_COLUMNS = ("request_id", "row", "timestamp", "model_name", "model_version", "variant")
"""The columns a log starts with, as in the model server's inference logs."""


class FeatureLogging:
    """``log``/``read_log`` of a feature view (see the module docs)."""

    if TYPE_CHECKING:
        _project: FeatureProject

        @property
        def name(self) -> str: ...

        @property
        def version(self) -> int: ...

    def log_group_name(self, transformed: bool = False) -> str:
        """The feature group :meth:`log` writes to (``<view>_v<version>_log[_transformed]``)."""
        name = f"{self.name}_v{self.version}_log" + ("_transformed" if transformed else "")
        if len(name) > 63:
            raise ValidationError(
                f"the log group name {name!r} is longer than 63 characters: log a view with a shorter name"
            )
        return name

    def log(
        self,
        untransformed_features: Any = None,
        predictions: Any = None,
        transformed_features: Any = None,
        *,
        logging_data: Any = None,
        training_dataset_version: int | None = None,
        model: Any = None,
        model_name: str | None = None,
        model_version: int | None = None,
        request_id: str | None = None,
        event_time: datetime | None = None,
        write_options: dict[str, Any] | None = None,
    ) -> list[int]:
        """Append features and predictions to the view's logs; returns the commit versions.

        Args:
            untransformed_features: A DataFrame (or Arrow table) of the features as stored,
                e.g. ``fv.get_batch_data(transformed=False)``; Hopsworks' newer ``logging_data``
                is the same. Columns are logged as given (key columns included).
            predictions: One prediction per row: a sequence or array (logged as ``predict``,
                or ``predict_0..k`` for k columns) or a DataFrame (its column names).
            transformed_features: The transformed features, logged to the transformed log.
            training_dataset_version: Accepted for Hopsworks compatibility (the model version
                names the training data it was trained on).
            model: A ``ModelVersion`` (its name and version are logged), or use ``model_name``
                and ``model_version``.
            request_id: Shared by the rows of this call (default: a new UUID).
            event_time: The time logged (default: now), tz-aware.
            write_options: Accepted for Hopsworks compatibility.

        Raises:
            ValidationError: nothing to log, or features and predictions of different lengths.
            SchemaError: the columns differ from those logged before (log to a new view version).
        """
        if logging_data is not None:
            if untransformed_features is not None:
                raise ValidationError("pass the features once: untransformed_features or logging_data")
            untransformed_features = logging_data
        if untransformed_features is None and transformed_features is None:
            raise ValidationError(
                "log() needs untransformed_features (or logging_data) or transformed_features"
            )
        if model is not None:
            model_name = getattr(model, "name", None)
            model_version = getattr(model, "version", None)
        if event_time is None:
            event_time = datetime.now(UTC)
        elif not isinstance(event_time, datetime) or event_time.tzinfo is None:
            raise ValidationError(f"event_time must be a tz-aware datetime, got {event_time!r}")
        if training_dataset_version is not None and not isinstance(training_dataset_version, int):
            raise ValidationError(
                f"training_dataset_version must be an integer, got {training_dataset_version!r}"
            )
        request = request_id or uuid.uuid4().hex
        versions = []
        for transformed, features in ((False, untransformed_features), (True, transformed_features)):
            if features is None:
                continue
            table = log_table(features, predictions, request, event_time, model_name, model_version)
            group = self._log_group(transformed)
            result = group.insert_stream([table], "none", write_mode="append", unique_keys=True)
            versions.append(result.version)
        return versions

    def read_log(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        filter: Any = None,
        transformed: bool = False,
        training_dataset_version: int | None = None,
        model: Any = None,
        model_name: str | None = None,
        model_version: int | None = None,
    ) -> Any:
        """The logged rows, oldest first, as a pandas DataFrame: those logged in
        ``[start_time, end_time)``, by ``model`` (or ``model_name``/``model_version``), matching
        ``filter`` (a condition on the log group's columns, see :mod:`fti.features.filters`).

        Raises:
            NotFoundError: nothing was logged yet.
        """
        from fti.features.filters import Filter, Logic

        group = self._find_log_group(transformed)
        if model is not None:
            model_name, model_version = getattr(model, "name", None), getattr(model, "version", None)
        query = group.select_all()
        conditions: list[Any] = []
        if model_name is not None:
            conditions.append(group.get_feature("model_name") == model_name)
        if model_version is not None:
            conditions.append(group.get_feature("model_version") == model_version)
        if filter is not None:
            if not isinstance(filter, (Filter, Logic)):
                raise ValidationError(f"filter must be a condition such as fg.amount > 10, got {filter!r}")
            conditions.append(filter)
        for condition in conditions:
            query = query.filter(condition)
        return query.read(start_time=start_time, end_time=end_time)

    def delete_log(self, transformed: bool | None = None) -> None:
        """Delete the logs (both, or only the transformed or untransformed one)."""
        fs = self._project.feature_store
        for kind in (False, True) if transformed is None else (transformed,):
            for group in fs.get_feature_groups(self.log_group_name(kind)):
                group.delete(force=True)

    def enable_logging(self, extra_log_columns: Any = None) -> None:
        """Accepted for Hopsworks compatibility: :meth:`log` always works."""

    def pause_logging(self) -> None:
        """Accepted for Hopsworks compatibility: logs are written when :meth:`log` is called."""

    def resume_logging(self) -> None:
        """Accepted for Hopsworks compatibility."""

    def materialize_log(self, wait: bool = False, transformed: bool | None = None) -> list[Any]:
        """Accepted for Hopsworks compatibility: logged rows are committed already."""
        return []

    def _log_group(self, transformed: bool) -> FeatureGroup:
        return self._project.feature_store.get_or_create_feature_group(
            self.log_group_name(transformed),
            1,
            primary_key=["request_id", "row"],
            event_time="timestamp",
            description=f"{'Transformed f' if transformed else 'F'}eatures and predictions logged "
            f"with feature view {self.name!r} version {self.version} (fv.log).",
        )

    def _find_log_group(self, transformed: bool) -> FeatureGroup:
        name = self.log_group_name(transformed)
        groups = self._project.feature_store.get_feature_groups(name)
        if not groups or groups[-1].latest_commit_version() is None:
            raise NotFoundError(
                f"feature view {self.name!r} version {self.version} has no "
                f"{'transformed ' if transformed else ''}log yet: log rows with fv.log(...)"
            )
        return groups[-1]


def log_table(
    features: Any,
    predictions: Any,
    request_id: str,
    when: datetime,
    model_name: str | None,
    model_version: int | None,
) -> pa.Table:
    """One log row per feature row: the log columns, the features, then the predictions."""
    import numpy as np
    import pyarrow as pa

    from fti.features._frames import to_arrow

    table = to_arrow(features, what="the features to log")
    n = table.num_rows
    if n == 0:
        raise ValidationError("there are no rows to log")
    clash = [c for c in table.column_names if c in LOG_COLUMNS]
    if clash:
        raise ValidationError(f"the logged features may not have the log's own column(s) {clash}")
    columns: dict[str, Any] = {
        "request_id": pa.array([request_id] * n, pa.string()),
        "row": pa.array(np.arange(n, dtype=np.int64)),
        "timestamp": pa.array([when] * n, pa.timestamp("us", tz="UTC")),
        "model_name": pa.array([model_name] * n, pa.string()),
        "model_version": pa.array([model_version] * n, pa.int64()),
        "variant": pa.array([None] * n, pa.string()),
    }
    for name in table.column_names:
        columns[name] = table.column(name)
    if predictions is not None:
        for name, values in _prediction_columns(predictions, n).items():
            if name in columns:
                raise ValidationError(f"the prediction column {name!r} is also a feature column")
            columns[name] = values
    return pa.table(columns)


def _prediction_columns(predictions: Any, rows: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    if type(predictions).__module__.split(".")[0] in ("pandas", "polars", "pyarrow") and hasattr(
        predictions, "columns"
    ):
        from fti.features._frames import to_arrow

        table = to_arrow(predictions, what="the predictions to log")
        found = {name: table.column(name) for name in table.column_names}
    else:
        values = np.asarray(predictions)
        if values.ndim == 1:
            found = {"predict": pa.array(values.tolist() if values.dtype == object else values)}
        elif values.ndim == 2:
            found = {f"predict_{j}": pa.array(values[:, j]) for j in range(values.shape[1])}
        else:
            raise ValidationError(f"predictions must be one or two dimensional, got shape {values.shape}")
    lengths = {len(v) for v in found.values()}
    if lengths != {rows}:
        raise ValidationError(f"{rows} feature rows but {sorted(lengths)} predictions: pass one per row")
    return found
