"""The one error hierarchy of fti.

Every public entry point (Python API, CLI, HTTP) raises a subclass of :class:`FtiError`. Each
class carries a stable machine-readable ``code`` and the ``http_status`` the servers answer with,
so the HTTP layers map errors to responses in one place. Messages say what failed, which value,
and how to fix it.
"""

from __future__ import annotations

from typing import Any


class FtiError(Exception):
    """Base class of every error fti raises on purpose."""

    code: str = "fti_error"
    http_status: int = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON error shape shared by the HTTP APIs and ``--json`` CLI output."""
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(FtiError, ValueError):
    """An argument or a piece of data is invalid (names, versions, values, expectations)."""

    code = "invalid_argument"
    http_status = 400


class SchemaError(ValidationError):
    """Data does not match a declared schema (missing, extra or wrongly typed columns)."""

    code = "schema_mismatch"


class ExpectationError(ValidationError):
    """An insert failed its expectation suite under ``validation="strict"``."""

    code = "expectation_failed"
    http_status = 422


class NotFoundError(FtiError, LookupError):
    """A named object (project, feature group, model, version, key...) does not exist."""

    code = "not_found"
    http_status = 404


class AlreadyExistsError(FtiError):
    """An object with the same identity already exists with a different definition."""

    code = "already_exists"
    http_status = 409


class ConflictError(FtiError):
    """The operation conflicts with the current state (e.g. deleting an aliased version)."""

    code = "conflict"
    http_status = 409


class IntegrityError(FtiError):
    """Stored data does not match its recorded digest (tampered or corrupted artifact)."""

    code = "integrity_error"
    http_status = 500


class BackendError(FtiError):
    """A storage backend failed or is misconfigured (bad URL, server unreachable, missing extra)."""

    code = "backend_error"
    http_status = 503


class ModelNotReadyError(FtiError):
    """A model is not loaded or not ready to serve."""

    code = "model_not_ready"
    http_status = 503


class OnDemandError(FtiError):
    """An on-demand feature function failed: it raised, or returned the wrong number of values or
    the wrong dtype. A fault of the function, not of the request: HTTP 500, and the server goes on."""

    code = "on_demand_failed"
    http_status = 500


class AuthenticationError(FtiError):
    """Missing or invalid API key."""

    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(FtiError):
    """The caller may not do this: an API key whose role does not allow the action (a reader running
    a pipeline), or a pipeline run reading a secret it did not declare."""

    code = "permission_denied"
    http_status = 403


__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BackendError",
    "ConflictError",
    "ExpectationError",
    "FtiError",
    "IntegrityError",
    "ModelNotReadyError",
    "NotFoundError",
    "OnDemandError",
    "PermissionDeniedError",
    "SchemaError",
    "ValidationError",
]
