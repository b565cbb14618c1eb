"""Online feature vectors: look up each group's latest row, then transform.

A :class:`FeatureViewServing` is compiled once per feature view and training-dataset version
(``fv.serving(version)``; the model server holds one per loaded model version): the online
tables, where each lookup key comes from, the model-input features and the fitted
:class:`~fti.features.transformations.Transformer`. A call then does one online read per feature
group (for all requested entities at once), no catalog query and no pandas.

On-demand features (:mod:`fti.features.on_demand`) are computed from the request's values and
the looked-up rows by the functions training data uses, before the transformations; the view's
request fields must be in every request's ``passed_features``.

Lookup keys come from the request entry; a joined group's key that the entry does not hold is
taken from ``passed_features`` or from the spine group's online row. Groups that are not
online-enabled are request-time groups: their features must arrive in ``passed_features``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError
from fti.features.vector_requests import check_entries, check_passed, plain_key_value, to_rows

if TYPE_CHECKING:
    from fti.features.feature_view import FeatureView
    from fti.features.transformations import Transformer
    from fti.storage.online.base import OnlineStore

RETURN_TYPES = ("list", "numpy", "pandas", "polars")


@dataclass(frozen=True)
class ServedVectors:
    """The vectors of one lookup and the untransformed values they were computed from.

    What the model server predicts on (``matrix``) and what its inference log records
    (``raw``: the features as stored in the feature groups, after passed features were applied),
    from one online read.
    """

    matrix: Any
    """The transformed model inputs: a 2-D numpy array (float64 when every input is numeric)."""
    raw: list[list[Any]]
    """One list per untransformed feature (:attr:`FeatureViewServing.raw_feature_names` order),
    one value per entry (``None`` where missing)."""


@dataclass(frozen=True)
class _Group:
    name: str
    table: str
    online: bool
    keys: tuple[str, ...]
    """Lookup key columns, in the group's primary-key order (names as in the spine)."""
    features: tuple[tuple[int, str], ...]
    """(input position, column) of the model-input features this group provides."""
    wanted: tuple[str, ...]
    """The joined names of those features (what ``passed_features`` may supply instead)."""
    columns: tuple[str, ...]
    """What a lookup reads: the features' columns, then (spine group) joined groups' key columns."""
    from_entry: bool
    """Whether every key column is a spine key column, so every request entry holds the key."""


class FeatureViewServing:
    """Online feature vectors of a feature view with the statistics of one training-dataset version.

    Get one with ``fv.serving(training_dataset_version)``; see the module docs.
    """

    def __init__(
        self,
        view: FeatureView,
        training_dataset_version: int | None,
        transformer: Transformer,
        online: OnlineStore,
    ) -> None:
        query = view.query
        plan = view.on_demand_plan
        self._view = view
        self._version = training_dataset_version
        self._primary_key = query.spine.primary_key
        self._plan = plan
        self._inputs = view.feature_names(transformed=False)
        """The untransformed model features (the query's and on-demand outputs), transformer order."""
        self._joined = list(plan.raw)
        """The joined columns a vector is built from: the spine key and event time, the features."""
        self._positions = {name: i for i, name in enumerate(self._joined)}
        self._transformer = transformer
        self._online = online
        self._names = transformer.output_names
        by_name = {c.name: c for c in query.columns()}
        # the spine's event time is read (from the request, else its online row) only when needed
        needed = {*plan.inputs, *plan.request_fields}
        spine_extra = [c for c in query.spine.key_columns if c in needed and c not in by_name]
        self._spine_columns = sorted(
            {k for part in query.parts[1:] for k in part.group.primary_key} - set(self._primary_key)
        )
        groups: list[_Group] = []
        for index, part in enumerate(query.parts):
            group = part.group
            keys = tuple(group.primary_key)  # joins are on the right group's key names
            features = tuple(
                (self._positions[c.name], c.column)
                for c in by_name.values()
                if c.part == index and c.name in self._positions
            )
            if index == 0:
                extra = [c for c in spine_extra if c not in self._primary_key]
                features += tuple((self._positions[c], c) for c in extra)
            wanted = tuple(self._joined[p] for p, _ in features)
            columns = tuple(c for _, c in features) + tuple(self._spine_columns if index == 0 else ())
            from_entry = set(keys) <= set(self._primary_key)
            groups.append(
                _Group(
                    group.name,
                    group.table_name,
                    group.online_enabled,
                    keys,
                    features,
                    wanted,
                    columns,
                    from_entry,
                )
            )
        self._groups = groups
        self._spine_index = {c: groups[0].columns.index(c) for c in self._spine_columns}
        """Where a joined group's key column not in the request is in the spine group's lookup rows."""
        self._order = [self._positions.get(name) for name in self._inputs]
        """Each model input's position among the joined columns (None: an on-demand output)."""
        self._entry_keys = [
            (self._positions[k], k) for k in self._primary_key if k in needed and k not in by_name
        ]
        """Primary-key columns that on-demand functions read but no group provides: from the entry."""
        declared = {f.name: f.dtype for f in query.spine.features or []}
        self._key_dtypes: dict[str, str | None] = {k: declared.get(k) for k in self._primary_key}
        self._raw_dtypes = view.feature_dtypes(transformed=False)
        self._numeric = all(t.startswith(("int", "float")) for t in transformer.output_dtypes.values())

    @property
    def view(self) -> FeatureView:
        return self._view

    @property
    def training_dataset_version(self) -> int | None:
        """Whose fitted statistics transform the vectors (None: the view has no training data)."""
        return self._version

    @property
    def primary_key(self) -> list[str]:
        """The entity key(s) a request needs: the spine group's primary key."""
        return list(self._primary_key)

    @property
    def feature_names(self) -> list[str]:
        """The transformed model-input column names, in vector order."""
        return list(self._names)

    @property
    def feature_dtypes(self) -> dict[str, str]:
        """fti dtypes of the model-input columns."""
        return dict(self._transformer.output_dtypes)

    @property
    def request_fields(self) -> list[str]:
        """Columns every request must send in ``passed_features`` (never looked up online)."""
        return list(self._plan.request_fields)

    @property
    def request_columns(self) -> dict[str, str]:
        """Columns a request may send (request fields and any feature it overrides) -> fti dtype."""
        return {name: dtype for name, dtype in self._plan.raw.items() if name not in self._primary_key}

    @property
    def reads_in_process(self) -> bool:
        """Whether its online store reads in this process (SQLite: microseconds, no network), so
        a server may look vectors up on its event loop instead of in a worker thread."""
        return bool(getattr(self._online, "in_process", False))

    @property
    def raw_feature_names(self) -> list[str]:
        """The untransformed features, in the order of :attr:`ServedVectors.raw`."""
        return list(self._inputs)

    @property
    def raw_feature_dtypes(self) -> dict[str, str]:
        """fti dtypes of the untransformed features (as stored in their feature groups)."""
        return dict(self._raw_dtypes)

    @property
    def key_dtypes(self) -> dict[str, str | None]:
        """fti dtypes of the primary-key columns (None when the spine group declares none yet)."""
        return dict(self._key_dtypes)

    def __repr__(self) -> str:
        return (
            f"FeatureViewServing(view={self._view.name!r}, version={self._view.version}, "
            f"training_dataset_version={self._version})"
        )

    def get_feature_vector(
        self,
        entry: Mapping[str, Any],
        passed_features: Mapping[str, Any] | None = None,
        allow_missing: bool = False,
    ) -> list[Any]:
        """The transformed model-input vector of one entity, from the online store.

        Args:
            entry: The primary-key value(s) of the spine group, e.g. ``{"cc_num": 42}``.
            passed_features: Request-time values that override or supply features by name.
            allow_missing: Return nulls instead of raising when a group has no row for the key.

        Raises:
            ValidationError: the entry lacks a key column, or ``passed_features`` names an unknown feature.
            NotFoundError: a group has no online row for the key (and ``allow_missing`` is False).
        """
        if not isinstance(entry, Mapping):
            raise ValidationError(f"entry must be a mapping such as {{'id': 1}}, got {entry!r}")
        check_entries((entry,), self._primary_key)
        passed = self._check_passed(passed_features, 1, many=False)
        if self._plan.steps:  # on-demand features run vectorized, as for many entries
            return self._transformer.apply_row(
                [column[0] for column in self._raw((entry,), passed, allow_missing)]
            )
        return self._transformer.apply_row(self._row(entry, passed, allow_missing))

    def get_feature_vectors(
        self,
        entries: Sequence[Mapping[str, Any]],
        passed_features: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        return_type: str = "list",
        allow_missing: bool = False,
    ) -> Any:
        """Transformed vectors of many entities: one online read per feature group for all of them.

        Args:
            entries: One key mapping per entity.
            passed_features: One mapping for all entities, or a list with one per entity.
            return_type: ``"list"`` (list of lists), ``"numpy"`` (2-D array), ``"pandas"`` or ``"polars"``.
            allow_missing: As in :meth:`get_feature_vector`.
        """
        if return_type not in RETURN_TYPES:
            raise ValidationError(f"return_type must be one of {RETURN_TYPES}, got {return_type!r}")
        if isinstance(entries, Mapping) or not isinstance(entries, Sequence) or isinstance(entries, str):
            raise ValidationError("entries must be a list of mappings, e.g. [{'cc_num': 1}]")
        check_entries(entries, self._primary_key)
        passed = self._check_passed(passed_features, len(entries), many=True)
        n = len(entries)
        columns = self._vectors(entries, passed, allow_missing) if n else [[] for _ in self._names]
        if return_type == "list":
            return to_rows(columns, n) if n else []
        names = self._names
        if return_type == "numpy":
            return self._matrix(columns, n)
        if return_type == "pandas":
            import pandas as pd

            return pd.DataFrame(to_rows(columns, n), columns=names)
        import polars as pl

        return pl.DataFrame(to_rows(columns, n), schema=names, orient="row")

    def _check_passed(self, passed_features: Any, n: int, *, many: bool) -> list[Mapping[str, Any] | None]:
        """``passed_features`` checked: known names only, every request field in every entry."""
        passed = check_passed(passed_features, n, self._positions, many=many, computed=self._plan.outputs)
        fields = self._plan.request_fields
        if fields:
            for i, item in enumerate(passed):
                missing = [f for f in fields if item is None or f not in item]
                if missing:
                    raise ValidationError(
                        f"request field(s) {missing} missing"
                        + (f" for entry {i}" if many else "")
                        + f"; feature view {self._view.name!r} computes features from them and needs "
                        f"{list(fields)} in every request (passed_features)"
                    )
        return passed

    def lookup(
        self,
        entries: Sequence[Mapping[str, Any]],
        passed_features: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        allow_missing: bool = False,
    ) -> ServedVectors:
        """The vectors of ``entries`` as a numpy matrix, with the untransformed values they came
        from (one online read per feature group; arguments as :meth:`get_feature_vectors`)."""
        if isinstance(entries, Mapping) or not isinstance(entries, Sequence) or isinstance(entries, str):
            raise ValidationError("entries must be a list of mappings, e.g. [{'cc_num': 1}]")
        check_entries(entries, self._primary_key)
        passed = self._check_passed(passed_features, len(entries), many=True)
        n = len(entries)
        if n == 1 and not self._plan.steps:  # a single-row request: one row, its one-row twins
            row = self._row(entries[0], passed, allow_missing)
            vector = [[value] for value in self._transformer.apply_row(row)]
            return ServedVectors(self._matrix(vector, 1), [[value] for value in row])
        raw = self._raw(entries, passed, allow_missing) if n else [[] for _ in self._inputs]
        columns = self._transformer.apply(raw) if n else [[] for _ in self._names]
        return ServedVectors(self._matrix(columns, n), raw)

    def _matrix(self, columns: list[Any], n: int) -> Any:
        import numpy as np

        return np.array(
            to_rows(columns, n) if n else [], dtype=np.float64 if self._numeric else object
        ).reshape(n, len(self._names))

    def _vectors(
        self,
        entries: Sequence[Mapping[str, Any]],
        passed: Sequence[Mapping[str, Any] | None],
        allow_missing: bool,
    ) -> list[Any]:
        """The transformed model-input columns for ``entries`` (one list/array per output column)."""
        return self._transformer.apply(self._raw(entries, passed, allow_missing))

    def _raw(
        self,
        entries: Sequence[Mapping[str, Any]],
        passed: Sequence[Mapping[str, Any] | None],
        allow_missing: bool,
    ) -> list[list[Any]]:
        """The untransformed model-input columns for ``entries``: online rows, then passed values,
        then the on-demand features computed from them."""
        n = len(entries)
        found: list[list[Any] | None] = [None] * len(self._joined)
        spine_rows: list[tuple[Any, ...] | None] = [None] * n
        for index, group in enumerate(self._groups):
            rows = self._lookup(index, group, entries, passed, spine_rows, allow_missing)
            if index == 0:
                spine_rows = rows
            if None in rows:  # a missing row, or no lookup: nulls (passed values fill them below)
                for j, (position, _) in enumerate(group.features):
                    found[position] = [None if row is None else row[j] for row in rows]
            else:  # one column of values per feature, transposed in one step
                for (position, _), values in zip(group.features, zip(*rows, strict=True), strict=False):
                    found[position] = list(values)
        columns = [[None] * n if values is None else values for values in found]
        for position, key in self._entry_keys:
            columns[position] = [entry[key] for entry in entries]
        for i, extra in enumerate(passed):
            if extra:
                for name, value in extra.items():
                    columns[self._positions[name]][i] = value
        if not self._plan.steps:
            return [columns[p] for p in self._order]  # type: ignore[index]
        # on-demand features, by the function training data uses
        arrays = self._plan.apply({name: columns[self._positions[name]] for name in self._plan.inputs}, n)
        return [
            arrays[name].to_pylist() if p is None else columns[p]
            for name, p in zip(self._inputs, self._order, strict=True)
        ]

    def _row(
        self, entry: Mapping[str, Any], passed: Sequence[Mapping[str, Any] | None], allow_missing: bool
    ) -> list[Any]:
        """What :meth:`_raw` gives for one entry of a view without on-demand features, as one row
        (a single lookup is mostly such small steps; this one builds no list per column)."""
        values: list[Any] = [None] * len(self._joined)
        entries = (entry,)
        spine: list[tuple[Any, ...] | None] = [None]
        for index, group in enumerate(self._groups):
            row = self._lookup(index, group, entries, passed, spine, allow_missing)[0]
            if index == 0:
                spine = [row]
            if row is not None:
                for (position, _), value in zip(group.features, row, strict=False):
                    values[position] = value
        for position, key in self._entry_keys:
            values[position] = entry[key]
        if passed[0]:
            for name, value in passed[0].items():
                values[self._positions[name]] = value
        return [values[p] for p in self._order]  # type: ignore[index]

    def _lookup(
        self,
        index: int,
        group: _Group,
        entries: Sequence[Mapping[str, Any]],
        passed: Sequence[Mapping[str, Any] | None],
        spine_rows: list[tuple[Any, ...] | None],
        allow_missing: bool,
    ) -> list[tuple[Any, ...] | None]:
        n = len(entries)
        needs_row = index == 0 and bool(self._spine_columns)
        wanted = group.wanted
        if (
            not needs_row
            and passed[0] is not None
            and all(p is not None and all(w in p for w in wanted) for p in passed)
        ):
            return [None] * n  # every feature of the group is passed in: no lookup
        if not group.online:
            missing = [w for w in wanted if not all(p is not None and w in p for p in passed)]
            if missing:
                raise ValidationError(
                    f"feature group {group.name!r} is not online-enabled, so its features {missing} "
                    "must be given in passed_features"
                )
            return [None] * n
        keys: list[tuple[Any, ...] | None] = []
        if group.from_entry and len(group.keys) == 1:  # the usual key: one spine key column
            column = group.keys[0]
            for entry in entries:
                value = entry[column]
                if type(value) is not int and type(value) is not str:
                    value = plain_key_value(value)
                keys.append(None if value is None else (value,))
        else:
            for i, entry in enumerate(entries):
                if group.from_entry:  # every entry holds the spine's key columns (checked)
                    key = [plain_key_value(entry[column]) for column in group.keys]
                else:
                    key = self._joined_key(group, entry, passed[i], spine_rows[i])
                keys.append(None if any(v is None for v in key) else tuple(key))
        if None not in keys:
            rows = self._online.read_columns(group.table, keys, group.columns)  # type: ignore[arg-type]
        else:
            present = [k for k in keys if k is not None]
            it = iter(self._online.read_columns(group.table, present, group.columns) if present else [])
            rows = [None if k is None else next(it) for k in keys]
        if not allow_missing and None in rows:
            for i, row in enumerate(rows):
                if row is None:
                    raise NotFoundError(
                        f"no online row in feature group {group.name!r} for "
                        f"{dict(zip(group.keys, keys[i] or (), strict=False)) or dict(entries[i])}; "
                        "insert it, or pass allow_missing=True to get nulls"
                    )
        return rows

    def _joined_key(
        self,
        group: _Group,
        entry: Mapping[str, Any],
        passed: Mapping[str, Any] | None,
        spine_row: tuple[Any, ...] | None,
    ) -> list[Any]:
        """A joined group's lookup key for one entry: each column from the entry, else the passed
        features, else the spine group's online row (None where none has it)."""
        key: list[Any] = []
        for column in group.keys:
            if column in entry:
                value = entry[column]
            elif passed is not None and column in passed:
                value = passed[column]
            elif spine_row is not None:
                value = spine_row[self._spine_index[column]]
            else:
                value = None
            key.append(plain_key_value(value))
        return key
