"""Deployments: a model reference served under a name, stored in the catalog.

``project.serving.deploy("fraud", model="fraud@production")`` records the deployment; a running
``fti serve`` picks it up within its poll interval. ``Deployment.predict`` goes over HTTP to the
server when one runs for this home and project, else predicts in-process through the same
dataplane code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti._names import check_name
from fti.errors import NotFoundError, ValidationError
from fti.inference.selection import PREFER
from fti.serving import records
from fti.serving.records import DeploymentSpec
from fti.types import ModelRef

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fti.project import Project
    from fti.serving.repository import LoadedModel
    from fti.serving.rollouts import Rollout

__all__ = [
    "Deployment",
    "DeploymentSpec",
    "Serving",
    "list_specs",
    "running_server",
    "server_file",
    "to_inputs",
]


def _check_positive(value: object, what: str, *, allow_zero: bool = False) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        raise ValidationError(
            f"{what} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
        )


def list_specs(project: Project) -> list[DeploymentSpec]:
    """Every deployment of the project (running and stopped), by name."""
    return [found.spec for found in records.list_deployments(project.backends.catalog, project.id)]


def server_file(project: Project) -> Path:
    """Where a running server of this home announces its URL (removed when it stops)."""
    return project.settings.home / "serving" / "server.json"


def running_server(project: Project) -> str | None:
    """The URL of a live server for this project, if one announced itself."""
    path = server_file(project)
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.get("project") != project.name:
        return None
    return str(info["url"])


class Deployment:
    """A deployed model: predict, stop, start, delete."""

    def __init__(self, project: Project, spec: DeploymentSpec, created_at: datetime | None = None) -> None:
        self._project = project
        self.spec = spec
        self.created_at = created_at
        self._local: LoadedModel | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model(self) -> str:
        """The followed reference as stored: ``"name"`` (latest) or ``"name@alias"``."""
        return self.spec.model

    @property
    def ref(self) -> ModelRef:
        """The model reference served (``fraud:3`` when a version is pinned)."""
        return self.spec.ref

    @property
    def status(self) -> str:
        return self.spec.status

    def __repr__(self) -> str:
        return f"Deployment(name={self.name!r}, model={str(self.ref)!r}, status={self.status!r})"

    def _repr_html_(self) -> str:
        """The deployment in a notebook: what it follows, the version it serves and its settings."""
        from fti._display import Card
        from fti.errors import FtiError

        try:
            serving: Any = self.model_version().ref
        except FtiError as exc:  # e.g. the model or its alias is gone: say so instead of failing
            serving = exc.message
        card = Card("Deployment", repr(self.name))
        card.fields = [
            ("model", str(self.ref)),
            ("serves", serving),
            ("status", self.status),
            ("created", self.created_at),
            *self.spec.config().items(),
        ]
        return card.html()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "model_version": self.spec.model_version,
            "status": self.status,
            "config": {
                **self.spec.config(),
                "variants": {n: {"model": ref, "percent": w} for n, ref, w in self.spec.variants},
            },
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    def model_version(self) -> Any:
        """The registry's model version this deployment serves now (its pinned version, else
        where its alias points, else the model's latest version)."""
        from fti.serving.repository import resolve

        return resolve(self._project, self.spec)

    def predict(
        self, data: Any, *, api_key: str | None = None, timeout_s: float = 30.0
    ) -> dict[str, list[Any]]:
        """Predict one row (a dict), several (a list of dicts, a dict of lists, a DataFrame).

        For an enriched deployment send the primary-key values (plus any passed features).
        Goes through the running server when there is one, else predicts in-process.

        Returns:
            ``{output_name: [one value (or list) per row]}``.
        """
        from fti.serving.protocol import parse_infer_request

        declared = {s.name: s.datatype for s in self.model_version().signature.inputs}
        body = {"inputs": to_inputs(data, declared)}
        url = running_server(self._project)
        if url is not None:
            return self._predict_http(url, body, api_key, timeout_s)
        request = parse_infer_request(body)
        loaded = self._load_local()
        prepared = loaded.prepare(request)
        outputs = loaded.predict(prepared.matrix)
        return {name: array.tolist() for name, array in outputs.items()}

    def _load_local(self) -> LoadedModel:
        from fti.serving.repository import load_model, resolve

        current = resolve(self._project, self.spec)
        if self._local is None or self._local.version != int(current.version):
            self._local = load_model(self._project, self.spec, int(current.version))
        return self._local

    def _predict_http(
        self, url: str, body: dict[str, Any], api_key: str | None, timeout_s: float
    ) -> dict[str, Any]:
        import httpx
        import numpy as np

        key = api_key or next(iter((self._project.settings.api_keys or "").split(",")), "").strip()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.post(
            f"{url}/v2/models/{self.name}/infer", json=body, headers=headers, timeout=timeout_s
        )
        payload = response.json()
        if response.status_code != 200:
            from fti.serving.app import error_for_status

            raise error_for_status(response.status_code, str(payload.get("error", payload)))
        return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]).tolist() for o in payload["outputs"]}

    def stop(self) -> None:
        """Stop serving (the server unloads it at its next poll); the deployment stays recorded."""
        self._set_status("stopped")

    def start(self) -> None:
        """Serve a stopped deployment again."""
        self._set_status("running")

    def _set_status(self, status: str) -> None:
        records.set_deployment_status(self._project.backends.catalog, self._project.id, self.name, status)
        self.spec = DeploymentSpec(**{**asdict(self.spec), "status": status})

    def delete(self) -> None:
        """Remove the deployment (its inference log feature group is kept)."""
        records.delete_deployment(self._project.backends.catalog, self._project.id, self.name)
        self._local = None


def to_inputs(data: Any, datatypes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """V2 ``inputs`` (one column tensor per field) from a dict, list of dicts or DataFrame.

    Args:
        data: The rows.
        datatypes: The model's input datatypes by name (the server refuses any other); a
            column not named here gets the datatype its values suggest.
    """
    columns: dict[str, list[Any]]
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        columns = {str(c): list(data[c].tolist()) for c in data.columns}
    elif isinstance(data, dict):
        if data and all(isinstance(v, list | tuple) for v in data.values()):
            columns = {str(k): list(v) for k, v in data.items()}
        else:
            columns = {str(k): [v] for k, v in data.items()}
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        names = list(data[0])
        columns = {n: [r.get(n) for r in data] for n in names}
    else:
        raise ValidationError(
            f"predict takes a dict (one row), a list of dicts, a dict of lists or a DataFrame, got {type(data).__name__}"
        )
    if not columns:
        raise ValidationError("predict got no columns")
    inputs = []
    for name, values in columns.items():
        values = [v.item() if hasattr(v, "item") else v for v in values]
        values = [v.isoformat() if isinstance(v, datetime | date) else v for v in values]  # times as text
        inputs.append(
            {
                "name": name,
                "shape": [len(values)],
                "datatype": (datatypes or {}).get(name) or guess_datatype(name, values),
                "data": values,
            }
        )
    return inputs


def guess_datatype(name: str, values: list[Any]) -> str:
    """The OIP datatype of a column of JSON-like values (for clients that do not know the model's)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if (
        present
        and all(isinstance(v, int) and not isinstance(v, bool) for v in present)
        and len(present) == len(values)
    ):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "FP64"
    if all(isinstance(v, str) for v in present):
        return "BYTES"
    raise ValidationError(f"column {name!r} mixes types {sorted({type(v).__name__ for v in present})}")


class Serving:
    """The deployments of one project. Get it as ``project.serving``."""

    def __init__(self, project: Project) -> None:
        self._project = project

    def deploy(
        self,
        name: str,
        model: str | ModelRef,
        *,
        version: int | None = None,
        max_batch_size: int = 32,
        max_batch_delay_ms: float = 2.0,
        max_queue_size: int = 1024,
        timeout_ms: int = 10_000,
        enrich: bool = False,
        allow_missing: bool = False,
        log_requests: bool = True,
        scorer: str = "fastest",
        variants: Mapping[str, tuple[str | ModelRef, float]] | None = None,
        sticky: str | None = None,
        shadow: str | ModelRef | None = None,
    ) -> Deployment:
        """Create (or update) the deployment ``name`` serving ``model``.

        Args:
            name: The deployment (and endpoint) name: 1-63 lowercase letters, digits or ``_``.
            model: ``"name@alias"`` to follow an alias (hot swap when it moves), ``"name"`` for
                the latest version, or ``"name:3"`` to pin version 3 (see
                :class:`fti.types.ModelRef`).
            version: Pin a version (the same as ``model="name:<version>"``).
            max_batch_size: Most rows merged into one predict call (1 disables batching).
            max_batch_delay_ms: Longest a batch waits for more concurrent requests.
            max_queue_size: Requests waiting per model before the server answers 503.
            timeout_ms: Longest a request waits for its prediction before 504.
            enrich: Take primary keys and look up the model's feature view online.
            allow_missing: Accept null/NaN feature values (for models that handle them).
            log_requests: Append every inference to the ``<name>_inference_log`` feature group.
            scorer: ``"fastest"`` (the quickest of the native model and its conversions, e.g.
                ONNX Runtime, each verified against the native predictions on the input
                example), ``"converted"`` (the first verified conversion) or ``"native"``.
            variants: A traffic split: ``{"challenger": ("fraud:4", 10)}`` sends 10 % of the
                requests to version 4 and the rest to ``model`` (the champion); each variant
                enriches with its own model version's feature view (see :mod:`fti.serving.routing`).
            sticky: An input whose value routes each request (the same entity always reaches the
                same variant); a request's ``X-Fti-Route-Key`` header wins over it.
            shadow: A model reference that gets a copy of every request after the answer is
                computed, off the request path; its outputs go to the inference log only (see
                :mod:`fti.serving.shadow`).

        Raises:
            ValidationError: a bad argument (shares summing past 100, a sticky key that is not an
                input). SchemaError: a variant whose key inputs differ from the champion's.
            NotFoundError: a model reference does not resolve. ConflictError: a rollout of the
                deployment is running or paused.
        """
        check_name(name, "deployment")
        if len(name) > 49:
            raise ValidationError(
                f"deployment name {name!r} is too long: use at most 49 characters (the inference log "
                "feature group is named '<deployment>_inference_log')"
            )
        ref = ModelRef.parse(model).pin(version)
        # stored as before: the followed reference ("name" or "name@alias") and the pinned version
        model, version = str(ModelRef(ref.name, alias=ref.alias)), ref.version
        _check_positive(max_batch_size, "max_batch_size")
        if not isinstance(max_batch_size, int):
            raise ValidationError(f"max_batch_size must be an integer, got {max_batch_size!r}")
        _check_positive(max_batch_delay_ms, "max_batch_delay_ms", allow_zero=True)
        _check_positive(max_queue_size, "max_queue_size")
        _check_positive(timeout_ms, "timeout_ms")
        for flag, value in (
            ("enrich", enrich),
            ("allow_missing", allow_missing),
            ("log_requests", log_requests),
        ):
            if not isinstance(value, bool):
                raise ValidationError(f"{flag} must be True or False, got {value!r}")
        if scorer not in PREFER:
            raise ValidationError(f"scorer must be one of {PREFER}, got {scorer!r}")
        from fti.serving import routing

        split = routing.check_variants(variants)
        if sticky is not None and (not isinstance(sticky, str) or not split):
            raise ValidationError(
                f"sticky must name an input, and routes between variants (give variants), got {sticky!r}"
            )
        spec = DeploymentSpec(
            name, model, version, int(max_batch_size), float(max_batch_delay_ms), int(max_queue_size),
            int(timeout_ms), enrich, allow_missing, log_requests, scorer, variants=split, sticky=sticky,
            shadow=None if shadow is None else str(ModelRef.parse(shadow)),
        )  # fmt: skip
        from fti.serving.rollouts import records as rollout_records

        active = rollout_records.find(self._project.backends.catalog, self._project.id, name)
        if active is not None and active.state in rollout_records.ACTIVE:
            from fti.errors import ConflictError

            raise ConflictError(
                f"deployment {name!r} has a {active.state} rollout (#{active.id}) that owns its traffic "
                f"split; wait for it to end or abort it (fti rollout abort {name}) before redeploying"
            )
        entries, _ = routing.expand([spec])
        inputs = {entry: self._check_model(entry_spec) for entry, entry_spec in entries.items()}
        champion = inputs.pop(name)
        for entry, keys in inputs.items():
            if keys != champion:
                from fti.errors import SchemaError

                raise SchemaError(
                    f"variant {routing.split_name(entry)[1]!r} takes the inputs {sorted(keys)} but the "
                    f"champion {spec.ref} takes {sorted(champion)}: a variant must take the same key "
                    "inputs, so any request can go to either"
                )
        if sticky is not None and sticky not in champion:
            raise ValidationError(
                f"sticky key {sticky!r} is not an input of the deployment; use one of {sorted(champion)}"
            )
        records.save_deployment(self._project.backends.catalog, self._project.id, spec)
        return self.get(name)

    def _check_model(self, spec: DeploymentSpec) -> frozenset[str]:
        """Resolve ``spec``'s model (it must exist now), convert and verify its scorer, and
        return the inputs a request sends it (key columns when enriched)."""
        from fti.serving.repository import load_model, resolve

        mv = resolve(self._project, spec)
        if spec.enrich and mv.feature_view_name is None:
            raise ValidationError(
                f"enrich=True needs a model with a feature view; {mv.name!r} version {mv.version} has none"
            )
        if spec.scorer != "native":
            # convert and verify now (cached per model version), so servers start without converting
            load_model(self._project, spec, int(mv.version))
        if spec.enrich:
            return frozenset(mv.feature_view().primary_key)
        return frozenset(s.name for s in mv.signature.inputs)

    def rollout(
        self, name: str, *, to: str | ModelRef, steps: Sequence[float] = (5, 25, 50, 100), every: Any = "10m",
        gates: Mapping[str, str] | None = None, min_requests: int = 100,
    ) -> Rollout:  # fmt: skip
        """Start a canary rollout of ``to`` on deployment ``name`` (which must follow an alias).

        The candidate gets ``steps[0]`` % of the traffic now; the scheduler (``fti scheduler``)
        moves it through ``steps`` every ``every`` while the gates hold, rolls the traffic back
        to the champion at once when a gate fails, and moves the alias after the last step (see
        :mod:`fti.serving.rollouts.machine`).

        Args:
            to: The candidate version (``"fraud:4"``, or a reference resolved now).
            steps: Increasing percentages ending at 100.
            every: How long each step lasts: ``"10m"``, ``"30s"``, seconds or a timedelta.
            gates: ``{"error_rate": "< 0.01", "p99_ms": "< 50"}``, or relative to the champion in
                the same step: ``{"p99_ms": "<= champion * 1.2"}`` (:mod:`fti.serving.rollouts.gates`).
            min_requests: Canary requests a step needs before its gates are judged.

        Raises:
            ValidationError: bad steps, duration or gates; a deployment pinned to a version.
            NotFoundError: unknown deployment or version. ConflictError: a rollout is active.
            SchemaError: a candidate whose key inputs differ from the champion's.
        """
        from datetime import UTC, datetime

        from fti.serving.rollouts import machine

        machine.start(self._project, name, to, steps=list(steps) if isinstance(steps, tuple) else steps,
                      every=every, gates=gates, min_requests=min_requests, now=datetime.now(UTC))  # fmt: skip
        return self.get_rollout(name)

    def get_rollout(self, name: str) -> Rollout:
        """The latest rollout of deployment ``name`` (NotFoundError when it never had one)."""
        from fti.serving.rollouts import Rollout
        from fti.serving.rollouts import records as rollout_records

        self.get(name)
        found = rollout_records.find(self._project.backends.catalog, self._project.id, name)
        if found is None:
            raise NotFoundError(
                f"deployment {name!r} has no rollout; start one with serving.rollout({name!r}, to=...)"
            )
        return Rollout(self._project, found)

    def get(self, name: str) -> Deployment:
        """The deployment ``name``."""
        check_name(name, "deployment")
        found = records.find_deployment(self._project.backends.catalog, self._project.id, name)
        if found is None:
            known = [d.name for d in self.list()]
            raise NotFoundError(
                f"deployment {name!r} not found in project {self._project.name!r} (deployments: {known or 'none'})"
            )
        return Deployment(self._project, found.spec, found.created_at)

    def list(self) -> list[Deployment]:
        """Every deployment of the project, by name."""
        return [
            Deployment(self._project, found.spec, found.created_at)
            for found in records.list_deployments(self._project.backends.catalog, self._project.id)
        ]
