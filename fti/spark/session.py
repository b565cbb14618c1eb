"""The SparkSession of the Spark engine, built from the typed settings, and Spark failures as FtiErrors.

:func:`get_session` is ``project.spark()``: the session fti configured from ``FTI_SPARK_MASTER``
and ``FTI_SPARK_CONF``, created on first use and reused (a process holds one SparkContext). Before
a JVM is started it checks what would otherwise fail deep inside Spark, slowly or cryptically: that
pyspark is installed, that a Java 17+ runtime is there, that the master URL is well formed and, for
a standalone master, that it answers. :func:`spark_job` runs the Spark actions of one fti operation
under a job tag and turns a failed, cancelled or killed job into a :class:`~fti.errors.BackendError`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ConflictError, FtiError, ValidationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fti.config import Settings

JAVA_MIN = 17
"""Spark 4 runs on Java 17 or newer."""
_MASTER = re.compile(
    r"^(local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?|local-cluster\[[0-9]+, *[0-9]+, *[0-9]+\]|yarn"
    r"|k8s://.+|spark://[^,/\s]+:[0-9]+(,[^,/\s]+:[0-9]+)*)$"
)
MASTER_FORMS = (
    "local[*], local[N], spark://host:7077 (or host1:7077,host2:7077), yarn or k8s://https://host:443"
)
MASTER_TIMEOUT = 5.0
"""Seconds to wait for a standalone master's port before calling it unreachable (Spark itself
retries for about a minute before giving up)."""

DEFAULTS = {
    # Timestamps are instants; UTC keeps their text forms and Arrow conversions zone-free.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


def import_pyspark() -> Any:
    """The ``pyspark`` module, or a BackendError saying how to install it."""
    try:
        import pyspark
    except ImportError as exc:
        raise BackendError(
            f"the Spark engine needs pyspark ({exc}); install fti[spark] (pip install 'fti[spark]'), "
            "which also needs a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)"
        ) from None
    # fti hands Spark Arrow batches, never pandas: PySpark's warning about pandas 3 does not apply.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    return pyspark


def java_version() -> int:
    """The major version of the Java runtime Spark would start (``$JAVA_HOME/bin/java``, else
    ``java`` on the PATH), as pyspark's launcher finds it.

    Raises:
        BackendError: no Java runtime, or one older than :data:`JAVA_MIN`.
    """
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = (
            f"JAVA_HOME={home} has no bin/java" if home else "no `java` on the PATH and JAVA_HOME is unset"
        )
        raise BackendError(
            f"the Spark engine needs a Java {JAVA_MIN}+ runtime, but {where}; install one (e.g. apt-get "
            f"install openjdk-{JAVA_MIN}-jre-headless, which `make system-deps` does) or set JAVA_HOME"
        )
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(
            f"could not run {java} -version to check the Java runtime for Spark: {exc}"
        ) from exc
    found = re.search(r'version "([0-9]+)(\.([0-9]+))?', result.stderr + result.stdout)
    if found is None:
        raise BackendError(
            f"could not read the version of the Java runtime {java}: {result.stderr.strip()!r}"
        )
    major = int(found.group(1))
    if major == 1 and found.group(3):  # "1.8.0": Java 8
        major = int(found.group(3))
    if major < JAVA_MIN:
        raise BackendError(
            f"the Spark engine needs Java {JAVA_MIN} or newer, but {java} is Java {major}; install "
            f"openjdk-{JAVA_MIN}-jre-headless (or newer) and point JAVA_HOME at it"
        )
    return major


def check_master(master: str) -> None:
    """Reject a malformed master URL, and a standalone master none of whose addresses answers.

    Raises:
        ValidationError: ``master`` is none of :data:`MASTER_FORMS`.
        BackendError: a ``spark://`` master is unreachable.
    """
    if not isinstance(master, str) or not _MASTER.match(master.strip()):
        raise ValidationError(f"FTI_SPARK_MASTER {master!r} is not a Spark master URL; use {MASTER_FORMS}")
    if not master.startswith("spark://"):
        return
    errors = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=MASTER_TIMEOUT):
                return
        except OSError as exc:
            errors.append(f"{address}: {exc}")
    raise BackendError(
        f"the Spark master {master} is unreachable ({'; '.join(errors)}); start it "
        "(sbin/start-master.sh) or fix FTI_SPARK_MASTER"
    )


def _running() -> SparkSession | None:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    context = SparkContext._active_spark_context
    if context is None:
        return None
    return SparkSession.getActiveSession() or SparkSession(context)


def get_session(settings: Settings, app_name: str = "fti") -> SparkSession:
    """The SparkSession of the Spark engine (``project.spark()``): created on first use from the
    settings, reused afterwards.

    With ``FTI_SPARK_MASTER`` unset, a session already running in the process (made by the
    application or a notebook) is used, else ``local[*]``. fti's defaults (:data:`DEFAULTS`: UTC
    session time zone, Arrow, the driver's Python on the executors) apply to sessions it creates;
    ``FTI_SPARK_CONF`` overrides them.

    Raises:
        BackendError: no pyspark, no Java 17+, an unreachable master, or Spark failed to start.
        ValidationError: a malformed master URL.
        ConflictError: the process already runs a SparkContext with another master.
    """
    import_pyspark()
    master = settings.spark_master
    if master is not None and not _MASTER.match(master.strip()):
        check_master(master)  # the ValidationError, before anything is compared or started
    running = _running()
    if running is not None:
        current = running.sparkContext.master
        if master is None or master == current:
            return running
        raise ConflictError(
            f"this process already runs a SparkContext with master {current!r}, but FTI_SPARK_MASTER is "
            f"{master!r}; a process holds one SparkContext: stop it (spark.stop()) or set "
            f"FTI_SPARK_MASTER={current}"
        )
    master = master or "local[*]"
    check_master(master)
    java_version()
    from pyspark.sql import SparkSession

    conf = {**DEFAULTS, **settings.spark_conf}
    # Python workers (where fti's Arrow batches are mapped) run the driver's interpreter unless
    # told otherwise: PySpark takes it from PYSPARK_PYTHON when the context starts. On a cluster
    # whose nodes keep Python elsewhere, set spark.pyspark.python in FTI_SPARK_CONF.
    python = conf.get("spark.pyspark.python") or os.environ.get("PYSPARK_PYTHON") or sys.executable
    os.environ["PYSPARK_PYTHON"] = conf["spark.pyspark.python"] = python
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:
        raise BackendError(f"Spark failed to start with master {master}: {_first_line(exc)}") from exc


@contextmanager
def spark_job(spark: SparkSession, what: str, *, cleanup: str = "") -> Iterator[str]:
    """Run the Spark actions of one fti operation (``what``, e.g. "insert into 'tx'") under a job
    tag (yielded: ``sc.cancelJobsWithTag(tag)`` cancels them) and turn a Spark failure into a
    :class:`~fti.errors.BackendError` that names the operation and ``cleanup`` (what the caller
    guarantees, e.g. "nothing was committed").

    FtiErrors raised in the block pass through unchanged.
    """
    context = spark.sparkContext
    tag = f"fti-{re.sub(r'[^a-z0-9]+', '-', what.lower()).strip('-')[:60]}-{uuid.uuid4().hex[:8]}"
    context.addJobTag(tag)
    context.setJobDescription(f"fti: {what}")
    try:
        yield tag
    except FtiError:
        raise
    except Exception as exc:
        if not is_spark_error(exc):
            raise
        suffix = f"; {cleanup}" if cleanup else ""
        raise BackendError(f"the Spark job of {what} failed: {_first_line(exc)}{suffix}") from exc
    finally:
        context.removeJobTag(tag)
        context.setJobDescription(None)  # type: ignore[arg-type]


def is_spark_error(exc: BaseException) -> bool:
    """True for the errors a Spark action raises: captured JVM exceptions (cancelled or failed
    jobs, Python worker errors), py4j errors (a JVM that died) and PySpark's own."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return isinstance(exc, (PySparkException, Py4JError, ConnectionError))


def _first_line(exc: BaseException) -> str:
    """The informative line of a Spark error: Java stack traces and Python worker tracebacks cut."""
    text = str(exc).strip()
    java_error = getattr(exc, "java_exception", None)
    if java_error is not None and "An error occurred while calling" in text:
        text = str(java_error.toString())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    worker = [line for line in lines if re.match(r"^[A-Za-z_.]+(Error|Exception): ", line)]
    if "Traceback" in text and worker:  # an error raised in a Python worker: its last line says what
        return worker[-1][:500]
    return lines[0].removeprefix(": ")[:500]
