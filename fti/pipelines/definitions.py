"""Declaring pipelines: the decorators, schedules, triggers and run policies, all validated up front.

A decorator validates everything it is given (cron expression, time zone, retries, timeout,
overlap policy, the function's signature) and attaches a :class:`PipelineSpec` to the function,
which it returns unchanged so it stays callable in tests and notebooks. ``fti pipelines deploy``
imports a module and registers every function carrying a spec. This module imports only the
standard library, so ``@fti.feature_pipeline`` costs nothing at import time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, overload

from fti._names import check_name, check_secret_name
from fti.errors import ValidationError
from fti.pipelines import environments
from fti.pipelines.environments import EnvSpec
from fti.pipelines.schedules import Schedule, check_cron, check_timezone, parse_duration

F = TypeVar("F", bound=Callable[..., Any])

KINDS = ("feature", "training", "inference")
CONCURRENCY = ("forbid", "allow", "replace")
MISSED = ("latest", "skip")
SPEC_ATTRIBUTE = "__fti_pipeline__"
WINDOW_PARAMS = ("start", "end")


@dataclass(frozen=True)
class Every:
    """A fixed interval schedule, e.g. ``fti.every(hours=6)``."""

    interval: timedelta

    def __str__(self) -> str:
        return f"every {self.interval}"


def every(*, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> Every:
    """An interval schedule: ``fti.every(days=1)``, ``fti.every(minutes=15)``.

    Whole-day intervals fire at local midnight of the pipeline's time zone; shorter ones at
    multiples of the interval since the Unix epoch.
    """
    for unit, value in (("days", days), ("hours", hours), ("minutes", minutes), ("seconds", seconds)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValidationError(f"every({unit}={value!r}): use a number >= 0")
    interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if interval < timedelta(seconds=1):
        raise ValidationError(f"every(...) interval {interval} is too short: use at least 1 second")
    return Every(interval)


@dataclass(frozen=True)
class OnNewData:
    """Trigger on new commits to a feature group, once at least ``min_rows`` new rows arrived."""

    feature_group: str
    version: int | None = None
    min_rows: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "new_data",
            "feature_group": self.feature_group,
            "version": self.version,
            "min_rows": self.min_rows,
        }


def on_new_data(feature_group: str, *, version: int | None = None, min_rows: int = 1) -> OnNewData:
    """Run when feature group ``feature_group`` (any version, or ``version``) gets new commits.

    Args:
        feature_group: The feature group's name.
        version: Watch only this version (default: every version of the name).
        min_rows: Wait until at least this many rows arrived since the last triggered run.
    """
    check_name(feature_group, "feature group")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValidationError(f"on_new_data version {version!r}: use an integer >= 1 or None")
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ValidationError(f"on_new_data min_rows {min_rows!r}: use an integer >= 1")
    return OnNewData(feature_group, version, min_rows)


@dataclass(frozen=True)
class OnEvent:
    """Trigger on a named event fired with :func:`fti.pipelines.fire_event`."""

    event: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "event", "event": self.event}


def on_event(event: str) -> OnEvent:
    """Run when ``fti.pipelines.fire_event(project, event, payload)`` is called (e.g. ``"drift_detected"``)."""
    check_name(event, "event")
    return OnEvent(event)


Trigger = OnNewData | OnEvent


def trigger_from_dict(data: dict[str, Any] | None) -> Trigger | None:
    if not data:
        return None
    if data["type"] == "new_data":
        return OnNewData(data["feature_group"], data.get("version"), int(data.get("min_rows", 1)))
    return OnEvent(data["event"])


@dataclass(frozen=True)
class Signature:
    """What a pipeline function accepts beyond the project."""

    params: tuple[str, ...]
    required: tuple[str, ...]
    var_keyword: bool
    takes_window: bool
    takes_event: bool
    window_required: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": list(self.params),
            "required": list(self.required),
            "var_keyword": self.var_keyword,
            "takes_window": self.takes_window,
            "takes_event": self.takes_event,
            "window_required": self.window_required,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            tuple(data["params"]),
            tuple(data["required"]),
            bool(data["var_keyword"]),
            bool(data["takes_window"]),
            bool(data["takes_event"]),
            bool(data.get("window_required", False)),
        )


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline declaration."""

    name: str
    kind: str
    function: str
    schedule: Schedule | None
    trigger: Trigger | None
    retries: int
    retry_backoff: float
    timeout: float | None
    concurrency: str
    missed: str
    signature: Signature
    description: str = ""
    secrets: tuple[str, ...] = ()
    environment: EnvSpec | None = None
    """Requirements and Python of the run's isolated environment (None: the scheduler's)."""
    func: Callable[..., Any] | None = field(default=None, compare=False, repr=False)


def _inspect_signature(func: Callable[..., Any], name: str, needs_window: bool) -> Signature:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"pipeline {name!r}: cannot read the function's signature ({exc})") from exc
    params = list(sig.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        raise ValidationError(
            f"pipeline {name!r}: the function must take the project as its first positional "
            f"parameter, e.g. def {func.__name__}(project, start, end): ..."
        )
    rest = params[1:]
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest)
    named = [
        p for p in rest if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in rest):
        raise ValidationError(
            f"pipeline {name!r}: only the project may be positional-only; fti passes the other "
            "arguments by keyword"
        )
    names = {p.name for p in named}
    takes_window = var_keyword or all(w in names for w in WINDOW_PARAMS)
    if needs_window and not takes_window:
        missing = [w for w in WINDOW_PARAMS if w not in names]
        raise ValidationError(
            f"pipeline {name!r} has a schedule, so it is called with the window that just closed, but "
            f"{func.__name__}{sig} cannot accept {', '.join(missing)}: declare it as "
            f"def {func.__name__}(project, start, end): ..."
        )
    required = tuple(
        p.name
        for p in named
        if p.default is inspect.Parameter.empty and p.name not in (*WINDOW_PARAMS, "event")
    )
    return Signature(
        params=tuple(p.name for p in named),
        required=required,
        var_keyword=var_keyword,
        takes_window=takes_window,
        takes_event=var_keyword or "event" in names,
        window_required=any(p.name in WINDOW_PARAMS and p.default is inspect.Parameter.empty for p in named),
    )


def build_spec(
    func: Callable[..., Any],
    kind: str,
    *,
    name: str | None = None,
    schedule: str | Every | None = None,
    timezone: str = "UTC",
    trigger: Trigger | None = None,
    retries: int = 0,
    retry_backoff: float | str = 30.0,
    timeout: str | float | None = None,
    concurrency: str = "forbid",
    missed: str = "latest",
    secrets: list[str] | tuple[str, ...] = (),
    requirements: list[str] | tuple[str, ...] | None = None,
    python: str | None = None,
    requirements_file: str | None = None,
) -> PipelineSpec:
    """Validate a declaration and return its spec (the decorators call this)."""
    if not callable(func) or not hasattr(func, "__name__"):
        raise ValidationError(f"a pipeline must be a function, got {func!r}")
    if kind not in KINDS:
        raise ValidationError(f"invalid pipeline kind {kind!r}: use one of {', '.join(KINDS)}")
    pname = check_name(name if name is not None else func.__name__, "pipeline")
    check_timezone(timezone)
    sched: Schedule | None
    if schedule is None:
        sched = None
    elif isinstance(schedule, Every):
        sched = Schedule(interval=schedule.interval, timezone=timezone)
    elif isinstance(schedule, str):
        sched = Schedule(cron=check_cron(schedule), timezone=timezone)
    else:
        raise ValidationError(
            f"pipeline {pname!r}: invalid schedule {schedule!r}: use a cron string like '0 * * * *' "
            "or fti.every(hours=1)"
        )
    if trigger is not None and not isinstance(trigger, OnNewData | OnEvent):
        raise ValidationError(
            f"pipeline {pname!r}: invalid trigger {trigger!r}: use fti.on_new_data(...) or fti.on_event(...)"
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValidationError(f"pipeline {pname!r}: retries must be an integer >= 0, got {retries!r}")
    backoff = parse_duration(retry_backoff, "retry_backoff").total_seconds() if retry_backoff else 0.0
    limit = None if timeout is None else parse_duration(timeout, "timeout").total_seconds()
    if concurrency not in CONCURRENCY:
        raise ValidationError(
            f"pipeline {pname!r}: invalid concurrency {concurrency!r}: use one of {', '.join(CONCURRENCY)}"
        )
    if missed not in MISSED:
        raise ValidationError(
            f"pipeline {pname!r}: invalid missed {missed!r}: use one of {', '.join(MISSED)}"
        )
    if isinstance(secrets, str) or not isinstance(secrets, list | tuple):
        raise ValidationError(
            f"pipeline {pname!r}: secrets must be a list of secret names, e.g. secrets=['analytics-db'], "
            f"got {secrets!r}"
        )
    declared = tuple(dict.fromkeys(check_secret_name(s) for s in secrets))
    environment = environments.check(requirements, python, requirements_file, pname)
    signature = _inspect_signature(func, pname, needs_window=sched is not None)
    if (sched is not None or trigger is not None) and signature.required:
        raise ValidationError(
            f"pipeline {pname!r} runs automatically, so its parameters "
            f"{', '.join(signature.required)} need default values"
        )
    return PipelineSpec(
        name=pname,
        kind=kind,
        function=func.__name__,
        schedule=sched,
        trigger=trigger,
        retries=retries,
        retry_backoff=backoff,
        timeout=limit,
        concurrency=concurrency,
        missed=missed,
        signature=signature,
        description=inspect.getdoc(func) or "",
        secrets=declared,
        environment=environment,
        func=func,
    )


OPTIONS = (
    "name",
    "schedule",
    "timezone",
    "trigger",
    "retries",
    "retry_backoff",
    "timeout",
    "concurrency",
    "missed",
    "secrets",
    "requirements",
    "python",
    "requirements_file",
)
"""The keyword options every pipeline decorator takes (see :func:`feature_pipeline`)."""


def _decorator(kind: str, func: F | None, options: dict[str, Any]) -> Any:
    unknown = [key for key in options if key not in OPTIONS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], OPTIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValidationError(
            f"@fti.{kind}_pipeline has no option {unknown[0]!r}{hint}; its options are {', '.join(OPTIONS)}"
        )

    def wrap(f: F) -> F:
        spec = build_spec(f, kind, **options)
        setattr(f, SPEC_ATTRIBUTE, spec)
        return f

    return wrap(func) if func is not None else wrap


@overload
def feature_pipeline(func: F, /) -> F: ...
@overload
def feature_pipeline(func: None = None, /, **options: Any) -> Callable[[F], F]: ...
def feature_pipeline(func: F | None = None, /, **options: Any) -> Any:
    """Declare a feature pipeline: ``@fti.feature_pipeline(schedule="0 * * * *")``.

    Keyword options (all validated when the decorator runs):
        name: Pipeline name (default: the function's name).
        schedule: A 5-field cron expression or ``fti.every(...)``. Scheduled functions are called
            as ``func(project, start=..., end=...)`` with the window that just closed.
        timezone: IANA time zone the schedule is evaluated in (default ``"UTC"``).
        trigger: ``fti.on_new_data(...)`` or ``fti.on_event(...)``.
        retries: Extra attempts after a failure (default 0).
        retry_backoff: Seconds (or ``"30s"``) before the first retry; doubles each attempt, with jitter.
        timeout: ``"15m"``, ``"1h"`` or seconds; the whole process group is killed after it.
        concurrency: ``"forbid"`` (skip while one runs), ``"allow"`` or ``"replace"`` (cancel the running one).
        missed: After downtime run the latest missed fire time (``"latest"``) or ``"skip"`` it.
        secrets: Names of the secrets a run may read (``project.secrets.get(name)``, or a source's
            ``secret=``); a run gets exactly these and none of the parent's credential variables.
        requirements: Packages (pip requirement strings) the runs need: they run in an isolated
            environment built with uv and cached per requirements, Python and fti version (see
            :mod:`fti.pipelines.environments`).
        python: The environment's Python version, e.g. ``"3.11"`` (default: the scheduler's).
        requirements_file: A requirements file (relative to the module), read at deploy.
    """
    return _decorator("feature", func, options)


@overload
def training_pipeline(func: F, /) -> F: ...
@overload
def training_pipeline(func: None = None, /, **options: Any) -> Callable[[F], F]: ...
def training_pipeline(func: F | None = None, /, **options: Any) -> Any:
    """Declare a training pipeline, e.g. ``@fti.training_pipeline(trigger=fti.on_new_data("tx"))``.

    Takes the same options as :func:`feature_pipeline`.
    """
    return _decorator("training", func, options)


@overload
def inference_pipeline(func: F, /) -> F: ...
@overload
def inference_pipeline(func: None = None, /, **options: Any) -> Callable[[F], F]: ...
def inference_pipeline(func: F | None = None, /, **options: Any) -> Any:
    """Declare a batch inference pipeline, e.g. ``@fti.inference_pipeline(schedule=fti.every(days=1))``.

    Takes the same options as :func:`feature_pipeline`.
    """
    return _decorator("inference", func, options)


def spec_of(obj: Any) -> PipelineSpec | None:
    """The spec attached to a decorated function, or None."""
    spec = getattr(obj, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, PipelineSpec) else None


def load_module(path: str | Path) -> tuple[ModuleType, str, list[PipelineSpec]]:
    """Import the Python file at ``path`` and return it, its SHA-256 and the pipelines it declares.

    The module is imported under a private name (it does not stay in ``sys.modules``); its
    directory is put first on ``sys.path`` while it imports so sibling modules resolve.

    Raises:
        NotFoundError: no such file.
        ValidationError: the module failed to import (message includes the traceback), or it
            declares two pipelines with the same name.
    """
    import hashlib
    import importlib.util
    import sys
    import traceback

    from fti.errors import FtiError, NotFoundError

    source = Path(path).expanduser().resolve()
    if not source.is_file() or source.suffix != ".py":
        raise NotFoundError(f"pipeline module {str(path)!r} does not exist or is not a .py file")
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    mod_name = f"_fti_pipeline_{digest[:16]}"
    spec = importlib.util.spec_from_file_location(mod_name, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    folder = str(source.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.format_exc()
        if isinstance(exc, FtiError):  # a declaration fti rejected: where, and what is wrong
            lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(source)]
            where = f"{source}, line {lines[-1]}" if lines else str(source)
            raise ValidationError(
                f"{where}: {exc.message.rstrip('.')}. Nothing was registered.", details={"traceback": tb}
            ) from exc
        raise ValidationError(
            f"cannot import pipeline module {str(source)!r}: {type(exc).__name__}: {exc}\n{tb}"
            "Nothing was registered; fix the module and deploy again.",
            details={"traceback": tb},
        ) from exc
    finally:
        sys.modules.pop(mod_name, None)
        if folder in sys.path:
            sys.path.remove(folder)
    specs: dict[str, PipelineSpec] = {}
    for attr_name, attr in vars(module).items():
        found = spec_of(attr)
        if found is None or getattr(attr, "__module__", None) != mod_name:
            continue
        if found.name in specs and specs[found.name].func is not attr:
            raise ValidationError(
                f"{str(source)!r} declares two pipelines named {found.name!r}: give one of them name=..."
            )
        specs[found.name] = replace(found, function=attr_name)
    return module, digest, sorted(specs.values(), key=lambda s: s.name)
