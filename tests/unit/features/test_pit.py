"""Point-in-time join vs a brute-force Python implementation (ARCHITECTURE.md invariant 1).

The groups are real feature groups (their schemas drive the generated SQL); the property tests
feed random Arrow snapshots straight into ``pit.run`` so hundreds of cases stay fast, and one test
goes through real out-of-order inserts and a training dataset end to end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fti
from fti.features import pit, training_data
from fti.features.query import Query
from fti.storage.offline import scan

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


@pytest.fixture
def groups(sqlite_project: fti.Project) -> dict[str, Any]:
    fs = sqlite_project.feature_store
    decl = fti.Feature
    return {
        "spine": fs.get_or_create_feature_group(
            "spine",
            primary_key=["id"],
            event_time="ts",
            features=[
                decl("id", "int64"),
                decl("ts", "timestamp"),
                decl("k1", "int64"),
                decl("k2", "string"),
                decl("label", "int64"),
            ],
        ),
        "a": fs.get_or_create_feature_group(
            "a",
            primary_key=["k1"],
            event_time="ts",
            features=[
                decl("k1", "int64"),
                decl("ts", "timestamp"),
                decl("x", "float64"),
                decl("y", "string"),
            ],
        ),
        "b": fs.get_or_create_feature_group(
            "b",
            primary_key=["k2"],
            event_time="t",
            features=[decl("k2", "string"), decl("t", "timestamp"), decl("x", "int64")],
        ),
        "c": fs.get_or_create_feature_group(
            "c", primary_key=["k1"], features=[decl("k1", "int64"), decl("z", "float64")]
        ),
        "d": fs.get_or_create_feature_group(  # a composite key
            "d",
            primary_key=["k2", "k1"],
            event_time="ts",
            features=[
                decl("k2", "string"),
                decl("k1", "int32"),
                decl("ts", "timestamp"),
                decl("w", "float64"),
            ],
        ),
        "timeless": fs.get_or_create_feature_group(  # a spine without event time
            "timeless",
            primary_key=["id"],
            features=[decl("id", "int64"), decl("k1", "int64"), decl("k2", "string"), decl("label", "int64")],
        ),
    }


# --- brute force ------------------------------------------------------------------------------
def brute_force(query: Query, tables: list[pa.Table], start: datetime | None = None) -> list[tuple[Any, ...]]:
    spine_rows = tables[0].to_pylist()
    parts_rows = [t.to_pylist() for t in tables]
    spine = query.spine
    out = []
    for s in spine_rows:
        if start is not None and s[spine.event_time] < start:
            continue
        matches: list[dict[str, Any] | None] = [s]
        for index, part in enumerate(query.parts[1:], start=1):
            group = part.group
            best = None
            for r in parts_rows[index]:
                if any(s[k] is None or s[k] != r[k] for k in part.on):
                    continue
                if group.event_time is not None:
                    if r[group.event_time] > s[spine.event_time]:
                        continue
                    if best is None or r[group.event_time] > best[group.event_time]:
                        best = r
                else:
                    best = r
            too_old = best is not None and part.max_age is not None
            if too_old and s[spine.event_time] - best[group.event_time] > part.max_age:  # type: ignore[index]
                best = None
            matches.append(best)
        row = [s[k] for k in query.key_columns()]
        for column in query.columns():
            if column.part == 0 and column.name in query.key_columns():
                continue
            source = matches[column.part]
            row.append(None if source is None else source[column.column])
        out.append(tuple(row))
    return sorted(out, key=lambda r: (r[1], r[0]))


def result_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


# --- random data ------------------------------------------------------------------------------
hours = st.integers(0, 12)  # a small range: many equal timestamps
keys1 = st.integers(0, 5)
keys2 = st.sampled_from(["p", "q", "r", "s"])


@st.composite
def datasets(draw: st.DrawFn) -> dict[str, pa.Table]:
    spine = draw(st.lists(st.tuples(hours, st.one_of(st.none(), keys1), keys2), max_size=25))
    a = draw(
        st.dictionaries(
            st.tuples(keys1, hours),
            st.tuples(st.floats(-5, 5, allow_nan=False), st.text("ab", max_size=2)),
            max_size=25,
        )
    )
    b = draw(st.dictionaries(st.tuples(keys2, hours), st.integers(-100, 100), max_size=20))
    c = draw(st.dictionaries(keys1, st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)), max_size=6))
    d = draw(st.dictionaries(st.tuples(keys2, keys1, hours), st.floats(-5, 5, allow_nan=False), max_size=20))
    shuffle = draw(st.randoms())
    a_items, b_items = list(a.items()), list(b.items())
    shuffle.shuffle(a_items)  # out-of-order arrival
    shuffle.shuffle(b_items)
    return {
        "spine": pa.table(
            {
                "id": pa.array(range(len(spine)), pa.int64()),
                "ts": pa.array([T0 + timedelta(hours=h) for h, _, _ in spine], TS),
                "k1": pa.array([k for _, k, _ in spine], pa.int64()),
                "k2": pa.array([k for _, _, k in spine], pa.string()),
                "label": pa.array([i % 2 for i in range(len(spine))], pa.int64()),
            }
        ),
        "a": pa.table(
            {
                "k1": pa.array([k for (k, _), _ in a_items], pa.int64()),
                "ts": pa.array([T0 + timedelta(hours=h) for (_, h), _ in a_items], TS),
                "x": pa.array([v[0] for _, v in a_items], pa.float64()),
                "y": pa.array([v[1] for _, v in a_items], pa.string()),
            }
        ),
        "b": pa.table(
            {
                "k2": pa.array([k for (k, _), _ in b_items], pa.string()),
                "t": pa.array([T0 + timedelta(hours=h) for (_, h), _ in b_items], TS),
                "x": pa.array([v for _, v in b_items], pa.int64()),
            }
        ),
        "c": pa.table({"k1": pa.array(list(c), pa.int64()), "z": pa.array(list(c.values()), pa.float64())}),
        "d": pa.table(
            {
                "k2": pa.array([k for k, _, _ in d], pa.string()),
                "k1": pa.array([k for _, k, _ in d], pa.int32()),
                "ts": pa.array([T0 + timedelta(hours=h) for _, _, h in d], TS),
                "w": pa.array(list(d.values()), pa.float64()),
            }
        ),
    }


PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ages = st.one_of(st.none(), st.integers(0, 6).map(lambda h: timedelta(hours=h, seconds=1 if h == 0 else 0)))


@PROPERTY
@given(data=datasets(), age_a=ages, age_b=ages)
def test_pit_join_equals_brute_force_over_several_groups(groups, data, age_a, age_b) -> None:
    query = (
        groups["spine"]
        .select(["k1", "label"])
        .join(groups["a"].select(["x", "y"]), on=["k1"], prefix="a_", max_age=age_a)
        .join(
            groups["b"].select_all(include_primary_key=False, include_event_time=False),
            on="k2",
            prefix="b_",
            max_age=age_b,
        )
        .join(groups["c"].select_all(include_primary_key=False, include_event_time=False), on=["k1"])
    )
    tables = [data["spine"], data["a"], data["b"], data["c"]]
    result = pit.run(query, tables)
    assert result.column_names == ["id", "ts", "k1", "label", "a_x", "a_y", "b_x", "z"]
    assert result_rows(result) == brute_force(query, tables)
    assert result.num_rows == data["spine"].num_rows  # spine rows are never dropped


@PROPERTY
@given(data=datasets(), start=hours)
def test_pit_join_with_time_range_equals_brute_force(groups, data, start) -> None:
    query = groups["spine"].select(["label"]).join(groups["a"].select(["x"]), on=["k1"])
    tables = [data["spine"], data["a"]]
    since = T0 + timedelta(hours=start)
    assert result_rows(pit.run(query, tables, start_time=since)) == brute_force(query, tables, since)


@PROPERTY
@given(
    data=datasets(),
    age=ages,
    batch_rows=st.integers(1, 9),
    inner=st.booleans(),
    filtered=st.booleans(),
    timeless=st.booleans(),
)
def test_streamed_join_gives_the_rows_and_types_of_the_whole_join(
    groups, data, age, batch_rows, inner, filtered, timeless
) -> None:
    """pit.stream looks every spine batch's rows up (fti.features.lookup_join) instead of running
    DuckDB's join over the whole spine: the same rows, values and column types as pit.run, with
    many equal event times, keys the groups lack, a composite key of two types, a group without
    event time, max_age, an inner join, a filter on joined columns, a spine without event time."""
    spine = groups["timeless"] if timeless else groups["spine"]
    query = spine.select(["k1", "label"])
    if not timeless:
        query = query.join(
            groups["a"].select(["x", "y"]),
            on=["k1"],
            prefix="a_",
            max_age=age,
            join_type="inner" if inner else "left",
        )
    query = (
        query.join(groups["b"].select(["x"]), on="k2", prefix="b_")
        .join(groups["c"].select_all(include_primary_key=False, include_event_time=False), on=["k1"])
        .join(groups["d"].select(["w", "ts"]), on=["k1", "k2"], prefix="d_")
    )
    if filtered:
        # b.x twice: each column is read once for the filter however often it is named
        both = (groups["b"].x > -50) & (groups["b"].x < 90)
        query = query.filter(both | (groups["d"].w < 0) | (spine.label == 1) | (spine.label == 2))
    tables = [
        data["spine"].drop_columns(["ts"]) if timeless else data["spine"],
        data["b"],
        data["c"],
        data["d"],
    ]
    if not timeless:
        tables.insert(1, data["a"])
    whole = pit.run(query, tables, order=False)
    batches = list(pit.stream(query, tables, batch_rows=batch_rows))
    assert [b.num_rows for b in batches[:-1]] == [batch_rows] * (len(batches) - 1)
    assert all(0 < b.num_rows <= batch_rows for b in batches)
    assert all(b.schema == whole.schema for b in batches)
    streamed = [row for b in batches for row in result_rows(b)]
    assert sorted(streamed, key=lambda r: r[0]) == sorted(result_rows(whole), key=lambda r: r[0])
    if not filtered and not inner:
        assert len(streamed) == data["spine"].num_rows


def test_exact_boundaries_of_asof_and_max_age(groups) -> None:
    spine = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "ts": pa.array([T0 + timedelta(hours=h) for h in (2, 5, 1)], TS),
            "k1": pa.array([7, 7, 7], pa.int64()),
            "k2": pa.array(["p"] * 3),
            "label": pa.array([0, 0, 0], pa.int64()),
        }
    )
    a = pa.table(
        {
            "k1": pa.array([7, 7], pa.int64()),
            "ts": pa.array([T0 + timedelta(hours=2), T0 + timedelta(hours=3)], TS),
            "x": pa.array([1.0, 2.0]),
            "y": pa.array(["u", "v"]),
        }
    )
    query = groups["spine"].select(["label"]).join(groups["a"].select(["x"]), max_age=timedelta(hours=2))
    rows = {r["id"]: r["x"] for r in pit.run(query, [spine, a]).to_pylist()}
    # equal time counts as "known"; 2h old is within max_age; a later value never leaks back
    assert rows == {3: None, 1: 1.0, 2: 2.0}
    older = groups["spine"].select(["label"]).join(groups["a"].select(["x"]), max_age=timedelta(hours=1))
    assert {r["id"]: r["x"] for r in pit.run(older, [spine, a]).to_pylist()}[2] is None


def test_training_data_after_out_of_order_inserts_equals_brute_force(sqlite_project, groups) -> None:
    spine, a = groups["spine"], groups["a"]

    def frame(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "k1": [k for k, _, _ in rows],
                "ts": [T0 + timedelta(hours=h) for _, h, _ in rows],
                "x": [x for *_, x in rows],
                "y": ["s"] * len(rows),
            }
        )

    a.insert(frame([(1, 5, 5.0), (2, 1, 1.0)]))
    a.insert(frame([(1, 2, 2.0), (1, 9, 9.0)]))  # older and newer rows arrive late
    a.insert(frame([(1, 5, 50.0)]))  # same key and time: replaces the value
    spine.insert(
        pd.DataFrame(
            {
                "id": [1, 2, 3, 4, 5],
                "ts": [T0 + timedelta(hours=h) for h in (4, 5, 10, 1, 0)],
                "k1": [1, 1, 1, 2, 2],
                "k2": ["p"] * 5,
                "label": [1, 0, 1, 0, 1],
            }
        )
    )
    query = spine.select(["label"]).join(a.select(["x"]), on=["k1"])
    fv = sqlite_project.feature_store.get_or_create_feature_view("pit", query=query, labels=["label"])
    version, df = fv.create_training_data()
    expected = brute_force(query, [spine.read_arrow(), a.read_arrow()])
    assert [(r[0], r[2], r[3]) for r in expected] == [
        (5, 1, None),
        (4, 0, 1.0),
        (1, 1, 2.0),
        (2, 0, 50.0),
        (3, 1, 9.0),
    ]
    assert df["x"].tolist()[1:] == [1.0, 2.0, 50.0, 9.0] and pd.isna(df["x"].iloc[0])
    assert df["label"].tolist() == [1, 0, 1, 0, 1]
    record = fv.training_dataset(version)
    assert record.input_versions == {spine.table_name: 0, a.table_name: 2}


def test_spine_without_event_time_takes_the_latest_row_per_key(sqlite_project, groups) -> None:
    fs = sqlite_project.feature_store
    entities = fs.get_or_create_feature_group(
        "entities", primary_key=["k1"], features=[fti.Feature("k1", "int64"), fti.Feature("w", "string")]
    )
    spine = pa.table({"k1": pa.array([1, 2, 3], pa.int64()), "w": pa.array(["u", "v", "w"])})
    a = pa.table(
        {
            "k1": pa.array([1, 1, 2], pa.int64()),
            "ts": pa.array([at for at in (T0 + timedelta(hours=9), T0, T0)], TS),
            "x": pa.array([9.0, 0.0, 2.0]),
            "y": pa.array(["late", "early", "only"]),
        }
    )
    query = (
        entities.select(["w"])
        .join(groups["a"].select(["x", "y"]))
        .join(groups["c"].select_all(include_primary_key=False, include_event_time=False))
    )
    c = pa.table({"k1": pa.array([3], pa.int64()), "z": pa.array([0.5])})
    result = pit.run(query, [spine, a, c])
    assert result.column_names == ["k1", "w", "x", "y", "z"]
    assert result_rows(result) == [
        (1, "u", 9.0, "late", None),
        (2, "v", 2.0, "only", None),
        (3, "w", None, None, 0.5),
    ]
    with pytest.raises(fti.ValidationError, match="max_age needs an event time"):
        entities.select(["w"]).join(
            groups["c"].select_all(include_primary_key=False, include_event_time=False),
            max_age=timedelta(hours=1),
        )
    with pytest.raises(fti.ValidationError, match="max_age is measured from the spine's event time"):
        entities.select(["w"]).join(groups["a"].select(["x"]), max_age=timedelta(hours=1))
    fv = fs.get_or_create_feature_view("timeless", query=query)
    with pytest.raises(fti.ValidationError, match="a time split needs an event time"):
        fv.train_test_split(split="time", test_start=T0)
    with pytest.raises(fti.ValidationError, match="start_time filters on event time"):
        fv.create_training_data(start_time=T0)
    assert fv.training_dataset_versions() == []


_case = iter(range(10_000))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spine_rows=st.lists(st.tuples(hours, keys1), min_size=1, max_size=12),
    batches=st.lists(
        st.lists(st.tuples(keys1, hours, st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=8),
        min_size=1,
        max_size=3,
    ),
    age=ages,
)
def test_pit_join_over_real_out_of_order_inserts(sqlite_project, spine_rows, batches, age) -> None:
    fs = sqlite_project.feature_store
    case = next(_case)
    spine = fs.get_or_create_feature_group(f"s{case}", primary_key=["id"], event_time="ts")
    right = fs.get_or_create_feature_group(f"r{case}", primary_key=["k1"], event_time="ts")
    spine.insert(
        pd.DataFrame(
            {
                "id": range(len(spine_rows)),
                "ts": [T0 + timedelta(hours=h) for h, _ in spine_rows],
                "k1": [k for _, k in spine_rows],
            }
        )
    )
    model: dict[tuple[int, int], float] = {}  # the right group's rows: the last write wins
    for batch in batches:
        unique = {(k, h): x for k, h, x in batch}
        right.insert(
            pd.DataFrame(
                {
                    "k1": [k for k, _ in unique],
                    "ts": [T0 + timedelta(hours=h) for _, h in unique],
                    "x": list(unique.values()),
                }
            )
        )
        model.update(unique)
    query = spine.select(["k1"]).join(right.select(["x"]), max_age=age)
    sources, versions = training_data.snapshot(query, sqlite_project.backends.offline)
    assert versions == {spine.table_name: 0, right.table_name: len(batches) - 1}
    expected_right = pa.table(
        {
            "k1": pa.array([k for k, _ in model], pa.int64()),
            "ts": pa.array([T0 + timedelta(hours=h) for _, h in model], TS),
            "x": pa.array(list(model.values()), pa.float64()),
        }
    )
    assert result_rows(pit.run(query, sources)) == brute_force(query, [spine.read_arrow(), expected_right])


@PROPERTY
@example(age=timedelta(milliseconds=1001))  # float arithmetic made this 1,000,999 µs
@given(age=st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3650)))
def test_a_value_exactly_max_age_old_is_kept_and_one_microsecond_older_is_not(groups, age) -> None:
    """The max_age boundary is exact to the microsecond (integer arithmetic), for any age."""
    spine = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "ts": pa.array([T0 + age, T0 + age], TS),
            "k1": pa.array([7, 8], pa.int64()),
            "k2": pa.array(["p", "p"]),
            "label": pa.array([0, 0], pa.int64()),
        }
    )
    a = pa.table(
        {
            "k1": pa.array([7, 8], pa.int64()),
            "ts": pa.array([T0, T0 - timedelta(microseconds=1)], TS),
            "x": pa.array([1.0, 2.0]),
            "y": pa.array(["u", "v"]),
        }
    )
    query = groups["spine"].select(["label"]).join(groups["a"].select(["x"]), on=["k1"], max_age=age)
    restored = Query.from_dict(query.to_dict(), groups["spine"].project.feature_store)  # as stored
    for q in (query, restored):
        assert {r["id"]: r["x"] for r in pit.run(q, [spine, a]).to_pylist()} == {1: 1.0, 2: None}


def test_a_feature_appended_to_a_joined_group_reads_as_null_for_rows_written_before(sqlite_project) -> None:
    """DuckDB reads local snapshots' Parquet files itself: a column older files lack (or that no
    file has yet) must still read as null, as through the table's schema."""
    fs = sqlite_project.feature_store
    spine = fs.get_or_create_feature_group("evolve_spine", primary_key=["id"], event_time="ts")
    right = fs.get_or_create_feature_group("evolve_right", primary_key=["k1"], event_time="ts")
    spine.insert(pd.DataFrame({"id": [1, 2], "ts": [T0 + timedelta(hours=h) for h in (1, 3)], "k1": [7, 7]}))
    right.insert(pd.DataFrame({"k1": [7], "ts": [T0], "x": [1.0]}))
    right.append_features([fti.Feature("flag", "string")])
    query = spine.select(["k1"]).join(right.select(["x", "flag"]))
    sources, _ = training_data.snapshot(query, sqlite_project.backends.offline)
    assert result_rows(pit.run(query, sources)) == [
        (1, T0 + timedelta(hours=1), 7, 1.0, None),
        (2, T0 + timedelta(hours=3), 7, 1.0, None),
    ]
    right.insert(pd.DataFrame({"k1": [7], "ts": [T0 + timedelta(hours=2)], "x": [2.0], "flag": ["new"]}))
    sources, _ = training_data.snapshot(query, sqlite_project.backends.offline)
    assert len(sources[1].paths) == 2  # one file without the column, one with it
    expected = [(1, T0 + timedelta(hours=1), 7, 1.0, None), (2, T0 + timedelta(hours=3), 7, 2.0, "new")]
    assert result_rows(pit.run(query, sources)) == expected
    # streamed, over the plain files and over the store's Arrow datasets (as for S3)
    arrow_datasets = [scan.as_dataset(source) for source in sources]
    for inputs in (sources, arrow_datasets):
        streamed = pa.concat_tables(pit.stream(query, inputs, batch_rows=1))
        assert sorted(result_rows(streamed)) == expected


def test_spine_rows_with_equal_time_and_key_keep_the_order_they_were_written(sqlite_project, groups) -> None:
    """DuckDB sorts a Parquet spine by (time, key) without a stable order; rows appended twice
    with the same time and key still come in the order they were written, every time."""
    spine = groups["spine"]
    n = 50_000
    rows = {
        "id": range(n),
        "ts": [T0 + timedelta(hours=i % 7) for i in range(n)],
        "k1": [7] * n,
        "k2": ["p"] * n,
    }
    spine.insert(pd.DataFrame({**rows, "label": [0] * n}), write_mode="append")
    spine.insert(pd.DataFrame({**rows, "label": [1] * n}), write_mode="append")
    groups["a"].insert(pd.DataFrame({"k1": [7], "ts": [T0], "x": [1.0], "y": ["u"]}))
    query = spine.select(["label"]).join(groups["a"].select(["x"]))
    sources, _ = training_data.snapshot(query, sqlite_project.backends.offline)
    for _ in range(3):
        result = pit.run(query, sources)
        assert result.column("label").to_pylist() == [0, 1] * n  # each pair in written order
        keys = list(
            zip(result.column("ts").to_pylist()[::2], result.column("id").to_pylist()[::2], strict=True)
        )
        assert keys == sorted(keys)
