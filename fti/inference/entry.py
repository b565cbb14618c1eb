"""One cache entry: the files of one model version's conversions and its measured winner.

Every file of an entry is ``<stem><suffix>`` in the cache directory, where the stem is derived
from a key naming the version's artifact digests (:func:`version_key`), so a name and version
registered again after a delete never reuses a stale conversion. Files are written through a
temporary file and a rename, so concurrent first uses never read half a file. The directory
itself belongs to :class:`fti.inference.cache.ScorerCache`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHOICE = ".choice"
"""Suffix of the file naming the measured winner (a builder's name, or ``native``)."""


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


@dataclass(frozen=True)
class CacheEntry:
    """The cached files of one key: ``directory / (stem + suffix)``."""

    directory: Path
    stem: str

    @classmethod
    def of(cls, directory: str | Path, key: str) -> CacheEntry:
        """The entry of ``key`` (as given to ``get_scorer(cache_key=...)``) in ``directory``."""
        return cls(Path(directory), stem(key))

    def path(self, suffix: str) -> Path:
        return self.directory / f"{self.stem}{suffix}"

    def read_or_make(self, suffix: str, make: Callable[[], bytes]) -> bytes:
        """The cached bytes of ``suffix``, made (and cached) on first use."""
        path = self.path(suffix)
        if path.exists():
            return path.read_bytes()
        data = make()
        write_atomic(path, data)
        return data

    def write(self, suffix: str, data: bytes) -> None:
        write_atomic(self.path(suffix), data)

    def choice(self) -> str | None:
        """The remembered winner (a builder's name or ``native``), if one was measured."""
        path = self.path(CHOICE)
        return path.read_text().strip() if path.exists() else None

    def remember_choice(self, winner: str) -> None:
        self.write(CHOICE, winner.encode())
