"""Batch data of a feature view: the streamed rows equal those read at once."""

from __future__ import annotations

import pyarrow as pa
import pytest

from fti.errors import ValidationError
from tests.unit.features._data import at, bits, make_view


def test_iter_batch_data_streams_the_rows_of_get_batch_data(project, groups) -> None:
    fv = make_view(project, groups)
    fv.train_test_split(test_size=0.2, seed=5)
    spine_only = project.feature_store.get_or_create_feature_view(
        "spine_only",
        query=groups["tx"].select_all(include_primary_key=False, include_event_time=False),
        labels=["is_fraud"],
        transformations={"amount": "log1p"},
    )
    cases = [(fv, None, None, 40), (fv, at(20), at(31), 11), (spine_only, None, None, 40)]
    cases += [(spine_only, at(20), at(31), 11), (spine_only, at(100), None, 0)]
    for view, start, end, rows in cases:
        batches = list(view.iter_batch_data(start, end, batch_rows=7, with_keys=True))
        assert [b.num_rows for b in batches] == [7] * (rows // 7) + ([rows % 7] if rows % 7 else [])
        expected = view.get_batch_data(start, end, with_keys=True, order=False).sort_values("tid")
        if not rows:
            assert expected.empty
            continue
        got = pa.concat_tables(batches).to_pandas().sort_values("tid")
        assert list(got.columns) == ["tid", "ts", *view.feature_names()]
        assert [[bits(v) for v in r] for r in got.itertuples(index=False)] == [
            [bits(v) for v in r] for r in expected.itertuples(index=False)
        ]
    # without keys, the model's inputs only; a reader closed early releases its query
    stream = spine_only.iter_batch_data(batch_rows=32, threads=1, memory_limit="256MB")
    first = next(stream)
    assert first.column_names == spine_only.feature_names() and first.num_rows == 32
    stream.close()
    # inputs are checked at the call, before any next()
    with pytest.raises(ValidationError, match="batch_rows must be a positive integer, got 0"):
        fv.iter_batch_data(batch_rows=0)
    with pytest.raises(ValidationError, match="must be before end_time"):
        fv.iter_batch_data(at(5), at(1))
    with pytest.raises(ValidationError, match="create training data first"):
        make_view(project, groups, name="fresh").iter_batch_data()
