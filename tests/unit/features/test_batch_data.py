"""Batch data of a feature view: the streamed rows equal those read at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import fti
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


_PEAK_CHILD = """
import sys
import fti
fv = fti.connect(home=sys.argv[1]).feature_store.get_feature_view("wide")
for table in fv.iter_batch_data(batch_rows=8192):
    pass
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0])
"""


def test_the_streamed_join_holds_a_batch_not_the_spine(tmp_path: Path) -> None:
    """Peak memory of iterating a view joining two groups of 20 features does not grow with the
    spine's row count: at 1M spine rows it is within a quarter of the joined data's growth (900k
    rows x 40 features = 275 MiB) of the peak at 100k rows. Each size is read in a fresh process
    (its own VmHWM); it grew by less than 10 MiB. DuckDB's join over the whole spine grew by about
    370 MiB here (its second ``ASOF JOIN`` sorts the first one's wide result)."""
    width, keys = 20, 2_000
    peaks = []
    for rows in (100_000, 1_000_000):
        home = tmp_path / str(rows)
        project = fti.connect(home=home)
        fs = project.feature_store
        rng = np.random.default_rng(0)
        spine = fs.get_or_create_feature_group("s", primary_key=["id"], event_time="ts")
        spine.insert(
            pd.DataFrame(
                {
                    "id": np.arange(rows),
                    "ts": pd.Timestamp(at(1)) + pd.to_timedelta(np.arange(rows), unit="s"),
                    "k1": rng.integers(0, keys + 100, rows),  # some keys have no row
                    "k2": rng.integers(0, keys, rows),
                }
            )
        )
        query = spine.select(["k1"])
        for g in ("k1", "k2"):
            group = fs.get_or_create_feature_group(f"g_{g}", primary_key=[g], event_time="ts")
            names = [f"{g}_f{i}" for i in range(width)]
            features = pd.DataFrame(rng.normal(size=(keys, width)), columns=names)
            group.insert(pd.concat([pd.DataFrame({g: range(keys), "ts": [at(0)] * keys}), features], axis=1))
            query = query.join(group.select(names))
        fs.get_or_create_feature_view("wide", query=query)
        project.close()
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_CHILD, str(home)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[3],
        )
        peaks.append(int(done.stdout.strip().splitlines()[-1]) / 1024)  # MiB
    grown = (1_000_000 - 100_000) * 2 * width * 8 / 2**20
    assert peaks[1] - peaks[0] < grown / 4, f"peak {peaks[0]:.0f} MiB at 100k rows, {peaks[1]:.0f} at 1M"
