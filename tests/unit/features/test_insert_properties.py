"""Property tests of the insert path (ARCHITECTURE.md invariant 4, "nothing lost").

Random sequences of valid and invalid inserts are applied to a real feature group and to a
brute-force model: the offline table must equal the model's rows, the online store must hold the
latest row per key, and a rejected insert must change nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.errors import FtiError

T0 = datetime(2024, 1, 1, tzinfo=UTC)

rows = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 20), st.floats(-1e6, 1e6, allow_nan=False)),
    min_size=0,
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(rows, min_size=1, max_size=5))
def test_offline_and_online_match_a_brute_force_model(tmp_path_factory, batches) -> None:
    home = tmp_path_factory.mktemp("prop")
    with fti.connect(home=home) as project:
        fg = project.feature_store.get_or_create_feature_group(
            "g", primary_key=["k"], event_time="ts", online_enabled=True
        )
        model: dict[tuple[int, int], float] = {}
        for batch in batches:
            frame = pd.DataFrame(
                {
                    "k": pd.Series([k for k, _, _ in batch], dtype="int64"),
                    "ts": pd.Series(
                        [T0 + timedelta(hours=h) for _, h, _ in batch], dtype="datetime64[us, UTC]"
                    ),
                    "v": pd.Series([v for _, _, v in batch], dtype="float64"),
                }
            )
            # rows repeated whole are stored once; a (key, time) pair with two values is rejected
            distinct = set(batch)
            valid = bool(batch) and len({(k, h) for k, h, _ in distinct}) == len(distinct)
            before = fg.latest_commit_version()
            try:
                fg.insert(frame)
            except FtiError:
                assert not valid
                assert fg.latest_commit_version() == before  # a rejected insert writes nothing
                continue
            assert valid
            model.update({(k, h): v for k, h, v in batch})

        stored = fg.read() if model else pd.DataFrame(columns=["k", "ts", "v"])
        got = {(int(r.k), int((r.ts - T0).total_seconds() // 3600)): r.v for r in stored.itertuples()}
        assert got == model
        latest: dict[int, tuple[int, float]] = {}
        for (k, h), v in model.items():
            if k not in latest or h > latest[k][0]:
                latest[k] = (h, v)
        online = fg.online_lookup([{"k": k} for k in range(7)])
        for k in range(7):
            if k in latest:
                assert online[k] is not None
                assert online[k]["v"] == latest[k][1]
                assert online[k]["ts"] == T0 + timedelta(hours=latest[k][0])
            else:
                assert online[k] is None


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    import fti
    project = fti.connect(home=sys.argv[1])
    fg = project.feature_store.get_feature_group("crash")
    for i in range(1, 10_000):
        n = 200_000
        frame = pd.DataFrame({
            "k": np.arange(n) % 5000,
            "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) + i * n, unit="s"),
            "v": np.full(n, float(i)),
        })
        fg.insert(frame)
        print(i, flush=True)
    """
)


def test_a_killed_writer_leaves_a_readable_table_and_online_catches_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        fg = project.feature_store.get_or_create_feature_group(
            "crash", primary_key=["k"], event_time="ts", online_enabled=True
        )
        fg.insert(pd.DataFrame({"k": [0], "ts": [T0], "v": [0.0]}))
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(home)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # at least one insert completed
    time.sleep(0.3)  # then kill it somewhere inside a later insert
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    with fti.connect(home=home) as project:  # connect runs the online catch-up
        fg = project.feature_store.get_feature_group("crash")
        offline = fg.read()
        assert len(offline) >= 1 + 200_000
        assert len(offline) % 200_000 == 1  # whole inserts only
        latest = offline.sort_values("ts").groupby("k").tail(1).set_index("k")["v"]
        online = fg.online_lookup([{"k": k} for k in range(0, 5000, 250)])
        assert [row["v"] for row in online] == [latest[k] for k in range(0, 5000, 250)]
