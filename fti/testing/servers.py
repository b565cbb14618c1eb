"""Start real PostgreSQL, Redis, S3-compatible servers and a Spark cluster on free loopback ports.

Used by the test suite, benchmarks and examples. As root, PostgreSQL runs as the ``postgres``
user (it refuses to run as root). Missing binaries raise ``ServerUnavailable`` with the package to
install; ``make test`` installs them with apt-get.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The server binary is not installed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _find(binary: str, patterns: list[str]) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    return None


@dataclass
class PostgresServer:
    """A running PostgreSQL server; ``url(db)`` gives a SQLAlchemy URL for one database."""

    port: int
    datadir: Path
    pg_ctl: str
    user: str
    _as_postgres: bool = field(default=False, repr=False)
    _private_dir: Path | None = field(default=None, repr=False)
    """A directory made for this server alone (as root), removed by :meth:`stop`."""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_password_user(self, name: str, password: str) -> None:
        """A login role that must authenticate with ``password`` over TCP (scram-sha-256).

        The server trusts every other user; a line for this one goes first in ``pg_hba.conf``.
        """
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            hba = self.datadir / "pg_hba.conf"
            hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server; a directory made for it alone is removed with its databases."""
        _run_pg(
            [self.pg_ctl, "-D", str(self.datadir), "-m", "immediate", "stop"], self._as_postgres, check=False
        )
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)


def _run_pg(cmd: list[str], as_postgres: bool, check: bool = True) -> subprocess.CompletedProcess[str]:
    if as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def start_postgres(base: Path) -> PostgresServer:
    """initdb + pg_ctl start on a free port under ``base``."""
    initdb = _find("initdb", ["/usr/lib/postgresql/*/bin/initdb"])
    pg_ctl = _find("pg_ctl", ["/usr/lib/postgresql/*/bin/pg_ctl"])
    if not initdb or not pg_ctl:
        raise ServerUnavailable(
            "PostgreSQL server not found: apt-get install postgresql (make test does this)"
        )
    as_postgres = os.geteuid() == 0
    private_dir = None
    if as_postgres:
        # The postgres user must be able to traverse every parent: pytest's temp dirs are 0700 root.
        import tempfile

        base = private_dir = Path(tempfile.mkdtemp(prefix="fti-pg-"))
    datadir = base / "pgdata"
    sockdir = base / "pgsock"
    sockdir.mkdir(parents=True, exist_ok=True)
    if as_postgres:
        shutil.chown(base, "postgres")
        shutil.chown(sockdir, "postgres")
    user = "postgres" if as_postgres else os.environ.get("USER", "postgres")
    _run_pg([initdb, "-D", str(datadir), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"], as_postgres)
    port = free_port()
    options = f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    result = _run_pg(
        [pg_ctl, "-D", str(datadir), "-o", options, "-l", str(base / "pg.log"), "-w", "start"],
        as_postgres,
        check=False,
    )
    if result.returncode != 0:
        log = (base / "pg.log").read_text() if (base / "pg.log").exists() else ""
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL failed to start: {result.stderr}\n{log}")
    return PostgresServer(
        port=port,
        datadir=datadir,
        pg_ctl=pg_ctl,
        user=user,
        _as_postgres=as_postgres,
        _private_dir=private_dir,
    )


@dataclass
class RedisServer:
    """A running redis-server; ``url(db)`` gives a redis:// URL."""

    port: int
    process: subprocess.Popen[bytes]

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_redis(base: Path) -> RedisServer:
    """redis-server on a free loopback port, no persistence."""
    binary = _find("redis-server", [])
    if not binary:
        raise ServerUnavailable("redis-server not found: apt-get install redis-server (make test does this)")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(base),
            "--databases",
            "64",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return RedisServer(port=port, process=process)
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}") from None
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start within 20 s")


@dataclass
class S3Server:
    """An S3-compatible server (moto in server mode) on loopback, with fixed test credentials."""

    port: int
    process: subprocess.Popen[bytes]
    access_key: str = "fti-test-key"
    secret_key: str = "fti-test-secret"
    region: str = "us-east-1"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def storage_options(self) -> dict[str, object]:
        """s3fs options for this server, credentials included."""
        return {
            "endpoint_url": self.endpoint_url,
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"region_name": self.region},
        }

    def create_bucket(self, name: str) -> None:
        import boto3  # installed with moto

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )
        client.create_bucket(Bucket=name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_s3(base: Path) -> S3Server:
    """``moto_server`` on a free loopback port (``pip install 'moto[server]'``, part of fti[dev])."""
    import importlib.util
    import sys

    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise ServerUnavailable("moto's S3 server not found: pip install 'moto[server]' (part of fti[dev])")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # never ask a cloud metadata endpoint for credentials
    log = (base / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=base,
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return S3Server(port=port, process=process)
        except OSError:
            if process.poll() is not None:
                output = (base / "moto.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"moto server exited with code {process.returncode}: {output}") from None
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto server did not start within 60 s")


@dataclass
class SparkCluster:
    """A Spark standalone cluster on loopback: one master and its workers (``spark-class`` of the
    installed pyspark), each a JVM process of its own."""

    master_url: str
    web_url: str
    processes: list[subprocess.Popen[bytes]]
    log_dir: Path

    def alive_workers(self) -> int:
        """The workers the master reports alive (its JSON status page)."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as response:
            return int(json.loads(response.read()).get("aliveworkers", 0))

    def stop(self) -> None:
        """Stop the workers, then the master."""
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def start_spark_cluster(
    base: Path,
    workers: int = 2,
    *,
    cores: int = 1,
    memory: str = "1g",
    daemon_memory: str = "256m",
    env: dict[str, str] | None = None,
) -> SparkCluster:
    """A standalone master and ``workers`` workers (``cores`` cores and ``memory`` each) on free
    loopback ports, started with the ``spark-class`` of the installed pyspark (``fti[spark]``,
    needs Java 17+); returns once every worker has registered.

    Workers inherit this process's environment (``PYTHONPATH``), so executors import the same fti,
    plus ``env`` (e.g. the object store's credentials, as a real cluster's nodes have them).
    """
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ServerUnavailable("pyspark not found: pip install 'fti[spark]' (part of fti[dev])")
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise ServerUnavailable(
            "java not found: apt-get install openjdk-17-jre-headless (make test does this)"
        )
    home = Path(spec.origin).parent
    spark_class = home / "bin" / "spark-class"
    base.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(env or {})}
    env.update(
        SPARK_HOME=str(home),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_DAEMON_MEMORY=daemon_memory,
        SPARK_LOG_DIR=str(base),
        SPARK_WORKER_DIR=str(base / "work"),
    )
    port, web_port = free_port(), free_port()
    master_url, web_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}"
    processes: list[subprocess.Popen[bytes]] = []

    def launch(name: str, *args: str) -> None:
        log = (base / f"{name}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [str(spark_class), *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base
            )
        )
        log.close()

    launch("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
           "--webui-port", str(web_port))  # fmt: skip
    cluster = SparkCluster(master_url, web_url, processes, base)
    try:
        for index in range(workers):
            launch(
                f"worker-{index}",
                "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1", "--webui-port", str(free_port()),
                "--cores", str(cores), "--memory", memory,
                "--work-dir", str(base / f"work-{index}"),
                master_url,
            )  # fmt: skip
        deadline = time.monotonic() + 180  # JVM start-ups on a loaded machine
        while time.monotonic() < deadline:
            exited = [p for p in processes if p.poll() is not None]
            if exited:
                logs = "\n".join(
                    path.read_text(errors="replace")[-1500:] for path in sorted(base.glob("*.log"))
                )
                raise RuntimeError(f"a Spark daemon exited with code {exited[0].returncode}:\n{logs}")
            try:
                if cluster.alive_workers() == workers:
                    return cluster
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the Spark cluster did not start within 180 s (logs in {base})")
    except BaseException:
        cluster.stop()
        raise
