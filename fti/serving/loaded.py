"""A loaded model version of a deployment, and how one is resolved and loaded.

:func:`resolve` finds the registry's model version a deployment serves; :func:`load_model` loads
it with its scorer (from the home's scorer cache) and, for an enriched deployment, the compiled
feature view; :class:`LoadedModel` is what a request uses (validation, the input matrix, the
dynamic batcher). The model repository (``fti.serving.repository``) decides which versions are
loaded.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from fti.errors import FtiError, ModelNotReadyError, PermissionDeniedError
from fti.serving import dataplane
from fti.serving.batching import Batcher
from fti.serving.deployments import DeploymentSpec

if TYPE_CHECKING:
    import numpy as np

    from fti.inference.base import Scorer
    from fti.project import Project
    from fti.registry.model_version import ModelVersion
    from fti.serving.protocol import InferRequest
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
        self.last_inference_ms = 0  # epoch milliseconds of the last successful inference (statistics)
        self.retiring = False  # replaced or unloaded: new requests no longer come here
        # the one-numpy-call lane for well-formed requests (plain, all-numeric signatures)
        self.feature_names = tuple(s.name for s in self.signature.inputs)
        """The model's inputs in matrix order, shared by every inference-log record."""
        self.fast_datatypes = [s.datatype for s in self.signature.inputs]
        self.fast_order: dict[str, int] | None = (
            {s.name: j for j, s in enumerate(self.signature.inputs)}
            if feature_view is None
            and set(self.fast_datatypes) <= {"FP64", "INT64"}
            and not spec.allow_missing
            else None
        )
        self.counters: Any = None  # metric children bound to (model, version) by the repository
        self.enrich_plan = (
            None if feature_view is None else dataplane.EnrichPlan.of(feature_view, self.signature)
        )
        # a lookup in an in-process store (SQLite) takes microseconds: cheaper on the event loop
        # than a hop to a worker thread (~50 us of CPU); a networked store (Redis) is awaited
        self.prepare_inline = feature_view is None or bool(getattr(feature_view, "reads_in_process", False))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def scorer_kind(self) -> str:
        """``native``, ``onnx`` or ``compiled`` (a cached conversion may fall back to native)."""
        return self.scorer.kind

    def fast_prepare(self, payload: Any) -> dataplane.PreparedRequest | None:
        """The matrix of a well-formed request without building per-input objects (for an
        enriched deployment only when its online store reads in process: this runs on the event
        loop); None when the careful path must take it."""
        if self.enrich_plan is not None:
            if not self.prepare_inline:
                return None
            return dataplane.fast_enriched(
                payload, self.enrich_plan, self.feature_view, self.spec.allow_missing
            )
        if self.fast_order is None:
            return None
        return dataplane.fast_plain(payload, self.fast_order, self.fast_datatypes)

    def prepare(self, request: InferRequest) -> dataplane.PreparedRequest:
        """Validate the request and build the input matrix (enrichment does I/O: call in a thread
        when enriching)."""
        dataplane.check_requested_outputs(request.outputs, self.signature)
        if self.feature_view is not None:
            return dataplane.prepare_enriched(
                request,
                self.feature_view,
                self.signature,
                allow_missing=self.spec.allow_missing,
                plan=self.enrich_plan,
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

    A ``pyfunc`` model is refused (``PermissionDeniedError``) before anything is imported unless
    the ``pyfunc`` setting (``FTI_PYFUNC``) allows its module.

    The scorer comes from the home's :class:`~fti.inference.ScorerCache`: a verified conversion
    cached for these exact artifacts runs without the native model (no scikit-learn, skops or
    PyTorch import: most of the cold start and idle memory); otherwise the native model is loaded
    and its fastest verified scorer chosen (and cached, so a restart does not convert again).
    """
    from fti.inference.cache import ScorerCache

    mv = resolve(project, spec, version)
    if mv.flavor == "pyfunc":  # importing its module runs code: only what FTI_PYFUNC allows
        refusal = project.settings.pyfunc_refusal(str(mv.flavor_options.get("function", "")))
        if refusal is not None:
            raise PermissionDeniedError(refusal)
    scorer = ScorerCache.for_settings(project.settings).get(mv, prefer=spec.scorer)
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
