"""S3 failures as :class:`~fti.errors.BackendError` messages that name the setting to fix.

delta-rs (Rust ``object_store``) and s3fs (botocore) report the same few misconfigurations in
their own words: an endpoint that cannot be reached, a bucket that does not exist, credentials
or a region the server refuses. :func:`s3_error` recognises them in either wording and says
which fti setting or AWS variable fixes it; anything else keeps the backend's own message (its
first lines, without terminal colours or the server's XML request ids).
"""

from __future__ import annotations

import re

from fti.errors import BackendError, FtiError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_XML = re.compile(r"<\?xml.*|<Error>.*", re.DOTALL)

# (words that identify the problem, what to tell the user); the first match wins
_CAUSES: list[tuple[tuple[str, ...], str]] = [
    (
        ("nosuchbucket", "bucket does not exist", "specified bucket does not exist"),
        "the bucket {bucket!r} does not exist: create it, or fix the URL ({setting})",
    ),
    (
        (
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "accessdenied",
            "access denied",
            "forbidden",
            "nocredentials",
            "unable to locate credentials",
            "missing credentials",
            "expiredtoken",
        ),
        "S3 refused the credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
        "or FTI_S3_SECRET to a secret holding them, for an identity that may use {url}",
    ),
    (
        ("authorizationheadermalformed", "permanentredirect", "wrong region", "incorrectendpoint"),
        "the bucket {bucket!r} is in another region: set FTI_S3_REGION to the bucket's region",
    ),
    (
        (
            "connection refused",
            "error trying to connect",
            "dns error",
            "could not connect",
            "endpointconnectionerror",
            "failed to lookup address",
            "cannot connect",
            "connect timeout",
            "tcp connect error",
            "name or service not known",
        ),
        "cannot reach the S3 endpoint {endpoint}: check FTI_S3_ENDPOINT_URL (and FTI_S3_ALLOW_HTTP "
        "for an http:// endpoint)",
    ),
]


def s3_error(exc: BaseException, doing: str, url: str, setting: str, endpoint: str | None = None) -> FtiError:
    """A :class:`BackendError` for ``exc``, raised while ``doing`` something with ``url``.

    Args:
        exc: The backend's exception (an ``FtiError`` is returned unchanged).
        doing: What failed, e.g. ``"writing offline table 'x'"``.
        url: The ``s3://`` URL involved.
        setting: The setting holding that URL (``FTI_OFFLINE_URL``, ``FTI_ARTIFACTS_URL``).
        endpoint: The configured endpoint (None: AWS S3).
    """
    if isinstance(exc, FtiError):
        return exc
    text = _ANSI.sub("", f"{type(exc).__name__}: {exc}")
    lowered = text.lower().replace(" ", "")
    bucket = url.split("://", 1)[-1].split("/", 1)[0]
    for words, advice in _CAUSES:
        if any(w.replace(" ", "") in lowered for w in words):
            hint = advice.format(bucket=bucket, setting=setting, url=url, endpoint=endpoint or "AWS S3")
            return BackendError(f"{doing} failed: {hint} ({_short(text)})")
    return BackendError(
        f"{doing} failed: {_short(text)}; check {setting}, FTI_S3_ENDPOINT_URL, FTI_S3_REGION and the "
        "AWS_* credentials"
    )


def _short(text: str, limit: int = 300) -> str:
    """The backend's message without the server's XML body, on one line, cut to ``limit``."""
    text = " ".join(_XML.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
