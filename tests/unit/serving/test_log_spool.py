"""The inference log's spool and committer: segments survive a torn write, a replayed directory
is not committed twice, a full spool holds rows back, and the column-wise (packed) frames equal
the rows built one by one."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.serving import log_spool
from fti.serving.log_committer import LogCommitter
from fti.serving.log_frames import flat, frames, unpack
from fti.serving.log_spool import Spool, parse_token, token
from fti.serving.metrics import ServerMetrics
from fti.serving.request_log import InferenceRecord, RequestLogger

NAMES = ("a", "b", "c")


def _record(request_id: str, rows: int = 1, deployment: str = "dep", seed: int = 0) -> InferenceRecord:
    rng = np.random.default_rng(seed)
    return InferenceRecord(
        deployment,
        "model",
        3,
        request_id,
        datetime(2024, 1, 1, tzinfo=UTC) + timedelta(microseconds=seed),
        NAMES,
        rng.random((rows, 3)),
        {"predict": np.arange(rows), "predict_proba": rng.random((rows, 2))},
    )


def _spool_of(tmp_path: Path, records: list[InferenceRecord]) -> Spool:
    spool = Spool.create(tmp_path / "spool")
    for deployment, table in frames([flat(r) for r in records]):
        spool.append(deployment, table)
    spool.rotate()
    return spool


def test_a_segment_cut_mid_batch_reads_up_to_its_last_whole_batch(tmp_path: Path) -> None:
    spool = Spool.create(tmp_path)
    for i in range(3):  # three hand-offs: three batches in one open segment
        [(deployment, table)] = frames([flat(_record(f"r{i}", seed=i))])
        spool.append(deployment, table)
    [file] = spool.rotate()
    data = file.path.read_bytes()
    file.path.write_bytes(data[: len(data) - 40])  # the server died writing the third batch
    deployment, table = log_spool.read(file)
    assert deployment == "dep"
    assert unpack(table).column("request_id").to_pylist() == ["r0", "r1"]


def test_a_replayed_directory_commits_each_segment_once(project: fti.Project, tmp_path: Path) -> None:
    """A writer killed between its commit and deleting the segments: the next one finds the
    segments named in the commit's metadata and does not append them again."""
    spool = _spool_of(tmp_path, [_record("r1", rows=2), _record("r2")])
    [segment] = spool.files()
    kept = tmp_path / "kept"
    shutil.copy(segment.path, kept)
    outcome = LogCommitter(project).commit(spool)
    assert outcome.done == [segment.seq] and outcome.written == {"dep": 3}
    shutil.copy(kept, segment.path)  # as if the writer had died before deleting it
    later = _spool_of(tmp_path / "other", [_record("r3")])
    shutil.copy(kept, later.directory / "000000000099.arrow")  # the same rows, another directory
    replay = LogCommitter(project)
    assert replay.commit(spool).done == [segment.seq] and not spool.files()  # skipped, removed
    assert replay.commit(later).written == {"dep": 4}  # not named by any commit: committed
    group = project.feature_store.get_feature_group("dep_inference_log")
    assert sorted(group.read()["request_id"]) == ["r1", "r1", "r1", "r1", "r2", "r2", "r3"]
    assert len(group.commits()) == 2


def test_a_full_spool_keeps_rows_in_the_buffer_then_drops(sqlite_project: fti.Project) -> None:
    metrics = ServerMetrics()
    logger = RequestLogger(sqlite_project, metrics, capacity=4, spool_max_bytes=1)
    for i in range(2):
        logger.log(_record(f"r{i}"))
    assert logger.handoff(close=True) == 2  # spooled: the spool is now past its bound
    for i in range(2, 8):
        logger.log(_record(f"r{i}"))
    assert logger.handoff(close=True) == 0  # held back in memory ...
    assert logger.dropped == 2  # ... until the buffer is full too: r6 and r7 are dropped
    assert b"fti_inference_log_spooled_bytes" in metrics.render()
    assert logger.flush()  # the committed spool makes room: the buffer follows
    group = sqlite_project.feature_store.get_feature_group("dep_inference_log")
    assert sorted(group.read()["request_id"]) == [f"r{i}" for i in range(6)]
    assert logger.written == 6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["x", "y", "z", "w"]),  # request ids: reused ones keep their last record
            st.integers(1, 3),  # rows
            st.sampled_from(["dep", "other"]),  # two deployments: the batch has two kinds
            st.integers(0, 1000),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_frames_equal_the_rows_built_one_by_one(specs: list[tuple[str, int, str, int]]) -> None:
    records = [_record(rid, rows, dep, seed) for rid, rows, dep, seed in specs]
    got = {deployment: unpack(table).to_pylist() for deployment, table in frames([flat(r) for r in records])}
    expected: dict[str, list[dict[str, Any]]] = {}
    for deployment in dict.fromkeys(r.deployment for r in records):
        last = {r.request_id: r for r in records if r.deployment == deployment}
        mine = [r for r in records if r.deployment == deployment and last[r.request_id] is r]
        expected[deployment] = [
            {
                "request_id": r.request_id,
                "row": j,
                "timestamp": r.timestamp,
                "model_name": "model",
                "model_version": 3,
                "variant": None,
                **{name: r.features[j, k] for k, name in enumerate(NAMES)},
                "predict": r.outputs["predict"][j],
                "predict_proba_0": r.outputs["predict_proba"][j, 0],
                "predict_proba_1": r.outputs["predict_proba"][j, 1],
            }
            for r in mine
            for j in range(len(r.features))
        ]
    assert got == expected


@given(st.sets(st.integers(1, 10_000), min_size=1, max_size=60))
def test_a_commit_token_names_exactly_its_segments(seqs: set[int]) -> None:
    value = token("123-abcd", sorted(seqs))
    assert parse_token(value) == ("123-abcd", seqs)
    assert len(value) <= len("123-abcd:") + 12 * len(seqs)


def test_the_writer_options_carry_the_secret_settings(tmp_path: Path) -> None:
    from fti.config import Settings
    from fti.serving.log_writer import settings_payload

    with fti.connect(home=tmp_path / "home", secret_key="k" * 43 + "=") as project:
        payload = settings_payload(project)
    again = Settings(**payload)
    assert again.secret_key is not None and again.secret_key.get_secret_value() == "k" * 43 + "="
    assert again.resolved_catalog_url == project.settings.resolved_catalog_url
    assert again.home == project.settings.home


@pytest.mark.parametrize("rows", [1, 3])
def test_a_logger_that_was_never_started_commits_on_flush(sqlite_project: fti.Project, rows: int) -> None:
    logger = RequestLogger(sqlite_project, ServerMetrics())
    logger.log(_record("r1", rows=rows))
    assert logger.flush() and logger.written == rows
    root = log_spool.spool_root(sqlite_project.settings.home, sqlite_project.name)
    [directory] = list(root.iterdir())
    assert not list(directory.glob("*.arrow"))  # committed and deleted
    logger.stop()
    assert list(root.iterdir()) == []


def test_only_a_dead_servers_spool_with_rows_counts_as_left_behind(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    live = _spool_of(tmp_path, [_record("r1")])  # owned: a sibling worker's, say
    empty = Spool.create(root)
    assert not log_spool.has_orphans(root)
    empty.owner.release()  # a dead server's, without rows
    assert not log_spool.has_orphans(root)
    live.owner.release()  # a dead server's, with rows
    assert log_spool.has_orphans(root)
    assert not log_spool.has_orphans(root, exclude=live.name)
    [adopted] = log_spool.orphans(root, exclude=empty.name)
    assert adopted.name == live.name and not log_spool.has_orphans(root)  # its owner lock is taken
