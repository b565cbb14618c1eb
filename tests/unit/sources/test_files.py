"""Files sources: Parquet, CSV and JSON on local disk, and on S3 through a real local S3 server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import fti
from fti.errors import BackendError, NotFoundError, ValidationError
from fti.sources import Files, get_cursor
from fti.testing.servers import S3Server

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def clicks(start: int, n: int, second: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(start, start + n), pa.int64()),
            "ts": pa.array([T0 + timedelta(seconds=second)] * n, pa.timestamp("ns", "UTC")),
            "page": [f"p{i % 3}" for i in range(start, start + n)],
        }
    )


@pytest.fixture
def parquet_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clicks"
    folder.mkdir()
    pq.write_table(clicks(0, 5, 1), folder / "part-0.parquet")
    pq.write_table(clicks(5, 5, 2), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")  # marker files are skipped
    return folder


def test_parquet_glob_directory_columns_and_filters(parquet_dir: Path) -> None:
    by_glob = Files(str(parquet_dir / "*.parquet")).read()
    by_dir = Files(str(parquet_dir)).read()
    assert by_glob.num_rows == by_dir.num_rows == 10
    assert by_glob.schema.field("ts").type == pa.timestamp("ns", "UTC")
    picked = Files(str(parquet_dir)).read(columns=["id"], filter=pc.field("id") >= 7)
    assert picked.column_names == ["id"] and picked.column("id").to_pylist() == [7, 8, 9]
    dnf = Files(str(parquet_dir)).read(filter=[("page", "=", "p0"), ("id", "<", 6)])
    assert sorted(dnf.column("id").to_pylist()) == [0, 3]
    assert [b.num_rows for b in Files(str(parquet_dir)).batches(chunk_rows=2)] == [2, 2, 1, 2, 2, 1]


def test_csv_and_json(tmp_path: Path) -> None:
    pcsv.write_csv(pa.table({"id": [1, 2], "amount": [1.5, 2.5]}), tmp_path / "a.csv")
    table = Files(str(tmp_path / "*.csv"), format="csv").read()
    assert table.to_pydict() == {"id": [1, 2], "amount": [1.5, 2.5]}
    lines = "\n".join(json.dumps({"id": i, "name": f"n{i}"}) for i in range(3))
    (tmp_path / "b.json").write_text(lines + "\n")
    assert Files(str(tmp_path / "b.json"), format="json").read().column("name").to_pylist() == [
        "n0",
        "n1",
        "n2",
    ]
    fixed = Files(
        str(tmp_path / "a.csv"),
        format="csv",
        schema=pa.schema([("id", pa.string()), ("amount", pa.float32())]),
    )
    assert fixed.read().schema.field("id").type == pa.string()


def test_bad_input(parquet_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown file format 'avro'"):
        Files(str(parquet_dir), format="avro")
    with pytest.raises(NotFoundError, match="no file matches"):
        Files(str(tmp_path / "nothing-*.parquet")).read()
    with pytest.raises(ValidationError, match=r"no column 'nope' in the files \(columns: id, ts, page\)"):
        Files(str(parquet_dir)).read(columns=["nope"])
    with pytest.raises(ValidationError, match=r"No match for FieldRef.Name\(nope\); the files have columns"):
        Files(str(parquet_dir)).read(filter=pc.field("nope") > 1)
    with pytest.raises(ValidationError, match="filter must be"):
        Files(str(parquet_dir)).read(filter="id > 3")
    with pytest.raises(ValidationError, match="path must be"):
        Files([])
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ValidationError, match="cannot be read as parquet"):
        Files(str(tmp_path / "broken.parquet")).read()
    with pytest.raises(ValidationError, match="include the cursor column"):
        Files(str(parquet_dir)).read_incremental(cursor="ts", columns=["id"])


def test_incremental_over_new_files(parquet_dir: Path, sqlite_project: fti.Project) -> None:
    source = Files(str(parquet_dir / "*.parquet"), project=sqlite_project)
    with source.read_incremental(cursor="ts", name="clicks") as batch:
        assert batch.table.num_rows == 10
    assert get_cursor(sqlite_project, "clicks").watermark.unit == "ns"  # nanoseconds kept exactly
    pq.write_table(clicks(10, 2, 2), parquet_dir / "part-2.parquet")  # late rows at the watermark
    pq.write_table(clicks(12, 1, 3), parquet_dir / "part-3.parquet")
    with source.read_incremental(cursor="ts", name="clicks") as batch:
        assert sorted(batch.table.column("id").to_pylist()) == [10, 11, 12]
    with source.read_incremental(cursor="ts", name="clicks") as batch:
        assert batch.table.num_rows == 0


def test_s3_through_a_local_server(s3_server: S3Server, tmp_path: Path) -> None:
    import s3fs

    s3_server.create_bucket("raw-clicks")
    fs = s3fs.S3FileSystem(**s3_server.storage_options())  # type: ignore[arg-type]
    for i in range(3):
        with fs.open(f"raw-clicks/2024/part-{i}.parquet", "wb") as fh:
            pq.write_table(clicks(i * 4, 4, i), fh)
    settings = {
        "s3_endpoint_url": s3_server.endpoint_url,
        "s3_allow_http": True,
        "s3_region": s3_server.region,
    }
    with fti.connect(home=tmp_path / "home", **settings) as project:
        creds = {"aws_access_key_id": s3_server.access_key, "aws_secret_access_key": s3_server.secret_key}
        project.secrets.set("raw-s3", json.dumps(creds))
        source = Files("s3://raw-clicks/2024/*.parquet", secret="raw-s3", project=project)
        table = source.read(columns=["id", "ts"], filter=pc.field("id") > 5)
        assert sorted(table.column("id").to_pylist()) == [6, 7, 8, 9, 10, 11]
        with source.read_incremental(cursor="ts", name="s3-clicks") as batch:
            assert batch.table.num_rows == 12
        with fs.open("raw-clicks/2024/part-9.parquet", "wb") as fh:
            pq.write_table(clicks(100, 1, 5), fh)
        with source.read_incremental(cursor="ts", name="s3-clicks") as batch:
            assert batch.table.column("id").to_pylist() == [100]
        with pytest.raises(BackendError, match="cannot list the files") as err:
            Files("s3://raw-clicks/2024/*.parquet", project=project).read()  # no credentials at all
        project.secrets.set("wrong-s3", json.dumps({**creds, "aws_secret_access_key": "wrong-secret-value"}))
        assert "wrong-secret-value" not in str(err.value)
        project.secrets.set("plain", "just-a-token")
        with pytest.raises(ValidationError, match="must be a JSON object"):
            Files("s3://raw-clicks/2024/*.parquet", secret="plain", project=project).read()
        project.secrets.set("typo", json.dumps({"aws_access_key": "x"}))
        with pytest.raises(ValidationError, match=r"unknown field.*aws_access_key"):
            Files("s3://raw-clicks/2024/*.parquet", secret="typo", project=project).read()
    with (
        fti.connect(home=tmp_path / "home", s3_endpoint_url=s3_server.endpoint_url) as project,
        pytest.raises(ValidationError, match="FTI_S3_ALLOW_HTTP"),
    ):
        Files("s3://raw-clicks/2024/*.parquet", secret="raw-s3", project=project).read()
