"""How the UI reaches the model server: in process when it is mounted under ``/ui`` of
``fti serve``, over HTTP when a separate ``fti serve`` announced itself for the project.

Either way the UI speaks the server's public Open Inference Protocol API (``/v2/...``,
``/metrics``). In process, the principal the UI authenticated travels in the ASGI scope (which
no client can set), so the server applies its own role checks to the UI's user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from fti.project import Project
    from fti.serving.auth import Principal


@dataclass(frozen=True)
class Answer:
    """A response of the model server: status and decoded body (JSON, or text for ``/metrics``)."""

    status: int
    body: Any

    @property
    def error(self) -> str:
        if isinstance(self.body, dict) and "error" in self.body:
            return str(self.body["error"])
        return f"the model server answered {self.status}"


class ServerLink(Protocol):
    """A route to the model server."""

    where: str
    """Shown in the UI: ``"in process"`` or the server's URL."""

    async def request(
        self, method: str, path: str, principal: Principal, body: dict[str, Any] | None = None
    ) -> Answer: ...


class InProcessLink:
    """The server app this UI is mounted in, called through ASGI without a network hop."""

    where = "in process"

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def request(
        self, method: str, path: str, principal: Principal, body: dict[str, Any] | None = None
    ) -> Answer:
        import httpx

        from fti.serving.app import PRINCIPAL_SCOPE_KEY

        app = self._app

        async def with_principal(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, PRINCIPAL_SCOPE_KEY: principal}, receive, send)

        transport = httpx.ASGITransport(app=with_principal, client=("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url="http://fti.inprocess") as client:
            response = await client.request(method, path, json=body)
        return _answer(response)


class HttpLink:
    """A model server of the same project in another process, found through its announcement."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.where = url
        self._key = api_key

    async def request(
        self, method: str, path: str, principal: Principal, body: dict[str, Any] | None = None
    ) -> Answer:
        import httpx

        # The UI's user authenticated with the UI; toward a separate server the UI can only use
        # a key of its own settings (FTI_API_KEYS). Role checks for UI actions happen in the UI.
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        async with httpx.AsyncClient(base_url=self.where, headers=headers, timeout=30) as client:
            try:
                response = await client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                return Answer(503, {"error": f"the model server at {self.where} did not answer: {exc}"})
        return _answer(response)


def _answer(response: Any) -> Answer:
    if response.headers.get("content-type", "").startswith("application/json"):
        return Answer(response.status_code, response.json())
    return Answer(response.status_code, response.text)


def announced(project: Project) -> ServerLink | None:
    """An HTTP link to the ``fti serve`` of this home and project, if one is running."""
    from fti.serving.deployments import running_server

    url = running_server(project)
    if url is None:
        return None
    key = next((k.strip() for k in (project.settings.api_keys or "").split(",") if k.strip()), None)
    return HttpLink(url, key)


@dataclass(frozen=True)
class LiveFigures:
    """A deployment's request, error and latency figures since the server started."""

    requests: int
    failures: dict[str, int]
    """Failed requests by HTTP status."""
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    latency_buckets: list[tuple[str, int]]
    """``(upper bound, requests)`` per latency histogram bucket (not cumulative)."""


def live_figures(metrics_text: str, model: str) -> LiveFigures:
    """The figures of deployment ``model`` from the server's Prometheus exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    requests = 0.0
    failures: dict[str, float] = {}
    cumulative: dict[float, float] = {}
    total_s = count = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            if sample.name == "fti_inference_requests_total":
                requests += sample.value
            elif sample.name == "fti_inference_failures_total":
                status = sample.labels.get("status", "?")
                failures[status] = failures.get(status, 0.0) + sample.value
            elif sample.name == "fti_inference_latency_seconds_bucket":
                bound = float(sample.labels["le"])
                cumulative[bound] = cumulative.get(bound, 0.0) + sample.value
            elif sample.name == "fti_inference_latency_seconds_sum":
                total_s += sample.value
            elif sample.name == "fti_inference_latency_seconds_count":
                count += sample.value
    bounds = sorted(cumulative)
    buckets, previous = [], 0.0
    for bound in bounds:
        label = "+Inf" if bound == float("inf") else f"≤ {bound * 1000:g} ms"
        buckets.append((label, int(cumulative[bound] - previous)))
        previous = cumulative[bound]

    def quantile(q: float) -> float | None:
        # the upper bound of the bucket holding the q-th request: what a histogram can tell
        if not count:
            return None
        for bound in bounds:
            if cumulative[bound] >= q * count:
                return None if bound == float("inf") else bound * 1000
        return None

    return LiveFigures(
        requests=int(requests),
        failures={k: int(v) for k, v in sorted(failures.items())},
        mean_ms=total_s / count * 1000 if count else None,
        p50_ms=quantile(0.5),
        p95_ms=quantile(0.95),
        latency_buckets=[b for b in buckets if b[1]],
    )
