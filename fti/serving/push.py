"""``POST /v1/feature-groups/{name}/push``: pushing rows into a feature group over HTTP.

The body is ``{"rows": [{"cc_num": 1, "ts": "2024-01-01T10:00:00Z", "amount": 9.5}, ...]}`` or
``{"columns": {"cc_num": [1], ...}}``, with ``"version"`` (or ``?version=``) to pick a group
version other than the latest. Values are read strictly as the group's dtypes (times need their
UTC offset) by :mod:`fti.streaming.values`, then the rows take the path of ``fg.push``: checked,
appended to the durable push buffer, written online; the answer (200) comes after both, so an
acknowledged push is never lost. Needs an API key with the ``writer`` role.

The server runs the project's push committer (:mod:`fti.streaming.committer`), which commits
buffered rows to the offline store in micro-batches and replays what a killed server left.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.features.feature_group import FeatureGroup
    from fti.project import Project

PATH = "/v1/feature-groups/{name}/push"
_GROUP_TTL = 2.0  # seconds a looked-up group (its schema) is reused


class PushRoute:
    """The push route's state: feature groups by (name, version), looked up again every few seconds."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._groups: dict[tuple[str, int | None], tuple[float, FeatureGroup]] = {}

    def group(self, name: str, version: int | None) -> FeatureGroup:
        now = time.monotonic()
        cached = self._groups.get((name, version))
        if cached is not None and now - cached[0] < _GROUP_TTL:
            return cached[1]
        group = self.project.feature_store.get_feature_group(name, version)
        self._groups[(name, version)] = (now, group)
        return group

    def push(self, name: str, version: int | None, payload: Any) -> dict[str, Any]:
        from fti.streaming import push
        from fti.streaming.values import table_from_json

        group = self.group(name, version)
        push.check_pushable(group)
        dtypes = {f.name: f.dtype for f in group.features or []}
        table = table_from_json(payload, dtypes, what=f"push into feature group {name!r}")
        result = push.push(group, table)
        return {
            "feature_group": group.name,
            "version": group.version,
            "rows": result.rows,
            "online_rows": result.online_rows,
        }


def _version(request: Request, payload: Any) -> int | None:
    raw = request.query_params.get("version")
    if raw is None and isinstance(payload, dict):
        raw = payload.get("version")
    if raw is None:
        return None
    try:
        version = int(raw)
    except (TypeError, ValueError):
        version = 0
    if isinstance(raw, bool) or version < 1:
        raise ValidationError(f"version must be an integer >= 1, got {raw!r}")
    return version


async def handle(request: Request, state: Any) -> Response:
    """The route handler (see the module docstring); ``state`` is the server's ServerState."""
    from fti.serving import protocol
    from fti.serving.app import JsonResponse

    route: PushRoute = state.push
    body = await state.admission.read_body(request)  # the server's size, memory and time limits
    payload = protocol.loads(body)
    name = request.path_params["name"]
    version = _version(request, payload)
    return JsonResponse(await asyncio.to_thread(route.push, name, version, payload))
