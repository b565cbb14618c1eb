"""A feature pipeline reading PostgreSQL with a password from a secret, end to end.

Real subprocess runs (``fti pipelines run``), a real password-protected PostgreSQL user, a SQLite
catalog in a real home directory. Checks the run gets exactly its declared secret and none of the
parent's credentials, that a failing run does not advance the source cursor (the retry re-reads
and the feature group holds every row once), and that no secret value appears anywhere the runs
left something: files under the home (catalog, logs, offline and online stores) and the CLI's
output.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

import fti
from fti.cli.main import cli
from fti.secrets.keys import generate_key
from fti.testing.servers import PostgresServer

PASSWORD = "etl-Reader-pw/7:@secret"
OTHER = "unrelated-secret-value-31"
AWS = "aws-parent-credential-5511"
TOKEN = "parent-api-token-8823"

MODULE = """
import json, os
import fti

URL = {url!r}
OUT = {out!r}


@fti.feature_pipeline(secrets=["analytics-db"])
def load_orders(project, fail: bool = False) -> None:
    source = fti.sources.SQL(URL, secret="analytics-db")          # the run's project: no project=
    fg = project.feature_store.get_or_create_feature_group("orders", primary_key=["id"], event_time="ts")
    with source.read_incremental("orders", cursor="ts", name="orders") as batch:
        fg.insert(batch.table)
        value = project.secrets.get("analytics-db")
        print("the secret is", value)                               # masked in the stored log
        report = {{
            "rows": batch.num_rows,
            "key_in_env": "FTI_SECRET_KEY" in os.environ,
            "aws_in_env": "AWS_SECRET_ACCESS_KEY" in os.environ,
            "token_in_env": "MY_API_TOKEN" in os.environ,
            "plain": os.environ.get("PLAIN_SETTING"),
        }}
        try:
            project.secrets.get("unrelated")
            report["other"] = "readable"
        except fti.PermissionDeniedError:
            report["other"] = "denied"
        with open(OUT, "a") as fh:
            fh.write(json.dumps(report) + "\\n")
        if fail:
            raise RuntimeError("failing after the insert; the password is " + json.loads(value)["password"])


@fti.feature_pipeline(secrets=["not-set"])
def needs_missing(project) -> None:
    print("never runs")
"""


@pytest.fixture
def orders_db(postgres_server: PostgresServer) -> tuple[str, str]:
    """(superuser URL, URL of the password-protected reader)."""
    postgres_server.create_password_user("etl_reader", PASSWORD)
    url = postgres_server.create_database("fti_orders")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, ts timestamptz NOT NULL, amount float8)")
        conn.execute(
            "INSERT INTO orders VALUES (1, '2024-01-01T10:00:00Z', 5.0), (2, '2024-01-01T11:00:00Z', 7.5), "
            "(3, '2024-01-01T11:00:00Z', 1.0)"
        )
    return url, f"postgresql://etl_reader@127.0.0.1:{postgres_server.port}/fti_orders"


@pytest.mark.postgres
def test_pipeline_reads_with_its_secret_and_leaks_nothing(
    orders_db: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_url, reader_url = orders_db
    key = generate_key()
    monkeypatch.setenv("FTI_SECRET_KEY", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS)
    monkeypatch.setenv("MY_API_TOKEN", TOKEN)
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    home, out = tmp_path / "home", tmp_path / "report.jsonl"
    module = tmp_path / "orders.py"
    module.write_text(MODULE.format(url=reader_url, out=str(out)))
    project = fti.connect(home=home)
    project.secrets.set("analytics-db", json.dumps({"password": PASSWORD}))
    project.secrets.set("unrelated", OTHER)
    project.pipelines.deploy(module)
    assert project.pipelines.get("load_orders").secrets == ("analytics-db",)

    failed = project.pipelines.run("load_orders", params={"fail": True})
    assert failed.status == "failed" and "failing after the insert" in (failed.error or "")
    with pytest.raises(fti.NotFoundError):  # the failed run did not advance the cursor
        fti.sources.get_cursor(project, "orders")
    retried = project.pipelines.run("load_orders")
    assert retried.status == "succeeded", project.pipelines.logs(retried.id)
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("INSERT INTO orders VALUES (4, '2024-01-01T11:00:00Z', 2.0)")  # ties the watermark
    third = project.pipelines.run("load_orders")
    assert third.status == "succeeded"
    reports = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["rows"] for r in reports] == [3, 3, 1]  # the retry re-read the rows; then only the new one
    assert all(
        r
        == {
            **r,
            "key_in_env": False,
            "aws_in_env": False,
            "token_in_env": False,
            "plain": "visible",
            "other": "denied",
        }
        for r in reports
    )
    rows = project.feature_store.get_feature_group("orders").read()
    assert sorted(rows["id"]) == [1, 2, 3, 4]  # nothing skipped, nothing doubled

    missing = project.pipelines.run("needs_missing")
    assert missing.status == "failed" and "secret 'not-set' does not exist" in (missing.error or "")
    logs = project.pipelines.logs(failed.id)
    assert "the secret is ***" in logs["stdout"] and "the password is ***" in logs["stderr"]
    project.close()

    # Everything the runs produced: every file under the home, and what the CLI shows.
    produced = [path.read_bytes() for path in home.rglob("*") if path.is_file()]
    runner = CliRunner()
    for args in (
        ["--json", "pipelines", "runs"],
        ["--json", "pipelines", "show", "load_orders"],
        ["--json", "info"],
        ["--json", "secrets", "list"],
        ["pipelines", "runs"],
        *[["pipelines", "logs", str(run.id)] for run in (failed, retried, third)],
    ):
        result = runner.invoke(cli, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
        produced.append(result.stdout.encode() + result.stderr.encode())
    needles = {PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD), OTHER, AWS, TOKEN, key}
    for blob in produced:
        for needle in needles:
            assert needle.encode() not in blob, needle
