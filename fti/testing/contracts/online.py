"""The online-store contract: every invariant of ``fti.storage.online.base.OnlineStore`` as tests.

Run it over a backend by subclassing :class:`OnlineStoreContract` in a test module and providing
an ``online_store`` fixture that yields a fresh, empty store (and closes it afterwards)::

    class TestSqliteOnlineStore(OnlineStoreContract):
        @pytest.fixture
        def online_store(self, tmp_path):
            store = SqliteOnlineStore(f"sqlite:///{tmp_path / 'online.db'}")
            yield store
            store.close()

A second connection is opened with ``type(store)(store.url)`` to check what another process sees.
"""

from __future__ import annotations

import itertools
import random
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fti.errors import SchemaError, ValidationError
from fti.storage.online.base import OnlineStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
_tables = itertools.count()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def write(
    store: OnlineStore,
    table: str,
    data: dict[str, list[Any]] | pa.Table,
    *,
    key: tuple[str, ...] = ("id",),
    event_time: str | None = "ts",
    version: int | None = 0,
) -> int:
    rows = data if isinstance(data, pa.Table) else pa.table(data)
    return store.write(table, rows, key_columns=list(key), event_time=event_time, version=version)


def values(store: OnlineStore, table: str, keys: list[Any], column: str = "v") -> list[Any]:
    """The ``column`` of each key's row (single-column keys), ``"MISS"`` for misses."""
    return [("MISS" if row is None else row[column]) for row in store.read(table, [(k,) for k in keys])]


class OnlineStoreContract:
    """Tests every online store passes. Subclass and provide an ``online_store`` fixture."""

    # --- upsert and event-time ordering -------------------------------------------------------
    def test_write_then_read_returns_whole_rows(self, online_store: OnlineStore) -> None:
        written = write(online_store, "t", {"id": [1, 2], "ts": [at(0), at(1)], "v": [10, 20]})
        assert written == 2
        assert online_store.read("t", [(1,), (2,)]) == [
            {"id": 1, "ts": at(0), "v": 10},
            {"id": 2, "ts": at(1), "v": 20},
        ]

    def test_newer_event_replaces_the_row(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1, 2], "ts": [at(0), at(0)], "v": [10, 20]})
        write(online_store, "t", {"id": [1], "ts": [at(5)], "v": [15]}, version=1)
        assert values(online_store, "t", [1, 2]) == [15, 20]
        assert online_store.read("t", [(1,)])[0] == {"id": 1, "ts": at(5), "v": 15}

    def test_older_event_never_overwrites_a_newer_one(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1, 2], "ts": [at(10), at(10)], "v": [10, 20]})
        # Late data: key 1 is older than what is stored, key 2 newer, key 3 new.
        write(
            online_store, "t", {"id": [1, 2, 3], "ts": [at(9), at(11), at(1)], "v": [-1, 21, 30]}, version=1
        )
        assert values(online_store, "t", [1, 2, 3]) == [10, 21, 30]
        assert online_store.read("t", [(1,)])[0] == {"id": 1, "ts": at(10), "v": 10}
        write(
            online_store, "t", {"id": [1], "ts": [at(10) - timedelta(microseconds=1)], "v": [-2]}, version=2
        )
        assert values(online_store, "t", [1]) == [10]

    def test_equal_event_time_overwrites_and_reinserting_is_idempotent(
        self, online_store: OnlineStore
    ) -> None:
        data = {"id": [1, 2], "ts": [at(3), at(3)], "v": [10, 20]}
        write(online_store, "t", data)
        write(online_store, "t", data, version=1)
        assert values(online_store, "t", [1, 2]) == [10, 20]
        write(online_store, "t", {"id": [1], "ts": [at(3)], "v": [11]}, version=2)  # a corrected row
        assert values(online_store, "t", [1, 2]) == [11, 20]

    def test_latest_wins_with_event_times_before_1970(self, online_store: OnlineStore) -> None:
        old = datetime(1960, 5, 1, tzinfo=UTC)
        write(online_store, "t", {"id": [1], "ts": [old], "v": [1]})
        write(online_store, "t", {"id": [1], "ts": [old - timedelta(days=1)], "v": [2]}, version=1)
        assert online_store.read("t", [(1,)])[0] == {"id": 1, "ts": old, "v": 1}
        write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [3]}, version=2)
        assert values(online_store, "t", [1]) == [3]

    def test_integer_and_date_event_times(self, online_store: OnlineStore) -> None:
        write(online_store, "n", {"id": [1], "seq": [100], "v": [1]}, event_time="seq")
        write(online_store, "n", {"id": [1], "seq": [99], "v": [2]}, event_time="seq", version=1)
        write(online_store, "n", {"id": [1], "seq": [-5], "v": [3]}, event_time="seq", version=2)
        assert values(online_store, "n", [1]) == [1]
        write(online_store, "d", {"id": [1], "day": [date(2024, 3, 2)], "v": [1]}, event_time="day")
        write(
            online_store, "d", {"id": [1], "day": [date(2024, 3, 1)], "v": [2]}, event_time="day", version=1
        )
        assert values(online_store, "d", [1]) == [1]

    def test_without_event_time_the_last_write_wins(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1, 2], "ts": [at(9), at(9)], "v": [10, 20]}, event_time=None)
        write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [11]}, event_time=None, version=1)
        assert online_store.read("t", [(1,), (2,)]) == [
            {"id": 1, "ts": at(0), "v": 11},
            {"id": 2, "ts": at(9), "v": 20},
        ]
        write(online_store, "k", {"id": [1, 2]}, event_time=None)  # a table of keys only
        write(online_store, "k", {"id": [2, 3]}, event_time=None, version=1)
        assert online_store.read("k", [(1,), (3,), (4,)]) == [{"id": 1}, {"id": 3}, None]

    # --- keys ----------------------------------------------------------------------------------
    def test_composite_keys(self, online_store: OnlineStore) -> None:
        data = {"user": ["a", "a", "b"], "item": [1, 2, 1], "ts": [at(0)] * 3, "v": [1, 2, 3]}
        write(online_store, "t", data, key=("user", "item"))
        write(online_store, "t", {"user": ["a"], "item": [2], "ts": [at(1)], "v": [22]}, key=("user", "item"))
        rows = online_store.read("t", [("b", 1), ("a", 2), ("a", 1), ("b", 2), ("a", 3)])
        assert [None if r is None else r["v"] for r in rows] == [3, 22, 1, None, None]
        assert rows[0] == {"user": "b", "item": 1, "ts": at(0), "v": 3}

    def test_key_types_matter(self, online_store: OnlineStore) -> None:
        write(online_store, "ints", {"id": [1], "ts": [at(0)], "v": [1]})
        write(online_store, "strs", {"id": ["1"], "ts": [at(0)], "v": [2]})
        write(online_store, "bools", {"id": [True], "ts": [at(0)], "v": [3]})
        assert values(online_store, "ints", [1, "1", True, 1.5]) == [1, "MISS", "MISS", "MISS"]
        assert values(online_store, "strs", ["1", 1, b"1"]) == [2, "MISS", "MISS"]
        assert values(online_store, "bools", [True, 1, False]) == [3, "MISS", "MISS"]

    def test_keys_of_every_type(self, online_store: OnlineStore) -> None:
        data = pa.table(
            {
                "t": pa.array([at(1), at(2)], TS),
                "d": pa.array([date(2024, 1, 1), date(1969, 12, 31)], pa.date32()),
                "b": pa.array([b"\x00\xff", b"k"], pa.binary()),
                "f": pa.array([True, False]),
                "s": pa.array(["x:y*z", "[ü]"]),
                "v": pa.array([1, 2]),
            }
        )
        write(online_store, "t", data, key=("t", "d", "b", "f", "s"), event_time=None)
        rows = online_store.read(
            "t",
            [
                (at(2), date(1969, 12, 31), b"k", False, "[ü]"),
                (at(1), date(2024, 1, 1), b"\x00\xff", True, "x:y*z"),
                (at(1), date(2024, 1, 2), b"\x00\xff", True, "x:y*z"),
                (
                    at(1).astimezone(timezone(timedelta(hours=-5))),
                    date(2024, 1, 1),
                    b"\x00\xff",
                    True,
                    "x:y*z",
                ),
            ],
        )
        assert [None if r is None else r["v"] for r in rows] == [2, 1, None, 1]
        assert rows[0] == {"t": at(2), "d": date(1969, 12, 31), "b": b"k", "f": False, "s": "[ü]", "v": 2}

    def test_dictionary_encoded_and_unsorted_keys(self, online_store: OnlineStore) -> None:
        keys = pa.array(["m", "a", "z", "b"]).dictionary_encode()
        write(online_store, "t", pa.table({"id": keys, "ts": [at(0)] * 4, "v": [1, 2, 3, 4]}))
        assert values(online_store, "t", ["z", "a", "b", "m", "q"]) == [3, 2, 4, 1, "MISS"]

    def test_read_keeps_request_order_with_duplicates_and_misses(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1, 2, 3], "ts": [at(0)] * 3, "v": [10, 20, 30]})
        rows = online_store.read("t", [(3,), (99,), (1,), (3,), (-1,), (2,), (1,)])
        assert [None if r is None else r["v"] for r in rows] == [30, None, 10, 30, None, 20, 10]
        assert online_store.read("t", []) == []
        assert online_store.read("t", [(99,)]) == [None]

    def test_one_key_and_a_thousand_keys(self, online_store: OnlineStore) -> None:
        n = 2_500  # more rows than one write batch of a pipelined backend
        write(
            online_store,
            "t",
            {"id": list(range(n)), "ts": [at(i % 7) for i in range(n)], "v": list(range(n))},
        )
        assert values(online_store, "t", [7]) == [7]
        wanted = random.Random(1).sample(range(-500, n), 1_000)
        assert values(online_store, "t", wanted) == [k if k >= 0 else "MISS" for k in wanted]

    def test_results_are_independent_dicts(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [10]})
        first, second = online_store.read("t", [(1,), (1,)])
        assert first is not None and second is not None and first is not second
        first["v"] = 99
        assert second["v"] == 10
        assert values(online_store, "t", [1]) == [10]

    # --- values --------------------------------------------------------------------------------
    def test_every_value_type_round_trips(self, online_store: OnlineStore) -> None:
        data = pa.table(
            {
                "id": pa.array([1, 2, 3], pa.int64()),
                "i": pa.array([-(2**63), 2**63 - 1, None], pa.int64()),
                "i8": pa.array([-3, 0, None], pa.int8()),
                "f": pa.array([1.5, -0.25, None], pa.float64()),
                "f32": pa.array([0.5, 2.0, None], pa.float32()),
                "s": pa.array(["héllo ✓", "", None]),
                "b": pa.array([True, False, None]),
                "ts": pa.array([at(0), datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC), None], TS),
                # Cast rather than pa.array(..., type=zoned): how pyarrow converts aware datetimes
                # to a zoned type varies with what else is imported (importing pandera changes it).
                "ts_other_zone": pa.array([at(0), at(1), None], TS).cast(pa.timestamp("us", tz="+02:00")),
                "d": pa.array([date(2024, 2, 29), date(1960, 1, 1), None], pa.date32()),
                "by": pa.array([b"\x00\x01\xff", b"", None], pa.binary()),
                "dec": pa.array([Decimal("1.25"), Decimal("-3.50"), None], pa.decimal128(6, 2)),
                "cat": pa.array(["x", "y", None]).dictionary_encode(),
                "lst": pa.array([[1, 2], [], None], pa.list_(pa.int64())),
                "nul": pa.nulls(3),
            }
        )
        write(online_store, "t", data, event_time=None)
        rows = online_store.read("t", [(1,), (2,), (3,)])
        assert rows[0] == {
            "id": 1,
            "i": -(2**63),
            "i8": -3,
            "f": 1.5,
            "f32": 0.5,
            "s": "héllo ✓",
            "b": True,
            "ts": at(0),
            "ts_other_zone": at(0),
            "d": date(2024, 2, 29),
            "by": b"\x00\x01\xff",
            "dec": 1.25,
            "cat": "x",
            "lst": [1, 2],
            "nul": None,
        }
        assert rows[1] is not None and rows[1]["i"] == 2**63 - 1 and rows[1]["b"] is False
        assert rows[1]["ts"] == datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC) and rows[1]["by"] == b""
        assert rows[1]["lst"] == [] and rows[1]["s"] == "" and rows[1]["d"] == date(1960, 1, 1)
        assert rows[2] == {name: (3 if name == "id" else None) for name in data.column_names}
        row = rows[0]
        assert type(row["i"]) is int and type(row["f"]) is float and type(row["b"]) is bool
        assert type(row["d"]) is date and type(row["by"]) is bytes and type(row["dec"]) is float
        assert row["ts"].tzinfo is not None and row["ts"].utcoffset() == timedelta(0)
        assert row["ts_other_zone"].utcoffset() == timedelta(0)

    def test_special_floats(self, online_store: OnlineStore) -> None:
        data = {"id": [1, 2, 3, 4], "f": [float("inf"), float("-inf"), float("nan"), 1e308]}
        write(online_store, "t", data, event_time=None)
        assert values(online_store, "t", [1, 2, 3, 4], "f") == [float("inf"), float("-inf"), None, 1e308]

    # --- columns -------------------------------------------------------------------------------
    def test_new_columns_in_a_later_write(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [1]})
        write(
            online_store, "t", {"id": [2], "ts": [at(0)], "v": [2], "flag": [True], "note": ["n"]}, version=1
        )
        assert online_store.read("t", [(1,), (2,)]) == [
            {"id": 1, "ts": at(0), "v": 1, "flag": None, "note": None},
            {"id": 2, "ts": at(0), "v": 2, "flag": True, "note": "n"},
        ]
        write(
            online_store,
            "t",
            {"id": [1], "ts": [at(1)], "v": [11], "flag": [False], "note": ["m"]},
            version=2,
        )
        assert online_store.read("t", [(1,)])[0] == {
            "id": 1,
            "ts": at(1),
            "v": 11,
            "flag": False,
            "note": "m",
        }

    def test_a_write_replaces_the_whole_row(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [1], "w": ["x"]})
        write(online_store, "t", {"w": ["y"], "id": [1], "ts": [at(1)]}, version=1)  # no "v", other order
        assert online_store.read("t", [(1,)])[0] == {"id": 1, "ts": at(1), "v": None, "w": "y"}

    def test_another_connection_sees_rows_columns_and_version(self, online_store: OnlineStore) -> None:
        other: OnlineStore = type(online_store)(online_store.url)  # type: ignore[call-arg]
        try:
            write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [1]}, version=4)
            assert values(other, "t", [1]) == [1]
            write(online_store, "t", {"id": [2], "ts": [at(0)], "v": [2], "extra": ["e"]}, version=5)
            assert other.read("t", [(2,)])[0] == {"id": 2, "ts": at(0), "v": 2, "extra": "e"}
            assert other.applied_version("t") == 5
            write(other, "t", {"id": [1], "ts": [at(9)], "v": [9], "extra": ["o"]}, version=6)
            assert online_store.read("t", [(1,)])[0] == {"id": 1, "ts": at(9), "v": 9, "extra": "o"}
        finally:
            other.close()

    def test_a_table_recreated_by_another_connection_reads_its_new_layout(
        self, online_store: OnlineStore
    ) -> None:
        other: OnlineStore = type(online_store)(online_store.url)  # type: ignore[call-arg]
        try:
            write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [1]}, version=3)
            assert values(online_store, "t", [1]) == [1]  # the layout is now known to this connection
            other.delete_table("t")
            assert online_store.read("t", [(1,)]) == [None]
            assert online_store.read("t", [(1,), (2,)]) == [None, None]
            write(
                other,
                "t",
                {"id": ["a", "b"], "w": [2.5, 3.5], "x": [True, False]},
                event_time=None,
                version=0,
            )
            assert online_store.read("t", [("a",), (1,)]) == [{"id": "a", "w": 2.5, "x": True}, None]
            assert online_store.applied_version("t") == 0
        finally:
            other.close()

    # --- applied version -----------------------------------------------------------------------
    def test_applied_version(self, online_store: OnlineStore) -> None:
        assert online_store.applied_version("t") is None
        write(online_store, "t", {"id": [1], "ts": [at(5)], "v": [1]}, version=3)
        assert online_store.applied_version("t") == 3
        # A write whose rows are all older still marks its version applied.
        write(online_store, "t", {"id": [1], "ts": [at(1)], "v": [0]}, version=4)
        assert online_store.applied_version("t") == 4
        assert values(online_store, "t", [1]) == [1]
        write(online_store, "t", {"id": [2], "ts": [at(1)], "v": [2]}, version=0)  # the caller's version wins
        assert online_store.applied_version("t") == 0
        assert online_store.applied_version("other") is None

    def test_an_empty_write_records_the_version(self, online_store: OnlineStore) -> None:
        # parallel writers of one commit write rows only (version=None); an empty write records it
        write(online_store, "t", {"id": [3, 4], "ts": [at(1)] * 2, "v": [3, 4]}, version=None)
        assert online_store.applied_version("t") is None
        schema = pa.schema([("id", pa.int64()), ("ts", TS), ("v", pa.int64())])
        assert write(online_store, "t", schema.empty_table(), version=7) == 0
        assert online_store.applied_version("t") == 7
        assert values(online_store, "t", [1, 3, 4]) == ["MISS", 3, 4]

    # --- tables --------------------------------------------------------------------------------
    def test_delete_table(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": list(range(50)), "ts": [at(0)] * 50, "v": list(range(50))}, version=2)
        write(online_store, "keep", {"id": [1], "ts": [at(0)], "v": [1]}, version=9)
        online_store.delete_table("t")
        assert online_store.read("t", [(1,), (49,)]) == [None, None]
        assert online_store.applied_version("t") is None
        assert values(online_store, "keep", [1]) == [1] and online_store.applied_version("keep") == 9
        online_store.delete_table("t")  # already gone: a no-op
        online_store.delete_table("never_existed")
        # Recreating the table with another layout starts clean.
        write(online_store, "t", {"id": ["a"], "ts": [at(1)], "w": [1.5]}, version=0)
        assert online_store.read("t", [("a",), (1,)]) == [{"id": "a", "ts": at(1), "w": 1.5}, None]

    def test_tables_are_isolated(self, online_store: OnlineStore) -> None:
        names = ["t", "t_1", "t:1", "t*", "T", "t}:r:x"]
        for n, name in enumerate(names):
            write(online_store, name, {"id": [1, n + 10], "ts": [at(0)] * 2, "v": [n, n]}, version=n)
        assert [values(online_store, name, [1])[0] for name in names] == list(range(len(names)))
        assert [online_store.applied_version(name) for name in names] == list(range(len(names)))
        online_store.delete_table("t")
        online_store.delete_table("t*")
        assert [values(online_store, name, [1])[0] for name in names] == ["MISS", 1, 2, "MISS", 4, 5]
        assert values(online_store, "t_1", [11]) == [1]

    def test_a_table_that_never_existed_reads_as_all_misses(self, online_store: OnlineStore) -> None:
        assert online_store.read("nope", [(1,), ("a", 2), (None,)]) == [None, None, None]
        assert online_store.read("nope", []) == []
        assert online_store.applied_version("nope") is None

    def test_concurrent_readers(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": list(range(100)), "ts": [at(0)] * 100, "v": list(range(100))})
        errors: list[BaseException] = []

        def reader(offset: int) -> None:
            try:
                for i in range(30):
                    keys = [(offset + i + j) % 120 for j in range(5)]
                    assert values(online_store, "t", keys) == [k if k < 100 else "MISS" for k in keys]
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(n * 7,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    # --- bad input -----------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("data", "kwargs", "message"),
        [
            ({"ts": [at(0)], "v": [1]}, {}, "id"),
            ({"id": [1], "v": [1]}, {}, "ts"),
            ({"id": [1, None], "ts": [at(0), at(0)], "v": [1, 2]}, {}, "null"),
            ({"id": [1, 2], "ts": [at(0), None], "v": [1, 2]}, {}, "null"),
            ({"id": [1], "ts": ["yesterday"], "v": [1]}, {}, "timestamp"),
            ({"id": [1, 2], "seq": [0, 2**62], "v": [1, 2]}, {"event_time": "seq"}, "outside"),
            ({"id": [1], "ts": [at(0)], "v": [1]}, {"version": -1}, "version"),
            ({"id": [1], "ts": [at(0)], "v": [1]}, {"key": ()}, "key_columns"),
        ],
    )
    def test_invalid_writes_write_nothing(
        self, online_store: OnlineStore, data: dict[str, list[Any]], kwargs: dict[str, Any], message: str
    ) -> None:
        write(online_store, "t", {"id": [5], "ts": [at(0)], "v": [5]}, version=1)
        with pytest.raises(ValidationError, match=message):
            write(online_store, "t", data, **{"version": 2, **kwargs})
        assert online_store.applied_version("t") == 1
        assert values(online_store, "t", [1, 5]) == ["MISS", 5]
        with pytest.raises(ValidationError, match=r"pyarrow\.Table"):
            online_store.write("t", [{"id": 1}], key_columns=["id"], event_time=None, version=3)  # type: ignore[arg-type]
        assert online_store.applied_version("t") == 1

    def test_changing_the_key_columns_is_refused(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1], "other": [2], "ts": [at(0)]}, version=1)
        with pytest.raises(SchemaError, match="keyed by"):
            write(online_store, "t", {"id": [1], "other": [3], "ts": [at(1)]}, key=("other",), version=2)
        assert online_store.applied_version("t") == 1
        assert online_store.read("t", [(1,)])[0] == {"id": 1, "other": 2, "ts": at(0)}

    def test_invalid_keys_are_rejected(self, online_store: OnlineStore) -> None:
        write(online_store, "t", {"id": [1], "ts": [at(0)], "v": [1]})
        write(online_store, "by_time", {"when": [at(0)], "v": [1]}, key=("when",), event_time=None)
        with pytest.raises(ValidationError, match="key column"):
            online_store.read("t", [(1, 2)])
        with pytest.raises(ValidationError, match="tuple"):
            online_store.read("t", [1])  # type: ignore[list-item]
        with pytest.raises(ValidationError, match="list of key tuples"):
            online_store.read("t", "abc")  # type: ignore[arg-type]
        assert online_store.read_columns("t", [(1,)], ["v"]) == [(1,)]  # statements now cached
        for keys in ({0: (1,)}, "a"):  # one "key" that is not a list of tuples: refused alike
            with pytest.raises(ValidationError, match="list of key tuples"):
                online_store.read_columns("t", keys, ["v"])  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="naive"):
            online_store.read("by_time", [(datetime(2024, 1, 1),)])
        assert values(online_store, "by_time", [at(0)], "v") == [1]

    # --- property: the store equals a model of "latest by event time per key" ---------------
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        batches=st.lists(
            st.lists(
                st.tuples(
                    st.sampled_from(["a", "b", "1"]),
                    st.integers(0, 2),
                    st.integers(0, 6),
                    st.integers(-(2**40), 2**40),
                ),
                max_size=8,
            ),
            min_size=1,
            max_size=6,
        ),
        with_event_time=st.booleans(),
    )
    def test_matches_a_model_of_latest_by_event_time(
        self,
        online_store: OnlineStore,
        batches: list[list[tuple[str, int, int, int]]],
        with_event_time: bool,
    ) -> None:
        table = f"prop_{next(_tables)}"  # one fresh table per example: the fixture is shared
        schema = pa.schema([("user", pa.string()), ("item", pa.int64()), ("ts", TS), ("v", pa.int64())])
        model: dict[tuple[str, int], tuple[int, int]] = {}
        try:
            for version, batch in enumerate(batches):
                latest = {(user, item): (hour, v) for user, item, hour, v in batch}  # one row per key
                rows = pa.Table.from_pylist(
                    [{"user": u, "item": i, "ts": at(h), "v": v} for (u, i), (h, v) in latest.items()],
                    schema=schema,
                )
                event_time = "ts" if with_event_time else None
                store_rows = online_store.write(
                    table, rows, key_columns=["user", "item"], event_time=event_time, version=version
                )
                assert store_rows == len(latest)
                for key, (hour, v) in latest.items():
                    if not with_event_time or key not in model or hour >= model[key][0]:
                        model[key] = (hour, v)
            keys = [(u, i) for u in ["a", "b", "1", "c"] for i in range(4)]
            got = online_store.read(table, keys)
            expected = [
                None
                if k not in model
                else {"user": k[0], "item": k[1], "ts": at(model[k][0]), "v": model[k][1]}
                for k in keys
            ]
            assert got == expected
            assert online_store.applied_version(table) == len(batches) - 1
        finally:
            online_store.delete_table(table)

    # --- read_columns: what read gives, picked ---------------------------------------------------
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        columns=st.lists(
            st.sampled_from(["v", "ts", "flag", "day", "note", "lst", "item", "absent"]), max_size=6
        ),
        keys=st.lists(st.tuples(st.sampled_from(["a", "b", "z"]), st.integers(0, 3)), max_size=12),
    )
    def test_read_columns_picks_what_read_gives(
        self, online_store: OnlineStore, columns: list[str], keys: list[tuple[str, int]]
    ) -> None:
        table = f"cols_{next(_tables)}"  # one fresh table per example: the fixture is shared
        rows = {
            "user": ["a", "a", "b"],
            "item": [0, 1, 0],
            "ts": [at(0), at(1), at(2)],
            "v": [1.5, None, -2.0],
            "flag": [True, False, None],
            "day": [date(2024, 2, 29), None, date(1969, 12, 31)],
            "note": ["x", "", None],
            "lst": [[1, 2], None, []],
        }
        try:
            write(online_store, table, rows, key=("user", "item"))
            expected = [
                None if row is None else tuple(row.get(c) for c in columns)
                for row in online_store.read(table, keys)
            ]
            assert online_store.read_columns(table, keys, columns) == expected
            for key in keys:  # one key at a time takes another path in some backends
                assert (
                    online_store.read_columns(table, [key], columns)
                    == expected[keys.index(key) : keys.index(key) + 1]
                )
        finally:
            online_store.delete_table(table)

    def test_read_columns_of_a_table_another_connection_changed(self, online_store: OnlineStore) -> None:
        other: OnlineStore = type(online_store)(online_store.url)  # type: ignore[call-arg]
        try:
            assert online_store.read_columns("t", [(1,)], ["v"]) == [None]  # no table yet
            write(online_store, "t", {"id": [1, 2], "ts": [at(0)] * 2, "v": [1, 2]}, version=1)
            assert online_store.read_columns("t", [(1,), (2,)], ["v", "extra"]) == [(1, None), (2, None)]
            # another connection appends a column: the reader sees it, one key or many
            write(other, "t", {"id": [2], "ts": [at(1)], "v": [20], "extra": ["e"]}, version=2)
            assert online_store.read_columns("t", [(2,)], ["v", "extra"]) == [(20, "e")]
            assert online_store.read_columns("t", [(1,), (2,)], ["extra", "v"]) == [(None, 1), ("e", 20)]
            # ... and deletes and recreates the table with another layout
            other.delete_table("t")
            assert online_store.read_columns("t", [(2,)], ["v", "extra"]) == [None]
            write(other, "t", {"id": [2], "ts": [at(3)], "extra": ["new"]}, version=0)
            assert online_store.read_columns("t", [(2,), (2,)], ["v", "extra"]) == [(None, "new")] * 2
            assert online_store.read_columns("t", [(2,), (3,)], []) == [(), None]
        finally:
            other.close()
