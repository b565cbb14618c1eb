"""Fast, verified scorers: the quickest correct way to run a model over a batch of rows.

A :class:`Scorer` turns a 2-D numeric matrix into the model's outputs (``{"predict": labels,
"predict_proba": probabilities}`` for classifiers, ``{"predict": values}`` for regressors), the
same dict the model's flavor returns. :func:`get_scorer` builds the candidates for the model's
family, checks each one against the native predictions on a sample, times the survivors on the
same sample, and returns the fastest. A candidate that cannot be built or disagrees on the sample
(labels must be identical, probabilities and regression values equal to a tight tolerance) is
dropped, so the worst case is always the native scorer.

Candidates per family (measured on 2 cores, see ``benchmarks/batch/``):

* XGBoost: native predict (``inplace_predict``) is the fastest; no conversion is attempted.
* LightGBM: a forest compiled to machine code (``lleaves``, LLVM), then ONNX Runtime
  (``onnxmltools``).
* scikit-learn: ONNX Runtime via ``skl2onnx`` (random forests, gradient boosting, pipelines of
  numeric transformers); HistGradientBoosting through :mod:`fti.registry._onnx_hgb`.
* Native classifiers run one ``predict_proba`` pass and take labels from it (checked against
  ``predict`` on the sample).

The converters are optional (``pip install 'fti[fast]'``): without them only native remains.

Converted models are cached on disk (``cache_dir``) under a key naming the model version, so a
conversion runs once per model version, at first use.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fti.errors import ValidationError

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np

PREFER = ("fastest", "native", "converted")
PROBA_ATOL = 1e-5
VALUE_RTOL = 1e-5
TIMING_ROWS = 65_536
"""Candidates are timed on this many rows (the sample repeated): closer to batch sizes than a few
thousand rows, where per-call overheads dominate. Which scorer wins depends on the machine and its
load (on 2 cores shared with other jobs, ONNX Runtime lost to native HistGradientBoosting; on the
same machine idle it won by 1.45x), so it is measured where the model runs."""
MARGIN = 0.9
"""A converted scorer must take at most this fraction of native's time: timings on a shared
machine are noisy, and native is the reference path."""
ONNX_BLOCK_ROWS = 65_536
CLASSES_NOT_RECORDED: Any = object()
LLEAVES_MODEL = ".lgb.txt"
LLEAVES_LIBRARY = ".lleaves.so"
PIECE_ROWS = 16_384
"""Rows per piece of a :class:`ParallelScorer`: small enough to balance, large enough that the
per-call overhead of every scorer stays negligible (measured: same throughput as 64k pieces)."""


class Scorer(Protocol):
    """Runs one model over a batch: ``predict(X)`` returns the model's outputs by name."""

    kind: str
    """``native``, ``onnx`` or ``compiled``."""

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Score the rows of the 2-D matrix ``X`` (features in model-input order)."""
        ...


PredictFn = Callable[[Any, Any], dict[str, Any]]


class NativeScorer:
    """The model's own predict.

    Classifiers with ``predict_proba`` and ``classes_`` are scored with one pass: labels are
    ``classes_[argmax(proba)]``, which is what scikit-learn, XGBoost and LightGBM do inside
    ``predict``; :func:`get_scorer` checks that against the real ``predict`` on the sample and
    uses the two-pass path where it differs.
    """

    kind = "native"

    def __init__(self, model: Any, predict_fn: PredictFn | None = None, *, fused: bool = False) -> None:
        self.model = model
        self._predict_fn = predict_fn or native_predict
        self.fused = fused

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        if self.fused:
            import numpy as np

            proba = np.asarray(self.model.predict_proba(_named(self.model, X)))
            labels = np.asarray(self.model.classes_).take(proba.argmax(axis=1))
            return {"predict": labels, "predict_proba": proba}
        return {name: _as_array(value) for name, value in self._predict_fn(self.model, X).items()}


class OnnxScorer:
    """A model converted to ONNX, run by ONNX Runtime with one session per scorer."""

    kind = "onnx"

    def __init__(
        self,
        onnx_bytes: bytes,
        output_names: Sequence[str],
        dtype: Any,
        post: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
        *,
        threads: int | None = None,
    ) -> None:
        """``post`` turns the graph's first output into the outputs by name (e.g. raw scores into
        labels and probabilities); without it the graph's outputs map to ``output_names`` in order.
        ``threads`` is ONNX Runtime's intra-op thread count (default: the usable cores)."""
        import onnxruntime as ort

        self._bytes = onnx_bytes
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # shape warnings of converted tree ensembles are noise
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.output_names = list(output_names)
        self.dtype = dtype
        self._post = post
        self.has_post = post is not None
        self.casts: dict[str, Any] = {}
        self.artifact: str | None = None
        """The cache file suffix of the graph (``.hgb32.onnx``), when it came from the cache."""
        self.post_spec: dict[str, Any] | None = None
        """``post`` as JSON-able data (see ``_onnx_hgb.post_spec``), when it can be expressed."""
        self.classes: Any = CLASSES_NOT_RECORDED
        """The native model's ``classes_`` (a list, or None for models without), when rebuilt
        from a manifest that recorded them."""

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        X = np.ascontiguousarray(X, dtype=self.dtype)
        # ONNX Runtime's tree ensembles are markedly faster on cache-sized blocks than on one
        # huge input (measured: ~2x on 500k rows), so large inputs run block by block
        parts = [
            self._session.run(None, {self._input: X[i : i + ONNX_BLOCK_ROWS]})
            for i in range(0, max(len(X), 1), ONNX_BLOCK_ROWS)
        ]
        results = parts[0] if len(parts) == 1 else [np.concatenate(p) for p in zip(*parts, strict=True)]
        named = (
            zip(self.output_names, results, strict=False)
            if self._post is None
            else self._post(np.asarray(results[0])).items()
        )
        out: dict[str, np.ndarray] = {}
        for name, value in named:
            value = np.asarray(value)
            if name == "predict" and value.ndim == 2 and value.shape[1] == 1:
                value = value.ravel()
            cast = self.casts.get(name)
            value = value if cast is None else value.astype(cast, copy=False)
            if name == "predict_proba":  # float32 sums like 1 - p can land just outside [0, 1]
                value = np.clip(value, 0.0, 1.0, out=value if value.flags.writeable else None)
            out[name] = value
        return out

    def with_threads(self, threads: int) -> OnnxScorer:
        """The same scorer on a session of ``threads`` intra-op threads."""
        other = OnnxScorer(self._bytes, self.output_names, self.dtype, self._post, threads=threads)
        other.casts, other.artifact, other.post_spec = dict(self.casts), self.artifact, self.post_spec
        other.classes = self.classes
        return other

    def match_dtypes(self, reference: dict[str, np.ndarray]) -> None:
        """Return outputs in the native dtypes (float64 probabilities, the labels' own type)."""
        self.casts = {name: value.dtype for name, value in reference.items() if value.dtype != object}


class CompiledLightGBMScorer:
    """A LightGBM forest compiled to machine code by ``lleaves`` (double precision, exact)."""

    kind = "compiled"

    artifact = LLEAVES_LIBRARY
    model_file_suffix = LLEAVES_MODEL

    def __init__(self, classes: Any, library: Path, model_file: Path) -> None:
        """``classes``: the model's ``classes_`` (None for regressors); ``library``: the compiled
        forest (built from ``model_file``, LightGBM's text format, if it does not exist yet)."""
        import lleaves

        self._compiled = lleaves.Model(model_file=str(model_file))
        self._compiled.compile(cache=str(library))
        self.classes = classes
        self.threads = _threads()

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        raw = np.asarray(
            self._compiled.predict(np.ascontiguousarray(X, dtype=np.float64), n_jobs=self.threads)
        )
        if self.classes is None:
            return {"predict": raw}
        proba = raw.reshape(len(X), -1)
        if proba.shape[1] == 1:
            proba = np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
        return {"predict": np.asarray(self.classes).take(proba.argmax(axis=1)), "predict_proba": proba}


class ParallelScorer:
    """Scores large batches as pieces pulled by one worker thread per core, each piece through a
    single-threaded copy of a scorer.

    A library's own threads split each call statically, one share per core, so when another
    thread of the process (a batch job's reader or writer) takes a core, the whole call waits
    for the share that lost it. Pieces pulled by workers balance themselves instead. The
    libraries release the GIL while they score, so the workers run in parallel.
    """

    def __init__(self, scorer: Scorer, workers: int | None = None, piece_rows: int = PIECE_ROWS) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.kind = scorer.kind
        self.workers = workers or _threads()
        self.piece_rows = piece_rows
        self._scorer = single_threaded(scorer)
        self._pool = ThreadPoolExecutor(
            self.workers, thread_name_prefix="fti-score", initializer=_one_openmp_thread
        )

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return self.submit(X).result()

    def submit(self, X: np.ndarray) -> Scores:
        """Queue the pieces of ``X`` behind those already submitted; the scores are collected
        with :meth:`Scores.result`."""
        pieces = [X[i : i + self.piece_rows] for i in range(0, len(X), self.piece_rows)]
        return Scores([self._pool.submit(self._scorer.predict, piece) for piece in pieces])

    def close(self) -> None:
        """Stop the workers; pieces not started yet are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class Scores:
    """The pending outputs of one :meth:`ParallelScorer.submit`."""

    def __init__(self, parts: list[Future[dict[str, np.ndarray]]]) -> None:
        self._parts = parts

    def result(self) -> dict[str, np.ndarray]:
        """The outputs of every piece, in order (waits for them; raises a piece's error)."""
        import numpy as np

        parts = [part.result() for part in self._parts]
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def single_threaded(scorer: Scorer) -> Scorer:
    """``scorer`` restricted to one thread per call (its model's ``n_jobs`` set to 1 for native
    scorers; OpenMP-based models follow the calling thread's limit, see :class:`ParallelScorer`)."""
    if isinstance(scorer, OnnxScorer):
        return scorer.with_threads(1)
    if isinstance(scorer, CompiledLightGBMScorer):
        scorer.threads = 1
        return scorer
    model = getattr(scorer, "model", None)
    params = getattr(model, "get_params", None)
    if callable(params) and "n_jobs" in params():
        model.set_params(n_jobs=1)  # type: ignore[union-attr]
    elif model is not None and _family(model) == "xgboost" and hasattr(model, "set_param"):
        model.set_param({"nthread": 1})  # a bare Booster
    return scorer


def _one_openmp_thread() -> None:
    """Limit OpenMP parallel regions started from this (worker) thread to one thread: the limit
    is per calling thread, so the rest of the process keeps its threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no OpenMP-based library installed either
        return
    threadpool_limits(1, user_api="openmp")


def to_matrix(data: Any, columns: Sequence[str]) -> np.ndarray:
    """``columns`` of a pyarrow Table/RecordBatch or pandas DataFrame as a row-major float64 matrix.

    Arrow data is cast once to an all-float64 schema and copied into one contiguous row-major
    buffer by Arrow itself (``Table.to_tensor``), with no Python loop over columns; nulls become
    NaN. Booleans and integers become 0/1 and exact floats.

    Raises:
        SchemaError: a column is missing or not numeric.
    """
    import numpy as np
    import pyarrow as pa

    from fti.errors import SchemaError

    columns = list(columns)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        if type(data).__module__.split(".")[0] != "pandas":
            raise ValidationError(f"expected a pyarrow Table or pandas DataFrame, got {type(data).__name__}")
        data = pa.Table.from_pandas(data[columns] if columns else data, preserve_index=False)
    missing = [c for c in columns if c not in data.column_names]
    if missing:
        raise SchemaError(
            f"model input column(s) {missing} missing from the data (it has {data.column_names})"
        )
    table = data.select(columns)
    bad = [
        f.name
        for f in table.schema
        if not (
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_boolean(f.type)
            or pa.types.is_null(f.type)
        )
    ]
    if bad:
        raise SchemaError(
            f"model input column(s) {bad} are not numeric; encode them in the feature view's "
            "transformations (e.g. one-hot) so the model receives numbers"
        )
    if table.num_rows == 0:
        return np.empty((0, len(columns)), dtype=np.float64)
    target = pa.schema([pa.field(name, pa.float64()) for name in columns])
    return np.asarray(table.cast(target).to_tensor(null_to_nan=True, row_major=True))


# --- building and choosing -------------------------------------------------------------------


def native_predict(model: Any, X: Any) -> dict[str, Any]:
    """The reference outputs of a native model: its flavor's ``predict`` (the one prediction path
    of serving and batch), or ``predict`` and ``predict_proba`` for objects of no known flavor."""
    from fti.errors import FtiError
    from fti.registry.flavors.base import detect_flavor

    try:
        flavor = detect_flavor(model)
    except FtiError:
        flavor = None
    if flavor is not None:
        return dict(flavor.predict(model, X))
    X = _named(model, X)
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


def get_scorer(
    model: Any,
    *,
    sample: np.ndarray,
    prefer: str = "fastest",
    cache_dir: str | Path | None = None,
    cache_key: str | None = None,
    predict_fn: PredictFn | None = None,
    timing_sample: np.ndarray | None = None,
) -> Scorer:
    """The fastest scorer whose predictions equal the native ones on ``sample``.

    Args:
        model: A registered ``ModelVersion`` (loaded with ``.load()``, its flavor's ``predict`` is
            the reference) or a native model object (scikit-learn, XGBoost, LightGBM).
        sample: A 2-D numeric matrix of representative rows (a few thousand are enough); every
            candidate must reproduce the native outputs on it.
        prefer: ``"fastest"`` times the verified candidates and takes the quickest; ``"native"``
            skips conversion; ``"converted"`` takes the first verified converted scorer.
        cache_dir: Where converted models are kept between runs (default: not kept).
        cache_key: A name unique to this model version for the cache (derived from a
            ``ModelVersion``; required with ``cache_dir`` for native objects).
        predict_fn: The reference predict ``(model, X) -> dict`` (default: the flavor's, or
            ``predict`` + ``predict_proba``).
        timing_sample: Distinct rows to time the candidates on (default: ``sample`` repeated
            to ``TIMING_ROWS`` rows; repeated rows flatter some scorers through warm caches).

    Returns:
        A scorer; ``scorer.kind`` says which path won.
    """
    import numpy as np

    check_prefer(prefer)
    sample = np.asarray(sample)
    if sample.ndim != 2 or len(sample) == 0:
        raise ValidationError(
            f"sample must be a non-empty 2-D matrix of model inputs, got shape {sample.shape}"
        )
    native_model, predict_fn, key = _unwrap(model, predict_fn, cache_key)
    reference = {name: _as_array(v) for name, v in predict_fn(native_model, sample).items()}
    native = NativeScorer(native_model, predict_fn)
    fused = NativeScorer(native_model, predict_fn, fused=True)
    if _can_fuse(native_model, reference) and _agrees(fused.predict(sample), reference):
        native = fused
    if prefer == "native":
        return native
    cache = Path(cache_dir) if cache_dir is not None and key is not None else None
    builders = _builders(native_model)
    choice = None if cache is None else cache / f"{key}.choice"
    if prefer == "fastest" and choice is not None and choice.exists():
        # an earlier run measured the candidates: re-verify only its winner on this sample
        winner = choice.read_text().strip()
        if winner == "native":
            return native
        for build in builders:
            if build.__name__ == winner:
                scorer = _try(build, native_model, sample, reference, cache, key)
                if scorer is not None:
                    _remember(cache, key, winner, scorer, sample, reference, native_model)
                    return scorer
    candidates: list[tuple[str, Scorer]] = [("native", native)]
    for build in builders:
        scorer = _try(build, native_model, sample, reference, cache, key)
        if scorer is not None:
            if prefer == "converted":
                return scorer
            candidates.append((build.__name__, scorer))
    best = candidates[0]
    if len(candidates) > 1:
        rows = sample if timing_sample is None else np.asarray(timing_sample)
        seconds = {name: _seconds(scorer, rows) for name, scorer in candidates}
        fastest = min(candidates[1:], key=lambda named: seconds[named[0]])
        if seconds[fastest[0]] <= MARGIN * seconds["native"]:
            best = fastest
    if choice is not None:
        _write_atomic(choice, best[0].encode())
        _remember(cache, key, best[0], best[1], sample, reference, native_model)
    return best[1]


def _remember(
    cache: Path | None,
    key: str | None,
    builder: str,
    scorer: Scorer,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    model: Any = None,
) -> None:
    """Record a converted winner so later loads can build it without the native model
    (:mod:`fti.registry.scorer_manifest`), with the model's ``classes_``; never fails the caller."""
    if cache is None or key is None or not isinstance(scorer, (OnnxScorer, CompiledLightGBMScorer)):
        return
    from fti.registry import scorer_manifest

    try:  # rewritten on every verified pick, so a corrupt entry heals on the next native load
        scorer_manifest.write(
            cache, key, builder, scorer, sample, reference, classes=getattr(model, "classes_", None)
        )
    except Exception:  # the manifest is an optimisation: without it loads take the native path
        import logging

        logging.getLogger("fti.registry").warning("could not record scorer %s", key, exc_info=True)


def _try(
    build: Callable[..., Scorer | None],
    model: Any,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    cache: Path | None,
    key: str | None,
) -> Scorer | None:
    """The candidate ``build`` makes, if it builds and reproduces ``reference`` on ``sample``."""
    try:
        scorer = build(model, sample, reference, cache, key)
    except Exception:  # any conversion failure means "not this candidate"
        return None
    if scorer is not None and _agrees(_safe_predict(scorer, sample), reference):
        return scorer
    return None


def _unwrap(model: Any, predict_fn: PredictFn | None, name: str | None) -> tuple[Any, PredictFn, str | None]:
    """(native model, reference predict, cache key) from a ModelVersion or a native model."""
    if hasattr(model, "load") and hasattr(model, "flavor") and hasattr(model, "version"):
        native_model = model.load()
        if predict_fn is None:
            from fti.registry.flavors.base import get_flavor

            predict_fn = get_flavor(model.flavor).predict
        return native_model, predict_fn, _key(name) if name else cache_key(model)
    return model, predict_fn or native_predict, None if name is None else _key(name)


def check_prefer(prefer: Any) -> None:
    """Raise ``ValidationError`` unless ``prefer`` is one of :data:`PREFER`."""
    if prefer not in PREFER:
        raise ValidationError(f"prefer must be one of {PREFER}, got {prefer!r}")


def cache_key(version: Any) -> str:
    """The cache name of a registered model version's conversions.

    The artifacts' SHA-256 digests name the exact model bytes, so a name and version registered
    again after a delete never reuses a stale conversion.
    """
    digests = sorted((getattr(version, "artifacts", None) or {}).items())
    return _key(f"{version.name}-v{version.version}-{digests}")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _family(model: Any) -> str:
    return type(model).__module__.split(".")[0]


def _builders(model: Any) -> list[Callable[..., Scorer | None]]:
    family = _family(model)
    if family == "lightgbm":
        return [_build_lleaves, _build_onnx_lightgbm]
    if family == "sklearn":
        if type(model).__name__.startswith("HistGradientBoosting"):
            return [_build_onnx_hgb]
        return [_build_onnx_sklearn]
    return []  # xgboost and others: native is the fastest correct path


def _cached(cache: Path | None, key: str | None, suffix: str, make: Callable[[], bytes]) -> bytes:
    if cache is None or key is None:
        return make()
    path = cache / f"{key}{suffix}"
    if path.exists():
        return path.read_bytes()
    data = make()
    _write_atomic(path, data)
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so concurrent first uses never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _build_onnx_sklearn(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], cache: Path | None, key: str | None
) -> Scorer | None:
    import numpy as np

    def convert(dtype: Any) -> bytes:
        from skl2onnx import to_onnx

        options = {"zipmap": False} if "predict_proba" in reference else None
        onx = to_onnx(
            model, sample[:1].astype(dtype), options=options, target_opset={"": 17, "ai.onnx.ml": 3}
        )
        return bytes(onx.SerializeToString())

    return _first_agreeing(
        [
            (
                np.float32,
                ".sk32.onnx",
                lambda: _cached(cache, key, ".sk32.onnx", lambda: convert(np.float32)),
            ),
            (
                np.float64,
                ".sk64.onnx",
                lambda: _cached(cache, key, ".sk64.onnx", lambda: convert(np.float64)),
            ),
        ],
        sample,
        reference,
    )


def _build_onnx_lightgbm(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], cache: Path | None, key: str | None
) -> Scorer | None:
    import numpy as np

    def convert() -> bytes:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        initial = [("X", FloatTensorType([None, sample.shape[1]]))]
        onx = onnxmltools.convert_lightgbm(model, initial_types=initial, zipmap=False, target_opset=15)
        return bytes(onx.SerializeToString())

    return _first_agreeing(
        [(np.float32, ".lgb32.onnx", lambda: _cached(cache, key, ".lgb32.onnx", convert))], sample, reference
    )


def _build_lleaves(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], cache: Path | None, key: str | None
) -> Scorer | None:
    import importlib.util
    import tempfile

    if importlib.util.find_spec("lleaves") is None:
        return None
    booster = getattr(model, "booster_", model)
    text = booster.model_to_string()
    directory = cache if cache is not None else Path(tempfile.mkdtemp(prefix="fti-lleaves-"))
    directory.mkdir(parents=True, exist_ok=True)
    name = key or _key(text)
    model_file = directory / f"{name}{LLEAVES_MODEL}"
    if not model_file.exists():
        model_file.write_text(text)
    return CompiledLightGBMScorer(
        getattr(model, "classes_", None), directory / f"{name}{LLEAVES_LIBRARY}", model_file
    )


def _build_onnx_hgb(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], cache: Path | None, key: str | None
) -> OnnxScorer | None:
    import numpy as np

    from fti.registry import _onnx_hgb

    def post(raw: np.ndarray) -> dict[str, np.ndarray]:
        return _onnx_hgb.outputs(model, raw)

    n = sample.shape[1]
    scorer = _first_agreeing(
        [
            (
                np.float32,
                ".hgb32.onnx",
                lambda: _cached(cache, key, ".hgb32.onnx", lambda: _onnx_hgb.to_onnx(model, n, np.float32)),
            ),
            (
                np.float64,
                ".hgb64.onnx",
                lambda: _cached(cache, key, ".hgb64.onnx", lambda: _onnx_hgb.to_onnx(model, n, np.float64)),
            ),
        ],
        sample,
        reference,
        post,
    )
    if scorer is not None:
        scorer.post_spec = _onnx_hgb.post_spec(model)
    return scorer


def _first_agreeing(
    options: list[tuple[Any, str, Callable[[], bytes]]],
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    post: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
) -> OnnxScorer | None:
    """The first ONNX variant (float32 input, then float64) that reproduces the reference."""
    names = list(reference)
    for dtype, suffix, load in options:
        try:
            scorer = OnnxScorer(load(), names, dtype, post)
        except Exception:
            continue
        outputs = _safe_predict(scorer, sample)
        if _agrees(outputs, reference):
            scorer.match_dtypes(reference)
            scorer.artifact = suffix
            return scorer
    return None


def _safe_predict(scorer: Scorer, sample: np.ndarray) -> dict[str, np.ndarray] | None:
    try:
        return scorer.predict(sample)
    except Exception:
        return None


def _agrees(outputs: dict[str, np.ndarray] | None, reference: dict[str, np.ndarray]) -> bool:
    """Labels identical; probabilities and values within a tight tolerance; same shapes."""
    import numpy as np

    if outputs is None or set(outputs) != set(reference):
        return False
    for name, ref in reference.items():
        got = np.asarray(outputs[name])
        if got.shape != ref.shape:
            return False
        if ref.dtype.kind in "fc" and got.dtype.kind in "fc":
            tolerance = (
                PROBA_ATOL if name == "predict_proba" else VALUE_RTOL * max(1.0, float(np.abs(ref).max()))
            )
            if not np.allclose(got, ref, rtol=0.0, atol=tolerance, equal_nan=True):
                return False
        elif not bool((got.astype(object) == ref.astype(object)).all()):
            return False
    return True


def _can_fuse(model: Any, reference: dict[str, np.ndarray]) -> bool:
    proba = reference.get("predict_proba")
    return (
        proba is not None
        and set(reference) == {"predict", "predict_proba"}
        and proba.ndim == 2
        and len(getattr(model, "classes_", ())) == proba.shape[1]
    )


def _seconds(scorer: Scorer, sample: np.ndarray) -> float:
    """Best of three timings on at least TIMING_ROWS rows (the sample repeated)."""
    import numpy as np

    reps = max(1, -(-TIMING_ROWS // len(sample)))
    matrix = np.ascontiguousarray(np.tile(sample, (reps, 1))[:TIMING_ROWS] if reps > 1 else sample)
    scorer.predict(matrix[:100])  # warm-up (thread pools, lazy initialisation)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        scorer.predict(matrix)
        best = min(best, time.perf_counter() - start)
    return best


def _named(model: Any, X: np.ndarray) -> Any:
    """``X`` as the model expects it: a DataFrame with its column names if it was fitted on one
    (as the flavors do, so libraries don't warn about missing feature names)."""
    names: Any = None
    if _family(model) == "xgboost":
        # XGBoost checks feature names only on frames and reads an array by position, in the
        # fitted order: building a frame per call would cost ~30% of a 16k-row predict
        return X
    if getattr(model, "_fitted_with_feature_names", False):  # LightGBM's scikit-learn API
        names = model.feature_name_
    elif _family(model) != "lightgbm":
        names = getattr(model, "feature_names_in_", None)
    if names is None:
        return X
    from fti.registry.flavors.base import align_input

    return align_input(X, [str(n) for n in names])


def _threads() -> int:
    """Intra-op threads: the cores this process may use (2 on the reference machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _as_array(value: Any) -> np.ndarray:
    import numpy as np

    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value)
