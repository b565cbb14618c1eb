"""The ONNX Runtime scorer: a model converted to ONNX (see :mod:`fti.inference.converters`),
run with one CPU session per scorer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fti.inference import base

if TYPE_CHECKING:
    import numpy as np

ONNX_BLOCK_ROWS = 65_536
"""ONNX Runtime's tree ensembles are markedly faster on cache-sized blocks than on one huge input
(measured: ~2x on 500k rows), so large inputs run block by block."""


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
        options.intra_op_num_threads = threads or base.threads()
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
        self.classes: Any = base.CLASSES_NOT_RECORDED
        """The native model's ``classes_`` (a list, or None for models without), when rebuilt
        from a manifest that recorded them."""

    @property
    def graph_bytes(self) -> bytes:
        """The serialized ONNX graph the session runs."""
        return self._bytes

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        with np.errstate(over="ignore"):  # beyond float32's range is +-inf, as the graph sees it
            X = np.ascontiguousarray(X, dtype=self.dtype)
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
