"""The compiled scorer: a LightGBM forest compiled to machine code by ``lleaves`` (LLVM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.inference.base import threads

if TYPE_CHECKING:
    import numpy as np

LLEAVES_MODEL = ".lgb.txt"
"""Cache file suffix of the forest in LightGBM's text format (what lleaves compiles)."""
LLEAVES_LIBRARY = ".lleaves.so"
"""Cache file suffix of the compiled forest."""


class CompiledLightGBMScorer:
    """A LightGBM forest compiled to machine code by ``lleaves`` (double precision, exact)."""

    kind = "compiled"

    artifact = LLEAVES_LIBRARY
    model_file_suffix = LLEAVES_MODEL

    def __init__(self, classes: Any, library: Path, model_file: Path) -> None:
        """``classes``: the model's ``classes_`` (None for regressors); ``library``: the compiled
        forest (built from ``model_file``, LightGBM's text format, if it does not exist yet).

        The library is machine code that is loaded and run: pass only a path no one else can
        write (the scorer cache copies verified bytes to a private directory first)."""
        import lleaves

        self._compiled = lleaves.Model(model_file=str(model_file))
        self._compiled.compile(cache=str(library))
        self.classes = classes
        self.threads = threads()
        self.library_bytes = library.read_bytes()
        """The compiled forest as loaded (what a cache manifest records the digest of)."""
        self.model_text = model_file.read_bytes()

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
