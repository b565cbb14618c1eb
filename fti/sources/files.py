"""Files as data sources: Parquet, CSV or JSON on local disk or any fsspec filesystem.

``Files("s3://raw/clicks/*.parquet", format="parquet")`` reads every file the glob matches (or
every file under a directory) as one Arrow dataset: ``columns=`` and ``filter=`` are pushed down
(Parquet row groups whose statistics cannot match are skipped). ``s3://`` URLs use s3fs with the
S3 settings (``FTI_S3_ENDPOINT_URL``, ``FTI_S3_REGION``, ``FTI_S3_ALLOW_HTTP``); credentials come
from the AWS_* variables or from the secret, a JSON object such as
``{"aws_access_key_id": "...", "aws_secret_access_key": "..."}`` (or s3fs's ``key``/``secret``/
``token``). For other filesystems the secret's fields are passed as fsspec storage options.

JSON means newline-delimited JSON. CSV and JSON types are inferred from the first file; pass
``schema=`` to fix them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, NotFoundError, ValidationError
from fti.secrets.masking import json_fields
from fti.sources.base import Source, collect, reject_unknown

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fti.project import Project
    from fti.secrets.masking import Masker
    from fti.sources.incremental import IncrementalRead
    from fti.sources.watermark import Watermark

FORMATS = ("parquet", "csv", "json")
CHUNK_ROWS = 65_536
_S3_FIELDS = {
    "key": "key",
    "aws_access_key_id": "key",
    "secret": "secret",
    "aws_secret_access_key": "secret",
    "token": "token",
    "aws_session_token": "token",
    "endpoint_url": "endpoint_url",
    "region": "region",
}
_GLOB = frozenset("*?[")


class Files(Source):
    """Files matched by a path, glob or directory, read as one dataset.

    Args:
        path: A local path or fsspec URL, with ``*``/``?``/``[...]`` globs, or a directory; or a list.
        format: ``"parquet"``, ``"csv"`` or ``"json"`` (newline-delimited).
        secret: Name of a secret with storage credentials (a JSON object, see the module doc).
        project: The project whose secrets, settings and cursors are used (default: the run's).
        options: Extra fsspec storage options (applied last).
        schema: The Arrow schema to read CSV/JSON with (default: inferred from the first file).
        chunk_rows: Rows per batch of :meth:`batches` and incremental reads.
    """

    kind = "files"

    def __init__(
        self,
        path: str | list[str],
        *,
        format: str = "parquet",
        secret: str | None = None,
        project: Project | None = None,
        options: dict[str, Any] | None = None,
        schema: pa.Schema | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        super().__init__(secret=secret, project=project)
        paths = [path] if isinstance(path, str) else path
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise ValidationError(f"path must be a path, URL or glob (or a list of them), got {path!r}")
        if format not in FORMATS:
            raise ValidationError(f"unknown file format {format!r}: use one of {', '.join(FORMATS)}")
        protocols = {_protocol(p) for p in paths}
        if len(protocols) > 1:
            raise ValidationError(f"all paths must be on one filesystem, got {', '.join(sorted(protocols))}")
        if options is not None and not isinstance(options, dict):
            raise ValidationError(f"options must be a dict of fsspec storage options, got {options!r}")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ValidationError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
        self.paths = paths
        self.format = format
        self.protocol = protocols.pop()
        self._options = dict(options or {})
        self._schema = schema
        self.chunk_rows = chunk_rows

    def describe(self) -> str:
        return f"files:{self.format}:{','.join(self.paths)}"

    def to_dict(self) -> dict[str, Any]:
        """What recreates this source (``fti.sources.base.from_dict``), without credentials.

        Raises:
            ValidationError: an option looks like a credential (it belongs in a secret).
        """
        import base64

        leaking = [
            k for k in self._options if any(w in k.lower() for w in ("key", "secret", "token", "password"))
        ]
        if leaking:
            raise ValidationError(
                f"{self!r}: option(s) {leaking} look like credentials, which would be stored in the clear; "
                "put them in a secret (a JSON object, see fti secrets) and pass secret='NAME'"
            )
        schema = (
            None if self._schema is None else base64.b64encode(self._schema.serialize().to_pybytes()).decode()
        )
        return {
            "kind": self.kind,
            "paths": list(self.paths),
            "format": self.format,
            "secret": self.secret,
            "options": dict(self._options),
            "schema": schema,
            "chunk_rows": self.chunk_rows,
        }

    # --- reading ------------------------------------------------------------------------------
    def read(self, columns: list[str] | None = None, filter: Any = None) -> pa.Table:
        """Read the files into one Arrow table.

        Args:
            columns: Columns to read (default: all).
            filter: A ``pyarrow.compute`` expression (``pc.field("amount") > 10``) or a list of
                ``(column, op, value)`` tuples as in ``pyarrow.parquet`` (``[("amount", ">", 10)]``).
        """
        return collect(self._scan(columns, filter, None, None, chunk_rows=None))

    def batches(
        self, columns: list[str] | None = None, filter: Any = None, *, chunk_rows: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows as record batches of at most ``chunk_rows`` rows."""
        return self._scan(columns, filter, None, None, chunk_rows=chunk_rows or self.chunk_rows)

    def read_incremental(
        self,
        *,
        cursor: str,
        name: str | None = None,
        columns: list[str] | None = None,
        filter: Any = None,
        until: Any = None,
    ) -> IncrementalRead:
        """The rows past the stored watermark of column ``cursor`` (see :meth:`SQL.read_incremental`)."""
        if columns is not None and cursor not in columns:
            raise ValidationError(f"columns must include the cursor column {cursor!r}")

        def fetch(start: Watermark | None) -> Iterator[pa.RecordBatch]:
            return self._scan(columns, filter, (cursor, start), until, chunk_rows=self.chunk_rows)

        identity = f"{columns}\0{filter}"
        return self._incremental(fetch, column=cursor, name=name, identity=identity)

    # --- scanning -----------------------------------------------------------------------------
    def _scan(
        self,
        columns: list[str] | None,
        filter: Any,
        incremental: tuple[str, Watermark | None] | None,
        until: Any,
        *,
        chunk_rows: int | None,
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        if columns is not None and (
            not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
        ):
            raise ValidationError(f"columns must be a list of column names, got {columns!r}")
        expression = _expression(filter)
        options, masker = self._storage_options()
        dataset = self._dataset(options, masker)
        unknown = [c for c in columns or [] if c not in dataset.schema.names]
        if unknown:
            raise ValidationError(
                f"{self!r}: no column {', '.join(map(repr, unknown))} in the files "
                f"(columns: {', '.join(dataset.schema.names)})"
            )
        if incremental is not None:
            expression = _and(expression, _incremental_filter(dataset.schema, *incremental, until))
        try:
            scanner = dataset.scanner(
                columns=columns, filter=expression, **({"batch_size": chunk_rows} if chunk_rows else {})
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise ValidationError(
                f"{self!r}: {str(exc).splitlines()[0].split(' in ')[0]}; the files have columns "
                f"{', '.join(dataset.schema.names)}"
            ) from None
        return _batches(scanner, masker, self)

    def _storage_options(self) -> tuple[dict[str, Any], Masker]:
        secret = self._secret_value()
        options: dict[str, Any] = {}
        if self.protocol in ("s3", "s3a"):
            options = self._settings().s3_options()
        if secret is not None:
            fields = json_fields(secret)
            if fields is None:
                raise ValidationError(
                    f"secret {self.secret!r} of a files source must be a JSON object of storage options, "
                    'e.g. {"aws_access_key_id": "...", "aws_secret_access_key": "..."}'
                )
            if self.protocol in ("s3", "s3a"):
                reject_unknown(f"secret {self.secret!r}", fields, tuple(_S3_FIELDS))
                for key, value in fields.items():
                    target = _S3_FIELDS[key]
                    if target == "region":
                        options.setdefault("client_kwargs", {})["region_name"] = value
                    else:
                        options[target] = value
            else:
                options.update(fields)
        options.update(self._options)
        return options, self._masker(secret)

    def _settings(self) -> Any:
        from fti.sources import base

        project = self._project or base._run_project
        if project is not None:
            return project.settings
        from fti.config import load_settings

        return load_settings()

    def _dataset(self, options: dict[str, Any], masker: Masker) -> ds.Dataset:
        import fsspec
        import pyarrow as pa
        import pyarrow.dataset as ds

        try:
            fs, _ = fsspec.core.url_to_fs(self.paths[0], **options)
            fs.invalidate_cache()  # fsspec shares instances and their listings: see new files
            found: list[str] = []
            for path in self.paths:
                _, stripped = fsspec.core.url_to_fs(path, **options)
                if _GLOB & set(stripped):
                    found.extend(sorted(fs.glob(stripped)))
                elif fs.isdir(stripped):
                    found.extend(sorted(p for p in fs.find(stripped) if not _hidden(p, stripped)))
                elif fs.exists(stripped):
                    found.append(stripped)
        except ImportError as exc:
            extra = "s3" if self.protocol in ("s3", "s3a") else None
            hint = (
                f"install fti[{extra}] (pip install 'fti[{extra}]')" if extra else "install its fsspec driver"
            )
            raise BackendError(f"{self!r}: cannot open {self.protocol}:// paths: {hint} ({exc})") from None
        except Exception as exc:  # fsspec backends raise their own types (botocore, aiohttp...)
            raise BackendError(
                f"{self!r}: cannot list the files: {masker.text(str(exc)) or type(exc).__name__}"
            ) from None
        if not found:
            raise NotFoundError(f"{self!r}: no file matches {', '.join(self.paths)}")
        filesystem: Any = None if fs.protocol in ("file", ("file", "local"), "local") else fs
        fmt = {"parquet": ds.ParquetFileFormat, "csv": ds.CsvFileFormat, "json": ds.JsonFileFormat}[
            self.format
        ]()
        try:
            return ds.dataset(found, format=fmt, filesystem=filesystem, schema=self._schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValidationError(
                f"{self!r}: the files cannot be read as {self.format}: {masker.text(str(exc))}"
            ) from None
        except OSError as exc:
            raise BackendError(f"{self!r}: cannot read the files: {masker.text(str(exc))}") from None


def _batches(scanner: ds.Scanner, masker: Masker, source: Files) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    yielded = False
    try:
        for batch in scanner.to_batches():
            yielded = True
            yield batch
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError(f"{source!r}: the files cannot be read: {masker.text(str(exc))}") from None
    except OSError as exc:
        raise BackendError(f"{source!r}: reading failed: {masker.text(str(exc))}") from None
    if not yielded:
        yield pa.RecordBatch.from_pylist([], schema=scanner.projected_schema)


def _protocol(path: str) -> str:
    from fsspec.core import split_protocol

    protocol, _ = split_protocol(path)
    return protocol or "file"


def _hidden(path: str, root: str) -> bool:
    """Files Arrow's own directory discovery skips: names starting with ``.`` or ``_``."""
    relative = path[len(root) :].strip("/")
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def _expression(filter: Any) -> ds.Expression | None:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if filter is None or isinstance(filter, ds.Expression):
        return filter
    if isinstance(filter, list):
        try:
            return pq.filters_to_expression(filter)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"invalid filter {filter!r}: {exc}") from None
    raise ValidationError(
        f"filter must be a pyarrow expression (pc.field('x') > 1) or a list of (column, op, value) tuples, "
        f"got {type(filter).__name__}"
    )


def _and(left: ds.Expression | None, right: ds.Expression) -> ds.Expression:
    return right if left is None else left & right


def _incremental_filter(schema: pa.Schema, column: str, start: Watermark | None, until: Any) -> ds.Expression:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fti.sources.watermark import watermark_kind

    if column not in schema.names:
        raise ValidationError(f"the files have no column {column!r} (columns: {', '.join(schema.names)})")
    kind = schema.field(column).type
    watermark_kind(kind, column)
    expression = ds.field(column).is_valid()
    if start is not None:
        expression = expression & (ds.field(column) >= start.to_scalar().cast(kind))
    if until is not None:
        try:
            bound = pa.scalar(until).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise ValidationError(
                f"until={until!r} cannot be compared with {column!r} ({kind}): {exc}"
            ) from None
        expression = expression & (ds.field(column) < bound)
    return expression
