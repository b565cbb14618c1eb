"""Shared fixtures: real PostgreSQL, Redis, S3 servers and a Spark cluster (started once per
session) and projects.

The ``project`` fixture runs each test against both catalog backends (SQLite and PostgreSQL).
A missing server binary fails the run: ``make test`` installs them, and no test is skipped for it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fti
from fti.testing.servers import (
    PostgresServer,
    RedisServer,
    S3Server,
    SparkCluster,
    start_postgres,
    start_redis,
    start_s3,
    start_spark_cluster,
)

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-compatible server (moto) on loopback; tests create their own buckets."""
    import os

    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # no cloud metadata lookups from botocore
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database(f"fti_test_{next(_db_counter)}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A catalog URL for each backend: the test runs once per catalog."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the demo's iris and fraud systems (tests/demo_data.py), built once per session.

    Read-only for tests: copy it (``shutil.copytree``) to change it.
    """
    from tests import demo_data

    home = tmp_path_factory.mktemp("demo") / "home"
    demo_data.build(home)
    return home


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def project(home: Path, catalog_url: str) -> Iterator[fti.Project]:
    """A project on embedded storage, with the catalog on each backend in turn."""
    proj = fti.connect(home=home, catalog_url=catalog_url)
    yield proj
    proj.close()


@pytest.fixture
def sqlite_project(home: Path) -> Iterator[fti.Project]:
    """A project on the embedded defaults only (for tests where the catalog backend is irrelevant)."""
    proj = fti.connect(home=home)
    yield proj
    proj.close()


# --- Spark: one standalone cluster (a master and two workers) and one session per test session ---
REPO_ROOT = str(Path(__file__).resolve().parents[1])
SPARK_CONF = {
    # executors import the examples' on-demand functions by path, as a user's nodes import theirs
    "spark.executorEnv.PYTHONPATH": os.pathsep.join(
        p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p
    ),
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.executor.memory": "512m",
    "spark.driver.memory": "1g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
"""Small settings for the loaded 2-core test machine."""


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    """A Spark standalone cluster on loopback: one master, two workers of one core each."""
    # the executors' object-store credentials: those of the test S3 server (S3Server's defaults)
    credentials = {"AWS_ACCESS_KEY_ID": S3Server.access_key, "AWS_SECRET_ACCESS_KEY": S3Server.secret_key}
    cluster = start_spark_cluster(
        tmp_path_factory.mktemp("spark"), workers=2, cores=1, memory="1g", env=credentials
    )
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def spark_session(spark_cluster: SparkCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The one SparkSession of the test session, on the cluster (what project.spark() returns)."""
    from fti.config import load_settings
    from fti.spark.session import get_session

    home = tmp_path_factory.mktemp("spark-home")
    spark = get_session(load_settings(home, spark_master=spark_cluster.master_url, spark_conf=SPARK_CONF))
    spark.sparkContext.setLogLevel("ERROR")
    yield spark
    spark.stop()


@pytest.fixture
def spark_project(home: Path, spark_session: Any, spark_cluster: SparkCluster) -> Iterator[fti.Project]:
    """A project on embedded storage whose Spark engine is the test cluster."""
    proj = fti.connect(home=home, spark_master=spark_cluster.master_url, spark_conf=SPARK_CONF)
    yield proj
    proj.close()
