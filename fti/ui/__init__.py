"""The web UI: browse feature groups, feature views, lineage, models, runs, deployments (with a
"try the model" form), pipelines and monitoring; log in with an API key.

``fti ui`` serves it on 127.0.0.1:8081; ``fti serve`` mounts it under ``/ui`` (``--no-ui`` to
disable). Needs ``pip install 'fti[ui]'``. See :func:`fti.ui.app.create_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.ui.app import create_app as create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from fti.ui.app import create_app

        return create_app
    raise AttributeError(f"module 'fti.ui' has no attribute {name!r}")
