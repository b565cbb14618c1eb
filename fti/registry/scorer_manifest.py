"""Cached verified conversions that run without loading the native model.

When :func:`fti.registry.scoring.get_scorer` picks a converted scorer (an ONNX graph, or a
LightGBM forest compiled by lleaves) as the winner for a model version and caches it, it also
writes a manifest next to the cached files: which files, their SHA-256, for ONNX the input dtype,
the output names and dtypes and the post-processing of the raw score (link and classes, for
HistGradientBoosting), the model's classes, and a verification sample with the native model's
outputs on it. :func:`load` rebuilds the scorer from the manifest alone (numpy and ONNX Runtime
or lleaves: no scikit-learn, LightGBM, skops or PyTorch import, which is most of a model server's
cold start and memory) and accepts it only if

* the manifest's builder is the remembered winner of the same cache key (the key names the
  model's artifact digests, so a changed model never finds a stale conversion),
* the cached files' digests match the ones recorded when they were verified (a compiled
  library is loaded only then), and
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
    scorer: Scorer,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    *,
    classes: Any = None,
) -> bool:
    """Record ``scorer`` (the verified winner ``builder`` of the stored key ``key``: an ONNX graph
    or a compiled LightGBM forest) so it can be rebuilt alone, with the native model's
    ``classes`` (None for models without) when they are JSON values.

    The manifest is written only if a scorer rebuilt from it reproduces ``reference`` on the
    kept sample rows; returns whether it was written.
    """
    import numpy as np

    from fti.registry import scoring

    compiled = isinstance(scorer, scoring.CompiledLightGBMScorer)
    artifact = getattr(scorer, "artifact", None)
    if artifact is None:
        return False
    if any(value.dtype == object for value in reference.values()):
        return False  # labels that JSON cannot round-trip exactly
    labels = None if classes is None else np.asarray(classes).tolist()
    known = labels is None or all(type(label) in (int, str, bool) for label in labels)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "key": key,
        "builder": builder,
        "kind": scorer.kind,
        "artifact": artifact,
        "sha256": _digest(cache / f"{key}{artifact}"),
        "sample": np.asarray(sample[:VERIFY_ROWS], dtype=np.float64).tolist(),
        "reference": {name: _encode(value[:VERIFY_ROWS]) for name, value in reference.items()},
    }
    if known:
        manifest["classes"] = labels  # absent: not recorded (other types, or older manifests)
    if compiled:
        if not known:
            return False  # the compiled forest needs the classes to name its labels
        suffix = scoring.CompiledLightGBMScorer.model_file_suffix
        manifest["model_file"] = suffix
        manifest["model_sha256"] = _digest(cache / f"{key}{suffix}")
    else:
        onnx: OnnxScorer = scorer  # type: ignore[assignment]
        if onnx.has_post and onnx.post_spec is None:
            return False
        manifest["dtype"] = np.dtype(onnx.dtype).str
        manifest["outputs"] = list(onnx.output_names)
        manifest["casts"] = {name: np.dtype(dtype).str for name, dtype in onnx.casts.items()}
        manifest["post"] = onnx.post_spec
    text = json.dumps(manifest)
    if _build(json.loads(text), cache) is None:
        return False
    scoring._write_atomic(cache / f"{key}{SUFFIX}", text.encode())
    return True


def load_version(cache: Path | None, version: Any) -> Scorer | None:
    """The verified converted scorer cached for a registered model version, or None.

    The version's stored artifacts are still checked against their recorded digests (as
    ``version.load()`` does), so a tampered model version fails whatever the cache holds.

    Raises:
        IntegrityError: a stored artifact of ``version`` was changed or is missing.
    """
    from fti.registry.scoring import cache_key

    scorer = load(cache, cache_key(version))
    if scorer is not None:
        version.verify()
    return scorer


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
        scorer = _build(manifest, cache)
    except _Tampered:
        log.warning("cached scorer %s does not match its recorded digest; ignoring it", key)
        return None
    except Exception as exc:  # unreadable, truncated or foreign cache entries: not usable
        log.warning("cached scorer %s is unusable (%s); loading the native model", key, exc)
        return None
    if scorer is None:
        log.warning("cached scorer %s no longer reproduces its verified outputs; ignoring it", key)
    return scorer


class _Tampered(Exception):
    """A cached file does not match the digest recorded when it was verified."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked(path: Path, digest: str) -> bytes:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise _Tampered(path.name)
    return data


def _build(manifest: dict[str, Any], cache: Path) -> Scorer | None:
    """The scorer a manifest describes (its files checked against their recorded digests), if
    it reproduces the manifest's reference outputs."""
    import numpy as np

    from fti.registry import scoring

    key = manifest["key"]
    library = cache / f"{key}{manifest['artifact']}"
    content = _checked(library, manifest["sha256"])
    scorer: Scorer
    if manifest.get("kind", "onnx") == "compiled":
        if "classes" not in manifest:
            return None
        model_file = cache / f"{key}{manifest['model_file']}"
        _checked(model_file, manifest["model_sha256"])
        scorer = scoring.CompiledLightGBMScorer(manifest["classes"], library, model_file)
    else:
        post = None
        if manifest["post"] is not None:
            from fti.registry import _onnx_hgb

            spec = manifest["post"]

            def post(raw: np.ndarray) -> dict[str, np.ndarray]:
                return _onnx_hgb.outputs_from_spec(spec, raw)

        onnx = scoring.OnnxScorer(content, manifest["outputs"], np.dtype(manifest["dtype"]), post)
        onnx.casts = {name: np.dtype(dtype) for name, dtype in manifest["casts"].items()}
        onnx.artifact = manifest["artifact"]
        onnx.post_spec = manifest["post"]
        if "classes" in manifest:
            onnx.classes = manifest["classes"]
        scorer = onnx
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
