"""Traffic splits: which variant of a deployment answers a request.

A deployment serves its model (the **champion**) and optionally named variants, each a model
reference with a share of the traffic in percent (the champion gets the rest)::

    project.serving.deploy("fraud", model="fraud@production",
                           variants={"challenger": ("fraud:4", 10)}, sticky="cc_num")

The split is part of the deployment's row in the catalog, so every worker process and every server
on the catalog routes alike. Inside a server each variant is its own entry of the model repository
(named ``"<deployment>/<variant>"``, which no deployment name can be), so it loads, hot-swaps,
drains and fails on its own, with its own model version's feature view for enrichment.

Routing is deterministic per sticky key: the ``X-Fti-Route-Key`` header (gRPC: the
``x-fti-route-key`` metadata), else the value of the deployment's ``sticky`` input in the
request's first row, hashed (BLAKE2b, the same in every
process) to a point in [0, 1). Variants own the low end of that interval in a fixed order and the
champion the rest, so growing a variant's share (a canary's steps) only moves entities from the
champion to the variant, never back and forth. Without a key the point is random. A request
routed to a variant that is not loaded (loading, failed) is answered by the champion.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fti._names import check_name
from fti.errors import ModelNotReadyError, NotFoundError, ValidationError
from fti.types import ModelRef

if TYPE_CHECKING:
    from fti.serving.loaded import LoadedModel
    from fti.serving.protocol import InferRequest
    from fti.serving.records import DeploymentSpec
    from fti.serving.repository import ModelRepository

CHAMPION = "champion"
"""The variant name of a deployment's own model."""
SHADOW = "shadow"
"""The variant name of a deployment's shadow model (sees requests, answers none)."""
ROUTE_KEY_HEADER = "x-fti-route-key"
_RESERVED = (CHAMPION, SHADOW)


def internal_name(deployment: str, variant: str) -> str:
    """The model repository's name of a variant (the champion keeps the deployment's name)."""
    return deployment if variant == CHAMPION else f"{deployment}/{variant}"


def split_name(internal: str) -> tuple[str, str]:
    """``(deployment, variant)`` of a model repository name."""
    deployment, _, variant = internal.partition("/")
    return deployment, variant or CHAMPION


def is_variant(internal: str) -> bool:
    """True for a repository entry that is a variant (or shadow) rather than a deployment."""
    return "/" in internal


@dataclass(frozen=True)
class Split:
    """The routing table of one deployment: variants with their shares, and the sticky input."""

    deployment: str
    weights: tuple[tuple[str, float], ...]
    """``(variant, percent)`` of each variant, champion excluded (it gets the rest); empty for a
    deployment that only has a shadow."""
    sticky: str | None = None
    shadow: bool = False
    """Whether a copy of each request goes to the deployment's shadow (``fti.serving.shadow``)."""

    def pick(self, key: str | None) -> str:
        """The variant for a route key (random when None)."""
        point = random.random() if key is None else bucket(key)
        edge = 0.0
        for variant, percent in self.weights:
            edge += percent / 100.0
            if point < edge:
                return variant
        return CHAMPION

    def key(self, headers: Mapping[str, str], payload: Any) -> str | None:
        """The request's route key: the header, else the sticky input's first value."""
        header = headers.get(ROUTE_KEY_HEADER)
        if header:
            return header
        if self.sticky is None or not isinstance(payload, dict):
            return None
        for item in payload.get("inputs") or ():
            if isinstance(item, dict) and item.get("name") == self.sticky:
                data = item.get("data")
                while isinstance(data, list) and data:
                    data = data[0]
                return None if data is None or isinstance(data, list) else str(data)
        return None

    def key_of(self, route_key: str | None, request: InferRequest | None) -> str | None:
        """The route key of a parsed request (gRPC, KServe V1): ``route_key`` (the
        ``x-fti-route-key`` metadata or header), else the sticky input's first value as text,
        as :meth:`key` reads it from JSON (an id ``42`` is ``"42"`` whichever way it came)."""
        if route_key:
            return route_key
        if self.sticky is None or request is None:
            return None
        for item in request.inputs:
            if item.name == self.sticky and item.data.size:
                first = item.data.reshape(-1)[0]
                value = first.item() if hasattr(first, "item") else first
                return value.decode() if isinstance(value, bytes) else str(value)
        return None


def bucket(key: str) -> float:
    """A point in [0, 1) for ``key``: the same in every process and on every server."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def expand(specs: Iterable[DeploymentSpec]) -> tuple[dict[str, DeploymentSpec], dict[str, Split]]:
    """The repository entries of running deployments (each variant and shadow its own entry, with
    the deployment's configuration) and the split of each deployment that routes."""
    entries: dict[str, DeploymentSpec] = {}
    splits: dict[str, Split] = {}
    for spec in specs:
        base = replace(spec, variants=(), sticky=None, shadow=None)
        entries[spec.name] = base  # routing changes never reload the champion
        children = [(name, ref) for name, ref, _ in spec.variants]
        if spec.shadow is not None:
            children.append((SHADOW, spec.shadow))
        for variant, text in children:
            ref = ModelRef.parse(text)
            entries[internal_name(spec.name, variant)] = replace(
                base, name=internal_name(spec.name, variant), model=str(ModelRef(ref.name, alias=ref.alias)),
                model_version=ref.version,
            )  # fmt: skip
        if spec.variants or spec.shadow is not None:
            weights = tuple((n, w) for n, _, w in spec.variants)
            splits[spec.name] = Split(spec.name, weights, spec.sticky, spec.shadow is not None)
    return entries, splits


async def acquire(repository: ModelRepository, split: Split, variant: str) -> tuple[str, LoadedModel]:
    """The loaded model of ``variant`` (counted in flight), or the champion's when the variant
    cannot answer now; returns the variant that answers."""
    if variant != CHAMPION:
        try:
            return variant, await repository.acquire(internal_name(split.deployment, variant))
        except (ModelNotReadyError, NotFoundError):
            pass  # a variant still loading (or broken) never fails a request: the champion answers
    return CHAMPION, await repository.acquire(split.deployment)


def response_variant(split: Split, variant: str) -> str | None:
    """The variant a response names: None (no ``parameters``) unless the traffic is split, so a
    shadow changes no byte of a response."""
    return variant if split.weights else None


def check_variants(variants: object) -> tuple[tuple[str, str, float], ...]:
    """``{name: (model reference, percent)}`` as stored, checked (references not resolved).

    Raises:
        ValidationError: a bad name, reference or share, or shares summing past 100.
    """
    if variants is None:
        return ()
    if not isinstance(variants, Mapping):
        raise ValidationError(
            f"variants must be a dict {{name: (model reference, percent)}}, got {type(variants).__name__}"
        )
    out: list[tuple[str, str, float]] = []
    for name, value in variants.items():
        check_name(name, "variant")
        if name in _RESERVED:
            raise ValidationError(f"variant name {name!r} is reserved; pick another (e.g. 'challenger')")
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise ValidationError(
                f"variant {name!r} must be (model reference, percent), e.g. ('fraud:4', 10), got {value!r}"
            )
        ref, weight = value
        check_share(weight, f"variant {name!r}")
        out.append((name, str(ModelRef.parse(ref)), float(weight)))
    total = sum(w for _, _, w in out)
    if total > 100.0 + 1e-9:
        raise ValidationError(
            f"variant shares sum to {total:g} %; they are percentages of the traffic (the champion "
            "gets the rest), so they must sum to at most 100"
        )
    return tuple(out)


def check_share(weight: object, what: str) -> None:
    """A traffic share: a finite number of percent, more than 0 and at most 100."""
    ok = isinstance(weight, int | float) and not isinstance(weight, bool) and math.isfinite(weight)
    if not ok or not 0 < float(weight) <= 100:  # type: ignore[arg-type]
        raise ValidationError(f"{what}: the share must be a percentage in (0, 100], got {weight!r}")
