"""What every data source shares: its secret, its project, incremental reads and cursor names.

A source is a description of where raw data lives (a database URL, a set of files) plus the name
of the secret holding its credentials. The secret and the cursors of incremental reads live in a
project's catalog: pass ``project=``, or, inside a pipeline run, leave it out and the run's
project is used (the runner binds it with :func:`bind_run_project`).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, ClassVar

from fti._names import check_secret_name
from fti.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from fti.project import Project
    from fti.secrets.masking import Masker
    from fti.sources.incremental import Fetch, IncrementalRead

_CURSOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,254}$")
_run_project: Project | None = None


def bind_run_project(project: Project) -> None:
    """Make ``project`` the default of sources created without one (the pipeline runner calls this)."""
    global _run_project
    _run_project = project


def check_cursor_name(name: object) -> str:
    if not isinstance(name, str) or not _CURSOR_NAME.match(name):
        raise ValidationError(
            f"invalid cursor name {name!r}: use 1-255 letters, digits, '_', '.', ':', '/' or '-' "
            "(for example 'orders.updated_at')"
        )
    return name


class Source:
    """Base class of :class:`~fti.sources.SQL` and :class:`~fti.sources.Files`."""

    kind: ClassVar[str]

    def __init__(self, *, secret: str | None, project: Project | None) -> None:
        if secret is not None:
            check_secret_name(secret)
        self.secret = secret
        """Name of the secret with this source's credentials (None: none needed)."""
        self._project = project

    def describe(self) -> str:
        """What this source reads, without credentials (stored with its cursors, shown in errors)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        secret = "" if self.secret is None else f", secret={self.secret!r}"
        return f"{type(self).__name__}({self.describe()!r}{secret})"

    def _project_for(self, purpose: str) -> Project:
        project = self._project or _run_project
        if project is None:
            raise ValidationError(
                f"{self!r} needs a project for {purpose}: pass project=... when you create the source "
                "(inside a pipeline run the run's project is used)"
            )
        return project

    def _secret_value(self) -> str | None:
        if self.secret is None:
            return None
        return self._project_for(f"its secret {self.secret!r}").secrets.get(self.secret)

    def _masker(self, *values: str | None) -> Masker:
        from fti.secrets.masking import Masker

        return Masker(v for v in values if v)

    def _incremental(self, fetch: Fetch, *, column: str, name: str | None, identity: str) -> IncrementalRead:
        from fti.sources.incremental import IncrementalRead

        if not isinstance(column, str) or not column:
            raise ValidationError(f"cursor must be the name of the watermark column, got {column!r}")
        if name is None:
            digest = hashlib.sha256(f"{self.describe()}\0{identity}\0{column}".encode()).hexdigest()[:16]
            name = f"{self.kind}-{digest}"
        check_cursor_name(name)
        project = self._project_for("the cursor of an incremental read")
        return IncrementalRead(project, name, column, self.describe(), fetch)


def reject_unknown(kind: str, given: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """ValidationError naming the unknown keys (never their values) of a secret or option dict."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValidationError(f"{kind} has unknown field(s) {', '.join(unknown)}: use {', '.join(allowed)}")


def collect(batches: Iterator[pa.RecordBatch]) -> pa.Table:
    """One table of a source's batches (it yields at least one, maybe empty, for the schema).

    Batches whose schemas differ (a column NULL in the first chunk of a SQLAlchemy read) are
    combined with Arrow's permissive promotion.
    """
    import pyarrow as pa

    pieces = list(batches)
    schema = pieces[0].schema
    if all(b.schema == schema for b in pieces):
        return pa.Table.from_batches([b for b in pieces if b.num_rows], schema=schema)
    return pa.concat_tables([pa.Table.from_batches([b]) for b in pieces], promote_options="permissive")


def from_dict(data: dict[str, Any], project: Project | None) -> Source:
    """The source a ``to_dict()`` described (external feature groups store their source so)."""
    kind = data.get("kind")
    if kind == "sql":
        from fti.sources.sql import SQL

        return SQL(
            data["url"],
            secret=data["secret"],
            project=project,
            driver=data["driver"],
            chunk_rows=data["chunk_rows"],
        )
    if kind == "files":
        import base64

        import pyarrow as pa

        from fti.sources.files import Files

        schema = (
            None
            if data["schema"] is None
            else pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["schema"])))
        )
        return Files(
            data["paths"],
            format=data["format"],
            secret=data["secret"],
            project=project,
            options=data["options"],
            schema=schema,
            chunk_rows=data["chunk_rows"],
        )
    raise ValidationError(f"unknown source kind {kind!r}: expected 'sql' or 'files'")
