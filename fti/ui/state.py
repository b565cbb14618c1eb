"""What every request of the web UI shares: the settings, the projects it has opened, their key
checkers, the model server it talks to, and the pipeline runs it started.

Projects are opened on first use (``fti.connect(settings=..., create=False)``) and kept open;
the project the UI was created with belongs to its caller and is not closed here.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.serving.auth import KeyChecker

if TYPE_CHECKING:
    from fti.config import Settings
    from fti.project import Project
    from fti.serving.deployments import Deployment
    from fti.ui.serverlink import ServerLink

log = logging.getLogger("fti.ui")

NAMES_TTL_S = 5.0


class UiState:
    """Shared state of one UI app (one per process)."""

    def __init__(self, project: Project, *, server: ServerLink | None, secure_cookies: bool) -> None:
        self.settings: Settings = project.settings
        self.default_project = project.name
        self.server = server
        self.secure_cookies = secure_cookies
        self._projects: dict[str, Project] = {project.name: project}
        self._owned: set[str] = set()
        self._checkers: dict[str, KeyChecker] = {}
        self._deployments: dict[tuple[str, str], Deployment] = {}
        self._names: list[str] = []
        self._names_at = -NAMES_TTL_S
        self._lock = threading.Lock()
        # manual pipeline runs started from the UI run to completion in these threads (each
        # waits on its own subprocess), so a request never blocks on a run
        self.runs = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fti-ui-run")
        self._started: list[Future[Any]] = []

    def project(self, name: str) -> Project:
        """The open project ``name`` (NotFoundError when the catalog has no such project)."""
        with self._lock:
            found = self._projects.get(name)
        if found is not None:
            return found
        from fti.project import connect

        opened = connect(project=name, create=False, settings=self.settings)
        with self._lock:
            if name in self._projects:  # opened concurrently: keep the first
                opened.close()
                return self._projects[name]
            self._projects[name] = opened
            self._owned.add(name)
            return opened

    def checker(self, name: str) -> KeyChecker:
        """The key checker of project ``name``, refreshed when its cache is stale."""
        with self._lock:
            checker = self._checkers.get(name)
        if checker is None:
            checker = KeyChecker(self.project(name))
            with self._lock:
                checker = self._checkers.setdefault(name, checker)
        elif checker.needs_refresh():
            checker.refresh()
        return checker

    def link(self, project: Project) -> ServerLink | None:
        """The model server of ``project``: the one this UI is mounted in, else an ``fti serve``
        that announced itself for the project, else None."""
        if self.server is not None and project.name == self.default_project:
            return self.server
        from fti.ui.serverlink import announced

        return announced(project)

    def project_names(self) -> list[str]:
        """Every project of the catalog (read at most every few seconds: every page shows them)."""
        now = time.monotonic()
        if now - self._names_at > NAMES_TTL_S:
            self._names = self.project(self.default_project).list_projects()
            self._names_at = now
        return list(self._names)

    def projects_open_to(self, digest: str | None) -> list[str]:
        """The projects a session may view: those its key opens (with ``digest``), else those
        without keys (open on loopback)."""
        return [n for n in self.project_names() if self.checker(n).principal(digest or "") is not None]

    def find_key(self, digest: str) -> str | None:
        """The project whose keys include ``digest`` (the default project first), or None."""
        names = self.project_names()
        names.sort(key=lambda n: n != self.default_project)
        for name in names:
            checker = self.checker(name)
            if checker.enabled and checker.principal(digest) is None and checker.needs_refresh(miss=True):
                checker.refresh()  # a key created a moment ago
            if checker.enabled and checker.principal(digest) is not None:
                return name
        return None

    def auth_enabled_anywhere(self) -> bool:
        return any(self.checker(n).enabled for n in self.project_names())

    def deployment(self, project: Project, name: str) -> Deployment:
        """The deployment ``name``, kept so an in-process prediction loads its model once."""
        key = (project.name, name)
        current = project.serving.get(name)
        with self._lock:
            kept = self._deployments.get(key)
            if kept is None or kept.spec != current.spec:
                self._deployments[key] = kept = current
            return kept

    def start_run(
        self, project: Project, pipeline: str, start: datetime | None = None, end: datetime | None = None
    ) -> None:
        """Run ``pipeline`` now in a background thread (recorded as a manual run)."""

        def run() -> None:
            try:
                project.pipelines.run(pipeline, start=start, end=end, trigger="manual")
            except Exception:  # the run's own record holds the failure; keep the log line too
                log.exception("pipeline %r started from the UI failed to run", pipeline)

        self._started.append(self.runs.submit(run))

    def close(self) -> None:
        self.runs.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            owned = [self._projects.pop(n) for n in self._owned]
            self._owned.clear()
        for project in owned:
            project.close()
