"""Cached verified conversions that run without loading the native model.

When :func:`fti.registry.scoring.get_scorer` picks a converted (ONNX) scorer as the winner for a
model version and caches it, it also writes a manifest next to the cached graph: which graph file,
its SHA-256, the input dtype, the output names and dtypes, the post-processing of the raw score
(link and classes, for HistGradientBoosting) and a verification sample with the native model's
outputs on it. :func:`load` rebuilds the scorer from the manifest alone (numpy and ONNX Runtime:
no scikit-learn, skops or PyTorch import, which is most of a model server's cold start and
memory) and accepts it only if

* the manifest's builder is the remembered winner of the same cache key (the key names the
  model's artifact digests, so a changed model never finds a stale conversion),
* the graph file's digest matches the one recorded when it was verified, and
* the rebuilt scorer reproduces the stored native outputs on the stored sample (the same
  tolerance as the original verification).

Anything else (missing, corrupt or mismatching entry) returns ``None``: the caller loads the
native model and goes through ``get_scorer`` as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from fti.registry.scoring import OnnxScorer, Scorer

log = logging.getLogger("fti.registry")

SUFFIX = ".scorer.json"
FORMAT = 1
VERIFY_ROWS = 256
"""Rows of the verification sample kept in the manifest (and re-checked at every load)."""


def stored_key(cache_key: str) -> str:
    """The file-name stem under which ``get_scorer(..., cache_key=cache_key)`` caches its files."""
    from fti.registry import scoring

    return scoring._key(cache_key)


def path(cache: Path, cache_key: str) -> Path:
    """The manifest file of ``cache_key`` (as given to ``get_scorer``)."""
    return cache / f"{stored_key(cache_key)}{SUFFIX}"


def write(
    cache: Path,
    key: str,
    builder: str,
    scorer: OnnxScorer,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    *,
    classes: Any = None,
) -> bool:
    """Record ``scorer`` (the verified winner ``builder`` of the stored key ``key``) so it can be
    rebuilt alone, with the native model's ``classes`` (None for models without) when they are
    JSON values.

    The manifest is written only if a scorer rebuilt from it reproduces ``reference`` on the
    kept sample rows; returns whether it was written.
    """
    import numpy as np

    from fti.registry import scoring

    artifact = getattr(scorer, "artifact", None)
    if artifact is None or (scorer.has_post and scorer.post_spec is None):
        return False
    if any(value.dtype == object for value in reference.values()):
        return False  # labels that JSON cannot round-trip exactly
    rows = np.asarray(sample[:VERIFY_ROWS], dtype=np.float64)
    graph = (cache / f"{key}{artifact}").read_bytes()
    manifest = {
        "format": FORMAT,
        "key": key,
        "builder": builder,
        "artifact": artifact,
        "sha256": hashlib.sha256(graph).hexdigest(),
        "dtype": np.dtype(scorer.dtype).str,
        "outputs": list(scorer.output_names),
        "casts": {name: np.dtype(dtype).str for name, dtype in scorer.casts.items()},
        "post": scorer.post_spec,
        "sample": rows.tolist(),
        "reference": {name: _encode(value[:VERIFY_ROWS]) for name, value in reference.items()},
    }
    labels = None if classes is None else np.asarray(classes).tolist()
    if labels is None or all(type(label) in (int, str, bool) for label in labels):
        manifest["classes"] = labels  # absent: not recorded (other types, or older manifests)
    text = json.dumps(manifest)
    if _build(json.loads(text), graph) is None:
        return False
    scoring._write_atomic(cache / f"{key}{SUFFIX}", text.encode())
    return True


def load(cache: Path | None, cache_key: str) -> Scorer | None:
    """The verified converted scorer cached for ``cache_key`` (as given to ``get_scorer``), built
    without the native model, or None."""
    if cache is None:
        return None
    key = stored_key(cache_key)
    file = cache / f"{key}{SUFFIX}"
    choice = cache / f"{key}.choice"
    if not file.exists() or not choice.exists():
        return None
    try:
        manifest = json.loads(file.read_text())
        if manifest.get("format") != FORMAT or manifest.get("key") != key:
            return None
        if manifest.get("builder") != choice.read_text().strip():
            return None  # the remembered winner changed since the manifest was written
        graph = (cache / f"{key}{manifest['artifact']}").read_bytes()
        if hashlib.sha256(graph).hexdigest() != manifest["sha256"]:
            log.warning("cached scorer %s does not match its recorded digest; ignoring it", key)
            return None
        scorer = _build(manifest, graph)
    except Exception as exc:  # unreadable, truncated or foreign cache entries: not usable
        log.warning("cached scorer %s is unusable (%s); loading the native model", key, exc)
        return None
    if scorer is None:
        log.warning("cached scorer %s no longer reproduces its verified outputs; ignoring it", key)
    return scorer


def _build(manifest: dict[str, Any], graph: bytes) -> Scorer | None:
    """The scorer a manifest describes, if it reproduces the manifest's reference outputs."""
    import numpy as np

    from fti.registry import scoring

    post = None
    if manifest["post"] is not None:
        from fti.registry import _onnx_hgb

        spec = manifest["post"]

        def post(raw: np.ndarray) -> dict[str, np.ndarray]:
            return _onnx_hgb.outputs_from_spec(spec, raw)

    scorer = scoring.OnnxScorer(graph, manifest["outputs"], np.dtype(manifest["dtype"]), post)
    scorer.casts = {name: np.dtype(dtype) for name, dtype in manifest["casts"].items()}
    scorer.artifact = manifest["artifact"]
    scorer.post_spec = manifest["post"]
    if "classes" in manifest:
        scorer.classes = manifest["classes"]
    sample = np.asarray(manifest["sample"], dtype=np.float64)
    reference = {name: _decode(value) for name, value in manifest["reference"].items()}
    if len(sample) == 0 or not scoring._agrees(scoring._safe_predict(scorer, sample), reference):
        return None
    return scorer


def _encode(value: np.ndarray) -> dict[str, Any]:
    return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}


def _decode(value: dict[str, Any]) -> np.ndarray:
    import numpy as np

    return np.asarray(value["data"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
