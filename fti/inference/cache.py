"""The scorer cache: the one owner of cached, verified scorers, used by serving and batch alike.

``ScorerCache.at_home(settings.home)`` is the directory ``$FTI_HOME/cache/scorers``. For a
registered model version it keeps the converted models, the measured winner and the manifest that
rebuilds a converted winner without the native model, all bound to the version's artifact
digests (:func:`fti.inference.entry.version_key`). :meth:`ScorerCache.get` is load-or-build: the
cached winner when its manifest verifies (the version's artifacts are still checked against their
digests), else the native model loaded and its fastest verified scorer chosen (and cached).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.inference import manifest
from fti.inference.base import ModelVersionLike, Scorer
from fti.inference.entry import CacheEntry, version_key
from fti.inference.native import NativeScorer
from fti.inference.selection import check_prefer, get_scorer

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("fti.inference")

SUBDIRECTORY = Path("cache") / "scorers"
"""Where the cache lives under the home directory (``$FTI_HOME/cache/scorers``)."""


class ScorerCache:
    """Cached verified scorers of registered model versions, in one directory.

    Args:
        directory: The cache directory (created on first write).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def at_home(cls, home: str | Path) -> ScorerCache:
        """The cache of the home directory ``home`` (``$FTI_HOME/cache/scorers``)."""
        return cls(Path(home) / SUBDIRECTORY)

    def __repr__(self) -> str:
        return f"ScorerCache({str(self.directory)!r})"

    def entry(self, version: ModelVersionLike) -> CacheEntry:
        """The files of ``version``'s conversions, named after its artifact digests."""
        return CacheEntry.of(self.directory, version_key(version))

    def load(self, version: ModelVersionLike) -> Scorer | None:
        """The verified converted scorer cached for ``version``, rebuilt without its native model,
        or None (nothing cached, or an entry that no longer verifies).

        The version's stored artifacts are still checked against their recorded digests (as
        ``version.load()`` does), so a tampered model version fails whatever the cache holds.

        Raises:
            IntegrityError: a stored artifact of ``version`` was changed or is missing.
        """
        scorer = manifest.load(self.entry(version))
        if scorer is not None:
            version.verify()
        return scorer

    def build(
        self,
        version: ModelVersionLike,
        model: Any,
        *,
        prefer: str = "fastest",
        rows: np.ndarray | None = None,
        timing_sample: np.ndarray | None = None,
    ) -> Scorer:
        """The fastest verified scorer of ``model``, the loaded native model of ``version``
        (see :func:`~fti.inference.selection.get_scorer`); conversions and the winner are cached.

        Args:
            version: The registered model version ``model`` was loaded from.
            model: Its native model object.
            prefer: One of :data:`~fti.inference.selection.PREFER`.
            rows: Model-input rows at hand (a batch job's input). The candidates are verified on
                them, topped up with rows of the version's training data and its input example
                (:func:`fti.inference.verification.verification_sample`).
            timing_sample: Distinct rows to time them on (default: the verification rows repeated).
        """
        from fti.inference.verification import verification_sample
        from fti.registry.flavors.base import get_flavor

        return get_scorer(
            model,
            sample=verification_sample(version, rows),
            prefer=prefer,
            cache_dir=self.directory,
            cache_key=version_key(version),
            predict_fn=get_flavor(version.flavor).predict,
            timing_sample=timing_sample,
        )

    def get(self, version: ModelVersionLike, *, prefer: str = "fastest") -> Scorer:
        """Load or build the scorer of ``version``.

        With a cached converted winner, no native model is loaded (no scikit-learn, LightGBM,
        skops or PyTorch import: most of a model server's cold start and memory); should it ever
        fail at predict time, the native model is loaded and serves from then on. Otherwise the
        native model is loaded and its fastest verified scorer built (``prefer="native"``: the
        flavor's own predict).

        Raises:
            ValidationError: ``prefer`` is not one of :data:`~fti.inference.selection.PREFER`.
            IntegrityError: a stored artifact of ``version`` does not match its digest.
        """
        from fti.registry.flavors.base import get_flavor

        check_prefer(prefer)
        predict = get_flavor(version.flavor).predict
        if prefer != "native":
            converted = self.load(version)
            if converted is not None:
                return FallbackScorer(
                    converted,
                    lambda: NativeScorer(version.load(), predict),
                    f"{version.name} v{version.version}",
                )
        model = version.load()
        if prefer == "native":
            return NativeScorer(model, predict)
        return self.build(version, model, prefer=prefer)


class FallbackScorer:
    """A converted scorer built without the native model; if it ever fails, the native model is
    loaded (once) and serves this and every later call."""

    def __init__(self, converted: Scorer, load_native: Callable[[], Scorer], label: str) -> None:
        self._converted = converted
        self._load_native = load_native
        self._label = label
        self._native: Scorer | None = None
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return (self._native or self._converted).kind

    @property
    def converted(self) -> Scorer:
        """The cached converted scorer it starts with."""
        return self._converted

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        if self._native is None:
            try:
                return self._converted.predict(X)
            except Exception as exc:
                with self._lock:
                    if self._native is None:
                        log.warning(
                            "%s: cached %s scorer failed (%s: %s); loading the native model",
                            self._label,
                            self._converted.kind,
                            type(exc).__name__,
                            exc,
                        )
                        self._native = self._load_native()
        assert self._native is not None
        return self._native.predict(X)
