"""Incremental reads: exact watermarks, ties at the boundary, and no advance without a commit."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.errors import NotFoundError, SchemaError, ValidationError
from fti.sources import SQL, get_cursor, list_cursors, reset_cursor

from .conftest import Database

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def insert(database: Database, rows: list[tuple[int, int]]) -> None:
    """Rows (id, second offset from T0)."""
    values = ", ".join(
        f"({i}, timestamptz '2024-01-01 00:00:00+00' + interval '{s} second')" for i, s in rows
    )
    database.execute(f"INSERT INTO events (id, ts) VALUES {values}")


@pytest.fixture
def events(database: Database) -> Database:
    database.execute("CREATE TABLE events (id bigint PRIMARY KEY, ts timestamptz, note text DEFAULT 'x')")
    return database


def ids(batch: fti.sources.IncrementalRead) -> list[int]:
    return sorted(batch.table.column("id").to_pylist())


def test_rows_sharing_the_watermark_are_delivered_exactly_once(
    events: Database, project: fti.Project
) -> None:
    source = SQL(events.url, project=project)
    insert(events, [(1, 10), (2, 20), (3, 20)])
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert batch.start is None and ids(batch) == [1, 2, 3]
    cursor = get_cursor(project, "ev")
    assert cursor.watermark.to_python() == T0 + timedelta(seconds=20)  # exact, not rounded
    assert cursor.boundary_rows == 2 and cursor.rows_total == 3
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert ids(batch) == []  # the two rows at the watermark are not delivered again
    insert(events, [(4, 20), (5, 30)])  # a late row with the same timestamp, and a newer one
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert batch.start == cursor.watermark and ids(batch) == [4, 5]
    insert(events, [(6, 30)])
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert ids(batch) == [6]
    events.execute("UPDATE events SET note = 'changed' WHERE id = 5")  # changed at the boundary: re-read
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert ids(batch) == [5]
    assert get_cursor(project, "ev").rows_total == 7
    assert [c.name for c in list_cursors(project)] == ["ev"]


def test_a_failing_block_does_not_advance_and_a_retry_rereads(events: Database, project: fti.Project) -> None:
    source = SQL(events.url, project=project)
    insert(events, [(1, 1), (2, 2)])
    with (
        pytest.raises(RuntimeError, match="write failed"),
        source.read_incremental("events", cursor="ts", name="ev") as b,
    ):
        assert ids(b) == [1, 2]
        raise RuntimeError("write failed")
    with pytest.raises(NotFoundError):
        get_cursor(project, "ev")
    with source.read_incremental("events", cursor="ts", name="ev") as b:
        assert ids(b) == [1, 2]
    insert(events, [(3, 3)])
    with pytest.raises(RuntimeError), source.read_incremental("events", cursor="ts", name="ev") as b:
        assert ids(b) == [3]
        raise RuntimeError("write failed again")
    assert get_cursor(project, "ev").watermark.to_python() == T0 + timedelta(seconds=2)
    batch = source.read_incremental("events", cursor="ts", name="ev")  # explicit commit, no `with`
    assert ids(batch) == [3]
    assert batch.commit() is not None and batch.commit() == batch.end  # a second commit is a no-op
    assert get_cursor(project, "ev").watermark.to_python() == T0 + timedelta(seconds=3)


def test_feature_group_insert_failure_keeps_the_cursor(events: Database, project: fti.Project) -> None:
    """The natural pipeline: insert inside the block; a rejected insert re-reads the rows next time."""
    source = SQL(events.url, project=project)
    fg = project.feature_store.get_or_create_feature_group("events", primary_key=["id"], event_time="ts")
    fg.insert(SQL(events.url).read("SELECT 0::bigint AS id, now() AS ts, 'x' AS note"))
    insert(events, [(1, 1), (2, 2)])
    with pytest.raises(SchemaError), source.read_incremental("events", cursor="ts", name="ev") as batch:
        fg.insert(batch.table.drop_columns(["note"]))  # a bug in the pipeline: a column missing
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        fg.insert(batch.table)  # the fixed pipeline gets the same rows
    with pytest.raises(RuntimeError), source.read_incremental("events", cursor="ts", name="ev") as batch:
        insert(events, [(3, 3)])
        fg.insert(batch.table)  # empty: (3, 3) arrived after the read
        raise RuntimeError("crash after the insert")
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        fg.insert(batch.table)
    stored = fg.read()
    assert sorted(stored["id"]) == [0, 1, 2, 3]  # nothing skipped, nothing doubled


def test_partial_stream_is_refused_and_until_bounds_the_read(events: Database, project: fti.Project) -> None:
    insert(events, [(i, i) for i in range(1, 11)])
    source = SQL(events.url, project=project, chunk_rows=3)
    with (
        pytest.raises(ValidationError, match="only part of the rows"),
        source.read_incremental("events", cursor="ts", name="ev") as batch,
    ):
        next(iter(batch.batches()))
    with pytest.raises(NotFoundError):
        get_cursor(project, "ev")
    with source.read_incremental("events", cursor="ts", name="ev", until=T0 + timedelta(seconds=5)) as batch:
        assert sum(b.num_rows for b in batch.batches()) == 4  # 1..4: until is exclusive
    with source.read_incremental(
        "SELECT id, ts FROM events WHERE id % 2 = 0", cursor="ts", name="ev"
    ) as batch:
        # The query is wrapped: rows from second 4 on. Row 4 sat at the watermark, but under another
        # projection its digest differs, so it is delivered again (the upsert makes that harmless).
        assert ids(batch) == [4, 6, 8, 10]
    with pytest.raises(ValidationError, match="already read"):
        batch.batches().__next__()


def test_concurrent_commits_keep_the_furthest_position(events: Database, project: fti.Project) -> None:
    insert(events, [(1, 1), (2, 2)])
    source = SQL(events.url, project=project)
    first = source.read_incremental("events", cursor="ts", name="ev")
    assert ids(first) == [1, 2]
    insert(events, [(3, 3)])
    second = source.read_incremental("events", cursor="ts", name="ev")
    assert ids(second) == [1, 2, 3]
    second.commit()
    first.commit()  # the slower run must not move the cursor back
    assert get_cursor(project, "ev").watermark.to_python() == T0 + timedelta(seconds=3)
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert ids(batch) == []


def test_null_watermarks_bad_columns_and_reset(events: Database, project: fti.Project) -> None:
    events.execute("INSERT INTO events (id, ts) VALUES (1, NULL)")
    insert(events, [(2, 2)])
    source = SQL(events.url, project=project)
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert ids(batch) == [2]  # a NULL watermark is never read incrementally
    with (
        pytest.raises(ValidationError, match="cannot be a watermark"),
        source.read_incremental(
            "SELECT id, ts, id > 1 AS flag FROM events", cursor="flag", name="bad"
        ) as batch,
    ):
        batch.table  # noqa: B018
    with (
        pytest.raises(ValidationError, match=r"column fti_q\.missing does not exist"),
        source.read_incremental("events", cursor="missing", name="bad") as batch,
    ):
        batch.table  # noqa: B018
    with pytest.raises(ValidationError, match="invalid cursor name"):
        source.read_incremental("events", cursor="ts", name="bad name")
    reset_cursor(project, "ev")
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        assert ids(batch) == [2]
    with pytest.raises(NotFoundError):
        reset_cursor(project, "never")


_example = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.one_of(
            st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=5).map(
                lambda s: ("insert", s)
            ),
            st.sampled_from([("read", "ok"), ("read", "fail")]),
        ),
        max_size=14,
    ),
    chunk_rows=st.integers(min_value=1, max_value=4),
)
def test_every_row_is_delivered_once_property(
    tmp_path: Path, sqlite_project: fti.Project, steps: list[tuple[str, object]], chunk_rows: int
) -> None:
    """Rows arrive with watermarks that only grow but tie often; reads succeed or fail at random.
    The rows of the successful reads are every row, each once."""
    n = next(_example)
    path = tmp_path / f"p{n}.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE r (id INTEGER, w INTEGER)")
    source = SQL(f"sqlite:///{path}", project=sqlite_project, chunk_rows=chunk_rows)
    next_id, high, delivered = 0, 0, []
    for kind, arg in steps:
        if kind == "insert":
            rows = []
            for step in sorted(arg):  # type: ignore[call-overload]
                high += step // 3  # mostly ties with the current watermark
                rows.append((next_id, high))
                next_id += 1
            with sqlite3.connect(path) as conn:
                conn.executemany("INSERT INTO r VALUES (?, ?)", rows)
        else:
            try:
                with source.read_incremental("r", cursor="w", name=f"prop{n}") as batch:
                    got = [row for b in batch.batches() for row in b.column("id").to_pylist()]
                    if arg == "fail":
                        raise RuntimeError
                    delivered.extend(got)
            except RuntimeError:
                pass
    with source.read_incremental("r", cursor="w", name=f"prop{n}") as batch:
        delivered.extend(batch.table.column("id").to_pylist())
    assert sorted(delivered) == list(range(next_id))


def test_streamed_into_a_feature_group(events: Database, sqlite_project: fti.Project) -> None:
    insert(events, [(i, i // 3) for i in range(1, 11)])
    source = SQL(events.url, project=sqlite_project, chunk_rows=3)
    fg = sqlite_project.feature_store.get_or_create_feature_group(
        "events", primary_key=["id"], event_time="ts"
    )
    with source.read_incremental("events", cursor="ts", name="ev") as batch:
        fg.insert_stream(batch.batches(), write_mode="upsert")  # one batch of 3 rows in memory at a time
    assert sorted(fg.read()["id"]) == list(range(1, 11))
    assert get_cursor(sqlite_project, "ev").rows_total == 10
