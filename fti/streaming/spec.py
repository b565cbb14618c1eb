"""What a stream pipeline computes: its source, event schema, key, windows and output group.

Built and validated by ``@fti.stream_pipeline`` (:mod:`fti.pipelines.streams`), run by
:class:`~fti.streaming.processor.StreamProcessor`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from fti.errors import ValidationError
from fti.types import DTYPES, Feature
from fti.window import Aggregation, Window, check, duration_us, label

if TYPE_CHECKING:
    from fti.sources.streams import RedisStream

KEY_DTYPES = ("int8", "int16", "int32", "int64", "string", "bool")
NUMERIC = ("int8", "int16", "int32", "int64", "float32", "float64")


@dataclass(frozen=True)
class StreamSpec:
    """A validated stream pipeline declaration (see :func:`fti.pipelines.streams.stream_pipeline`)."""

    source: RedisStream
    schema: Mapping[str, str]
    key: tuple[str, ...]
    event_time: str
    windows: tuple[Window, ...]
    aggregations: tuple[Aggregation, ...]
    output: str
    output_version: int
    allowed_lateness_us: int
    publish_delay_us: int
    batch_size: int
    transform: Callable[..., Any] | None = None

    @property
    def value_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.column for a in self.aggregations if a.column is not None))

    def output_features(self) -> list[Feature]:
        """The output group's schema: key, event time, one column per window and aggregation."""
        features = [Feature(k, self.schema[k]) for k in self.key]
        features.append(Feature(self.event_time, "timestamp"))
        for w in self.windows:
            for a in self.aggregations:
                features.append(
                    Feature(f"{a.name}_{w.name}", "int64" if a.function == "count" else "float64")
                )
        return features

    def fingerprint(self) -> str:
        """Changes when what the state means changes (key, windows, aggregations, lateness)."""
        described = {
            "key": self.key,
            "windows": [w.to_dict() for w in self.windows],
            "aggregations": [a.to_dict() for a in self.aggregations],
            "lateness": self.allowed_lateness_us,
        }
        return hashlib.sha256(orjson.dumps(described)).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source.describe(),
            "key": list(self.key),
            "event_time": self.event_time,
            "windows": [str(w) for w in self.windows],
            "aggregations": [f"{a.function}({a.column or ''})" for a in self.aggregations],
            "output": f"{self.output}:{self.output_version}",
            "allowed_lateness": label(self.allowed_lateness_us) if self.allowed_lateness_us else "0s",
        }


def build(
    *,
    source: Any,
    schema: Any,
    key: str | Sequence[str],
    event_time: str,
    windows: Any,
    aggregations: Any,
    output: str,
    output_version: int = 1,
    allowed_lateness: Any = "0s",
    publish_delay: Any = None,
    batch_size: int = 1000,
    transform: Callable[..., Any] | None = None,
) -> StreamSpec:
    """Check a declaration; every problem is a ValidationError naming the option."""
    from fti._names import check_name, check_version
    from fti.sources.streams import RedisStream

    if not isinstance(source, RedisStream):
        raise ValidationError(
            f"source must be a stream source such as fti.sources.RedisStream('tx', group='features'), got {source!r}"
        )
    if not isinstance(schema, Mapping) or not schema:
        raise ValidationError(
            "schema must map each event field to its dtype, e.g. {'cc_num': 'int64', 'ts': 'timestamp'}"
        )
    for field, dtype in schema.items():
        if not isinstance(field, str) or dtype not in DTYPES:
            raise ValidationError(
                f"schema field {field!r}: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}"
            )
    keys = (key,) if isinstance(key, str) else tuple(key)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValidationError(f"key must be a field name or a list of them, got {key!r}")
    for k in keys:
        if schema.get(k) not in KEY_DTYPES:
            raise ValidationError(
                f"key field {k!r} must be in the schema as one of {', '.join(KEY_DTYPES)}, got {schema.get(k)!r}"
            )
    if schema.get(event_time) != "timestamp":
        raise ValidationError(f"event_time {event_time!r} must be a schema field of dtype 'timestamp'")
    checked_windows, checked_aggregations = check(windows, aggregations)
    for a in checked_aggregations:
        if a.column is not None and a.column in schema and schema[a.column] not in NUMERIC:
            raise ValidationError(
                f"{a.function}({a.column!r}): the field is {schema[a.column]}, not a number"
            )
    check_name(output, "feature group")
    check_version(output_version, "feature group")
    lateness = (
        0 if allowed_lateness in (0, "0", "0s", None) else duration_us(allowed_lateness, "allowed_lateness")
    )
    delay = 0 if publish_delay is None else duration_us(publish_delay, "publish_delay")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 100_000:
        raise ValidationError(f"batch_size must be an integer from 1 to 100000, got {batch_size!r}")
    clashes = [f for f in _outputs(checked_windows, checked_aggregations) if f in (*keys, event_time)]
    if clashes:
        raise ValidationError(
            f"output column(s) {clashes} clash with the key or event time: rename with name=..."
        )
    return StreamSpec(
        source=source,
        schema=dict(schema),
        key=keys,
        event_time=event_time,
        windows=checked_windows,
        aggregations=checked_aggregations,
        output=output,
        output_version=output_version,
        allowed_lateness_us=lateness,
        publish_delay_us=delay,
        batch_size=batch_size,
        transform=transform,
    )


def _outputs(windows: Sequence[Window], aggregations: Sequence[Aggregation]) -> list[str]:
    return [f"{a.name}_{w.name}" for w in windows for a in aggregations]
