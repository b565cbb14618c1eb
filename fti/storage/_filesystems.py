"""Opening fsspec filesystems for object-store URLs, with the fti extra that installs each one.

fsspec finds the implementation of ``s3://`` (s3fs) only when it is installed and otherwise
raises a bare ``ImportError``; here that becomes a ``BackendError`` that names the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fti.errors import BackendError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

# URL scheme -> the fti extra that installs its fsspec implementation
EXTRAS = {"s3": "s3", "s3a": "s3"}


def url_to_fs(url: str, **options: Any) -> tuple[AbstractFileSystem, str]:
    """The filesystem serving ``url`` and the path within it.

    Raises:
        BackendError: the filesystem's implementation is not installed (names the extra).
    """
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
        extra = EXTRAS.get(scheme)
        hint = (
            f"install fti[{extra}] (pip install 'fti[{extra}]')"
            if extra
            else f"install the fsspec implementation of {scheme}://"
        )
        raise BackendError(f"cannot open {url!r}: {exc}; {hint}") from exc
    return fs, str(path)


def fsspec_options(object_store: dict[str, str]) -> dict[str, Any]:
    """s3fs options equivalent to delta-rs (object_store) S3 options, for the files delta-rs
    does not handle itself (deleting a table)."""
    options: dict[str, Any] = {}
    if "AWS_ENDPOINT_URL" in object_store:
        options["endpoint_url"] = object_store["AWS_ENDPOINT_URL"]
    if "AWS_REGION" in object_store:
        options["client_kwargs"] = {"region_name": object_store["AWS_REGION"]}
    if "AWS_ACCESS_KEY_ID" in object_store:
        options["key"] = object_store["AWS_ACCESS_KEY_ID"]
    if "AWS_SECRET_ACCESS_KEY" in object_store:
        options["secret"] = object_store["AWS_SECRET_ACCESS_KEY"]
    if "AWS_SESSION_TOKEN" in object_store:
        options["token"] = object_store["AWS_SESSION_TOKEN"]
    return options
