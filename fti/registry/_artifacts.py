"""Moving model files between a local directory and the artifact store, with SHA-256 checks.

A version's files are the flavor's model files plus any extra files given at registration
(``mr.register(..., artifacts={"confusion_matrix.png": path})``); every one is digested before
upload and verified on every read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, FtiError, IntegrityError, NotFoundError, ValidationError

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


_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def check_artifact_name(name: object) -> str:
    """An extra artifact's name: a relative path of ``/``-separated segments of letters, digits,
    ``_``, ``-`` and ``.`` (no ``..``, no leading dot), at most 255 characters."""
    ok = (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and all(_SEGMENT.match(part) and ".." not in part for part in name.split("/"))
    )
    if not ok:
        raise ValidationError(
            f"invalid artifact name {name!r}: use a relative path such as 'confusion_matrix.png' or "
            "'plots/roc.png' (letters, digits, '_', '-', '.'; no '..')"
        )
    return str(name)


def add_files(directory: Path, files: Mapping[str, Any] | None) -> None:
    """Copy extra files (``{name: local path}``) next to the model's files in ``directory``.

    Raises:
        ValidationError: a bad name, a path that is not a readable file, or a name the model's
            own files already use.
    """
    if files is None:
        return
    if not isinstance(files, Mapping):
        raise ValidationError(
            f"artifacts must map names to file paths, e.g. {{'confusion_matrix.png': 'cm.png'}}, "
            f"got {type(files).__name__}"
        )
    taken = {p.relative_to(directory).as_posix() for p in directory.rglob("*")}
    for name, source in files.items():
        check_artifact_name(name)
        if name == "fti_model.json":  # = fti.registry.manifest.MANIFEST, written by mv.download()
            raise ValidationError(
                "artifact name 'fti_model.json' is the manifest mv.download() writes; pick another"
            )
        if not isinstance(source, str | os.PathLike) or not Path(source).is_file():
            raise ValidationError(f"artifact {name!r}: {source!r} is not a file (pass the path of one)")
        if name in taken or any(name.startswith(t + "/") for t in taken):
            raise ValidationError(
                f"artifact name {name!r} is used by the model's own files ({sorted(taken)}); pick another name"
            )
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        taken.update({name, *(p.as_posix() for p in Path(name).parents if str(p) != ".")})


_SAME_FORMAT = {".pt": (".pt", ".pth", ".torchscript")}  # TorchScript's usual suffixes


def name_model_file(directory: Path, flavor_options: dict[str, Any], name: Any) -> dict[str, Any]:
    """Rename the flavor's model file to ``name`` (hsml keeps the user's ``iris_model.skops``).

    Raises:
        ValidationError: a bad name, another suffix than the flavor's format, or a flavor
            without a single model file.
    """
    if name is None:
        return flavor_options
    current = flavor_options.get("file")
    if not isinstance(current, str):
        raise ValidationError(f"this model flavor saves no single model file to name {name!r}")
    check_artifact_name(name)
    suffix = Path(current).suffix
    if "/" in name or Path(name).suffix.lower() not in _SAME_FORMAT.get(suffix, (suffix,)):
        raise ValidationError(
            f"model file name {name!r} must be a plain file name ending in {suffix!r} "
            "(the format the model is stored in)"
        )
    (directory / current).rename(directory / name)
    return {**flavor_options, "file": name}


def upload(store: ArtifactStore, prefix: str, directory: Path, digests: dict[str, str], what: str) -> None:
    """Copy every file of ``directory`` to ``prefix/...``; the stored digest must match. On any
    failure the files already copied are removed (as far as the store lets us).

    Raises:
        BackendError: the store failed (``what``, e.g. ``"model 'fraud'"``, names the owner).
        IntegrityError: a file changed while it was uploaded.
    """
    try:
        for relative, expected in digests.items():
            stored = store.put_file(f"{prefix}/{relative}", directory / relative)
            if stored != expected:
                raise IntegrityError(
                    f"artifact {prefix}/{relative} changed while it was being uploaded (sha256 {stored}, "
                    f"expected {expected}); register the model again"
                )
    except BaseException as exc:
        with contextlib.suppress(FtiError, OSError):  # the store may be down: report the first failure
            store.delete(prefix)
        if isinstance(exc, OSError):
            raise BackendError(f"writing the artifacts of {what} to {store.url} failed: {exc}") from exc
        raise


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


def read(
    store: ArtifactStore, prefix: str, digests: dict[str, str], name: str, owner: str = "this model version"
) -> bytes:
    """One file of a model version, after checking its SHA-256.

    Raises:
        NotFoundError: the version has no file ``name`` (the message lists its files).
        IntegrityError: as :func:`fetch`.
    """
    if name not in digests:
        raise NotFoundError(f"no artifact {name!r} in {owner} (its artifacts: {sorted(digests)})")
    return _read_checked(store, prefix, name, digests[name])


def _verified(store: ArtifactStore, prefix: str, digests: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    """Each file of a model version, read once and checked against its recorded digest."""
    for relative, expected in sorted(digests.items()):
        yield relative, _read_checked(store, prefix, relative, expected)


def _read_checked(store: ArtifactStore, prefix: str, relative: str, expected: str) -> bytes:
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
    return data
