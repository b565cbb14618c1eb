"""Moving model files between a local directory and the artifact store, with SHA-256 checks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fti.errors import IntegrityError, NotFoundError

if TYPE_CHECKING:
    from fti.storage.artifacts.base import ArtifactStore


def digest_directory(directory: Path) -> dict[str, str]:
    """``{relative/path: sha256}`` of every file under ``directory``."""
    found: dict[str, str] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        found[path.relative_to(directory).as_posix()] = digest.hexdigest()
    return found


def upload(store: ArtifactStore, prefix: str, directory: Path, digests: dict[str, str]) -> None:
    """Copy every file of ``directory`` to ``prefix/...``; the stored digest must match."""
    for relative, expected in digests.items():
        stored = store.put_file(f"{prefix}/{relative}", directory / relative)
        if stored != expected:
            raise IntegrityError(
                f"artifact {prefix}/{relative} changed while it was being uploaded (sha256 {stored}, "
                f"expected {expected}); register the model again"
            )


def fetch(store: ArtifactStore, prefix: str, digests: dict[str, str], dest: Path) -> Path:
    """Copy the files of a model version into ``dest``, verifying each file's SHA-256 first.

    Raises:
        IntegrityError: a file is missing or its digest differs from the one recorded at
            registration (tampered or corrupted); nothing of that file is written to ``dest``.
    """
    for relative, data in _verified(store, prefix, digests):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def verify(store: ArtifactStore, prefix: str, digests: dict[str, str]) -> None:
    """Check every file of a model version against its recorded SHA-256, copying nothing.

    Raises:
        IntegrityError: as :func:`fetch`.
    """
    for _ in _verified(store, prefix, digests):
        pass


def _verified(store: ArtifactStore, prefix: str, digests: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    """Each file of a model version, read once and checked against its recorded digest."""
    for relative, expected in sorted(digests.items()):
        key = f"{prefix}/{relative}"
        try:
            data = store.get_bytes(key)
        except NotFoundError as exc:
            raise IntegrityError(
                f"artifact {key!r} is missing from {store.url}; the model version is corrupted "
                "(re-register it or delete it with force=True)"
            ) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise IntegrityError(
                f"artifact {key!r} does not match its recorded digest (sha256 {actual}, registered "
                f"{expected}): the file was modified after registration; refusing to load it",
                details={"artifact": key, "expected_sha256": expected, "actual_sha256": actual},
            )
        yield relative, data
