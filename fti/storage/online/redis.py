"""Redis online store: one string per key holding the whole row, written by Lua scripts in batches.

Layout in the database named by the URL, for a table ``T`` (percent-escaped as ``E`` so that no
table's keys are a prefix of another's and glob patterns match literally):

- ``fti:{E}:m`` — a hash: ``columns`` (JSON list of ``[name, kind]``, append-only so a row
  written earlier is a prefix of the current layout), ``key_columns`` (JSON list) and ``version``
  (the applied offline version).
- ``fti:{E}:g`` — the table's generation: 8 random hex digits set when the table is created, so a
  reader notices (in the same MGET as the rows) that another process deleted and recreated it.
- ``fti:{E}:r:<key>`` — one row: a 19-digit event-time prefix, the generation, then the row as a
  JSON list in ``columns`` order. The key is the JSON list of the key's stored values, so ``1``
  and ``"1"`` differ. ``{E}`` is a hash tag: all keys of a table live in one slot.

Each write batch is one Lua call that compares event-time prefixes server-side, so "an older event
never overwrites a newer one" holds under concurrent writers. The version is recorded by the last
call only, after every earlier batch succeeded.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import orjson

from fti.errors import BackendError, SchemaError, ValidationError
from fti.storage.online._arrow import (
    BOOL,
    BYTES,
    DATE,
    EVENT_TIME_LIMIT,
    FLOAT,
    JSON,
    TS,
    check_keys,
    check_rows,
    column_kind,
    column_values,
    restore,
    storage_key,
)

if TYPE_CHECKING:
    import pyarrow as pa

from fti.storage.online.base import Key

_WIDTH = 19
_GENERATION = 8  # hex digits naming one incarnation of a table, stored after the event time
_HEAD = _WIDTH + _GENERATION
_OFFSET = EVENT_TIME_LIMIT  # event times are stored as value + 2**62, zero-padded: string order = time order
_NO_EVENT = b"0" * _WIDTH
_BATCH_ROWS = 2000  # rows per Lua call (the server is busy for a few ms per call)
_CALLS_PER_ROUND_TRIP = 8
_MGET_CHUNK = 5000
_SCAN_COUNT = 1000

# KEYS[1] = meta hash, KEYS[2..] = row keys; ARGV[1] = "1" to compare event times,
# ARGV[2] = version to record ("" for none), ARGV[3..] = row values.
_WRITE_LUA = """
local compare = ARGV[1] == '1'
for i = 2, #KEYS do
  local new = ARGV[i + 1]
  if compare then
    local old = redis.call('GET', KEYS[i])
    if (not old) or string.sub(old, 1, 19) <= string.sub(new, 1, 19) then
      redis.call('SET', KEYS[i], new)
    end
  else
    redis.call('SET', KEYS[i], new)
  end
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'version', ARGV[2])
end
return #KEYS - 1
"""

# Compare-and-set of the column layout: KEYS[1] = meta hash, KEYS[2] = generation key;
# ARGV = expected layout, new layout, key columns, and the generation of a table being created.
_COLUMNS_LUA = """
local current = redis.call('HGET', KEYS[1], 'columns')
if not current then current = '' end
if current ~= ARGV[1] then return current end
redis.call('HSET', KEYS[1], 'columns', ARGV[2], 'key_columns', ARGV[3])
if current == '' then redis.call('SET', KEYS[2], ARGV[4]) end
return ARGV[2]
"""


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise BackendError(
            f"the redis:// online store needs the redis package ({exc}); install fti[redis] "
            "(pip install 'fti[redis]')"
        ) from exc
    return redis


class _TableInfo:
    """Column layout of one stored table, cached per process."""

    __slots__ = ("columns", "converters", "generation", "key_columns", "key_kinds", "kinds", "raw")

    def __init__(self, raw_columns: bytes, key_columns: list[str], generation: bytes) -> None:
        pairs = orjson.loads(raw_columns)
        self.raw = raw_columns
        self.generation = generation
        self.columns: list[str] = [name for name, _ in pairs]
        self.kinds: dict[str, str] = {name: kind for name, kind in pairs}
        self.key_columns = key_columns
        self.key_kinds = [self.kinds[k] for k in key_columns]
        # Only these kinds are stored in another form than they are returned in.
        self.converters = [(n, k) for n, k in pairs if k in (BOOL, TS, DATE, JSON, BYTES, FLOAT)]


def _escape(table: str) -> bytes:
    return quote(table, safe="_-.").encode()


def _token(parts: Sequence[Any]) -> bytes:
    return orjson.dumps([p.hex() if type(p) is bytes else p for p in parts])


def _payload_values(column: pa.ChunkedArray, kind: str) -> list[Any]:
    """JSON-ready values of one column: bytes as base64, infinities as strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column_values(column, kind)
    if kind == BYTES:
        return [None if v is None else base64.b64encode(v).decode() for v in values]
    if pa.types.is_floating(column.type) and pc.any(pc.is_inf(column)).as_py():
        # JSON has no infinity (orjson writes null); NaN stays null, as in SQLite.
        return [("inf" if v > 0 else "-inf") if v == _INF or v == -_INF else v for v in values]
    return values


_INF = float("inf")


class RedisOnlineStore:
    """Online store at ``redis://[user:password@]host:port/db`` (or ``rediss://`` for TLS).

    Reads of any number of keys take one round trip; writes apply up to 2,000 rows per Lua call
    and send several calls per round trip. Use a database number that holds nothing but fti data.
    """

    def __init__(self, url: str) -> None:
        from fti.config import _mask

        redis = _import_redis()
        self.url = url
        self._shown = _mask(url)
        self._redis_error: type[Exception] = redis.exceptions.RedisError
        self._connection_errors: tuple[type[Exception], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        )
        db = urlsplit(url).path.strip("/")
        if db and not db.isdigit():
            # redis-py would silently fall back to db 0 here.
            raise BackendError(
                f"invalid Redis online store URL {self._shown!r}: the database {db!r} is not a number; "
                "expected redis://host:port/db, e.g. redis://localhost:6379/0"
            )
        try:
            self._client: Any = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        except ValueError as exc:
            raise BackendError(
                f"invalid Redis online store URL {self._shown!r}: {exc}; expected redis://host:port/db"
            ) from exc
        self._tables: dict[str, _TableInfo] = {}
        with self._errors("connect to"):
            self._client.ping()
        self._write_script = self._client.register_script(_WRITE_LUA)
        self._columns_script = self._client.register_script(_COLUMNS_LUA)

    @contextmanager
    def _errors(self, action: str, table: str | None = None) -> Iterator[None]:
        try:
            yield
        except self._redis_error as exc:
            what = f"{action} table {table!r} in" if table is not None else action
            if isinstance(exc, self._connection_errors):
                hint = "check that redis-server is running and reachable there, or fix FTI_ONLINE_URL"
            else:
                hint = "use a database number that holds only fti data (the /db part of the URL)"
            raise BackendError(
                f"could not {what} the Redis online store at {self._shown}: {exc}; {hint}"
            ) from exc

    # --- keys ------------------------------------------------------------------------------
    @staticmethod
    def _meta_key(table: str) -> bytes:
        return b"fti:{" + _escape(table) + b"}:m"

    @staticmethod
    def _generation_key(table: str) -> bytes:
        """A string key (so that MGET can fetch it with the rows) naming the table's incarnation."""
        return b"fti:{" + _escape(table) + b"}:g"

    @staticmethod
    def _row_prefix(table: str) -> bytes:
        return b"fti:{" + _escape(table) + b"}:r:"

    # --- layout ----------------------------------------------------------------------------
    def _load_info(self, table: str) -> _TableInfo | None:
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(self._meta_key(table), "columns", "key_columns")
        pipe.get(self._generation_key(table))
        (raw, raw_keys), generation = pipe.execute()
        if raw is None or raw_keys is None or generation is None:
            self._tables.pop(table, None)
            return None
        info = _TableInfo(raw, orjson.loads(raw_keys), generation)
        self._tables[table] = info
        return info

    def _ensure_table(self, table: str, schema: pa.Schema, key_columns: Sequence[str]) -> _TableInfo:
        """The table's layout with every column of ``schema`` in it (appended when new)."""
        incoming = [(field.name, column_kind(field.type)) for field in schema]
        keys_raw = orjson.dumps(list(key_columns))
        new_generation = os.urandom(_GENERATION // 2).hex().encode()
        for _ in range(50):  # retried only while other writers change the layout concurrently
            info = self._load_info(table)
            if info is not None:
                if info.key_columns != list(key_columns):
                    raise SchemaError(
                        f"online table {table!r} is keyed by {info.key_columns}, not {list(key_columns)}; "
                        "delete the table first to change its key"
                    )
                added = [[n, k] for n, k in incoming if n not in info.kinds]
                if not added:
                    return info
                expected = info.raw
                layout = orjson.dumps([[n, info.kinds[n]] for n in info.columns] + added)
            else:
                expected = b""
                layout = orjson.dumps([[n, k] for n, k in incoming])
            args = [expected, layout, keys_raw, new_generation]
            if (
                self._columns_script(keys=[self._meta_key(table), self._generation_key(table)], args=args)
                == layout
            ):
                info = _TableInfo(layout, list(key_columns), info.generation if info else new_generation)
                self._tables[table] = info
                return info
        raise BackendError(f"the column layout of online table {table!r} kept changing during a write; retry")

    # --- writing ---------------------------------------------------------------------------
    def _encode(
        self, table: str, info: _TableInfo, rows: pa.Table, event_time: str | None
    ) -> tuple[list[bytes], list[bytes]]:
        """Row keys and row values for ``rows`` in the table's column order."""
        prefix = self._row_prefix(table)
        key_values = []
        for name in info.key_columns:
            values = column_values(rows.column(name), info.kinds[name])
            key_values.append([v.hex() for v in values] if info.kinds[name] == BYTES else values)
        keys = [prefix + orjson.dumps(parts) for parts in zip(*key_values, strict=True)]
        if event_time is None:
            stamps: Any = itertools.repeat(_NO_EVENT)
        else:
            times = column_values(rows.column(event_time), info.kinds[event_time])
            if times and (min(times) < -_OFFSET or max(times) >= _OFFSET):
                raise ValidationError(
                    f"event time column {event_time!r} holds values outside +/-2**62, which the Redis "
                    "online store cannot order"
                )
            stamps = [b"%019d" % (t + _OFFSET) for t in times]
        names = set(rows.column_names)
        columns: list[Any] = [
            _payload_values(rows.column(name), info.kinds[name]) if name in names else itertools.repeat(None)
            for name in info.columns
        ]
        generation = info.generation
        values = [
            stamp + generation + orjson.dumps(row)
            for stamp, row in zip(stamps, zip(*columns, strict=False), strict=False)
        ]
        return keys, values

    def write(
        self,
        table: str,
        rows: pa.Table,
        *,
        key_columns: Sequence[str],
        event_time: str | None,
        version: int | None,
    ) -> int:
        check_rows(rows, key_columns, event_time, version)
        with self._errors("write", table):
            info = self._ensure_table(table, rows.schema, key_columns)
            keys, values = self._encode(table, info, rows, event_time)
            meta = self._meta_key(table)
            compare = b"1" if event_time is not None else b"0"
            bounds = [(s, min(s + _BATCH_ROWS, len(keys))) for s in range(0, len(keys), _BATCH_ROWS)]
            *head, (start, end) = bounds or [(0, 0)]
            for group in range(0, len(head), _CALLS_PER_ROUND_TRIP):
                pipe = self._client.pipeline(transaction=False)
                for s, e in head[group : group + _CALLS_PER_ROUND_TRIP]:
                    self._write_script(
                        keys=[meta, *keys[s:e]], args=[compare, b"", *values[s:e]], client=pipe
                    )
                pipe.execute()  # raises on any failed batch, so the version below is never recorded
            # The last call records the version after its rows: applied_version never claims rows
            # that are not there, and a failure anywhere before leaves the old version for a retry.
            self._write_script(
                keys=[meta, *keys[start:end]],
                args=[compare, "" if version is None else str(version), *values[start:end]],
            )
        return int(rows.num_rows)

    # --- reading ---------------------------------------------------------------------------
    def read(self, table: str, keys: Sequence[Key]) -> list[dict[str, Any] | None]:
        check_keys(keys)
        if not keys:
            return []
        with self._errors("read", table):
            info = self._tables.get(table) or self._load_info(table)
            if info is None:
                return [None] * len(keys)
            tokens, generation, found = self._lookup(table, info, keys)
            if generation != info.generation or any(len(v) > len(info.columns) for _, v in found.values()):
                # The cached layout is stale: another process appended columns, or deleted and
                # recreated the table. Reload it and look the keys up again.
                info = self._load_info(table)
                if info is None:
                    return [None] * len(keys)
                tokens, generation, found = self._lookup(table, info, keys)
        # Rows of another generation are leftovers of a deleted incarnation of the table: misses.
        generation = info.generation
        rows = {t: values for t, (gen, values) in found.items() if gen == generation}
        # A fresh dict per entry: a key requested twice must not hand out one shared dict.
        return [None if t is None or t not in rows else self._to_dict(info, rows[t]) for t in tokens]

    def read_columns(
        self, table: str, keys: Sequence[Key], columns: Sequence[str]
    ) -> list[tuple[Any, ...] | None]:
        # A row is one stored value (all columns), so the wanted ones are picked after reading it.
        return [
            None if row is None else tuple([row.get(c) for c in columns]) for row in self.read(table, keys)
        ]

    def _lookup(
        self, table: str, info: _TableInfo, keys: Sequence[Key]
    ) -> tuple[list[bytes | None], bytes | None, dict[bytes, tuple[bytes, list[Any]]]]:
        """Each key's row key (None when no stored key can match), the table's current generation
        and the rows found, decoded: all in one round trip."""
        prefix = self._row_prefix(table)
        tokens: list[bytes | None] = []
        for key in keys:
            parts = storage_key(key, info.key_kinds)
            tokens.append(None if parts is None else prefix + _token(parts))
        wanted = list(dict.fromkeys(t for t in tokens if t is not None))
        generation, *values = self._fetch([self._generation_key(table), *wanted])
        found = {
            t: (v[_WIDTH:_HEAD], orjson.loads(v[_HEAD:]))
            for t, v in zip(wanted, values, strict=True)
            if v is not None
        }
        return tokens, generation, found

    def _fetch(self, wanted: list[bytes]) -> list[bytes | None]:
        if len(wanted) <= _MGET_CHUNK:
            return list(self._client.mget(wanted))
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(wanted), _MGET_CHUNK):
            pipe.mget(wanted[start : start + _MGET_CHUNK])
        return [v for chunk in pipe.execute() for v in chunk]

    @staticmethod
    def _to_dict(info: _TableInfo, values: list[Any]) -> dict[str, Any]:
        record = dict(zip(info.columns, values, strict=False))
        for name in info.columns[len(values) :]:
            record[name] = None  # columns appended after this row was written
        for name, kind in info.converters:
            v = record[name]
            if v is None:
                continue
            if kind == BYTES:
                record[name] = base64.b64decode(v)
            elif kind == FLOAT:
                if type(v) is str:
                    record[name] = float(v)
            else:
                record[name] = restore(v, kind)
        return record

    def applied_version(self, table: str) -> int | None:
        with self._errors("read the applied version of", table):
            value = self._client.hget(self._meta_key(table), "version")
        return None if value is None else int(value)

    def delete_table(self, table: str) -> None:
        with self._errors("delete", table):
            meta = self._meta_key(table)
            # Forget the version first: if this is interrupted, materialize rewrites the table.
            self._client.hdel(meta, "version")
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=self._row_prefix(table) + b"*", count=_SCAN_COUNT):
                batch.append(key)
                if len(batch) >= _SCAN_COUNT:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
            self._client.delete(meta, self._generation_key(table))
            self._tables.pop(table, None)

    def close(self) -> None:
        self._client.close()
