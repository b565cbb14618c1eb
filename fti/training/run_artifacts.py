"""Files a training run logs (MLflow's ``log_artifact`` / ``log_figure``): reports, plots, data.

Each file goes to ``runs/<project>/<run id>/<name>`` in the project's artifact store with its
SHA-256 recorded in the catalog, and is checked against it on every read, like a model
version's files. Logging a name again replaces the file. A figure is anything with matplotlib's
``savefig`` (a ``Figure``), saved in the format of the name's extension.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.registry._artifacts import check_artifact_name, fetch, read
from fti.training import records

if TYPE_CHECKING:
    from fti.project import Project

FIGURE_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")


def _prefix(project: Project, run_id: int) -> str:
    return f"runs/{project.name}/{run_id}"


def log_file(project: Project, run_id: int, path: str | os.PathLike[str], name: str | None) -> list[str]:
    """Store the file ``path`` as ``name`` (default: its file name); a directory is stored file by
    file under ``name/`` (default: the directory's name). Returns the names logged."""
    source = Path(path) if isinstance(path, str | os.PathLike) else None
    if source is None or not source.exists():
        raise ValidationError(f"log_artifact needs the path of a file or directory, got {path!r}")
    base = name if name is not None else source.name
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
        if not files:
            raise ValidationError(f"directory {str(source)!r} has no files to log")
        pairs = [(f"{base}/{p.relative_to(source).as_posix()}", p) for p in files]
    else:
        pairs = [(base, source)]
    for artifact, _ in pairs:
        check_artifact_name(artifact)
    store = project.backends.artifacts
    for artifact, file in pairs:
        key = f"{_prefix(project, run_id)}/{artifact}"
        digest = store.put_file(key, file)
        entry = records.RunArtifact(artifact, key, digest, file.stat().st_size, datetime.now(UTC))
        records.put_artifact(project.backends.catalog, run_id, entry)
    return [artifact for artifact, _ in pairs]


def log_figure(project: Project, run_id: int, figure: Any, name: str) -> str:
    """Save a matplotlib figure as ``name`` (``roc.png``: the extension picks the format)."""
    check_artifact_name(name)
    fmt = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if fmt not in FIGURE_FORMATS:
        raise ValidationError(f"figure name {name!r} needs an extension among {', '.join(FIGURE_FORMATS)}")
    if not callable(getattr(figure, "savefig", None)):
        raise ValidationError(
            f"log_figure takes a matplotlib Figure (something with savefig), got {type(figure).__name__}"
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    data = buffer.getvalue()
    key = f"{_prefix(project, run_id)}/{name}"
    digest = project.backends.artifacts.put_bytes(key, data)
    entry = records.RunArtifact(name, key, digest, len(data), datetime.now(UTC))
    records.put_artifact(project.backends.catalog, run_id, entry)
    return name


def digests(project: Project, run_id: int) -> dict[str, str]:
    """``{name: sha256}`` of the run's files."""
    with project.backends.catalog.connect() as conn:
        return {n: a.sha256 for n, a in records.artifacts_of(conn, run_id).items()}


def read_file(project: Project, run_id: int, name: str) -> bytes:
    """One logged file's bytes, checked against its SHA-256."""
    return read(
        project.backends.artifacts, _prefix(project, run_id), digests(project, run_id), name, f"run {run_id}"
    )


def download(project: Project, run_id: int, dest: str | os.PathLike[str] | None) -> Path:
    """Every logged file into ``dest`` (default: a new temporary directory), digests checked."""
    target = Path(tempfile.mkdtemp(prefix=f"fti-run-{run_id}-")) if dest is None else Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    return fetch(project.backends.artifacts, _prefix(project, run_id), digests(project, run_id), target)
