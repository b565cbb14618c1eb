"""The model repository of a server: which deployment versions are loaded, and hot swaps.

Each deployment follows a model reference (``"fraud@production"``, ``"fraud"`` = latest, or a
pinned version, ``"fraud:3"``). The repository loads the version the reference resolves to, polls
``ModelRegistry.resolve`` and the deployments table, and when an alias moves it loads the new
version, switches new requests to it, drains the old one (every request already routed to it
finishes there) and unloads it — so a swap under load fails no request. With ``lazy=True`` a
model is loaded on its first request and unloaded after ``idle_unload_s`` without requests.
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
from fti.serving import dataplane
from fti.serving.batching import Batcher
from fti.serving.deployments import DeploymentSpec, list_specs

if TYPE_CHECKING:
    import numpy as np

    from fti.inference.base import Scorer
    from fti.project import Project
    from fti.registry.model_version import ModelVersion
    from fti.serving.metrics import ServerMetrics
    from fti.serving.protocol import InferRequest
    from fti.serving.request_log import RequestLogger

log = logging.getLogger("fti.serving")


class LoadedModel:
    """One loaded model version of a deployment: its scorer, signature and feature view."""

    def __init__(
        self, spec: DeploymentSpec, model_version: ModelVersion, scorer: Scorer, feature_view: Any
    ) -> None:
        self.spec = spec
        self.model_version = model_version
        self.version: int = int(model_version.version)
        self.signature = model_version.signature
        self.scorer = scorer
        self.feature_view = feature_view
        self.batcher: Batcher | None = None
        self.last_used = time.monotonic()
        # the one-numpy-call lane for well-formed requests (plain, all-numeric signatures)
        numeric = all(s.datatype not in ("BYTES",) for s in self.signature.inputs)
        self.fast_order: dict[str, int] | None = (
            {s.name: j for j, s in enumerate(self.signature.inputs)}
            if feature_view is None and numeric and not spec.allow_missing
            else None
        )
        self.counters: Any = None  # metric children bound to (model, version) by the repository

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def scorer_kind(self) -> str:
        """``native``, ``onnx`` or ``compiled`` (a cached conversion may fall back to native)."""
        return self.scorer.kind

    def fast_prepare(self, payload: Any) -> dataplane.PreparedRequest | None:
        """The matrix of a well-formed plain request without building per-input objects."""
        if self.fast_order is None:
            return None
        return dataplane.fast_plain(payload, self.fast_order)

    def prepare(self, request: InferRequest) -> dataplane.PreparedRequest:
        """Validate the request and build the input matrix (enrichment does I/O: call in a thread
        when enriching)."""
        dataplane.check_requested_outputs(request.outputs, self.signature)
        if self.feature_view is not None:
            return dataplane.prepare_enriched(
                request, self.feature_view, self.signature, allow_missing=self.spec.allow_missing
            )
        return dataplane.prepare_plain(request, self.signature, allow_missing=self.spec.allow_missing)

    def predict(self, matrix: Any) -> dict[str, np.ndarray]:
        return self.scorer.predict(matrix)

    def input_names(self) -> list[str]:
        if self.feature_view is not None:
            return list(self.feature_view.primary_key)
        return [s.name for s in self.signature.inputs]

    def metadata(self) -> dict[str, Any]:
        """V2 model metadata: the real inputs and outputs of the signature."""
        if self.feature_view is not None:
            dtypes = _key_datatypes(self.feature_view)
            inputs = [{"name": k, "datatype": dtypes.get(k, "BYTES"), "shape": [-1]} for k in dtypes]
        else:
            inputs = [s.to_dict() for s in self.signature.inputs]
        return {
            "name": self.name,
            "versions": [str(self.version)],
            "platform": f"fti-{self.model_version.flavor}",
            "inputs": inputs,
            "outputs": [s.to_dict() for s in self.signature.outputs],
            "parameters": {
                "model": self.model_version.name,
                "scorer": self.scorer_kind,
                "enriched": self.feature_view is not None,
                "features": [s.name for s in self.signature.inputs],
            },
        }


def _key_datatypes(feature_view: Any) -> dict[str, str]:
    """OIP datatypes of the key columns (from the spine feature group's schema when known) and of
    the request fields."""
    from fti.registry.signature import oip_datatype

    spine = getattr(getattr(getattr(feature_view, "view", None), "query", None), "spine", None)
    declared = {f.name: f.dtype for f in (getattr(spine, "features", None) or [])}
    out: dict[str, str] = {}
    for key in feature_view.primary_key:
        try:
            out[key] = oip_datatype(declared[key]) if key in declared else "INT64"
        except FtiError:
            out[key] = "BYTES"
    columns = getattr(feature_view, "request_columns", {})
    for name in getattr(feature_view, "request_fields", []):  # sent with every request
        try:
            out[name] = oip_datatype(columns[name])
        except FtiError:
            out[name] = "BYTES"
    return out


def resolve(project: Project, spec: DeploymentSpec, version: int | None = None) -> ModelVersion:
    """The registry's model version for ``spec`` (``version`` wins over the spec's reference)."""
    ref = spec.ref
    if version is not None:
        return project.model_registry.get_model(ref.name, version=version)
    return project.model_registry.resolve(ref)


def load_model(project: Project, spec: DeploymentSpec, version: int | None = None) -> LoadedModel:
    """Load a deployment's model version with its scorer (blocking: call in a thread).

    The scorer comes from the home's :class:`~fti.inference.ScorerCache`: a verified conversion
    cached for these exact artifacts runs without the native model (no scikit-learn, skops or
    PyTorch import: most of the cold start and idle memory); otherwise the native model is loaded
    and its fastest verified scorer chosen (and cached, so a restart does not convert again).
    """
    from fti.inference.cache import ScorerCache

    mv = resolve(project, spec, version)
    scorer = ScorerCache.at_home(project.settings.home).get(mv, prefer=spec.scorer)
    feature_view = None
    if spec.enrich:
        feature_view = mv.feature_view()
        if feature_view is None:
            raise ModelNotReadyError(
                f"deployment {spec.name!r} enriches features but model {mv.name!r} version {mv.version} "
                "has no feature view; redeploy with enrich=False"
            )
        # compiled once with the statistics the model was trained on: a request queries no catalog
        feature_view = feature_view.serving(mv.training_dataset_version)
    return LoadedModel(spec, mv, scorer, feature_view)


@dataclass
class _Deployed:
    spec: DeploymentSpec
    current: int | None = None  # the version new requests go to
    versions: dict[int, LoadedModel] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reason: str = ""  # why the last load failed
    failed_version: int | None = None  # retried only once the reference resolves elsewhere
    held: bool = False  # unloaded through the repository API: stays unloaded until loaded again


class ModelRepository:
    """The deployments of one project as served by one server process.

    Args:
        project: The project whose deployments are served.
        metrics: The server's metrics.
        request_logger: Receives every inference (or None to log nothing).
        lazy: Load a model on its first request; unload it after ``idle_unload_s``.
        poll_interval_s: How often alias moves and deployment changes are picked up.
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
        self._deployed: dict[str, _Deployed] = {}
        self._task: asyncio.Task[None] | None = None
        self.started = False

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Read the deployments and (unless lazy) load them; then poll for changes."""
        await self._sync_specs()
        if not self.lazy:
            for name in list(self._deployed):
                await self._try_load(name)
        self.started = True
        self._task = asyncio.get_running_loop().create_task(self._poll_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for name in list(self._deployed):
            for version in list(self._deployed[name].versions):
                await self._unload_version(name, version)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.poll()
            except Exception:  # keep serving whatever happens to the catalog
                log.exception("model repository poll failed")

    async def poll(self) -> None:
        """One round: new/stopped deployments, alias moves (hot swap), idle unloads."""
        if self._on_poll is not None:
            await asyncio.to_thread(self._on_poll)
        await self._sync_specs()
        for name, dep in list(self._deployed.items()):
            if dep.current is None:
                if not self.lazy and not dep.held and await self._worth_retrying(dep):
                    await self._try_load(name)
                continue
            if self.lazy and self._idle(dep):
                await self._unload_version(name, dep.current)
                continue
            try:
                target = await asyncio.to_thread(resolve, self.project, dep.spec)
            except FtiError as exc:
                log.warning("deployment %s: cannot resolve %s: %s", name, dep.spec.model, exc)
                continue
            if int(target.version) != dep.current:
                await self.swap(name, int(target.version))

    async def _worth_retrying(self, dep: _Deployed) -> bool:
        if not dep.reason:
            return True
        try:
            target = await asyncio.to_thread(resolve, self.project, dep.spec)
        except FtiError:
            return False
        return int(target.version) != dep.failed_version

    def _idle(self, dep: _Deployed) -> bool:
        now = time.monotonic()
        return all(
            (m.batcher is None or m.batcher.idle) and now - m.last_used > self.idle_unload_s
            for m in dep.versions.values()
        )

    async def _sync_specs(self) -> None:
        specs = await asyncio.to_thread(list_specs, self.project)
        running = {s.name: s for s in specs if s.status == "running"}
        for name in list(self._deployed):
            if name not in running:
                for version in list(self._deployed[name].versions):
                    await self._unload_version(name, version)
                del self._deployed[name]
            elif running[name] != self._deployed[name].spec:  # redeployed with a new config
                old = self._deployed[name]
                new = _Deployed(running[name])
                if not self.lazy and old.current is not None:
                    try:
                        loaded = await asyncio.to_thread(load_model, self.project, new.spec, None)
                        self._attach(loaded)
                        new.versions[loaded.version] = loaded
                        new.current = loaded.version
                    except Exception as exc:  # serve the old config until the new one loads
                        log.error("redeployed %s could not be loaded, keeping the old one: %s", name, exc)
                        continue
                self._deployed[name] = new  # new requests go to the new config from here
                for version in list(old.versions):
                    await self._unload_from(old, name, version)
        for name, spec in running.items():
            self._deployed.setdefault(name, _Deployed(spec))

    # --- loading --------------------------------------------------------------------------
    async def _try_load(self, name: str) -> None:
        dep = self._deployed[name]
        try:
            await self.load(name)
            return
        except FtiError as exc:
            dep.reason = exc.message
            log.error("deployment %s could not be loaded: %s", name, exc.message)
        except Exception as exc:  # a broken artifact must not take the other deployments down
            dep.reason = f"{type(exc).__name__}: {exc}"
            log.exception("deployment %s could not be loaded", name)
        try:
            dep.failed_version = int((await asyncio.to_thread(resolve, self.project, dep.spec)).version)
        except FtiError:
            dep.failed_version = None

    async def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Load ``version`` (default: what the deployment's reference resolves to)."""
        dep = self._get(name)
        dep.held = False
        async with dep.lock:
            if version is not None and version in dep.versions:
                return dep.versions[version]
            if version is None and dep.current is not None:
                return dep.versions[dep.current]
            started = time.perf_counter()
            loaded = await asyncio.to_thread(load_model, self.project, dep.spec, version)
            self._attach(loaded)
            dep.versions[loaded.version] = loaded
            if version is None or dep.current is None:
                dep.current = loaded.version
            dep.reason = ""
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
        counters = loaded.counters = self.metrics.bind(name, version)
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
        """Hot swap: load ``version``, route new requests to it, drain and unload the old one."""
        dep = self._get(name)
        new = await self.load(name, version)
        old = dep.current
        dep.current = new.version
        log.info("deployment %s switched from version %s to %s", name, old, new.version)
        if old is not None and old != new.version:
            await self._unload_version(name, old)

    async def unload(self, name: str, version: int | None = None) -> None:
        """Unload ``version`` (default: every loaded version) after draining its requests."""
        dep = self._get(name)
        versions = [version] if version is not None else list(dep.versions)
        if version is None or version == dep.current:
            dep.held = True  # the poller must not load it back
        for v in versions:
            if v not in dep.versions:
                raise NotFoundError(
                    f"version {v} of model {name!r} is not loaded (loaded: {sorted(dep.versions)})"
                )
            await self._unload_version(name, v)

    async def _unload_version(self, name: str, version: int) -> None:
        dep = self._deployed.get(name)
        if dep is not None:
            await self._unload_from(dep, name, version)

    async def _unload_from(self, dep: _Deployed, name: str, version: int) -> None:
        """Drain (requests already routed finish) and unload one version of ``dep``."""
        async with dep.lock:  # never interleaved with a load of the same deployment
            loaded = dep.versions.get(version)
            if loaded is None:
                return
            if dep.current == version:
                dep.current = None
            if loaded.batcher is not None:
                await loaded.batcher.close()
            if dep.versions.get(version) is loaded:
                dep.versions.pop(version)
        serving = self._deployed.get(name)
        if serving is None or version not in serving.versions:  # not reloaded under a new config
            self.metrics.loaded.labels(name, str(version)).set(0)
        log.info("unloaded %s version %s", name, version)

    # --- lookups --------------------------------------------------------------------------
    def _get(self, name: str) -> _Deployed:
        dep = self._deployed.get(name)
        if dep is None:
            known = sorted(self._deployed)
            raise NotFoundError(f"unknown model {name!r}; deployed models: {known or 'none'}")
        return dep

    async def acquire(self, name: str, version: int | None = None) -> LoadedModel:
        """The loaded model for a request, counted in flight (call :meth:`release` after).

        Raises:
            NotFoundError: unknown deployment, or a version that does not exist.
            ModelNotReadyError: the deployment or version is not loaded (and not lazy).
        """
        dep = self._get(name)
        target = dep.current if version is None else version
        loaded = dep.versions.get(target) if target is not None else None
        if loaded is None:
            if self.lazy:
                loaded = await self.load(name, version)
            else:
                await self._check_version_exists(dep, version)
                hint = f" version {version}" if version is not None else ""
                extra = f" ({dep.reason})" if dep.reason else ""
                raise ModelNotReadyError(
                    f"model {name!r}{hint} is not loaded{extra}; load it with "
                    f"POST /v2/repository/models/{name}/load"
                )
        assert loaded.batcher is not None
        loaded.batcher.expect()
        loaded.last_used = time.monotonic()
        return loaded

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
                f"model {dep.spec.name!r} has no version {version} (loaded: {sorted(dep.versions)})"
            ) from None

    def get_loaded(self, name: str, version: int | None = None) -> LoadedModel | None:
        dep = self._get(name)
        target = dep.current if version is None else version
        return dep.versions.get(target) if target is not None else None

    def ready(self) -> bool:
        """Server readiness: started and every (non-lazy) deployment has a loaded version."""
        if not self.started:
            return False
        return self.lazy or all(d.current is not None for d in self._deployed.values())

    def index(self) -> list[dict[str, Any]]:
        """The repository index: one entry per deployment and loaded version."""
        out: list[dict[str, Any]] = []
        for name, dep in sorted(self._deployed.items()):
            if not dep.versions:
                state = "UNAVAILABLE" if dep.reason else "UNLOADED"
                out.append({"name": name, "version": None, "state": state, "reason": dep.reason})
            for version in sorted(dep.versions):
                out.append({"name": name, "version": str(version), "state": "READY", "reason": ""})
        return out

    def names(self) -> list[str]:
        return sorted(self._deployed)
