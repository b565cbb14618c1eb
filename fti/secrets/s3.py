"""S3 credentials kept as an fti secret (``FTI_S3_SECRET``) for the stores on ``s3://``.

Without the setting, delta-rs and s3fs find credentials as the AWS SDKs do (``AWS_*`` variables,
profiles, instance roles). With ``FTI_S3_SECRET=name``, the project's secret ``name`` holds them
instead, a JSON object::

    fti secrets set s3-prod '{"aws_access_key_id": "AKIA...", "aws_secret_access_key": "...",
                              "aws_session_token": "..."}'      # the token is optional

They are read when a store on ``s3://`` is opened (the offline store, the artifact store) and
given to delta-rs as ``object_store`` options and to s3fs as its ``key``/``secret``/``token``,
so they never need to be in the environment. A pipeline run gets them as ``AWS_*`` variables of
its own process (its stores are the project's), see :func:`fti.pipelines.executor.child_environment`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.project import Project

# accepted field -> the credential it is (AWS' own names, and the short ones s3fs uses)
FIELDS = {
    "aws_access_key_id": "access_key_id",
    "access_key_id": "access_key_id",
    "aws_secret_access_key": "secret_access_key",
    "secret_access_key": "secret_access_key",
    "aws_session_token": "session_token",
    "session_token": "session_token",
}
EXAMPLE = '{"aws_access_key_id": "...", "aws_secret_access_key": "..."} (optionally "aws_session_token")'


def credentials(project: Project) -> dict[str, str] | None:
    """The S3 credentials of the secret named by ``FTI_S3_SECRET`` (None when it is unset):
    ``access_key_id``, ``secret_access_key`` and maybe ``session_token``.

    Raises:
        NotFoundError: the secret does not exist (the message says how to set it).
        ValidationError: its value is not a JSON object of those fields (the value never shown).
    """
    name = project.settings.s3_secret
    if name is None:
        return None
    from fti.secrets.masking import json_fields

    fields = json_fields(project.secrets.get(name))
    where = f"secret {name!r} (FTI_S3_SECRET)"
    if fields is None:
        raise ValidationError(f"{where} must be a JSON object of S3 credentials: {EXAMPLE}")
    unknown = sorted(k for k in fields if k.lower() not in FIELDS)
    if unknown:
        raise ValidationError(f"{where} has unknown field(s) {unknown}; it holds {EXAMPLE}")
    out: dict[str, str] = {}
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            raise ValidationError(f"{where}: field {key!r} must be a non-empty string")
        out[FIELDS[key.lower()]] = value
    missing = [f for f in ("access_key_id", "secret_access_key") if f not in out]
    if missing:
        raise ValidationError(f"{where} lacks {missing}; it holds {EXAMPLE}")
    return out


def object_store_options(creds: dict[str, str] | None) -> dict[str, str]:
    """The credentials as Rust ``object_store`` (delta-rs) options."""
    if creds is None:
        return {}
    options = {
        "AWS_ACCESS_KEY_ID": creds["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
    }
    if "session_token" in creds:
        options["AWS_SESSION_TOKEN"] = creds["session_token"]
    return options


def fsspec_options(creds: dict[str, str] | None) -> dict[str, Any]:
    """The credentials as s3fs storage options."""
    if creds is None:
        return {}
    options = {"key": creds["access_key_id"], "secret": creds["secret_access_key"]}
    if "session_token" in creds:
        options["token"] = creds["session_token"]
    return options


def environment(creds: dict[str, str] | None) -> dict[str, str]:
    """The credentials as the ``AWS_*`` variables of a child process."""
    return object_store_options(creds)
