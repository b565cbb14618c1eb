"""The inference log: column-wise frames, append-only commits, and a full buffer that drops."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import NotFoundError, SchemaError
from fti.serving.log_committer import append_log_rows
from fti.serving.log_frames import to_frame, to_frames
from fti.serving.metrics import ServerMetrics
from fti.serving.request_log import InferenceRecord, LoggedInputs, RequestLogger

NAMES = ["a", "b"]


def _record(request_id: str, rows: int = 2, names: list[str] = NAMES) -> InferenceRecord:
    return InferenceRecord(
        "dep",
        "model",
        3,
        request_id,
        datetime(2024, 1, 1, 12, 30, 5, 123457, tzinfo=UTC),
        names,
        np.arange(rows * len(names), dtype=np.float64).reshape(rows, len(names)),
        {"predict": np.arange(rows), "predict_proba": np.full((rows, 2), 0.5)},
    )


def test_frames_have_one_row_per_predicted_row() -> None:
    frame = to_frame([_record("r1"), _record("r2", rows=1), _record("r1")]).to_pandas()  # r1 again: last wins
    assert frame["request_id"].tolist() == ["r2", "r1", "r1"]
    assert frame["row"].tolist() == [0, 0, 1]
    assert frame["a"].tolist() == [0.0, 0.0, 2.0]
    assert list(frame.columns) == [
        "request_id", "row", "timestamp", "model_name", "model_version", "variant",
        "a", "b", "predict", "predict_proba_0", "predict_proba_1",
    ]  # fmt: skip
    assert frame["variant"].isna().all()
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["timestamp"].iloc[0].to_pydatetime() == datetime(2024, 1, 1, 12, 30, 5, 123457, tzinfo=UTC)


def test_text_features_and_labels_become_string_columns_in_any_output_width() -> None:
    record = InferenceRecord(
        "dep",
        "model",
        1,
        "r1",
        datetime(2024, 1, 1, tzinfo=UTC),
        ["city", "x"],
        np.array([["Oslo", 1.5], ["Lima", 2.5]], dtype=object),
        {"predict": np.array(["ok", "fraud"]), "top2": np.array([["a", "b"], ["c", "d"]], dtype=object)},
    )
    frame = to_frame([record])
    assert frame.column("city").to_pylist() == ["Oslo", "Lima"]
    assert frame.column("predict").to_pylist() == ["ok", "fraud"]
    assert [frame.column(f"top2_{j}").to_pylist() for j in range(2)] == [["a", "c"], ["b", "d"]]
    assert {str(frame.schema.field(n).type) for n in ("city", "predict", "top2_0")} == {"string"}


def test_log_commits_are_appends_and_a_wrong_schema_writes_nothing(sqlite_project: fti.Project) -> None:
    group = sqlite_project.feature_store.get_or_create_feature_group(
        "dep_inference_log", 1, primary_key=["request_id", "row"], event_time="timestamp"
    )
    append_log_rows(group, to_frame([_record("r1")]))
    append_log_rows(group, to_frame([_record("r2")]))
    assert sorted(group.read()["request_id"]) == ["r1", "r1", "r2", "r2"]
    assert len(group.commits()) == 2
    with pytest.raises(SchemaError):
        append_log_rows(group, to_frame([_record("r3", names=["a", "zz"])]))
    assert len(group.read()) == 4 and len(group.commits()) == 2


def test_a_large_flush_is_appended_without_a_query_engine(tmp_path) -> None:
    """The keys of a flush are unique by construction, so even 600k rows (beyond the size at
    which an insert's duplicate check moves to DuckDB) commit without loading DuckDB or pandas."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime, timedelta
        import numpy as np
        import fti
        from fti.serving.request_log import InferenceRecord
        from fti.serving.log_committer import append_log_rows
        from fti.serving.log_frames import to_frame
        project = fti.connect(home={str(tmp_path)!r})
        group = project.feature_store.get_or_create_feature_group(
            "dep_inference_log", 1, primary_key=["request_id", "row"], event_time="timestamp"
        )
        rows = 600_000
        record = InferenceRecord(
            "dep", "model", 3, "big", datetime(2024, 1, 1, tzinfo=UTC), ["a"],
            np.arange(rows, dtype=np.float64).reshape(rows, 1), {{"predict": np.arange(rows)}},
        )
        version = append_log_rows(group, to_frame([record]))
        loaded = sorted(m for m in ("duckdb", "pandas") if m in sys.modules)
        stored = group.read_arrow(columns=["row"]).column("row")
        print(version, stored.length(), len(set(stored.to_pylist())), loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert out.stdout.split("[")[0].split() == ["0", "600000", "600000"]
    assert out.stdout.strip().endswith("[]")


def test_a_full_buffer_drops_with_a_counter_and_a_warning(
    sqlite_project: fti.Project, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = ServerMetrics()
    logger = RequestLogger(sqlite_project, metrics, capacity=2, flush_interval_s=0.05)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="fti.serving.request_log"):
        for i in range(50):  # the writer is not running: the buffer fills up
            logger.log(_record(f"r{i}"))
    assert time.perf_counter() - started < 0.5  # never blocks
    assert logger.dropped == 48 * 2
    assert b'fti_inference_log_dropped_total{model="dep"} 96.0' in metrics.render()
    assert "dropped inference-log rows of dep: the inference-log buffer is full" in caplog.text
    logger.start()
    logger.stop()
    assert logger.written == 4
    logged = sqlite_project.feature_store.get_feature_group("dep_inference_log").read()
    assert sorted(logged["request_id"].unique()) == ["r0", "r1"]


def _enriched(
    request_id: str, keys: list[int], amounts: list[float | None], cities: list[str | None]
) -> InferenceRecord:
    n = len(keys)
    return InferenceRecord(
        "dep",
        "model",
        2,
        request_id,
        datetime(2024, 1, 1, tzinfo=UTC),
        ["amount_scaled", "city_oslo"],
        np.zeros((n, 2)),  # the transformed matrix: not what an enriched log records
        {"predict_proba": np.full((n, 2), 0.5)},
        LoggedInputs(["cc_num", "amount", "city"], [keys, amounts, cities], ["int64", "float64", "string"]),
        variant="blue",
    )


def test_enriched_records_log_keys_and_untransformed_values_with_nulls() -> None:
    frame = to_frame([_enriched("r1", [7, 8], [12.5, None], ["oslo", None])])
    assert frame.column_names == [
        "request_id", "row", "timestamp", "model_name", "model_version", "variant",
        "cc_num", "amount", "city", "predict_proba_0", "predict_proba_1",
    ]  # fmt: skip
    assert frame.column("cc_num").to_pylist() == [7, 8]
    assert frame.column("amount").to_pylist() == [12.5, None]
    assert frame.column("city").to_pylist() == ["oslo", None]
    assert frame.column("variant").to_pylist() == ["blue", "blue"]
    assert [str(frame.schema.field(n).type) for n in ("cc_num", "amount", "city")] == [
        "int64",
        "double",
        "string",
    ]


def test_a_flush_with_two_kinds_of_records_writes_both(sqlite_project: fti.Project) -> None:
    """A model swap mid-flush (other inputs) used to lose the second kind; now each kind goes
    to the log-group version of its own columns, and monitors read every version."""
    frames = to_frames([_record("r1"), _enriched("r2", [1], [2.0], ["rome"]), _record("r3")])
    assert [f.num_rows for f in frames] == [4, 1]
    # an enriched record first, then a plain one (a server with both kinds of deployment): the
    # first hand-off of the e2e system failed on it, and its rows never reached the log
    plain = _record("r1")._replace(outputs={"predict_proba": np.full((2, 2), 0.5)})  # the same outputs
    frames = to_frames([_enriched("r2", [1], [2.0], ["rome"]), plain])
    assert [f.num_rows for f in frames] == [1, 2]
    logger = RequestLogger(sqlite_project, ServerMetrics(), flush_interval_s=0.05)
    for record in (_record("r1"), _enriched("r2", [1], [2.0], ["rome"]), _record("r3")):
        logger.log(record)
    logger.flush()
    logger.log(_enriched("r4", [5, 6], [1.0, 3.0], ["oslo", "lima"]))
    logger.flush()
    assert logger.written == 4 + 1 + 2 and logger.dropped == 0
    fs = sqlite_project.feature_store
    plain = fs.get_feature_group("dep_inference_log", 1).read()
    enriched = fs.get_feature_group("dep_inference_log", 2).read()
    assert sorted(plain["request_id"].unique()) == ["r1", "r3"]
    assert sorted(enriched["request_id"]) == ["r2", "r4", "r4"]
    assert sorted(enriched["cc_num"]) == [1, 5, 6]
    restarted = RequestLogger(sqlite_project, ServerMetrics())  # a new server finds the same versions
    restarted.log(_record("r5"))
    restarted.flush()
    assert "r5" in set(fs.get_feature_group("dep_inference_log", 1).read()["request_id"])
    assert [g.version for g in fs.list_feature_groups() if g.name == "dep_inference_log"] == [1, 2]


def test_the_writer_compacts_and_vacuums_the_logs_it_wrote(sqlite_project: fti.Project) -> None:
    logger = RequestLogger(
        sqlite_project, ServerMetrics(), compact_min_commits=5, vacuum_retention=timedelta(0)
    )
    for i in range(6):
        logger.log(_record(f"r{i}"))
        logger.flush()
    group = sqlite_project.feature_store.get_feature_group("dep_inference_log")
    before = group.read().sort_values(["request_id", "row"], ignore_index=True)
    files = len(group.project.backends.offline.local_files(group.table_name, 5).paths)  # type: ignore[union-attr]
    assert files == 6
    assert logger.compact() == 1
    after = group.read().sort_values(["request_id", "row"], ignore_index=True)
    pd.testing.assert_frame_equal(before, after)
    latest = group.latest_commit_version()
    assert [(c.version, c.operation, c.rows_inserted) for c in group.commits()[-3:]] == [
        (6, "compact", 0),
        (7, "vacuum", 0),  # Delta records a vacuum as two commits (start, end)
        (latest, "vacuum", 0),
    ]
    assert len(group.project.backends.offline.local_files(group.table_name, latest).paths) == 1  # type: ignore[union-attr]
    with pytest.raises(NotFoundError, match="deleted by vacuum"):
        group.read(as_of=3)  # beyond the retention (0): its files are gone
    assert logger.compact() == 0  # nothing written since


def test_a_buffered_record_is_references_the_garbage_collector_stops_tracking(
    sqlite_project: fti.Project,
) -> None:
    """Issue 21: the request path only buffers references to the decoded inputs and outputs (the
    columns are built by the writer thread), as a record the collector untracks in its
    first pass, so thousands of buffered records are never walked by full collections."""
    import gc

    logger = RequestLogger(sqlite_project, ServerMetrics())
    matrix = np.zeros((1, 2))
    outputs = {"predict": np.array([1]), "predict_proba": np.array([[0.25, 0.75]])}
    record = InferenceRecord("dep", "model", 3, "r1", datetime.now(UTC), ("a", "b"), matrix, outputs)
    logger.log(record)
    [buffered] = logger._buffer
    assert buffered[:7] == record[:7] and buffered[6] is matrix
    assert buffered[9:] == ("predict", outputs["predict"], "predict_proba", outputs["predict_proba"])
    assert buffered[10] is outputs["predict"]  # the arrays, not copies
    gc.collect(0)
    assert not gc.is_tracked(buffered)
    logger.flush()
    assert logger.written == 1 and not logger._buffer


def test_generated_request_ids_are_unique_and_differ_across_forked_workers() -> None:
    import multiprocessing

    from fti.serving.infer import RequestIds

    ids = RequestIds()
    mine = [ids.next() for _ in range(1000)]
    assert len(set(mine)) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in mine)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        theirs = pool.apply(ids.next)
    assert theirs[:16] != mine[0][:16] and theirs not in mine
