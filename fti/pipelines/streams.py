"""Stream pipelines: ``@fti.stream_pipeline`` declares one; the scheduler runs it as a service.

::

    @fti.stream_pipeline(
        source=fti.sources.RedisStream("transactions", group="card_windows"),
        schema={"cc_num": "int64", "datetime": "timestamp", "amount": "float64"},
        key="cc_num", event_time="datetime",
        windows=[fti.window.sliding("1h"), fti.window.sliding("1d")],
        aggregations=[fti.window.count(name="tx_count"), fti.window.sum("amount")],
        allowed_lateness="10m",
    )
    def card_windows(events: pa.Table) -> pa.Table:
        return events            # optional: filter, derive columns (keep __fti_message_id)

Deploying registers it like any pipeline (``kind="stream"``); ``fti scheduler`` keeps one process
per deployed, unpaused stream pipeline running (:mod:`fti.pipelines.services`), restarting it
with backoff when it dies. The decorated function stays callable.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fti._names import check_name, check_secret_name
from fti.errors import ValidationError
from fti.pipelines.definitions import SPEC_ATTRIBUTE, PipelineSpec, Signature
from fti.window import duration_us

F = TypeVar("F", bound=Callable[..., Any])

STREAM_ATTRIBUTE = "__fti_stream__"
KIND = "stream"


def stream_pipeline(
    *,
    source: Any,
    schema: dict[str, str],
    key: str | list[str],
    event_time: str,
    windows: Any,
    aggregations: Any,
    output: str | None = None,
    output_version: int = 1,
    allowed_lateness: Any = "0s",
    publish_delay: Any = None,
    batch_size: int = 1000,
    name: str | None = None,
    secrets: list[str] | tuple[str, ...] = (),
    restart_backoff: Any = "1s",
) -> Callable[[F], F]:
    """Declare a stream feature pipeline (see the module docstring).

    Args:
        source: Where events come from: ``fti.sources.RedisStream(stream, group=...)``.
        schema: Each event field's dtype (``"int64"``, ``"float64"``, ``"string"``, ``"timestamp"``...);
            a message missing a field or holding a value that is not its dtype is dead-lettered.
        key: The field(s) windows are kept per (the output group's primary key).
        event_time: The ``timestamp`` field windows are measured on.
        windows: ``fti.window.sliding(...)``, ``hopping(...)`` or ``tumbling(...)`` declarations.
        aggregations: ``fti.window.count()``, ``sum(col)``, ``mean(col)``, ``min(col)``, ``max(col)``.
        output: The feature group written (online + offline; default: the pipeline's name).
        output_version: Its version.
        allowed_lateness: How far behind the watermark (the latest event time seen) an event may
            arrive and still count; later events are dropped and counted (``"0s"``: none).
        publish_delay: Added to each output row's time (e.g. ``"1us"``: a row describes the state
            just after its event, so a point-in-time join at the event's own time does not see it).
        batch_size: Messages read per batch.
        name: The pipeline's name (default: the function's).
        secrets: Secrets the service may read (the stream's password).
        restart_backoff: First wait before restarting a crashed service; doubles per crash in a
            row (with jitter), up to 5 minutes.

    The decorated function takes the decoded events as a ``pyarrow.Table`` and returns the
    events to aggregate (a Table or DataFrame); it may filter rows and derive columns.
    """
    from fti.streaming import spec as stream_spec

    def wrap(func: F) -> F:
        if not callable(func) or not hasattr(func, "__name__"):
            raise ValidationError(f"a stream pipeline must be a function, got {func!r}")
        pname = check_name(name if name is not None else func.__name__, "pipeline")
        try:
            parameters = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"pipeline {pname!r}: cannot read the function's signature ({exc})"
            ) from exc
        if len([p for p in parameters if p.default is inspect.Parameter.empty]) != 1:
            raise ValidationError(
                f"stream pipeline {pname!r}: the function takes the batch of events, e.g. "
                f"def {func.__name__}(events): return events"
            )
        stream = stream_spec.build(
            source=source,
            schema=schema,
            key=key,
            event_time=event_time,
            windows=windows,
            aggregations=aggregations,
            output=output or pname,
            output_version=output_version,
            allowed_lateness=allowed_lateness,
            publish_delay=publish_delay,
            batch_size=batch_size,
            transform=func,
        )
        if isinstance(secrets, str) or not isinstance(secrets, list | tuple):
            raise ValidationError(
                f"pipeline {pname!r}: secrets must be a list of secret names, got {secrets!r}"
            )
        backoff = duration_us(restart_backoff, "restart_backoff") / 1e6
        spec = PipelineSpec(
            name=pname,
            kind=KIND,
            function=func.__name__,
            schedule=None,
            trigger=None,
            retries=0,
            retry_backoff=backoff,
            timeout=None,
            concurrency="forbid",
            missed="skip",
            signature=Signature(
                params=(), required=(), var_keyword=False, takes_window=False, takes_event=False
            ),
            description=inspect.getdoc(func) or "",
            secrets=tuple(dict.fromkeys(check_secret_name(s) for s in secrets)),
            func=func,
        )
        setattr(func, SPEC_ATTRIBUTE, spec)
        setattr(func, STREAM_ATTRIBUTE, stream)
        return func

    return wrap
