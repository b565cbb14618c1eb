"""Compressed request bodies: ``Content-Encoding: gzip`` and ``deflate``, decoded as they arrive.

Clients compress large requests (``tritonclient.http``'s ``request_compression_algorithm``,
KServe's ``Content-Encoding``). A small compressed body can hold a huge one (a "zip bomb": 100 KB
of gzip is 100 MB of zeros), so the body limit applies to the **decompressed** size too, and
decompression is incremental: each chunk is inflated with an output cap of what the limit still
allows, so a bomb is refused (413) after at most ``limit + 1`` bytes were produced, never
inflated whole. ``deflate`` is the zlib format (RFC 9110); raw deflate streams, which some clients
send under that name, are accepted as well. A body that is not valid data of its encoding, or is
cut short, is a 400; an encoding other than gzip, deflate or identity is a 415.

Responses are compressed by Starlette's ``GZipMiddleware`` when the client accepts gzip (see
:func:`fti.serving.app.create_app`).
"""

from __future__ import annotations

import zlib

from fti.errors import ValidationError
from fti.serving.limits import PayloadTooLargeError

ENCODINGS = ("gzip", "deflate", "identity")


class UnsupportedEncodingError(ValidationError):
    """The request body's ``Content-Encoding`` is not one the server decodes."""

    code = "unsupported_encoding"
    http_status = 415


class BodyDecoder:
    """Inflates one request body chunk by chunk, refusing more than ``limit`` decoded bytes.

    Args:
        encoding: ``"gzip"`` or ``"deflate"``.
        limit: The most decoded bytes the body may have.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.size = 0
        self._raw = False  # deflate without the zlib wrapper
        self._head: bytes | None = b"" if encoding == "deflate" else None  # until the format is known
        self._inflater = self._new()

    def _new(self) -> zlib._Decompress:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if self._raw else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of the next chunk of the body.

        Raises:
            PayloadTooLargeError: the decoded body exceeds the limit.
            ValidationError: the chunk is not valid data of the encoding.
        """
        if self._head is not None:  # deflate: the first two bytes tell zlib-wrapped from raw
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, None
            self._raw = not _zlib_header(data)
            self._inflater = self._new()
        out: list[bytes] = []
        while data:
            if self._inflater.eof:  # a new gzip member (RFC 1952 allows several); deflate ends
                if self.encoding != "gzip":
                    raise ValidationError("the request body has data after the end of its deflate stream")
                self._inflater = self._new()
            try:
                piece = self._inflater.decompress(data, self.limit - self.size + 1)
            except zlib.error as exc:
                raise ValidationError(
                    f"the request body is not valid {self.encoding} data ({exc}); compress it whole "
                    f"with {self.encoding} or drop the Content-Encoding header"
                ) from None
            self.size += len(piece)
            if self.size > self.limit:
                raise PayloadTooLargeError(
                    f"the request body decompresses to more than the limit of {self.limit} bytes; "
                    "send less per request"
                )
            out.append(piece)
            data = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
        return b"".join(out)

    def finish(self) -> None:
        """Check that the body ended at the end of its compressed stream.

        Raises:
            ValidationError: the body was cut short (or empty).
        """
        if not self._inflater.eof:
            raise ValidationError(
                f"the request body ends in the middle of its {self.encoding} stream; send the whole "
                "compressed body"
            )


def _zlib_header(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib header (RFC 1950: deflate method, check bits)."""
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def decoder(content_encoding: str | None, limit: int) -> BodyDecoder | None:
    """The decoder of a ``Content-Encoding`` header (None: the body is not compressed).

    Raises:
        UnsupportedEncodingError: an encoding other than gzip, deflate or identity, or several.
    """
    if content_encoding is None:
        return None
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return BodyDecoder("gzip", limit)
    if encoding == "deflate":
        return BodyDecoder("deflate", limit)
    raise UnsupportedEncodingError(
        f"Content-Encoding {content_encoding[:40]!r} is not supported; send the body uncompressed or "
        f"compressed with {' or '.join(ENCODINGS[:2])}"
    )
