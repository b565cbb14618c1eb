"""The artifact-store Protocol: files under relative keys, with SHA-256 digests."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ArtifactStore(Protocol):
    """Files addressed by ``/``-separated relative keys (``models/fraud/3/model.skops``).

    Invariants: ``put_*`` returns the SHA-256 hex digest of what was stored; a key is written
    atomically (readers never see a partial file on the local backend).
    """

    url: str

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` at ``key``; returns its SHA-256."""
        ...

    def put_file(self, key: str, source: Path) -> str:
        """Copy a local file to ``key``; returns its SHA-256."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The stored bytes; ``NotFoundError`` for a missing key."""
        ...

    def get_file(self, key: str, dest: Path) -> Path:
        """Copy ``key`` to the local path ``dest`` and return it."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (recursively), sorted."""
        ...

    def delete(self, prefix: str) -> None:
        """Delete a key or everything under a prefix. Missing keys are a no-op."""
        ...
