"""The secret key: where it comes from, and authenticated encryption with it.

Secrets are encrypted with Fernet (``cryptography``): AES-128-CBC with a random IV plus an
HMAC-SHA256 over the whole token, so a wrong key or a modified token is detected and refused
instead of decrypting to garbage. The key is ``FTI_SECRET_KEY`` (the setting ``secret_key``) or,
when that is unset, the key file ``$FTI_HOME/secret.key``, created with mode 0600 the first time a
secret is set. Several comma-separated keys rotate: the first encrypts, any of them decrypts
(``fti secrets rotate-key`` re-encrypts everything with the first).

Each stored secret records the *key id* of the key that encrypted it (a hash of the key, which
reveals nothing about it), so a process holding another key is told exactly that.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, IntegrityError, ValidationError

if TYPE_CHECKING:
    from fti.config import Settings

KEY_FILE_MODE = 0o600


def key_id(raw_key: str) -> str:
    """A short public identifier of a key (16 hex digits of a domain-separated SHA-256)."""
    return hashlib.sha256(b"fti secret key id\0" + raw_key.encode()).hexdigest()[:16]


def generate_key() -> str:
    """A new random key, in the format ``FTI_SECRET_KEY`` takes (a Fernet key: 32 random bytes,
    url-safe base64)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class SecretKey:
    """The key(s) of this process: encrypts with the first, decrypts with any."""

    key_ids: tuple[str, ...]
    origin: str
    """Where the key came from, for error messages (never the key itself)."""
    raw: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @cached_property
    def fernet(self) -> Any:
        """The ``cryptography.fernet.MultiFernet`` of the keys, made on first use: a process that
        only derives keys (a model server checking its scorer cache) never imports cryptography."""
        from cryptography.fernet import Fernet, MultiFernet

        return MultiFernet([Fernet(k.encode()) for k in self.raw])

    @property
    def key_id(self) -> str:
        """The id of the key that encrypts."""
        return self.key_ids[0]

    def derive(self, purpose: str) -> tuple[bytes, ...]:
        """One key per secret key for ``purpose`` (e.g. signing the scorer cache's manifests):
        HMAC-SHA256 of the purpose under each key, so the secret keys themselves never leave
        this object. The first signs; any of them verifies (keys rotate like the secrets')."""
        label = b"fti derived key\0" + purpose.encode()
        return tuple(hmac.new(key.encode(), label, hashlib.sha256).digest() for key in self.raw)

    def encrypt(self, value: str) -> str:
        return str(self.fernet.encrypt(value.encode()).decode())

    def decrypt(self, token: str, stored_key_id: str, name: str) -> str:
        """Decrypt the token of secret ``name``.

        Raises:
            BackendError: the secret was encrypted with a key this process does not have.
            IntegrityError: the key matches but the token fails authentication (modified).
        """
        from cryptography.fernet import InvalidToken

        if stored_key_id not in self.key_ids:
            raise BackendError(
                f"secret {name!r} was encrypted with another key (key id {stored_key_id}) than the "
                f"one {self.origin} (key id {', '.join(self.key_ids)}): set FTI_SECRET_KEY to the key "
                "that was used when the secret was set (or 'new,old' while rotating), or set the secret again"
            )
        try:
            return str(self.fernet.decrypt(token.encode()).decode())
        except InvalidToken:
            raise IntegrityError(
                f"secret {name!r} fails authentication with its key (key id {stored_key_id}): the stored "
                "token was modified; set the secret again"
            ) from None


def load_key(settings: Settings, *, create: bool) -> SecretKey:
    """The key from ``FTI_SECRET_KEY``, else from the key file (made when ``create``).

    Raises:
        ValidationError: ``FTI_SECRET_KEY`` or the key file does not hold a valid key.
        BackendError: no key exists (and ``create`` is False), or the key file is readable by
            other users.
    """
    if settings.secret_key is not None:
        raw = [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
        return _key(raw, "from FTI_SECRET_KEY", "FTI_SECRET_KEY")
    path = settings.secret_key_file
    if not path.exists():
        if not create:
            raise BackendError(
                f"no secret key: FTI_SECRET_KEY is not set and {path} does not exist. Set FTI_SECRET_KEY "
                f"to the key the secrets were stored with (or restore that file); a first `fti secrets set` "
                "creates the file"
            )
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise BackendError(
            f"the secret key file {path} is readable by other users (mode {mode:o}): run chmod 600 {path}"
        )
    raw = [k.strip() for k in path.read_text().split(",") if k.strip()]
    return _key(raw, f"in {path}", str(path))


def _key(raw: list[str], origin: str, where: str) -> SecretKey:
    if not raw:
        raise ValidationError(f"{where} is empty: it must hold a key from `fti secrets generate-key`")
    for position, text in enumerate(raw, start=1):
        try:  # what Fernet checks of a key, without importing cryptography
            valid = len(base64.urlsafe_b64decode(text.encode())) == 32
        except (ValueError, TypeError):
            valid = False
        if not valid:  # never echo the value: it is (meant to be) a key
            raise ValidationError(
                f"key {position} {origin.removeprefix('from ').removeprefix('in ')} is not a valid key "
                "(32 url-safe base64-encoded bytes): make one with `fti secrets generate-key`"
            )
    return SecretKey(tuple(key_id(k) for k in raw), origin, tuple(raw))


def _create_key_file(path: Any) -> None:
    """Write a new key to ``path`` atomically with mode 0600; a concurrent creator's key wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_key() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process made one first: keep theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
