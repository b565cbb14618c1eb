"""Where a model server's cold start goes: the steps ``fti serve`` takes to its first prediction,
timed one by one in a fresh process (run by ``serve_bench --cold-only``, or alone on a home).

Steps: ``import`` (the CLI and the server modules), ``catalog`` (open the project, list and
resolve the deployment), ``load`` (the scorer: a cached conversion rebuilt from its manifest and
re-checked against its stored outputs, or the native model loaded and its scorer built),
``verify`` (a cached conversion's model artifact digests; for a native model they are checked
inside ``load``), ``first prediction``; then the modules it
holds and its RSS. ``total`` is from this module's import (after the interpreter started).

Run: .venv/bin/python -m benchmarks.serving.cold_start HOME DEPLOYMENT   (prints one JSON line)
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.perf_counter()


def main() -> None:
    home, deployment = sys.argv[1], sys.argv[2]
    steps: dict[str, float] = {}
    mark = time.perf_counter()

    def step(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        steps[name] = steps.get(name, 0.0) + now - mark
        mark = now

    import fti.cli.main
    from fti.registry.flavors import sklearn
    from fti.serving import app  # noqa: F401
    from fti.serving.loaded import load_model

    sklearn.skip_estimator_walk()  # as the server's app_factory does

    step("import")
    project = fti.connect(home=home)
    dep = project.serving.get(deployment)
    spec = dep.spec
    step("catalog")
    from fti.inference import manifest
    from fti.inference.cache import ScorerCache
    from fti.inference.entry import purpose

    cache = ScorerCache.for_settings(project.settings)
    mv = project.model_registry.resolve(spec.ref)
    step("catalog")
    entry = cache.entry(mv)
    cached = manifest.read_trusted(entry) is not None and spec.scorer != "native"
    if cached and entry.choice(purpose(spec.scorer, "serving")):
        # a cached conversion: rebuilt and re-checked against its stored outputs, then the
        # model's artifact digests checked (what ScorerCache.load does)
        manifest.load(entry, purpose(spec.scorer, "serving"))
        step("load")
        mv.verify()
        step("verify")
    # what the server does; for a cached conversion the steps above again (then warm)
    started = time.perf_counter()
    loaded = load_model(project, spec)
    if "load" not in steps:  # the native model: loaded (digests checked) and its scorer chosen
        steps["load"] = time.perf_counter() - started
        steps["verify"] = 0.0
    mark = time.perf_counter()
    import numpy as np

    X = np.zeros((1, len(loaded.signature.inputs)))
    loaded.predict(X)
    step("first prediction")
    heavy = sorted(
        {m.split(".")[0] for m in sys.modules}
        & {"sklearn", "skops", "torch", "pandas", "lightgbm", "xgboost"}
    )
    rss = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    print(
        json.dumps(
            {
                "steps": steps,
                "total": time.perf_counter() - T0,
                "scorer": loaded.scorer_kind,
                "heavy": heavy,
                "rss_mb": rss,
            }
        )
    )
    project.close()


if __name__ == "__main__":
    main()
