"""Name, alias and version rules for projects, feature groups, views, models and deployments."""

from __future__ import annotations

import re

from fti.errors import ValidationError

_NAME = re.compile(r"^[a-z0-9_]{1,63}$")
_SECRET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_ALIAS = re.compile(r"^[a-z0-9_-]{1,63}$")
MAX_VERSION = 2_147_483_647
"""The largest version a catalog stores (a 32-bit integer column on PostgreSQL)."""


def check_name(name: object, kind: str) -> str:
    """Return ``name`` if it is 1-63 lowercase letters, digits or ``_``; else ValidationError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"invalid {kind} name {name!r}: use 1-63 lowercase letters, digits or '_' "
            f"(for example {'my_' + kind.replace(' ', '_')!r})"
        )
    return name


def check_version(version: object, kind: str, *, allow_none: bool = False) -> int | None:
    """Versions are integers >= 1; None means "latest" where ``allow_none``."""
    if version is None and allow_none:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"invalid {kind} version {version!r}: versions are integers >= 1")
    return version


def check_secret_name(name: object) -> str:
    """Secret names also allow ``-`` and ``.`` (``analytics-db``), like connection ids elsewhere."""
    if not isinstance(name, str) or not _SECRET_NAME.match(name):
        raise ValidationError(
            f"invalid secret name {name!r}: use 1-63 lowercase letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (for example 'analytics-db')"
        )
    return name


def check_alias(alias: object) -> str:
    """Return ``alias`` if it is 1-63 of ``[a-z0-9_-]``; else ``ValidationError``."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise ValidationError(
            f"invalid alias {alias!r}: use 1-63 lowercase letters, digits, '_' or '-' (e.g. 'production')"
        )
    return alias
