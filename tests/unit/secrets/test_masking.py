"""Masking secret values in captured output, also across chunk boundaries."""

from __future__ import annotations

import io
import json
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from fti.secrets.masking import MASK, Masker, hidden_forms


def test_plain_url_encoded_and_json_fields_are_hidden() -> None:
    masker = Masker(["p@ss:word/1", json.dumps({"user": "analytics", "password": "hunter22", "port": 5432})])
    text = (
        f"url postgresql://u:{quote('p@ss:word/1', safe='')}@h/db raw p@ss:word/1 pw hunter22 user analytics"
    )
    out = masker.text(text)
    assert "p@ss:word/1" not in out and quote("p@ss:word/1", safe="") not in out and "hunter22" not in out
    assert "analytics" in out and "5432" not in hidden_forms("x")  # non-credential fields stay readable
    assert out.count(MASK) == 3


def test_short_values_are_not_masked() -> None:
    assert not Masker(["abc"])
    assert Masker(["abc"]).text("abc") == "abc"


@settings(max_examples=200, deadline=None)
@given(
    secrets=st.lists(st.text(alphabet="ab:/@xyz", min_size=4, max_size=12), min_size=1, max_size=3),
    pieces=st.lists(st.text(alphabet="ab:/@xyz \n", max_size=30), max_size=12),
    chunk=st.integers(min_value=1, max_value=17),
)
def test_stream_copy_equals_whole_text_masking(secrets: list[str], pieces: list[str], chunk: int) -> None:
    text = "".join(p + (secrets[i % len(secrets)] if i % 2 else "") for i, p in enumerate(pieces))
    masker = Masker(secrets)
    out = io.BytesIO()
    masker.copy(io.BytesIO(text.encode()), out, chunk_size=chunk)
    streamed = out.getvalue().decode()
    assert streamed == masker.text(text)
    for secret in secrets:
        for form in hidden_forms(secret):
            assert form not in streamed.replace(MASK, "\0")
