"""One cache entry: the files of one model version's conversions and its measured winner.

Every file of an entry is ``<stem><suffix>`` in the cache directory, where the stem is derived
from a key naming the version's artifact digests (:func:`version_key`), so a name and version
registered again after a delete never reuses a stale conversion. Files are written through a
temporary file and a rename, so concurrent first uses never read half a file. The directory
itself belongs to :class:`fti.inference.cache.ScorerCache`.

A file name proves nothing about its content: anyone who can write the directory can put
another version's conversion (or forged machine code) under this version's name. So an entry
made by the cache carries the model version's **binding** (its name, version and artifact
digests as the catalog records them), the **keys** that sign its manifest, and the digests of
the files a valid signed manifest vouches for (**trusted**); :meth:`CacheEntry.read_or_make`
reuses only those files and makes every other one afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHOICE = ".choice"
"""Suffix of the file naming the measured winner (a builder's name, or ``native``) for batch
scoring; serving's winner, timed at request sizes, is in ``.serving.choice``, and the first
verified conversion (``prefer="converted"``) in ``.converted.choice`` (:func:`choice_suffix`)."""
WORKLOADS = ("batch", "serving")
"""What a scorer is chosen for: large blocks of rows, or requests of one row or a few."""


def purpose(prefer: str, workload: str) -> str:
    """Which remembered choice a scorer preference reads and writes: the measured winner of the
    workload (``fastest``), or the first verified conversion, whatever the workload."""
    return "converted" if prefer == "converted" else workload


def choice_suffix(purpose: str) -> str:
    """The suffix of the file naming the winner for ``purpose`` (see :data:`CHOICE`)."""
    return CHOICE if purpose == "batch" else f".{purpose}{CHOICE}"


def version_key(version: Any) -> str:
    """The cache key of a registered model version's conversions.

    The artifacts' SHA-256 digests name the exact model bytes, so a name and version registered
    again after a delete never reuses a stale conversion.
    """
    digests = sorted((getattr(version, "artifacts", None) or {}).items())
    return stem(f"{version.name}-v{version.version}-{digests}")


def stem(text: str) -> str:
    """The file-name stem of a cache key (short, file-system safe)."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so concurrent first uses never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def binding(version: Any) -> dict[str, Any]:
    """What a cache entry of ``version`` is bound to: its name, version and artifact digests as
    recorded in the catalog (a manifest records it; loading compares it to the catalog's)."""
    artifacts = getattr(version, "artifacts", None) or {}
    return {
        "name": version.name,
        "version": int(version.version),
        "artifacts": dict(sorted(artifacts.items())),
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """The cached files of one key: ``directory / (stem + suffix)`` (see the module docstring
    for ``binding``, ``keys`` and ``trusted``)."""

    directory: Path
    stem: str
    binding: Mapping[str, Any] | None = None
    """The model version the entry belongs to (:func:`binding`); None: nothing is trusted."""
    keys: tuple[bytes, ...] = field(default=(), repr=False)
    """Manifest signing keys: the first signs, any verifies; none: nothing is trusted."""
    trusted: Mapping[str, str] = field(default_factory=dict)
    """``{suffix: sha256}`` of the cached files a valid signed manifest of this entry records."""

    @classmethod
    def of(cls, directory: str | Path, key: str) -> CacheEntry:
        """The entry of ``key`` (as given to ``get_scorer(cache_key=...)``) in ``directory``."""
        return cls(Path(directory), stem(key))

    def path(self, suffix: str) -> Path:
        return self.directory / f"{self.stem}{suffix}"

    def read_or_make(self, suffix: str, make: Callable[[], bytes]) -> bytes:
        """The cached bytes of ``suffix``, made (and cached) when missing.

        In an entry of the scorer cache (bound to a model version) cached bytes are used only if
        a signed manifest vouches for them, else they are made afresh: a file nobody vouches for
        is never used, whatever its name. An unbound entry (``get_scorer(cache_dir=...)``, a
        directory the caller manages) reuses what it finds; every candidate is still verified
        against the native model, and compiled machine code is never reused from one.
        """
        path = self.path(suffix)
        if path.exists():
            data = path.read_bytes()
            digest = self.trusted.get(suffix)
            if self.binding is None or (digest is not None and sha256(data) == digest):
                return data
        data = make()
        write_atomic(path, data)
        return data

    def write(self, suffix: str, data: bytes) -> None:
        write_atomic(self.path(suffix), data)

    def choice(self, purpose: str = "batch") -> str | None:
        """The remembered winner for ``purpose`` (:func:`purpose`: a builder's name or
        ``native``), if one was chosen."""
        record = self.choice_record(purpose)
        return None if record is None else str(record.get("winner"))

    def choice_record(self, purpose: str = "batch") -> dict[str, Any] | None:
        """What the choice for ``purpose`` was based on: ``{"winner": ..., "timings": ...}``
        (see :func:`fti.inference.selection.get_scorer`); a file of older releases holds the
        winner's name only."""
        path = self.path(choice_suffix(purpose))
        if not path.exists():
            return None
        text = path.read_text().strip()
        if not text.startswith("{"):
            return {"winner": text}
        try:
            record = json.loads(text)
        except ValueError:
            return None
        return record if isinstance(record, dict) and isinstance(record.get("winner"), str) else None

    def remember_choice(
        self, winner: str, purpose: str = "batch", timings: Mapping[str, Any] | None = None
    ) -> None:
        """Record ``purpose``'s winner and the ``timings`` it was chosen on."""
        record: dict[str, Any] = {"winner": winner, "purpose": purpose}
        if timings is not None:
            record["timings"] = dict(timings)
        self.write(choice_suffix(purpose), json.dumps(record, indent=1).encode())
