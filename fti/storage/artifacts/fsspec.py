"""Artifact store over fsspec: a local directory by default, ``s3://`` and friends in production."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fti.errors import FtiError, NotFoundError, ValidationError


def _check_key(key: str) -> str:
    parts = key.strip("/").split("/")
    if not key or any(p in ("", ".", "..") for p in parts):
        raise ValidationError(f"invalid artifact key {key!r}: use a relative path without '..'")
    return "/".join(parts)


class FsspecArtifactStore:
    """Artifacts under a root URL. Local roots get atomic writes (temp file + rename)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        from fti.storage._filesystems import url_to_fs

        self.url = url.rstrip("/")
        self._endpoint = (storage_options or {}).get("endpoint_url")
        self._fs, self._root = url_to_fs(self.url, **(storage_options or {}))
        self._local = self._fs.protocol in ("file", ("file", "local"), "local") or "://" not in url
        if self._local:
            self._root = os.path.abspath(self._root)
            Path(self._root).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> str:
        return f"{self._root}/{_check_key(key)}"

    @contextlib.contextmanager
    def _remote(self, doing: str, missing_ok: bool = False) -> Iterator[None]:
        """Object-store failures as a BackendError naming the setting to fix (a missing object
        stays ``FileNotFoundError`` where ``missing_ok``: the caller reports it)."""
        try:
            yield
        except FtiError:
            raise
        except Exception as exc:
            if self._local or (missing_ok and isinstance(exc, FileNotFoundError)):
                raise
            from fti.storage._s3 import s3_error

            raise s3_error(exc, doing, self.url, "FTI_ARTIFACTS_URL", self._endpoint) from exc

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        if self._local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        else:
            with self._remote(f"writing artifact {key!r}"):
                self._fs.pipe_file(path, data)
        return hashlib.sha256(data).hexdigest()

    def put_file(self, key: str, source: Path) -> str:
        digest = hashlib.sha256()
        with open(source, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        path = self._path(key)
        if self._local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=".tmp-")
            os.close(fd)
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        else:
            with self._remote(f"writing artifact {key!r}"):
                self._fs.put_file(str(source), path)
        return digest.hexdigest()

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with self._remote(f"reading artifact {key!r}", missing_ok=True):
                return bytes(self._fs.cat_file(path))
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact {key!r} does not exist in {self.url}") from exc

    def get_file(self, key: str, dest: Path) -> Path:
        path = self._path(key)
        with self._remote(f"reading artifact {key!r}"):
            if not self._fs.exists(path):
                raise NotFoundError(f"artifact {key!r} does not exist in {self.url}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._fs.get_file(path, str(dest))
        return dest

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix.strip("/") else self._root
        with self._remote(f"listing artifacts under {prefix!r}"):
            if not self._fs.exists(base):
                return []
            if self._fs.isfile(base):
                return [_check_key(prefix)]
            found = self._fs.find(base)
        root = self._root.rstrip("/") + "/"
        return sorted(p[len(root) :] if p.startswith(root) else p for p in found)

    def delete(self, prefix: str) -> None:
        path = self._path(prefix)
        with self._remote(f"deleting artifacts under {prefix!r}"):
            if self._fs.exists(path):
                self._fs.rm(path, recursive=True)
