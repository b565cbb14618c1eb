"""External feature groups: a source and a query read at query time, joined like any group."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fti
from fti.testing.servers import PostgresServer

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def write_clicks(folder: Path, name: str, users: list[int], hours: list[int], pages: list[int]) -> None:
    folder.mkdir(exist_ok=True)
    table = pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "ts": pa.array([T0 + timedelta(hours=h) for h in hours], pa.timestamp("us", tz="UTC")),
            "pages": pa.array(pages, pa.int64()),
        }
    )
    pq.write_table(table, folder / name)


@pytest.fixture
def project(home: Path) -> Iterator[fti.Project]:
    proj = fti.connect(home=home)
    yield proj
    proj.close()


@pytest.fixture
def clicks(tmp_path: Path) -> Path:
    folder = tmp_path / "clicks"
    write_clicks(folder, "a.parquet", [1, 1, 2], [0, 5, 1], [3, 7, 2])
    return folder


def external(project: fti.Project, folder: Path, **kwargs: object) -> fti.features.feature_group.FeatureGroup:  # type: ignore[name-defined]
    options: dict[str, object] = {
        "source": fti.sources.Files(str(folder / "*.parquet"), project=project),
        "primary_key": ["user_id"],
        "event_time": "ts",
        **kwargs,
    }
    return project.feature_store.get_or_create_external_feature_group("clicks", **options)  # type: ignore[arg-type]


def test_an_external_group_is_read_from_its_source_at_query_time(project: fti.Project, clicks: Path) -> None:
    fg = external(project, clicks, description="page views")
    assert fg.is_external and not fg.online_enabled
    assert [(f.name, f.dtype) for f in fg.features or []] == [
        ("user_id", "int64"),
        ("ts", "timestamp"),
        ("pages", "int64"),
    ]
    assert fg.read().sort_values(["user_id", "ts"])["pages"].tolist() == [3, 7, 2]
    write_clicks(clicks, "b.parquet", [2], [8], [9])  # new data at the source: the next read has it
    assert sorted(fg.read()["pages"].tolist()) == [2, 3, 7, 9]
    assert fg.statistics()["pages"]["max"] == 9
    assert fg.read_page(0, 2).total == 4
    assert fg.commits() == [] and fg.latest_commit_version() is None
    shown = fg.to_dict()["external"]
    assert shown == {"source": f"files:parquet:{clicks / '*.parquet'}", "query": None}
    again = project.feature_store.get_feature_group("clicks")
    assert again.is_external and again.definition == fg.definition


def test_a_query_over_files_and_its_parameters(project: fti.Project, clicks: Path) -> None:
    fg = external(
        project,
        clicks,
        query="SELECT user_id, ts, pages * 10 AS pages10 FROM source WHERE pages >= $least",
        params={"least": 3},
    )
    assert sorted(fg.read()["pages10"].tolist()) == [30, 70]


def test_external_groups_join_point_in_time_and_training_data_stays_reproducible(
    project: fti.Project, clicks: Path
) -> None:
    fs = project.feature_store
    labels = fs.get_or_create_feature_group("labels", primary_key=["user_id"], event_time="ts")
    labels.insert(
        pd.DataFrame(
            {
                "user_id": [1, 1, 2, 3],
                "ts": [T0 + timedelta(hours=h) for h in (4, 6, 2, 1)],
                "bought": [0, 1, 1, 0],
            }
        )
    )
    clicks_fg = external(project, clicks)
    query = labels.select(["user_id", "bought"]).join(clicks_fg.select(["pages"]), prefix="clicks_")
    fv = fs.get_or_create_feature_view("buyers", query=query, labels=["bought"])
    version, rows = fv.create_training_data()
    frame = rows.sort_values(["user_id", "bought"])
    # the latest click row at or before each label: user 1 at 4h sees 0h (3), at 6h sees 5h (7);
    # user 2 at 2h sees 1h (2); user 3 has none
    assert frame["clicks_pages"].tolist()[:3] == [3, 7, 2] and pd.isna(frame["clicks_pages"].tolist()[3])
    x, y = fv.get_training_data(version)
    write_clicks(clicks, "a.parquet", [1, 1, 2], [0, 5, 1], [300, 700, 200])  # the source changes
    again_x, again_y = fv.get_training_data(version)
    pd.testing.assert_frame_equal(again_x, x)  # the training dataset keeps what it read
    pd.testing.assert_series_equal(again_y, y)
    assert fv.training_dataset(version).input_versions[clicks_fg.table_name] is None
    fresh = fv.get_batch_data(with_keys=True).sort_values(["user_id", "ts"])
    assert fresh["clicks_pages"].dropna().tolist() == [300, 700, 200]  # batch data reads the source now


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            lambda fg: fg.insert(pd.DataFrame({"user_id": [1], "ts": [T0], "pages": [1]})),
            "cannot take inserted",
        ),
        (lambda fg: fg.push(pd.DataFrame({"user_id": [1], "ts": [T0], "pages": [1]})), "is external"),
        (lambda fg: fg.append_features([fti.Feature("x", "int64")]), "cannot append features"),
        (lambda fg: fg.read(as_of=0), "no history"),
        (lambda fg: fg.statistics(0), "no commit versions"),
        (lambda fg: fg.delete_records(pd.DataFrame({"user_id": [1]})), "cannot delete records"),
        (lambda fg: fg.compact(), "cannot be compacted"),
        (lambda fg: fg.vacuum(), "cannot be vacuumed"),
    ],
)
def test_an_external_group_stores_nothing_itself(
    project: fti.Project, clicks: Path, action: object, message: str
) -> None:
    fg = external(project, clicks)
    with pytest.raises(fti.ValidationError, match=message):
        action(fg)  # type: ignore[operator]


def test_bad_definitions_are_refused_before_anything_is_stored(
    project: fti.Project, clicks: Path, tmp_path: Path
) -> None:
    fs = project.feature_store
    files = fti.sources.Files(str(clicks / "*.parquet"), project=project)
    with pytest.raises(fti.SchemaError, match=r"returns no column\(s\) \['customer'\]"):
        fs.get_or_create_external_feature_group("bad", source=files, primary_key=["customer"])
    with pytest.raises(fti.ValidationError, match=r"query of the external group .* failed"):
        fs.get_or_create_external_feature_group(
            "bad", source=files, query="SELECT nope FROM source", primary_key=["user_id"]
        )
    with pytest.raises(fti.ValidationError, match="needs query="):
        fs.get_or_create_external_feature_group(
            "bad", source=fti.sources.SQL("sqlite:///x.db"), primary_key=["id"]
        )
    with pytest.raises(fti.ValidationError, match="holds a password"):
        fs.get_or_create_external_feature_group(
            "bad", source=fti.sources.SQL("postgresql://u:pw@db/x"), query="SELECT 1", primary_key=["id"]
        )
    with pytest.raises(fti.ValidationError, match="source must be"):
        fs.get_or_create_external_feature_group("bad", source="s3://x", primary_key=["id"])
    with pytest.raises(fti.ValidationError, match="look like credentials"):
        fs.get_or_create_external_feature_group(
            "bad", source=fti.sources.Files(str(clicks), options={"secret": "x"}), primary_key=["user_id"]
        )
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, ts TEXT)")
        conn.execute("INSERT INTO orders VALUES (1, '2024-01-01 10:00:00')")
    with pytest.raises(
        fti.SchemaError, match="event time column 'ts' of the query must be a tz-aware timestamp"
    ):
        fs.get_or_create_external_feature_group(
            "bad",
            source=fti.sources.SQL(f"sqlite:///{db}"),
            query="SELECT id, ts FROM orders",
            primary_key=["id"],
            event_time="ts",
        )
    assert [g.name for g in fs.list_feature_groups()] == []
    fg = external(project, clicks)
    assert external(project, clicks).id == fg.id  # the same definition: the same group
    with pytest.raises(fti.AlreadyExistsError, match="another source, query or params"):
        external(project, clicks, query="SELECT * FROM source")


def test_a_sqlite_source_without_event_time(project: fti.Project, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER, segment TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?)", [(1, "gold"), (2, "silver")])
    fg = project.feature_store.get_or_create_external_feature_group(
        "customers",
        source=fti.sources.SQL(f"sqlite:///{db}"),
        query="SELECT * FROM customers",
        primary_key=["id"],
    )
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO customers VALUES (3, 'bronze')")
    assert fg.read().sort_values("id")["segment"].tolist() == ["gold", "silver", "bronze"]
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE customers RENAME COLUMN segment TO tier")
    with pytest.raises(fti.SchemaError, match="no longer returns its schema: column 'segment' is missing"):
        fg.read()


@pytest.mark.postgres
def test_a_postgresql_source_with_a_secret_and_parameters(
    project: fti.Project, postgres_server: PostgresServer
) -> None:
    import psycopg

    postgres_server.create_password_user("ext_reader", "ext-Reader-pw/9")
    url = postgres_server.create_database("fti_ext")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE payments (card bigint, ts timestamptz, amount float8)")
        conn.execute(
            "INSERT INTO payments VALUES (1, '2024-01-01T10:00:00Z', 5), (1, '2024-01-02T10:00:00Z', 7),"
            " (2, '2024-01-03T10:00:00Z', 9)"
        )
    project.secrets.set("payments-db", "ext-Reader-pw/9")
    source = fti.sources.SQL(
        f"postgresql://ext_reader@127.0.0.1:{postgres_server.port}/fti_ext",
        secret="payments-db",
        project=project,
    )
    fg = project.feature_store.get_or_create_external_feature_group(
        "payments",
        source=source,
        query="SELECT card, ts, amount FROM payments WHERE ts >= :since",
        params={"since": T0 + timedelta(hours=20)},
        primary_key=["card"],
        event_time="ts",
    )
    assert sorted(fg.read()["amount"].tolist()) == [7.0, 9.0]
    assert "ext-Reader-pw" not in str(fg.definition) and "ext-Reader-pw" not in str(fg.to_dict())
    spine = project.feature_store.get_or_create_feature_group("checks", primary_key=["card"], event_time="ts")
    spine.insert(pd.DataFrame({"card": [1, 2], "ts": [T0 + timedelta(days=2), T0 + timedelta(days=2)]}))
    fv = project.feature_store.get_or_create_feature_view(
        "v", query=spine.select(["card"]).join(fg.select(["amount"]))
    )
    rows = fv.get_batch_data(with_keys=True).sort_values("card")
    assert rows["amount"].tolist()[0] == 7.0 and pd.isna(rows["amount"].tolist()[1])
