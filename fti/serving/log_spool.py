"""The inference-log spool: Arrow IPC segments of log rows waiting for their commit.

The model server hands its log rows to the writer process (:mod:`fti.serving.log_writer`)
through files, not a pipe, so rows survive the writer's crash and the server's: each server
process (each ``fti serve`` worker) owns one directory ``<home>/serving/log_spool/<project>/<id>/``.
Its hand-offs append record batches to an open segment per deployment and column layout
(``.000000000001.partial``, an Arrow IPC stream: an append is one write, no file to create), which
is closed and renamed to ``000000000001.arrow`` once it is ``segment_s`` old: the writer commits
closed segments only. A segment of a server that died mid-write is read up to its last whole
batch. The deployment is in the schema's metadata.

Two ``flock`` locks in each directory say who may do what:

- ``owner.lock`` is held by the server process for the directory's life: a directory whose owner
  lock is free belongs to a server that is gone, and another writer adopts it (commits its
  segments, open ones included, and removes it);
- ``writer.lock`` is held by whoever commits the directory's segments (its writer process, an
  adopter, or the server draining it at shutdown), so a segment is never committed by two at once.

A commit carries the numbers of the segments it committed in its metadata (:func:`token`), so a
writer that replays a directory after a crash skips the segments committed just before it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

SUFFIX = ".arrow"
PARTIAL = ".partial"
DEPLOYMENT_KEY = b"fti.deployment"
OWNER_LOCK = "owner.lock"
WRITER_LOCK = "writer.lock"
TOKEN_KEY = "log_spool"
"""The commit-metadata key of :func:`token`."""


def spool_root(home: Path, project: str) -> Path:
    """The directory of the spools of ``project``'s servers."""
    return home / "serving" / "log_spool" / project


@dataclass(frozen=True)
class SpoolFile:
    """One spooled file: its number in its directory and its path."""

    seq: int
    path: Path

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


class Lock:
    """An exclusive ``flock`` on a file, held until :meth:`release` (or the process ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self, timeout: float = 0.0) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds; False when another process holds it."""
        if self._file is not None:
            return True
        try:
            file = self.path.open("ab")
        except FileNotFoundError:  # the directory was removed meanwhile
            return False
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    file.close()
                    return False
                time.sleep(0.05)
                continue
            self._file = file
            return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the only descriptor releases the flock
            self._file = None


class _Segment:
    """An open segment: a stream of record batches of one deployment and schema."""

    def __init__(self, directory: Path, seq: int, deployment: str, schema: pa.Schema) -> None:
        import pyarrow as pa

        self.seq = seq
        self.schema = schema
        self.partial = directory / f".{seq:012d}{PARTIAL}"
        self.path = directory / f"{seq:012d}{SUFFIX}"
        self.opened = time.monotonic()
        self._sink = pa.OSFile(str(self.partial), "wb")
        self._writer = pa.ipc.new_stream(
            self._sink, schema.with_metadata({DEPLOYMENT_KEY: deployment.encode()})
        )
        self.bytes = int(self._sink.tell())

    def append(self, table: pa.Table) -> int:
        before = self.bytes
        self._writer.write_table(table)
        self.bytes = int(self._sink.tell())
        return self.bytes - before

    def close(self) -> SpoolFile:
        self._writer.close()
        self._sink.close()
        os.replace(self.partial, self.path)
        return SpoolFile(self.seq, self.path)


class Spool:
    """One directory of spooled segments (see the module docs)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = directory.name
        self.owner = Lock(directory / OWNER_LOCK)
        self.writer = Lock(directory / WRITER_LOCK)
        self._next = 1
        self._open: dict[tuple[str, tuple[str, ...]], _Segment] = {}

    @classmethod
    def create(cls, root: Path) -> Spool:
        """A new directory under ``root``, owned (locked) by this process."""
        directory = root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        directory.mkdir(parents=True)
        spool = cls(directory)
        spool.owner.acquire()
        return spool

    def append(self, deployment: str, table: pa.Table) -> tuple[int, list[SpoolFile]]:
        """Append ``table`` (rows of ``deployment``) to its open segment (Arrow writes without
        holding the GIL); returns the bytes written and the segments closed to make room for a
        table of another schema."""
        key = (deployment, tuple(table.column_names))
        segment = self._open.get(key)
        closed = []
        if segment is not None and not segment.schema.equals(table.schema, check_metadata=True):
            closed.append(self._open.pop(key).close())
            segment = None
        if segment is None:
            segment = self._open[key] = _Segment(self.directory, self._next, deployment, table.schema)
            self._next += 1
        return segment.append(table), closed

    @property
    def open_bytes(self) -> int:
        """Bytes in the open segments."""
        return sum(segment.bytes for segment in self._open.values())

    def rotate(self, age: float = 0.0) -> list[SpoolFile]:
        """Close the open segments that are ``age`` seconds old or older (all by default)."""
        now = time.monotonic()
        due = [key for key, segment in self._open.items() if now - segment.opened >= age]
        return [self._open.pop(key).close() for key in due]

    def files(self, limit: int | None = None) -> list[SpoolFile]:
        """The closed segments, oldest first."""
        try:
            names = sorted(p.name for p in os.scandir(self.directory) if p.name.endswith(SUFFIX))
        except FileNotFoundError:
            return []
        return [SpoolFile(int(n.removesuffix(SUFFIX)), self.directory / n) for n in names[:limit]]

    def seal(self) -> None:
        """Turn the segments a dead server had open into closed ones (their whole batches are
        read; see :func:`read`). Only for a directory whose owner lock this process took."""
        for partial in self.directory.glob(f".*{PARTIAL}"):
            with contextlib.suppress(FileNotFoundError):
                partial.rename(self.directory / (partial.name[1:].removesuffix(PARTIAL) + SUFFIX))

    def close(self) -> None:
        """Close the open segments and release the directory: removed when it holds no segment
        (else a writer adopts it)."""
        self.rotate()
        if not self.files():
            shutil.rmtree(self.directory, ignore_errors=True)
        self.writer.release()
        self.owner.release()


def read(file: SpoolFile) -> tuple[str, pa.Table]:
    """The deployment and rows of a segment: its whole batches (a segment whose server died
    mid-write ends with a partial one, which is left out)."""
    import pyarrow as pa

    with pa.OSFile(str(file.path), "rb") as source:
        reader = pa.ipc.open_stream(source)
        batches = []
        try:
            for batch in reader:
                batches.append(batch)
        except OSError:  # a torn last batch
            pass
    deployment = (reader.schema.metadata or {}).get(DEPLOYMENT_KEY, b"").decode()
    return deployment, pa.Table.from_batches(batches, reader.schema.remove_metadata())


def has_orphans(root: Path, exclude: str | None = None) -> bool:
    """Whether a directory under ``root`` holds segments and its server is gone."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return False
    for entry in entries:
        if not entry.is_dir() or entry.name == exclude:
            continue
        directory = Path(entry.path)
        try:
            if not any(p.name.endswith((SUFFIX, PARTIAL)) for p in os.scandir(directory)):
                continue
        except FileNotFoundError:  # removed meanwhile
            continue
        owner = Lock(directory / OWNER_LOCK)
        if owner.acquire():
            owner.release()
            return True
    return False


def orphans(root: Path, exclude: str | None = None) -> list[Spool]:
    """The directories under ``root`` whose server is gone (their owner lock is free), with
    their owner lock taken so no server can come back to them; the caller still takes the
    writer lock before committing."""
    found = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.is_dir() or entry.name == exclude:
            continue
        spool = Spool(Path(entry.path))
        if spool.owner.acquire():
            spool.seal()
            found.append(spool)
    return found


def token(spool: str, seqs: list[int]) -> str:
    """The commit metadata naming the files ``seqs`` of directory ``spool``: ``<dir>:1-5,7``."""
    ranges = []
    ordered = sorted(seqs)
    start = prev = ordered[0]
    for seq in [*ordered[1:], None]:
        if seq is not None and seq == prev + 1:
            prev = seq
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if seq is not None:
            start = prev = seq
    return f"{spool}:{','.join(ranges)}"


def parse_token(value: str) -> tuple[str, set[int]]:
    """The directory and file numbers of a :func:`token`."""
    spool, _, ranges = value.rpartition(":")
    seqs: set[int] = set()
    for part in filter(None, ranges.split(",")):
        first, _, last = part.partition("-")
        seqs.update(range(int(first), int(last or first) + 1))
    return spool, seqs
