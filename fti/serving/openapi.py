"""The OpenAPI 3.1 document of the model server's REST API (served at ``/openapi.json``).

Built from the pydantic payload models below (the same payloads :mod:`fti.serving.protocol`
validates by hand on the hot path), so fuzzers such as schemathesis can generate requests from it.
Objects with ``additionalProperties: false`` are refused with unknown fields by the server too.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Datatype = str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestInputModel(_Model):
    name: str = Field(description="Input tensor name (a signature input or a feature-view key).")
    shape: list[int] = Field(description="Tensor shape; the first dimension is the batch.")
    datatype: Datatype = Field(
        description="One of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES."
    )
    parameters: dict[str, Any] | None = None
    data: list[Any] = Field(description="Row-major values, flat or nested to the shape.")


class RequestOutputModel(_Model):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequestModel(_Model):
    id: str | None = Field(default=None, description="Echoed in the response.")
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInputModel]
    outputs: list[RequestOutputModel] | None = None


class ResponseOutputModel(_Model):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any]


class InferenceResponseModel(_Model):
    model_name: str
    model_version: str | None = None
    id: str
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutputModel]


class TensorMetadataModel(_Model):
    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadataModel(_Model):
    name: str
    versions: list[str] = []
    platform: str
    inputs: list[TensorMetadataModel]
    outputs: list[TensorMetadataModel]
    parameters: dict[str, Any] | None = None


class ServerMetadataModel(_Model):
    name: str
    version: str
    extensions: list[str]


class RepositoryIndexEntryModel(_Model):
    name: str
    version: str | None = None
    state: str
    reason: str = ""


class RepositoryIndexRequestModel(_Model):
    ready: bool | None = None


class RepositoryLoadRequestModel(_Model):
    parameters: dict[str, Any] | None = None


class ErrorModel(BaseModel):
    error: str


_MODELS: tuple[type[BaseModel], ...] = (
    InferenceRequestModel,
    InferenceResponseModel,
    ModelMetadataModel,
    ServerMetadataModel,
    RepositoryIndexEntryModel,
    RepositoryIndexRequestModel,
    RepositoryLoadRequestModel,
    ErrorModel,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Bad request (the message names the input and what is wrong)",
        401: "Missing or invalid API key",
        404: "Unknown model, version or feature key",
        413: "Body too large",
        503: "Not ready or queue full (see Retry-After)",
        504: "Timeout",
    }
    return {str(s): {"description": text[s], **_json(_ref(ErrorModel))} for s in statuses}


def _op(
    summary: str, response: dict[str, Any], *errors: int, body: type[BaseModel] | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "OK", **_json(response)}, **_errors(*errors)},
    }
    if body is not None:
        op["requestBody"] = {"required": body is InferenceRequestModel, **_json(_ref(body))}
    return op


_PUSH_BODY = {
    "type": "object",
    "properties": {
        "rows": {"type": "array", "items": {"type": "object"}},
        "columns": {"type": "object", "additionalProperties": {"type": "array"}},
        "version": {"type": "integer", "minimum": 1},
    },
}
_PUSH_ANSWER = {
    "type": "object",
    "properties": {
        "feature_group": {"type": "string"},
        "version": {"type": "integer"},
        "rows": {"type": "integer"},
        "online_rows": {"type": "integer"},
    },
}
_MODEL = {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (cached; it depends on code only)."""
    schemas: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    flag = {"type": "object"}
    paths: dict[str, Any] = {
        "/v2/health/live": {"get": _op("Server liveness", flag)},
        "/v2/health/ready": {"get": _op("Server readiness", flag, 503)},
        "/v2": {"get": _op("Server metadata", _ref(ServerMetadataModel), 401)},
        "/v2/repository/index": {
            "post": _op(
                "Repository index",
                {"type": "array", "items": _ref(RepositoryIndexEntryModel)},
                400,
                401,
                body=RepositoryIndexRequestModel,
            )
        },
    }
    for prefix, params in (
        ("/v2/models/{model}", [_MODEL]),
        ("/v2/models/{model}/versions/{version}", [_MODEL, _VERSION]),
    ):
        paths[prefix] = {
            "parameters": params,
            "get": _op("Model metadata", _ref(ModelMetadataModel), 401, 404, 503),
        }
        paths[f"{prefix}/ready"] = {"parameters": params, "get": _op("Model readiness", flag, 401, 404, 503)}
        paths[f"{prefix}/infer"] = {
            "parameters": params,
            "post": _op(
                "Inference",
                _ref(InferenceResponseModel),
                400,
                401,
                404,
                413,
                503,
                504,
                body=InferenceRequestModel,
            ),
        }
    for action in ("load", "unload"):
        paths[f"/v2/repository/models/{{model}}/{action}"] = {
            "parameters": [_MODEL],
            "post": _op(f"{action.title()} a model", flag, 400, 401, 404, body=RepositoryLoadRequestModel),
        }
    paths["/v1/feature-groups/{name}/push"] = {
        "parameters": [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "version",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
        "post": {
            "summary": "Push rows into a feature group (online at once, offline in micro-batches)",
            "requestBody": {"required": True, **_json(_PUSH_BODY)},
            "responses": {"200": {"description": "OK", **_json(_PUSH_ANSWER)}, **_errors(400, 401, 404, 413)},
        },
    }
    rows = {"type": "array", "items": {}}
    paths["/v1/models/{model}:predict"] = {
        "parameters": [_MODEL],
        "post": {
            **_op(
                "KServe V1 prediction", {"type": "object", "properties": {"predictions": rows}}, 400, 401, 404
            ),
            "requestBody": {"required": True, **_json({"type": "object", "properties": {"instances": rows}})},
        },
    }
    paths["/v1/models/{model}"] = {
        "parameters": [_MODEL],
        "get": _op("KServe V1 model readiness", flag, 401, 404),
    }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fti model server",
            "version": "2",
            "description": "Open Inference Protocol (KServe V2) REST API, with the binary tensor "
            "extension (JSON header of Inference-Header-Content-Length bytes, then raw tensors) and "
            "the KServe V1 :predict route.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
