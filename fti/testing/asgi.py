"""A synchronous in-process ASGI client (httpx over ``ASGITransport``) for tests and benchmarks.

Starlette's ``TestClient`` is deprecated with the httpx it would use here; this runs an httpx
``AsyncClient`` on a private event loop, keeps cookies between requests like a browser, and lets
the caller choose the client address (``127.0.0.1`` by default: the UI treats loopback specially).
"""

from __future__ import annotations

import asyncio
from typing import Any


class AsgiClient:
    """``get``/``post`` against an ASGI app without a server; use as a context manager."""

    def __init__(
        self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000), base_url: str = "http://testserver"
    ) -> None:
        import httpx

        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=client), base_url=base_url, follow_redirects=False
        )

    @property
    def cookies(self) -> Any:
        return self._client.cookies

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()

    def __enter__(self) -> AsgiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
