"""Committing spooled inference-log rows to the ``<deployment>_inference_log`` feature groups.

A :class:`LogCommitter` commits what a spool directory (:mod:`fti.serving.log_spool`) holds: the
files of each deployment and column layout as one append to the log-group version with exactly
those columns (a new version when a deployment's columns changed: a new model version with other
features), then deletes them. It runs in the writer process (:mod:`fti.serving.log_writer`), and
in the server's own process only when nothing is serving: a logger that was never started, or a
last drain at shutdown when the writer process could not finish.

What becomes of a file whose commit fails:

- the storage or catalog failed, or another writer kept winning the commit race (``BackendError``,
  ``ConflictError``, ``OSError``): kept and retried at the next round; the spool's bound (see
  :class:`~fti.serving.request_log.RequestLogger`) decides when new rows are dropped instead;
- the rows cannot go into the log (any other ``FtiError``, e.g. a schema the group refuses): dropped
  and counted, as the server always did;
- an unexpected error: retried ``MAX_ATTEMPTS`` times, then dropped and counted.

Each commit names its files in its metadata (:func:`fti.serving.log_spool.token`); a committer
taking over a directory (after a writer crash, or a dead server's) first skips the files that
the table's recent commits name, so no row is appended twice.

Compaction: each round is one Delta commit, so the committer compacts a log's small files
(``fg.compact()``) every ``compact_interval_s`` once it has written ``compact_min_commits``
commits, and removes the files compaction replaced after ``vacuum_retention`` (``fg.vacuum``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ConflictError, FtiError
from fti.serving import log_spool
from fti.serving.log_frames import unpack
from fti.serving.log_spool import Spool, SpoolFile

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.project import Project

log = logging.getLogger("fti.serving.request_log")

LOG_SUFFIX = "_inference_log"
LOG_PRIMARY_KEY = ("request_id", "row")
LOG_EVENT_TIME = "timestamp"
MAX_ATTEMPTS = 3
"""Rounds an unexpected error may fail a file's commit before the file is dropped."""
MAX_FILES = 2_000
"""Files committed per directory and round at most (a backlog is worked off in several)."""
HISTORY_SLACK = timedelta(minutes=1)


def log_group_name(deployment: str) -> str:
    return f"{deployment}{LOG_SUFFIX}"


@dataclass
class Outcome:
    """What one round did with a directory's files."""

    done: list[int] = field(default_factory=list)
    """Numbers of the files no longer spooled (committed, or dropped)."""
    written: Counter[str] = field(default_factory=Counter)
    """Rows committed per deployment."""
    dropped: Counter[str] = field(default_factory=Counter)
    """Rows dropped per deployment."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Why the rows of a deployment were dropped."""
    failed: dict[str, str] = field(default_factory=dict)
    """Deployments whose commit failed this round (files kept for the next), with the error."""

    def add(self, other: Outcome) -> None:
        self.done += other.done
        self.written.update(other.written)
        self.dropped.update(other.dropped)
        self.reasons.update(other.reasons)
        self.failed.update(other.failed)


class LogCommitter:
    """Commit spooled log rows (see the module docs).

    Args:
        project: Where the log groups live.
        compact_interval_s: How often :meth:`maintain` compacts the logs written to.
        compact_min_commits: Compact a log only once it has this many commits since the last.
        vacuum_retention: Replaced files older than this are deleted after a compaction (time
            travel to older versions of the log stops working past it).
    """

    def __init__(
        self,
        project: Project,
        *,
        compact_interval_s: float = 3600.0,
        compact_min_commits: int = 10,
        vacuum_retention: timedelta = timedelta(days=7),
    ) -> None:
        self._project = project
        self._groups: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._compact_interval_s = compact_interval_s
        self._compact_min_commits = compact_min_commits
        self._vacuum_retention = vacuum_retention
        self._commits: dict[tuple[str, int], int] = {}  # (log group, version) -> commits since compaction
        self._last_compaction = time.monotonic()
        self._attempts: Counter[tuple[str, int]] = Counter()
        self._checked: set[str] = set()  # directories whose earlier commits were looked up
        self.compactions = 0

    def commit(self, spool: Spool) -> Outcome:
        """Commit the files of ``spool`` (its writer lock must be held by this process)."""
        outcome = Outcome()
        kinds: dict[tuple[str, tuple[str, ...]], list[tuple[SpoolFile, pa.Table]]] = {}
        for file in spool.files(MAX_FILES):
            try:
                deployment, packed = log_spool.read(file)
                table = unpack(packed)
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                log.error("dropping the unreadable inference-log spool file %s: %s", file.path, exc)
                file.path.unlink(missing_ok=True)
                outcome.done.append(file.seq)
                continue
            kinds.setdefault((deployment, tuple(table.column_names)), []).append((file, table))
        for (deployment, columns), entries in kinds.items():
            outcome.add(self._commit_kind(spool, deployment, columns, entries))
        self._checked.add(spool.name)
        return outcome

    def _commit_kind(
        self,
        spool: Spool,
        deployment: str,
        columns: tuple[str, ...],
        entries: list[tuple[SpoolFile, pa.Table]],
    ) -> Outcome:
        import pyarrow as pa

        outcome = Outcome()
        files = [file for file, _ in entries]
        try:
            group = self._group(deployment, columns)
            if spool.name not in self._checked:  # a directory another writer may have committed from
                committed = self._committed(group, spool.name, files)
                for file in [f for f in files if f.seq in committed]:
                    file.path.unlink(missing_ok=True)
                    outcome.done.append(file.seq)
                entries = [(f, t) for f, t in entries if f.seq not in committed]
                if not entries:
                    return outcome
                files = [file for file, _ in entries]
            table = pa.concat_tables([t for _, t in entries])
            seqs = [f.seq for f in files]
            append_log_rows(group, table, token=log_spool.token(spool.name, seqs))
        except (BackendError, ConflictError, OSError) as exc:
            outcome.failed[deployment] = str(exc)
            log.warning("inference log of %s not committed (retried): %s", deployment, exc)
            return outcome
        except FtiError as exc:  # e.g. rows the group refuses: keep serving, count them
            return self._drop(outcome, deployment, entries, exc.message)
        except Exception as exc:
            log.exception("inference log write failed for %s", deployment)
            keys = [(spool.name, f.seq) for f in files]
            self._attempts.update(keys)
            if max(self._attempts[k] for k in keys) < MAX_ATTEMPTS:
                outcome.failed[deployment] = f"{type(exc).__name__}: {exc}"
                return outcome
            return self._drop(outcome, deployment, entries, f"{type(exc).__name__}: {exc}")
        for file in files:
            file.path.unlink(missing_ok=True)
            self._attempts.pop((spool.name, file.seq), None)
        outcome.done += seqs
        outcome.written[deployment] += table.num_rows
        key = (group.name, group.version)
        self._commits[key] = self._commits.get(key, 0) + 1
        return outcome

    def _drop(
        self, outcome: Outcome, deployment: str, entries: list[tuple[SpoolFile, pa.Table]], why: str
    ) -> Outcome:
        for file, table in entries:
            file.path.unlink(missing_ok=True)
            outcome.done.append(file.seq)
            outcome.dropped[deployment] += table.num_rows
        outcome.reasons[deployment] = why
        return outcome

    def _committed(self, group: Any, spool: str, files: list[SpoolFile]) -> set[int]:
        """The numbers of ``files`` (of directory ``spool``) that commits of ``group`` name: those
        made after the oldest file was written, read back from the newest."""
        offline = group.project.backends.offline
        latest = offline.version(group.table_name)
        if latest is None:
            return set()
        oldest = min(f.path.stat().st_mtime for f in files)
        since_time = datetime.fromtimestamp(oldest, UTC) - HISTORY_SLACK
        since = max(0, latest - 200)
        while True:
            history = offline.history(group.table_name, since=since)
            if since == 0 or not history or history[0].timestamp < since_time:
                break
            since = max(0, since - 1000)
        seqs: set[int] = set()
        for entry in history:
            value = entry.metadata.get(log_spool.TOKEN_KEY)
            if value is not None:
                name, numbers = log_spool.parse_token(value)
                if name == spool:
                    seqs |= numbers
        return seqs

    def _group(self, deployment: str, columns: tuple[str, ...]) -> Any:
        """The log group version whose schema has exactly ``columns`` (or has none yet); a new
        version when no version fits."""
        key = (deployment, columns)
        group = self._groups.get(key)
        if group is None:
            group = find_log_group(self._project, deployment, columns)
            if group is None:
                fs = self._project.feature_store
                name = log_group_name(deployment)
                versions = [g.version for g in fs.list_feature_groups() if g.name == name]
                version = max(versions, default=0) + 1
                if versions:
                    log.warning(
                        "the inputs or outputs of deployment %s changed: logging to %s version %s",
                        deployment,
                        name,
                        version,
                    )
                group = fs.get_or_create_feature_group(
                    name,
                    version,
                    primary_key=list(LOG_PRIMARY_KEY),
                    event_time=LOG_EVENT_TIME,
                    description=f"Inference log of deployment {deployment!r} (written by the model server).",
                )
            self._groups[key] = group
        return group

    def maintain(self) -> int:
        """Compact the logs when ``compact_interval_s`` has passed; returns how many were compacted."""
        if time.monotonic() - self._last_compaction < self._compact_interval_s:
            return 0
        return self.compact()

    def compact(self) -> int:
        """Compact (and vacuum) the logs written to since their last compaction that have at
        least ``compact_min_commits`` commits; returns how many were compacted. A failure is
        logged, never raised: logging goes on with more, smaller files."""
        self._last_compaction = time.monotonic()
        done = 0
        for group in {id(g): g for g in self._groups.values()}.values():
            key = (group.name, group.version)
            if self._commits.get(key, 0) < self._compact_min_commits:
                continue
            try:
                group.compact()
                group.vacuum(self._vacuum_retention)
            except Exception:
                log.exception("compacting the inference log %s v%s failed", group.name, group.version)
                continue
            self._commits[key] = 0
            done += 1
        self.compactions += done
        return done


def append_log_rows(group: Any, frame: Any, token: str | None = None) -> int:
    """Append rows to an inference-log group: checked against its schema like any insert, written
    as a plain Delta append without whole-table statistics, so a commit costs in proportion to
    its rows, not to the log. The rows' keys are unique (one row per request id and row number),
    so the duplicate check is skipped: a large commit needs no query engine. ``token`` (see
    :func:`fti.serving.log_spool.token`) is stored with the commit."""
    metadata = None if token is None else {log_spool.TOKEN_KEY: token}
    return int(
        group.insert_stream(
            [frame], "none", write_mode="append", unique_keys=True, commit_metadata=metadata
        ).version
    )


def find_log_group(project: Project, deployment: str, columns: tuple[str, ...]) -> Any:
    """The newest version of ``deployment``'s log group whose columns are exactly ``columns`` (or
    that has no schema yet), or None."""
    fs = project.feature_store
    name = log_group_name(deployment)
    for group in sorted((g for g in fs.list_feature_groups() if g.name == name), key=lambda g: -g.version):
        features = group.features
        if features is None or tuple(f.name for f in features) == columns:
            return group
    return None
