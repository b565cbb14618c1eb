"""The model repository of a server: which deployment versions are loaded, hot swaps, readiness.

Each deployment follows a model reference (``"fraud@production"``, ``"fraud"`` = latest, or a
pinned version, ``"fraud:3"``). The repository loads the version the reference resolves to, polls
``ModelRegistry.resolve`` and the deployments table, and when an alias moves it loads the new
version, switches new requests to it and retires the old one: it drains in the background (every
request already routed to it finishes there) and is then unloaded — so a swap under load fails no
request, and a slow client holding the old version never holds up the poll loop (other
deployments, key refresh). ``lazy=True`` loads a model at its first request, unloads it after
``idle_unload_s`` idle.

Failures stay with their deployment: a version that cannot be loaded (a tampered artifact, a
refused pyfunc, a missing feature view) is reported as ``UNAVAILABLE`` with its reason in the
index, the deployment keeps serving what it had, and that version is retried with a growing
back-off (or at once when the reference moves).

Readiness (:meth:`ModelRepository.readiness`): start-up loading is done and every running
deployment that should be loaded is loaded and not stuck (a predict call past its timeout); one
unloaded through the API is out of that set until loaded again (Triton's explicit model control);
lazily loaded ones are never waited for; variants and shadows (``"<deployment>/<variant>"``
entries, :mod:`fti.serving.routing`) neither: the champion answers for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fti.errors import FtiError, ModelNotReadyError, NotFoundError
from fti.serving import routing
from fti.serving.batching import Batcher
from fti.serving.deployments import DeploymentSpec, list_specs
from fti.serving.loaded import LoadedModel, load_model, resolve

if TYPE_CHECKING:
    from fti.project import Project
    from fti.serving.metrics import ServerMetrics
    from fti.serving.request_log import RequestLogger

__all__ = ["LoadedModel", "ModelRepository", "load_model", "resolve"]

log = logging.getLogger("fti.serving")

RETRY_FIRST_S = 5.0
"""A version that failed to load is tried again after this long, then twice as long each time."""
RETRY_MAX_S = 300.0
HELD_REASON = "unloaded through the repository API; load it with POST /v2/repository/models/{name}/load"


@dataclass
class _Deployed:
    spec: DeploymentSpec
    current: int | None = None  # the version new requests go to
    versions: dict[int, LoadedModel] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loading: bool = False  # a load of this deployment is under way
    held: bool = False  # unloaded through the repository API: stays unloaded until loaded again
    reason: str = ""  # why the last load failed
    failed_version: int | None = None  # the version that failed (None: the spec could not resolve)
    failures: int = 0  # consecutive failed loads of failed_version
    retry_at: float = 0.0  # monotonic time before which failed_version is not tried again
    rejected_spec: DeploymentSpec | None = None  # a redeployed config that failed to load


class ModelRepository:
    """The deployments of one project as served by one server process.

    Args:
        project: The project whose deployments are served.
        metrics: The server's metrics.
        request_logger: Receives every inference (or None to log nothing).
        lazy: Load a model on its first request; unload it after ``idle_unload_s``.
        poll_interval_s: How often alias moves and deployment changes are picked up.
        on_poll: Called (in a thread) at every poll, e.g. to refresh the API keys.
    """

    def __init__(
        self,
        project: Project,
        metrics: ServerMetrics,
        *,
        request_logger: RequestLogger | None = None,
        lazy: bool = False,
        idle_unload_s: float = 300.0,
        poll_interval_s: float = 2.0,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        self.project = project
        self.metrics = metrics
        self.request_logger = request_logger
        self.lazy = lazy
        self.idle_unload_s = idle_unload_s
        self.poll_interval_s = poll_interval_s
        self._on_poll = on_poll
        self._deployed: dict[str, _Deployed] = {}  # deployments, and their variants (fti.serving.routing)
        self.splits: dict[str, routing.Split] = {}  # the traffic split of each deployment that has one
        self._task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self.loading = True  # until the deployments are first loaded

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self, *, background: bool = False) -> None:
        """Read the deployments, load them (unless lazy), then poll for changes.

        Args:
            background: Return once the deployments are read; load them in the background
                (requests meanwhile get 503 "loading"). The server listens at once this way.
        """
        await self._sync_specs()
        loop = asyncio.get_running_loop()
        if background:
            self._task = loop.create_task(self._run())
        else:
            await self._load_all()
            self._task = loop.create_task(self._poll_forever())

    async def _run(self) -> None:
        await self._load_all()
        await self._poll_forever()

    async def _load_all(self) -> None:
        if not self.lazy:
            for name, dep in list(self._deployed.items()):
                await self._poll_one(name, dep)
        self.loading = False

    async def stop(self) -> None:
        """Stop polling and unload everything (requests still routed to a version finish first)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for name, dep in list(self._deployed.items()):
            for version in list(dep.versions):
                self._retire(name, dep, version)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.poll()
            except Exception:  # keep serving whatever happens to the catalog
                log.exception("model repository poll failed")

    async def poll(self) -> None:
        """One round: API keys, new/stopped/redeployed deployments, then each deployment on its
        own (a failure stays with its deployment): loads, alias moves (hot swap), idle unloads."""
        if self._on_poll is not None:
            try:
                await asyncio.to_thread(self._on_poll)
            except Exception:
                log.exception("refreshing the API keys failed")
        await self._sync_specs()
        for name, dep in list(self._deployed.items()):
            await self._poll_one(name, dep)

    async def _poll_one(self, name: str, dep: _Deployed) -> None:
        if self._deployed.get(name) is not dep:  # removed or redeployed meanwhile
            return
        try:
            if dep.current is None and (self.lazy or dep.held):
                return
            if dep.current is not None and self.lazy and self._idle(dep):
                self._retire(name, dep, dep.current)
                return
            try:
                target = int((await asyncio.to_thread(resolve, self.project, dep.spec)).version)
            except FtiError as exc:
                if dep.current is None:
                    self._failed(dep, None, exc)
                log.warning("deployment %s: cannot resolve %s: %s", name, dep.spec.model, exc.message)
                return
            if dep.held and dep.current is None:  # unloaded through the API while resolving
                return
            if target == dep.current:
                if dep.failed_version is not None:  # the reference moved away from a broken version
                    dep.reason, dep.failed_version, dep.failures = "", None, 0
                return
            if not self._may_try(dep, target):
                return
            try:
                await self.swap(name, target)
            except Exception as exc:
                self._failed(dep, target, exc)
        except Exception:  # never let one deployment stop the round for the others
            log.exception("polling deployment %s failed", name)

    def _may_try(self, dep: _Deployed, version: int) -> bool:
        return version != dep.failed_version or time.monotonic() >= dep.retry_at

    def _failed(self, dep: _Deployed, version: int | None, exc: BaseException) -> None:
        """Record that ``version`` of ``dep`` could not be loaded (reported in the index)."""
        message = exc.message if isinstance(exc, FtiError) else f"{type(exc).__name__}: {exc}"
        if version is not None and not message.startswith("version"):
            message = f"version {version}: {message}"
        dep.failures = dep.failures + 1 if version == dep.failed_version else 1
        dep.failed_version = version
        dep.reason = message
        dep.retry_at = time.monotonic() + min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (dep.failures - 1))
        if isinstance(exc, FtiError):
            log.error("deployment %s could not be loaded: %s", dep.spec.name, message)
        else:  # a broken artifact must not take the other deployments down
            log.error("deployment %s could not be loaded", dep.spec.name, exc_info=exc)

    def _idle(self, dep: _Deployed) -> bool:
        now = time.monotonic()
        return all(
            (m.batcher is None or m.batcher.idle) and now - m.last_used > self.idle_unload_s
            for m in dep.versions.values()
        )

    async def _sync_specs(self) -> None:
        specs = await asyncio.to_thread(list_specs, self.project)
        running, self.splits = routing.expand(s for s in specs if s.status == "running")
        for name in list(self._deployed):
            old = self._deployed[name]
            if name not in running:
                del self._deployed[name]
                for version in list(old.versions):
                    self._retire(name, old, version)
            elif running[name] != old.spec and self._may_redeploy(old, running[name]):
                await self._redeploy(name, old, running[name])
        for name, spec in running.items():
            self._deployed.setdefault(name, _Deployed(spec))

    @staticmethod
    def _may_redeploy(old: _Deployed, spec: DeploymentSpec) -> bool:
        """A configuration that failed to load is tried again only after its back-off."""
        return spec != old.rejected_spec or time.monotonic() >= old.retry_at

    async def _redeploy(self, name: str, old: _Deployed, spec: DeploymentSpec) -> None:
        """Serve ``spec``, a new configuration of deployment ``name``: load it first (the old
        one keeps serving meanwhile, and keeps serving if the new one fails to load)."""
        new = _Deployed(spec)
        if not self.lazy and old.current is not None:
            try:
                loaded = await asyncio.to_thread(load_model, self.project, spec, None)
            except Exception as exc:
                old.rejected_spec = spec
                self._failed(old, None, exc)
                old.reason = f"the redeployed configuration could not be loaded; serving the previous one: {old.reason}"
                return
            self._attach(loaded)
            new.versions[loaded.version] = loaded
            new.current = loaded.version
        self._deployed[name] = new  # new requests go to the new config from here
        for version in list(old.versions):
            self._retire(name, old, version)

    # --- loading and unloading ------------------------------------------------------------
    async def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Load ``version`` (default: what the deployment's reference resolves to)."""
        dep = self._get(name)
        dep.held = False
        async with dep.lock:
            if version is None and dep.current is not None:
                version = dep.current
            existing = dep.versions.get(version) if version is not None else None
            if existing is not None and not existing.retiring:
                return existing
            started = time.perf_counter()
            dep.loading = True
            try:
                loaded = await asyncio.to_thread(load_model, self.project, dep.spec, version)
            finally:
                dep.loading = False
            self._attach(loaded)
            dep.versions[loaded.version] = loaded
            if version is None or dep.current is None:
                dep.current = loaded.version
            if loaded.version == dep.failed_version or dep.failed_version is None:
                dep.reason, dep.failed_version, dep.failures = "", None, 0
            gc.freeze()  # the new model's objects join the permanent generation (see app.lifespan)
            log.info(
                "loaded %s version %s (%s scorer) in %.0f ms",
                name,
                loaded.version,
                loaded.scorer_kind,
                (time.perf_counter() - started) * 1000,
            )
            return loaded

    def _attach(self, loaded: LoadedModel) -> None:
        name, version = loaded.name, str(loaded.version)
        spec = loaded.spec
        deployment, variant = routing.split_name(name)
        counters = loaded.counters = self.metrics.bind(deployment, version, variant)
        loaded.batcher = Batcher(
            loaded.predict,
            max_batch_size=spec.max_batch_size,
            max_batch_delay_ms=spec.max_batch_delay_ms,
            max_queue_size=spec.max_queue_size,
            timeout_s=spec.timeout_ms / 1000.0,
            on_batch=counters.observe_batch,
        )
        self.metrics.loaded.labels(name, version).set(1)

    async def swap(self, name: str, version: int) -> None:
        """Hot swap: load ``version``, route new requests to it, retire the old one (it drains
        in the background, then is unloaded)."""
        dep = self._get(name)
        new = await self.load(name, version)
        old = dep.current
        dep.current = new.version
        log.info("deployment %s switched from version %s to %s", name, old, new.version)
        if old is not None and old != new.version:
            self._retire(name, dep, old)

    async def unload(self, name: str, version: int | None = None) -> None:
        """Unload ``version`` (default: every loaded version) once its requests have finished.

        Unloading the version new requests go to holds the deployment: the poller does not load
        it back, and it is out of server readiness until :meth:`load`.
        """
        dep = self._get(name)
        versions = [version] if version is not None else list(dep.versions)
        for v in versions:
            if v not in dep.versions or dep.versions[v].retiring:
                raise NotFoundError(
                    f"version {v} of model {name!r} is not loaded (loaded: {self._serving(dep)})"
                )
        if version is None or version == dep.current:
            dep.held = True
        tasks = [task for v in versions if (task := self._retire(name, dep, v)) is not None]
        await asyncio.gather(*tasks)

    def _retire(self, name: str, dep: _Deployed, version: int) -> asyncio.Task[None] | None:
        """Stop routing to ``version`` of ``dep`` and unload it in the background once the
        requests already routed to it have finished (returns that task)."""
        loaded = dep.versions.get(version)
        if loaded is None or loaded.retiring:
            return None
        loaded.retiring = True
        if dep.current == version:
            dep.current = None
        task = asyncio.get_running_loop().create_task(self._drain_and_unload(name, dep, loaded))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return task

    async def _drain_and_unload(self, name: str, dep: _Deployed, loaded: LoadedModel) -> None:
        if loaded.batcher is not None:
            await loaded.batcher.close()  # waits (bounded) for the requests routed to it
        if dep.versions.get(loaded.version) is loaded:  # not replaced by a fresh load meanwhile
            dep.versions.pop(loaded.version)
        serving = self._deployed.get(name)
        if serving is None or loaded.version not in self._serving(serving):
            self.metrics.loaded.labels(name, str(loaded.version)).set(0)
        log.info("unloaded %s version %s", name, loaded.version)

    # --- lookups --------------------------------------------------------------------------
    def _get(self, name: str) -> _Deployed:
        dep = self._deployed.get(name)
        if dep is None:
            known = sorted(self._deployed)
            raise NotFoundError(f"unknown model {name!r}; deployed models: {known or 'none'}")
        return dep

    @staticmethod
    def _serving(dep: _Deployed) -> list[int]:
        return sorted(v for v, m in dep.versions.items() if not m.retiring)

    async def acquire(self, name: str, version: int | None = None) -> LoadedModel:
        """The loaded model for a request, counted in flight (call :meth:`release` after).

        Raises:
            NotFoundError: unknown deployment, a version that does not exist, or a registered
                version that is not loaded (without ``lazy``).
            ModelNotReadyError: the deployment is not loaded (yet), or is being unloaded.
        """
        dep = self._get(name)
        target = dep.current if version is None else version
        loaded = dep.versions.get(target) if target is not None else None
        if loaded is None or loaded.retiring:
            if self.lazy:
                loaded = await self.load(name, version)
            else:
                await self._check_version_exists(dep, version)
                raise self._not_loaded(name, dep, version)
        assert loaded.batcher is not None
        loaded.batcher.expect()
        loaded.last_used = time.monotonic()
        return loaded

    def _not_loaded(self, name: str, dep: _Deployed, version: int | None) -> FtiError:
        # 404, not 503 + Retry-After, for a version nobody loads: a retrying client would never stop
        hint = f" version {version}" if version is not None else ""
        if dep.loading or (self.loading and not dep.reason and version is None):
            return ModelNotReadyError(f"loading: model {name!r}{hint} is being loaded; retry shortly")
        if version is not None and version != dep.failed_version and not self.loading:
            loaded, body = self._serving(dep) or "none", f'{{"parameters": {{"version": {version}}}}}'
            return NotFoundError(
                f"model {name!r} version {version} is registered but not loaded on this server (loaded: {loaded});"
                f" load it with POST /v2/repository/models/{name}/load {body}, or serve with --lazy"
            )
        extra = f" ({dep.reason})" if dep.reason else ""
        return ModelNotReadyError(
            f"model {name!r}{hint} is not loaded{extra}; load it with POST /v2/repository/models/{name}/load"
        )

    @staticmethod
    def release(loaded: LoadedModel) -> None:
        assert loaded.batcher is not None
        loaded.batcher.done()

    async def check_version(self, name: str, version: int | None) -> None:
        """Raise NotFoundError unless ``name`` is deployed and ``version`` (if given) exists."""
        await self._check_version_exists(self._get(name), version)

    async def _check_version_exists(self, dep: _Deployed, version: int | None) -> None:
        if version is None:
            return
        try:
            await asyncio.to_thread(resolve, self.project, dep.spec, version)
        except NotFoundError:
            raise NotFoundError(
                f"model {dep.spec.name!r} has no version {version} (loaded: {self._serving(dep)})"
            ) from None

    def get_loaded(self, name: str, version: int | None = None) -> LoadedModel | None:
        """The loaded model a request for ``name`` (and ``version``) would go to, if any."""
        dep = self._get(name)
        target = dep.current if version is None else version
        loaded = dep.versions.get(target) if target is not None else None
        return None if loaded is None or loaded.retiring else loaded

    def not_ready_reason(self, name: str, version: int | None = None) -> str | None:
        """Why the model a request for ``name`` (``version``) would go to cannot answer, or None."""
        dep = self._get(name)
        loaded = self.get_loaded(name, version)
        if loaded is None:
            return self._not_loaded(name, dep, version).message
        return _stuck(loaded)

    def readiness(self) -> str | None:
        """None when the server is ready, else why not (see the module docstring)."""
        if self.loading:
            pending = [n for n, d in sorted(self._deployed.items()) if d.current is None and not d.held]
            return f"loading {len(pending)} deployment(s): {', '.join(pending)}; retry shortly"
        problems = []
        for name, dep in sorted(self._deployed.items()):
            if dep.held or (self.lazy and dep.current is None) or routing.is_variant(name):
                continue  # a variant that cannot answer sends its requests to the champion
            loaded = self.get_loaded(name)
            if loaded is None:
                problems.append(f"{name!r} is not loaded ({dep.reason or 'loading'})")
            elif (stuck := _stuck(loaded)) is not None:
                problems.append(f"{name!r} version {loaded.version}: {stuck}")
        return "; ".join(problems) or None

    def index(self) -> list[dict[str, Any]]:
        """The repository index: per deployment, each loaded version (``READY``, ``UNLOADING``
        while it drains, ``UNAVAILABLE`` while a predict call is stuck), the version that failed
        to load (``UNAVAILABLE`` with the reason), or the deployment's state (``LOADING``,
        ``UNLOADED``, ``UNAVAILABLE``)."""
        out: list[dict[str, Any]] = []
        for name, dep in sorted(self._deployed.items()):
            entries: dict[int, dict[str, Any]] = {}
            for version, loaded in dep.versions.items():
                stuck = _stuck(loaded)
                state = "UNLOADING" if loaded.retiring else "UNAVAILABLE" if stuck else "READY"
                entries[version] = _entry(name, version, state, stuck or "")
            if dep.reason and dep.failed_version is not None and dep.failed_version not in entries:
                entries[dep.failed_version] = _entry(name, dep.failed_version, "UNAVAILABLE", dep.reason)
            elif dep.reason and dep.failed_version is None and entries:  # a redeployment that failed
                out.append(_entry(name, None, "UNAVAILABLE", dep.reason))
            if not entries:
                if dep.loading or (self.loading and not self.lazy and not dep.held and not dep.reason):
                    state, reason = "LOADING", ""
                elif dep.reason:
                    state, reason = "UNAVAILABLE", dep.reason
                else:
                    state, reason = "UNLOADED", HELD_REASON.format(name=name) if dep.held else ""
                out.append(_entry(name, None, state, reason))
            out.extend(entries[v] for v in sorted(entries))
        return out


def _entry(name: str, version: int | None, state: str, reason: str) -> dict[str, Any]:
    shown = None if version is None else str(version)
    return {"name": name, "version": shown, "state": state, "reason": reason}


def _stuck(loaded: LoadedModel) -> str | None:
    """Why ``loaded`` cannot answer although it is loaded: a predict call that has run longer
    than the request timeout (every request of its batch got 504), or None."""
    took = loaded.batcher.stuck_for() if loaded.batcher is not None else None
    if took is None:
        return None
    timeout = loaded.spec.timeout_ms / 1000.0
    return f"a predict call has been running for {took:.1f} s, longer than the {timeout:g} s timeout"
