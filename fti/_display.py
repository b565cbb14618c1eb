"""How fti's objects show in notebooks: ``_repr_html_`` cards and short ``__repr__`` texts.

Feature groups, feature views, training datasets, model versions, runs and deployments describe
themselves as a :class:`Card`: a title, a few ``label: value`` fields and optional tables. The
card renders as escaped HTML for Jupyter (``_repr_html_``) and as one line for ``repr``, which
stays short (at most :data:`REPR_LIMIT` characters) so a list of objects prints readably. No
third-party code: the HTML is a plain ``<table>`` that any notebook front end styles.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

REPR_LIMIT = 160
"""Longest ``repr`` of an fti object, in characters."""
TABLE_ROWS = 20
"""Rows shown per table of a card; the rest is counted."""


@dataclass
class Card:
    """What an object shows: ``kind`` and ``title`` (``FeatureGroup 'transactions' v1``),
    fields, and tables of ``(caption, header, rows)``."""

    kind: str
    title: str
    fields: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)

    def html(self) -> str:
        """The card as an HTML fragment; every value is escaped."""
        parts = [
            '<div class="fti-card">',
            f"<strong>{_e(self.kind)}</strong> {_e(self.title)}",
            '<table class="fti-fields">',
            *(
                f'<tr><th style="text-align:left">{_e(label)}</th><td style="text-align:left">{_e(text(value))}</td></tr>'
                for label, value in self.fields
            ),
            "</table>",
        ]
        for caption, header, rows in self.tables:
            parts.append(f"<details open><summary>{_e(caption)} ({len(rows)})</summary><table>")
            parts.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
            for row in rows[:TABLE_ROWS]:
                parts.append("<tr>" + "".join(f"<td>{_e(text(v))}</td>" for v in row) + "</tr>")
            if len(rows) > TABLE_ROWS:
                parts.append(f'<tr><td colspan="{len(header)}">… {len(rows) - TABLE_ROWS} more</td></tr>')
            parts.append("</table></details>")
        parts.append("</div>")
        return "".join(parts)


def short_repr(kind: str, *parts: Any, **named: Any) -> str:
    """``Kind(part, name=value, ...)`` cut to :data:`REPR_LIMIT` characters; None values are left out."""
    items = [repr(p) for p in parts] + [f"{k}={v!r}" for k, v in named.items() if v is not None]
    line = f"{kind}({', '.join(items)})"
    return line if len(line) <= REPR_LIMIT else line[: REPR_LIMIT - 2] + "…)"


def text(value: Any) -> str:
    """A value as card text: lists joined, dicts as ``k=v``, times in ISO format, floats short."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return ", ".join(text(v) for v in value)
    return str(value)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
