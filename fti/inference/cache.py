"""The scorer cache: the one owner of cached, verified scorers, used by serving and batch alike.

``ScorerCache.for_settings(settings)`` is the directory ``$FTI_HOME/cache/scorers``. For a
registered model version it keeps the converted models, the measured winner and the manifest that
rebuilds a converted winner without the native model. :meth:`ScorerCache.get` is load-or-build: the
cached winner when its manifest verifies (the version's artifacts are still checked against their
digests), else the native model loaded and its fastest verified scorer chosen (and cached).

Trust: the directory can be written by others (a shared disk, another job), so nothing in it is
trusted for its name. A manifest is signed with a key derived from the secret key and bound to
the model version's artifact digests as the catalog records them (:mod:`fti.inference.manifest`);
only files an authentic manifest vouches for are loaded or reused, anything else is rebuilt from
the native model. Processes sharing a cache need the same secret key (``FTI_SECRET_KEY`` or
``$FTI_HOME/secret.key``) to use each other's conversions; without one, nothing cached is trusted.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.inference import manifest
from fti.inference.base import ModelVersionLike, Scorer, numeric_inputs
from fti.inference.entry import CacheEntry, binding, purpose, version_key
from fti.inference.native import NativeScorer
from fti.inference.selection import check_prefer, get_scorer

if TYPE_CHECKING:
    import numpy as np

    from fti.config import Settings

log = logging.getLogger("fti.inference")

SUBDIRECTORY = Path("cache") / "scorers"
"""Where the cache lives under the home directory (``$FTI_HOME/cache/scorers``)."""


class ScorerCache:
    """Cached verified scorers of registered model versions, in one directory.

    Args:
        directory: The cache directory (created on first write).
    """

    def __init__(self, directory: str | Path, keys: tuple[bytes, ...] = ()) -> None:
        self.directory = Path(directory)
        self._keys = keys

    @classmethod
    def for_settings(cls, settings: Settings) -> ScorerCache:
        """The cache of ``settings.home`` (``$FTI_HOME/cache/scorers``), signing its manifests
        with a key derived from the secret key (made on first use like the secrets' key file)."""
        from fti.errors import FtiError
        from fti.secrets.keys import load_key

        try:
            keys = load_key(settings, create=True).derive("scorer cache manifests")
        except FtiError as exc:  # serve anyway: from the native models, trusting nothing cached
            log.warning("the scorer cache trusts no cached conversion: %s", exc.message)
            keys = ()
        return cls(settings.home / SUBDIRECTORY, keys)

    @classmethod
    def at_home(cls, home: str | Path) -> ScorerCache:
        """The cache of the home directory ``home``, with the settings of that home."""
        from fti.config import load_settings

        return cls.for_settings(load_settings(home))

    def __repr__(self) -> str:
        return f"ScorerCache({str(self.directory)!r})"

    def entry(self, version: ModelVersionLike) -> CacheEntry:
        """The files of ``version``'s conversions, named after its artifact digests, bound to
        the version (as the catalog records it) and signed with this cache's key."""
        base = CacheEntry.of(self.directory, version_key(version))
        return dataclasses.replace(base, binding=binding(version), keys=self._keys)

    def load(
        self, version: ModelVersionLike, workload: str = "batch", prefer: str = "fastest"
    ) -> Scorer | None:
        """The verified converted scorer cached for ``version`` as the winner of ``prefer`` for
        ``workload`` (``batch`` or ``serving``), rebuilt without its native model, or None
        (nothing cached, a native winner, or an entry that no longer verifies).

        The version's stored artifacts are still checked against their recorded digests (as
        ``version.load()`` does), so a tampered model version fails whatever the cache holds.

        Raises:
            IntegrityError: a stored artifact of ``version`` was changed or is missing.
        """
        scorer = manifest.load(self.entry(version), purpose(prefer, workload))
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
        workload: str = "batch",
    ) -> Scorer:
        """The fastest verified scorer of ``model``, the loaded native model of ``version``
        (see :func:`~fti.inference.selection.get_scorer`); conversions and the winner are cached.
        A model with a string input is scored natively (:func:`~fti.inference.base.numeric_inputs`).

        Args:
            version: The registered model version ``model`` was loaded from.
            model: Its native model object.
            prefer: One of :data:`~fti.inference.selection.PREFER`.
            rows: Model-input rows at hand (a batch job's input). The candidates are verified on
                them, topped up with rows of the version's training data and its input example
                (:func:`fti.inference.verification.verification_sample`).
            timing_sample: Distinct rows to time them on (default: the verification rows repeated).
            workload: ``"batch"`` or ``"serving"``: the sizes they are timed at, and which
                remembered winner is used (see :func:`~fti.inference.selection.get_scorer`).
        """
        from fti.inference.verification import verification_sample
        from fti.registry.flavors.base import get_flavor

        check_prefer(prefer)
        if not numeric_inputs(version):
            return NativeScorer.of(model, get_flavor(version.flavor).predict)
        entry = self.entry(version)
        entry = dataclasses.replace(entry, trusted=manifest.trusted_files(entry))
        return get_scorer(
            model,
            sample=verification_sample(version, rows),
            prefer=prefer,
            predict_fn=get_flavor(version.flavor).predict,
            timing_sample=timing_sample,
            entry=entry,
            workload=workload,
        )

    def get(self, version: ModelVersionLike, *, prefer: str = "fastest", workload: str = "serving") -> Scorer:
        """Load or build the scorer of ``version`` (for ``workload``: a model server's requests by
        default, timed at request sizes).

        With a cached converted winner, no native model is loaded (no scikit-learn, LightGBM,
        skops or PyTorch import: most of a model server's cold start and memory); should it ever
        fail at predict time, the native model is loaded and serves from then on. Otherwise the
        native model is loaded and its fastest verified scorer built (``prefer="native"``, or a
        model with a string input: the flavor's own predict).

        Raises:
            ValidationError: ``prefer`` is not one of :data:`~fti.inference.selection.PREFER`.
            IntegrityError: a stored artifact of ``version`` does not match its digest.
        """
        from fti.registry.flavors.base import get_flavor

        check_prefer(prefer)
        predict = get_flavor(version.flavor).predict
        if not numeric_inputs(version):
            prefer = "native"  # conversions take a float matrix: strings are scored natively
        if prefer != "native":
            converted = self.load(version, workload, prefer)
            if converted is not None:
                return FallbackScorer(
                    converted,
                    lambda: NativeScorer.of(version.load(), predict),
                    f"{version.name} v{version.version}",
                )
        model = version.load()
        if prefer == "native":
            return NativeScorer.of(model, predict)
        return self.build(version, model, prefer=prefer, workload=workload)


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
