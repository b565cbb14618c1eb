"""Hiding secret values in text that leaves a process: run logs, error messages, failure reasons.

A secret is hidden in the forms it is likely to be printed in: the value itself, its URL-encoded
form (a password inside a connection URL) and, for a JSON secret of connection fields, each field
whose name says it is a credential (``password``, ``token``, ``secret_access_key``...). Values
shorter than :data:`MIN_LENGTH` characters are not hidden: replacing every ``"1"`` in a log would
destroy it and protect nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import BinaryIO
from urllib.parse import quote, quote_plus

MIN_LENGTH = 4
MASK = "***"
_SENSITIVE_FIELD = re.compile(r"pass|secret|token|key|credential|auth", re.I)


def json_fields(value: str) -> dict[str, object] | None:
    """The fields of a secret that is a JSON object, else None (a plain password or token)."""
    text = value.strip()
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def hidden_forms(value: str) -> set[str]:
    """Every string that must not appear in output for the secret ``value``."""
    candidates = {value}
    fields = json_fields(value)
    if fields is not None:
        candidates |= {
            str(v) for k, v in fields.items() if _SENSITIVE_FIELD.search(str(k)) and isinstance(v, str | int)
        }
    forms = set()
    for candidate in candidates:
        forms |= {candidate, quote(candidate, safe=""), quote_plus(candidate)}
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Masker:
    """Replaces the hidden forms of some secret values with ``***``."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            forms |= hidden_forms(value)
        # Longest first, so a value that contains another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._text = re.compile("|".join(re.escape(f) for f in ordered)) if ordered else None
        self._bytes = re.compile(b"|".join(re.escape(f.encode()) for f in ordered)) if ordered else None
        self._longest = max((len(f.encode()) for f in ordered), default=0)

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, text: str) -> str:
        """``text`` with every hidden form replaced."""
        return text if self._text is None else self._text.sub(MASK, text)

    def copy(self, source: BinaryIO, dest: BinaryIO, chunk_size: int = 1 << 20) -> None:
        """Copy a stream, masking values even where one straddles two chunks (memory: one chunk)."""
        if self._bytes is None:
            while block := source.read(chunk_size):
                dest.write(block)
            return
        mask = MASK.encode()
        keep = self._longest - 1  # a match starting this close to the end may continue in the next chunk
        pending = b""
        while True:
            block = source.read(chunk_size)
            data = pending + block
            if not block:
                dest.write(self._bytes.sub(mask, data))
                return
            safe = max(0, len(data) - keep)
            out = []
            position = 0
            for match in self._bytes.finditer(data):
                if match.start() >= safe:
                    break
                out.append(data[position : match.start()])
                out.append(mask)
                position = match.end()
            # Matches that start before ``safe`` saw at least ``longest`` bytes, so they are complete.
            cut = max(safe, position)
            out.append(data[position:cut])
            dest.write(b"".join(out))
            pending = data[cut:]
