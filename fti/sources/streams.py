"""Streams as data sources: a Redis Stream read through a consumer group (``fti.sources.RedisStream``).

The interface a stream pipeline needs is small and Kafka-shaped, so a Kafka source can be added
beside it: :meth:`RedisStream.open` returns a :class:`StreamReader` that ``read``\\ s batches of
:class:`Message` (first the messages delivered to this consumer earlier but never acknowledged,
then new ones), ``ack``\\ s them after their results were written (at-least-once), reports its
``lag`` and closes. :meth:`RedisStream.publish` appends events (producers, tests, examples).

A message's fields are the event's columns as text (``XADD tx * cc_num 42 amount 9.5 ts
2024-01-01T10:00:00Z``); the pipeline's schema says how to read each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from fti.errors import BackendError, ValidationError
from fti.sources.base import Source

if TYPE_CHECKING:
    from fti.project import Project


@dataclass(frozen=True)
class Message:
    """One stream message: its id (``<ms>-<seq>`` in Redis; ids sort in append order), its
    fields as text and when it was appended (milliseconds since the epoch, the broker's clock)."""

    id: str
    fields: dict[str, str]
    appended_ms: int


class StreamReader(Protocol):
    """A consumer's view of a stream: at-least-once delivery, acknowledged explicitly."""

    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to ``count`` messages: first those delivered earlier but never acknowledged (after a
        crash), then new ones, waiting up to ``block_ms`` when there are none."""
        ...

    def ack(self, ids: Sequence[str]) -> None:
        """Acknowledge handled messages: they are not delivered again."""
        ...

    def lag(self) -> int | None:
        """Messages not acknowledged yet (delivered or not), or None when unknown."""
        ...

    def close(self) -> None: ...


class RedisStream(Source):
    """A Redis Stream read by a consumer group.

    Args:
        stream: The stream's key.
        group: The consumer group (created on first use, reading the stream from its start).
        url: ``redis://[user@]host:port/db``; default: the project's online store or push buffer
            when it is on Redis. Leave the password out and name a ``secret``.
        secret: A secret holding the password, or a JSON object with ``username``/``password``.
        project: The project whose settings and secrets are used (default: the pipeline run's).
        start: Where a new group starts: ``"earliest"`` (every message in the stream) or
            ``"latest"`` (messages appended from now on).
    """

    kind = "redis-stream"

    def __init__(
        self,
        stream: str,
        *,
        group: str,
        url: str | None = None,
        secret: str | None = None,
        project: Project | None = None,
        start: str = "earliest",
    ) -> None:
        super().__init__(secret=secret, project=project)
        for label, value in (("stream", stream), ("group", group)):
            if not isinstance(value, str) or not value or len(value) > 255:
                raise ValidationError(f"RedisStream {label} must be a non-empty string, got {value!r}")
        if url is not None and (not isinstance(url, str) or not url.startswith(("redis://", "rediss://"))):
            raise ValidationError(f"RedisStream url must be redis://host:port/db, got {url!r}")
        if start not in ("earliest", "latest"):
            raise ValidationError(f"start must be 'earliest' or 'latest', got {start!r}")
        self.stream = stream
        self.group = group
        self.url = url
        self.start = start

    def describe(self) -> str:
        from fti.config import _mask

        where = "" if self.url is None else _mask(self.url) + "/"
        return f"redis-stream:{where}{self.stream}#{self.group}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "stream": self.stream, "group": self.group, "describe": self.describe()}

    # --- connecting -----------------------------------------------------------------------------
    def _resolved_url(self) -> str:
        if self.url is not None:
            return self.url
        settings = self._project_for("the Redis URL of the stream").settings
        for url in (settings.resolved_online_url, settings.resolved_buffer_url):
            if url.startswith(("redis://", "rediss://")):
                return url
        raise ValidationError(
            f"{self!r} needs url='redis://host:port/db': the project's online store is not on Redis"
        )

    def client(self) -> Any:
        """A redis-py client for the stream's server (credentials from the secret)."""
        import orjson

        from fti.storage.online.redis import _import_redis

        redis = _import_redis()
        options: dict[str, Any] = {"socket_connect_timeout": 5, "socket_timeout": 30}
        secret = self._secret_value()
        if secret is not None:
            try:
                fields = orjson.loads(secret)
            except orjson.JSONDecodeError:
                fields = None
            if isinstance(fields, dict):
                options.update({k: str(v) for k, v in fields.items() if k in ("username", "password")})
            else:
                options["password"] = secret
        url = self._resolved_url()
        try:
            client = redis.Redis.from_url(url, **options)
            client.ping()
        except (ValueError, redis.exceptions.RedisError) as exc:
            message = self._masker(secret).text(str(exc))
            raise BackendError(f"{self!r}: cannot reach Redis: {message}") from None
        return client

    def open(self, consumer: str) -> RedisStreamReader:
        """A reader for ``consumer`` (one stable name per pipeline: a restarted pipeline gets back
        the messages it had not acknowledged)."""
        return RedisStreamReader(self, self.client(), consumer)

    # --- producing ------------------------------------------------------------------------------
    def publish(self, events: Any, *, maxlen: int | None = None) -> list[str]:
        """Append events: a list of dicts, or a pandas/polars DataFrame or Arrow table, one
        message per row (values as text: times in ISO 8601 with their offset). Returns the ids."""
        rows = _rows(events)
        client = self.client()
        try:
            pipe = client.pipeline(transaction=False)
            for row in rows:
                pipe.xadd(self.stream, {k: _text(v) for k, v in row.items() if v is not None}, maxlen=maxlen)
            return [i.decode() for i in pipe.execute()]
        finally:
            client.close()


class RedisStreamReader:
    """:class:`StreamReader` over ``XREADGROUP``/``XACK`` of one consumer of the group."""

    def __init__(self, source: RedisStream, client: Any, consumer: str) -> None:
        self._source = source
        self._client = client
        self._consumer = consumer
        self._pending = True  # first deliver what this consumer left unacknowledged
        try:
            client.xgroup_create(
                source.stream, source.group, id="0" if source.start == "earliest" else "$", mkstream=True
            )
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise BackendError(f"{source!r}: cannot create the consumer group: {exc}") from exc

    def read(self, count: int, block_ms: int) -> list[Message]:
        stream = self._source.stream
        if self._pending:
            found = self._client.xreadgroup(self._source.group, self._consumer, {stream: "0"}, count=count)
            messages = _messages(found)
            if messages:
                return messages
            self._pending = False
        found = self._client.xreadgroup(
            self._source.group, self._consumer, {stream: ">"}, count=count, block=block_ms or None
        )
        return _messages(found)

    def ack(self, ids: Sequence[str]) -> None:
        if ids:
            self._client.xack(self._source.stream, self._source.group, *ids)

    def lag(self) -> int | None:
        for group in self._client.xinfo_groups(self._source.stream):
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == self._source.group:
                lag = group.get("lag")
                return None if lag is None else int(lag) + int(group.get("pending") or 0)
        return None

    def close(self) -> None:
        self._client.close()


def _messages(found: Any) -> list[Message]:
    out: list[Message] = []
    for _, entries in found or []:
        for raw_id, fields in entries:
            if fields is None:  # deleted from the stream while pending
                continue
            entry_id = raw_id.decode()
            out.append(
                Message(
                    entry_id,
                    {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()},
                    int(entry_id.split("-")[0]),
                )
            )
    return out


def _rows(events: Any) -> list[Mapping[str, Any]]:
    if isinstance(events, list) and all(isinstance(e, Mapping) for e in events):
        return events
    from fti.features._frames import to_arrow

    return to_arrow(events, what="events to publish").to_pylist()  # type: ignore[no-any-return]


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(f"cannot publish the naive time {value!r}: give it a time zone")
        return value.isoformat()
    if isinstance(value, date | bool):
        return str(value).lower() if isinstance(value, bool) else value.isoformat()
    return str(value)
