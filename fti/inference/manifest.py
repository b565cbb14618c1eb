"""Cached verified conversions that run without loading the native model.

When :func:`fti.inference.selection.get_scorer` picks a converted scorer (an ONNX graph, or a
LightGBM forest compiled by lleaves) as the winner for a model version and caches it, it also
writes a manifest next to the cached files: which files, their SHA-256, for ONNX the input dtype,
the output names and dtypes and the post-processing of the raw score (link and classes, for
HistGradientBoosting), the model's classes, and a verification sample with the native model's
outputs on it. :func:`load` rebuilds the scorer from the manifest alone (numpy and ONNX Runtime
or lleaves: no scikit-learn, LightGBM, skops or PyTorch import, which is most of a model server's
cold start and memory) and accepts it only if

* its signature verifies: an HMAC-SHA256 over the whole manifest with a key derived from the
  secret key (``FTI_SECRET_KEY`` or ``$FTI_HOME/secret.key``, see :mod:`fti.secrets.keys`), so
  whoever can write the cache directory but not read that key cannot forge or re-key one,
* it is bound to this model version as the catalog records it: the name, version and artifact
  digests it was made from equal the catalog's (a copy of another version's entry is refused),
* the manifest's builder is the remembered winner of the same cache entry,
* the cached files' digests match the ones recorded when they were verified (a compiled
  library, machine code, is loaded only then, from a private copy of the verified bytes), and
* the rebuilt scorer reproduces the stored native outputs on the stored sample (the same
  tolerance as the original verification).

Anything else (missing, corrupt or mismatching entry) returns ``None``: the caller loads the
native model and goes through ``get_scorer`` as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.inference.compiled import CompiledLightGBMScorer
from fti.inference.entry import CacheEntry, sha256
from fti.inference.onnx_runtime import OnnxScorer
from fti.inference.verification import agrees, safe_predict

if TYPE_CHECKING:
    import numpy as np

    from fti.inference.base import Scorer

log = logging.getLogger("fti.inference")

SUFFIX = ".scorer.json"
FORMAT = 2  # 2: signed and bound to the model version
VERIFY_ROWS = 256
"""Rows of the verification sample kept in the manifest (and re-checked at every load)."""


def write(
    entry: CacheEntry,
    builder: str,
    scorer: Scorer,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    *,
    classes: Any = None,
    timings: dict[str, Any] | None = None,
) -> bool:
    """Record ``scorer`` (the verified winner ``builder`` of the cache ``entry``: an ONNX graph
    or a compiled LightGBM forest) so it can be rebuilt alone, with the native model's
    ``classes`` (None for models without) when they are JSON values, and the ``timings`` the
    winner was chosen on (:func:`fti.inference.selection.measure`), kept for the record.

    The manifest is written only if a scorer rebuilt from it reproduces ``reference`` on the
    kept sample rows, and only for an entry that knows its model version and signing key;
    returns whether it was written. The digests it records are those of the bytes the verified
    scorer runs, not of whatever the cache directory holds now.
    """
    import numpy as np

    compiled = isinstance(scorer, CompiledLightGBMScorer)
    artifact = getattr(scorer, "artifact", None)
    if artifact is None or entry.binding is None or not entry.keys:
        return False
    if any(value.dtype == object for value in reference.values()):
        return False  # labels that JSON cannot round-trip exactly
    labels = None if classes is None else np.asarray(classes).tolist()
    known = labels is None or all(type(label) in (int, str, bool) for label in labels)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "key": entry.stem,
        "builder": builder,
        "kind": scorer.kind,
        "model": dict(entry.binding),
        "artifact": artifact,
        "sha256": sha256(scorer.library_bytes if compiled else scorer.graph_bytes),  # type: ignore[attr-defined]
        "sample": np.asarray(sample[:VERIFY_ROWS], dtype=np.float64).tolist(),
        "reference": {name: _encode(value[:VERIFY_ROWS]) for name, value in reference.items()},
    }
    if timings is not None:
        manifest["timings"] = timings
    if known:
        manifest["classes"] = labels  # absent: not recorded (other types, or older manifests)
    if compiled:
        if not known:
            return False  # the compiled forest needs the classes to name its labels
        suffix = CompiledLightGBMScorer.model_file_suffix
        manifest["model_file"] = suffix
        manifest["model_sha256"] = sha256(scorer.model_text)  # type: ignore[attr-defined]
    else:
        onnx: OnnxScorer = scorer  # type: ignore[assignment]
        if onnx.has_post and onnx.post_spec is None:
            return False
        manifest["dtype"] = np.dtype(onnx.dtype).str
        manifest["outputs"] = list(onnx.output_names)
        manifest["casts"] = {name: np.dtype(dtype).str for name, dtype in onnx.casts.items()}
        manifest["post"] = onnx.post_spec
    manifest["signature"] = _sign(manifest, entry.keys[0])
    text = json.dumps(manifest)
    if _build(json.loads(text), entry) is None:
        return False
    entry.write(SUFFIX, text.encode())
    return True


def _sign(manifest: dict[str, Any], key: bytes) -> str:
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def _authentic(manifest: dict[str, Any], entry: CacheEntry) -> str | None:
    """Why ``manifest`` may not be trusted for ``entry``, or None: its signature (with any of
    the entry's keys) and its binding to the entry's model version as the catalog records it."""
    signature = manifest.get("signature")
    if not isinstance(signature, str) or not entry.keys:
        return "it is not signed"
    if not any(hmac.compare_digest(signature, _sign(manifest, key)) for key in entry.keys):
        return "its signature does not verify (forged, or signed with another secret key)"
    if entry.binding is None or manifest.get("model") != dict(entry.binding):
        return "it was made from another model version than the catalog's (copied or re-keyed)"
    return None


def read_trusted(entry: CacheEntry) -> dict[str, Any] | None:
    """The signed manifest of ``entry``, if it is authentic and bound to the entry's model
    version (see the module docstring), else None."""
    file = entry.path(SUFFIX)
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or manifest.get("key") != entry.stem
    ):
        return None
    problem = _authentic(manifest, entry)
    if problem is not None:
        log.warning("cached scorer manifest %s is ignored: %s", entry.stem, problem)
        return None
    return manifest


def trusted_files(entry: CacheEntry) -> dict[str, str]:
    """``{suffix: sha256}`` of the cached files ``entry``'s authentic manifest vouches for."""
    manifest = read_trusted(entry)
    if manifest is None:
        return {}
    files = {str(manifest["artifact"]): str(manifest["sha256"])}
    if "model_file" in manifest:
        files[str(manifest["model_file"])] = str(manifest["model_sha256"])
    return files


def load(entry: CacheEntry, purpose: str = "batch") -> Scorer | None:
    """The verified converted scorer cached in ``entry`` as the winner for ``purpose``
    (:func:`fti.inference.entry.purpose`), built without
    the native model, or None (``entry`` must carry its model version's binding and the signing
    keys: see :meth:`fti.inference.cache.ScorerCache.entry`)."""
    winner = entry.choice(purpose)
    if winner is None:
        return None
    manifest = read_trusted(entry)
    if manifest is None:
        return None
    try:
        if manifest.get("builder") != winner:
            return None  # the remembered winner changed since the manifest was written
        scorer = _build(manifest, entry)
    except _Tampered:
        log.warning("cached scorer %s does not match its recorded digest; ignoring it", entry.stem)
        return None
    except Exception as exc:  # unreadable, truncated or foreign cache entries: not usable
        log.warning("cached scorer %s is unusable (%s); loading the native model", entry.stem, exc)
        return None
    if scorer is None:
        log.warning("cached scorer %s no longer reproduces its verified outputs; ignoring it", entry.stem)
    return scorer


class _Tampered(Exception):
    """A cached file does not match the digest recorded when it was verified."""


def _checked(path: Path, digest: str) -> bytes:
    data = path.read_bytes()
    if sha256(data) != digest:
        raise _Tampered(path.name)
    return data


def private_copy(data: bytes, name: str) -> Path:
    """``data`` in a new directory only this process's user can read: what is loaded is what was
    verified, whatever happens to the cache directory meanwhile."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="fti-scorer-")) / name
    path.write_bytes(data)
    return path


def _model_text_beside(library: Path, text: bytes) -> None:
    library.with_name("model.txt").write_bytes(text)


def _build(manifest: dict[str, Any], entry: CacheEntry) -> Scorer | None:
    """The scorer a manifest describes (its files checked against their recorded digests), if
    it reproduces the manifest's reference outputs."""
    import numpy as np

    content = _checked(entry.path(manifest["artifact"]), manifest["sha256"])
    scorer: Scorer
    if manifest.get("kind", "onnx") == "compiled":
        if "classes" not in manifest:
            return None
        text = _checked(entry.path(manifest["model_file"]), manifest["model_sha256"])
        library = private_copy(content, "forest.o")
        _model_text_beside(library, text)  # machine code: load the verified bytes only
        try:
            scorer = CompiledLightGBMScorer(manifest["classes"], library, library.with_name("model.txt"))
        finally:
            shutil.rmtree(library.parent, ignore_errors=True)  # loaded into memory by now
    else:
        post = None
        if manifest["post"] is not None:
            from fti.inference import _onnx_hgb

            spec = manifest["post"]

            def post(raw: np.ndarray) -> dict[str, np.ndarray]:
                return _onnx_hgb.outputs_from_spec(spec, raw)

        onnx = OnnxScorer(content, manifest["outputs"], np.dtype(manifest["dtype"]), post)
        onnx.casts = {name: np.dtype(dtype) for name, dtype in manifest["casts"].items()}
        onnx.artifact = manifest["artifact"]
        onnx.post_spec = manifest["post"]
        if "classes" in manifest:
            onnx.classes = manifest["classes"]
        scorer = onnx
    sample = np.asarray(manifest["sample"], dtype=np.float64)
    reference = {name: _decode(value) for name, value in manifest["reference"].items()}
    if len(sample) == 0 or not agrees(safe_predict(scorer, sample), reference):
        return None
    return scorer


def _encode(value: np.ndarray) -> dict[str, Any]:
    return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}


def _decode(value: dict[str, Any]) -> np.ndarray:
    import numpy as np

    return np.asarray(value["data"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
