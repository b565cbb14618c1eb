"""Compressed request bodies decode exactly, chunk by chunk, and never past the size limit."""

from __future__ import annotations

import gzip
import itertools
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.errors import ValidationError
from fti.serving.encoding import BodyDecoder, UnsupportedEncodingError, decoder
from fti.serving.limits import PayloadTooLargeError


def _compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "zlib":
        return zlib.compress(data)
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # "deflate" as some clients send it
    return raw.compress(data) + raw.flush()


def _decode(body: bytes, cuts: list[int], encoding: str, limit: int = 1 << 20) -> bytes:
    d = decoder(encoding, limit)
    assert d is not None
    edges = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    out = b"".join(d.feed(body[a:b]) for a, b in itertools.pairwise(edges))
    d.finish()
    return out


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=5000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    kind=st.sampled_from(["gzip", "zlib", "raw"]),
)
def test_any_body_in_any_chunking_decodes_to_itself(data: bytes, cuts: list[int], kind: str) -> None:
    encoding = "gzip" if kind == "gzip" else "deflate"
    assert _decode(_compress(data, kind), cuts, encoding) == data


@settings(max_examples=50, deadline=None)
@given(parts=st.lists(st.binary(max_size=500), min_size=1, max_size=4), cuts=st.lists(st.integers(0, 3000)))
def test_several_gzip_members_decode_as_their_concatenation(parts: list[bytes], cuts: list[int]) -> None:
    body = b"".join(gzip.compress(p) for p in parts)
    assert _decode(body, cuts, "gzip") == b"".join(parts)


@settings(max_examples=30, deadline=None)
@given(size=st.integers(min_value=0, max_value=3000), limit=st.integers(min_value=1, max_value=3000))
def test_the_limit_is_on_the_decoded_size(size: int, limit: int) -> None:
    body = gzip.compress(b"x" * size)
    if size <= limit:
        assert _decode(body, [7, 19], "gzip", limit) == b"x" * size
    else:
        with pytest.raises(
            PayloadTooLargeError, match=f"decompresses to more than the limit of {limit} bytes"
        ):
            _decode(body, [7, 19], "gzip", limit)


def test_a_zip_bomb_is_refused_after_at_most_the_limit_was_inflated() -> None:
    bomb = gzip.compress(bytes(200 * 1024 * 1024), compresslevel=9)  # 200 MB of zeros in ~200 KB
    assert len(bomb) < 300 * 1024
    d = BodyDecoder("gzip", limit=1024 * 1024)
    with pytest.raises(PayloadTooLargeError):
        for i in range(0, len(bomb), 65536):
            d.feed(bomb[i : i + 65536])
    assert d.size <= 1024 * 1024 + 1  # never more than the limit (+1 to tell) was produced


def test_bad_truncated_and_unsupported_bodies_are_refused() -> None:
    with pytest.raises(ValidationError, match="not valid gzip data"):
        _decode(b"this is not gzip", [], "gzip")
    with pytest.raises(ValidationError, match="not valid deflate data"):
        _decode(b"\xff\xff\xff\xff not deflate", [], "deflate")
    with pytest.raises(ValidationError, match="ends in the middle of its gzip stream"):
        _decode(gzip.compress(b"{}" * 100)[:-9], [], "gzip")
    with pytest.raises(ValidationError, match="ends in the middle"):
        _decode(b"", [], "gzip")
    with pytest.raises(ValidationError, match="after the end of its deflate stream"):
        _decode(zlib.compress(b"{}") + b"junk", [], "deflate")
    with pytest.raises(UnsupportedEncodingError, match="'br' is not supported") as info:
        decoder("br", 100)
    assert info.value.http_status == 415
    assert decoder(None, 100) is None and decoder("identity", 100) is None
    assert _decode(gzip.compress(b"ok"), [], " GZip ") == b"ok"
