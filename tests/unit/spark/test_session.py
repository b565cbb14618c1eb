"""The Spark engine's session: built from the settings, and every way it cannot start is a typed FtiError.

No Java, no pyspark, a malformed or unreachable master and a process already running another
SparkContext are each refused before a JVM is started (or waited for), with what to install or fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fti
from fti.errors import BackendError, ConflictError, ValidationError
from fti.spark.session import check_master, java_version
from fti.testing.servers import free_port

pytestmark = pytest.mark.spark


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


def test_no_java_names_the_package_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendError, match=r"needs a Java 17\+ runtime.*openjdk-17-jre-headless"):
        java_version()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(BackendError, match="has no bin/java"):
        java_version()


def test_an_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(BackendError, match=r"needs Java 17 or newer, but .* is Java 11"):
        java_version()
    monkeypatch.delenv("JAVA_HOME")
    assert java_version() >= 17  # the machine's runtime, found on the PATH


def test_no_pyspark_says_to_install_the_extra(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["pyspark"] = None  # as if fti[spark] were not installed
import fti
from datetime import UTC, datetime
import pandas as pd
project = fti.connect(home={str(tmp_path)!r})
fg = project.feature_store.get_or_create_feature_group("g", primary_key=["id"], event_time="ts")
fg.insert(pd.DataFrame({{"id": [1], "ts": [datetime(2024, 1, 1, tzinfo=UTC)], "x": [1.0]}}))
fv = project.feature_store.get_or_create_feature_view("v", query=fg.select(["x"]))
for call in (project.spark, lambda: fv.create_training_data(engine="spark")):
    try:
        call()
    except fti.BackendError as exc:
        print("BackendError:", exc)
print("versions:", fv.training_dataset_versions())
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith("BackendError:")]) == 2
    assert "install fti[spark] (pip install 'fti[spark]')" in lines[0]
    assert lines[-1] == "versions: []"  # nothing was recorded


def test_an_unreachable_master_fails_fast(tmp_path: Path) -> None:
    master = f"spark://127.0.0.1:{free_port()}"  # nothing listens there
    code = f"""
import fti
project = fti.connect(home={str(tmp_path)!r}, spark_master={master!r})
try:
    project.spark()
except fti.BackendError as exc:
    print("BackendError:", exc)
"""
    started = time.monotonic()
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert f"BackendError: the Spark master {master} is unreachable" in result.stdout
    assert "fix FTI_SPARK_MASTER" in result.stdout
    assert time.monotonic() - started < 60  # Spark itself would retry for about a minute


def test_master_urls_are_checked(tmp_path: Path) -> None:
    for bad in ("local[0]", "spark://nohost", "mesos://x:5050", "sc://localhost:15002", ""):
        with pytest.raises(ValidationError, match="is not a Spark master URL"):
            check_master(bad)
    for good in ("local", "local[*]", "local[4]", "local[2,3]", "yarn", "k8s://https://k:443"):
        check_master(good)
    with pytest.raises(BackendError, match="unreachable"):
        check_master(f"spark://127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    project = fti.connect(home=tmp_path, spark_master="local[0]")
    with pytest.raises(ValidationError, match="FTI_SPARK_MASTER 'local\\[0\\]'"):
        project.spark()
    project.close()


def test_the_running_session_is_reused_and_another_master_is_a_conflict(
    spark_session, spark_cluster, tmp_path: Path
) -> None:
    same = fti.connect(home=tmp_path / "a", spark_master=spark_cluster.master_url)
    default = fti.connect(home=tmp_path / "b")  # FTI_SPARK_MASTER unset: the running session
    other = fti.connect(home=tmp_path / "c", spark_master="local[1]")
    try:
        assert same.spark() is not None and same.spark().sparkContext is spark_session.sparkContext
        assert default.spark().sparkContext.master == spark_cluster.master_url
        assert spark_session.conf.get("spark.sql.session.timeZone") == "UTC"
        with pytest.raises(ConflictError, match="already runs a SparkContext with master"):
            other.spark()
    finally:
        for project in (same, default, other):
            project.close()


def test_unknown_engines_are_refused(spark_project) -> None:
    import pandas as pd

    fg = spark_project.feature_store.get_or_create_feature_group("g", primary_key=["id"])
    fg.insert(pd.DataFrame({"id": [1], "x": [1.0]}))
    fv = spark_project.feature_store.get_or_create_feature_view("v", query=fg.select(["x"]))
    for call in (
        lambda: fv.create_training_data(engine="dask"),
        lambda: fv.get_batch_data(engine="polars"),
    ):
        with pytest.raises(ValidationError, match="engine must be one of"):
            call()
    with pytest.raises(ValidationError, match="returns a Spark DataFrame, not 'arrow'"):
        fv.get_batch_data(engine="spark", return_type="arrow")
    with pytest.raises(ValidationError, match="returns transformed features; use engine='duckdb'"):
        fv.get_batch_data(engine="spark", transformed=False)
    assert fv.training_dataset_versions() == []
