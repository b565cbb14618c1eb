"""Secrets: encrypted at rest in both catalogs, a missing or wrong key refused, never listed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select, update

import fti
from fti.errors import BackendError, IntegrityError, NotFoundError, ValidationError
from fti.secrets.keys import generate_key
from fti.storage.metadata.tables import secrets as secrets_table

VALUE = "pw-Zq8!x@y/z 42"


def test_set_get_list_delete(project: fti.Project) -> None:
    info = project.secrets.set("analytics-db", VALUE)
    assert info.name == "analytics-db" and "@" in info.created_by
    assert project.secrets.get("analytics-db") == VALUE
    project.secrets.set("analytics-db", VALUE + "2")  # replace keeps created_at
    assert project.secrets.get("analytics-db") == VALUE + "2"
    listed = project.secrets.list()
    assert [s.name for s in listed] == ["analytics-db"]
    assert listed[0].created_at == info.created_at and listed[0].updated_at >= info.updated_at
    assert VALUE not in repr(listed) and VALUE not in str(listed[0].to_dict())
    project.secrets.delete("analytics-db")
    with pytest.raises(NotFoundError, match="fti secrets set analytics-db"):
        project.secrets.get("analytics-db")
    with pytest.raises(NotFoundError):
        project.secrets.delete("analytics-db")


def test_catalog_holds_only_an_authenticated_token(project: fti.Project) -> None:
    project.secrets.set("token", VALUE)
    with project.backends.catalog.engine.connect() as conn:
        row = conn.execute(select(secrets_table)).one()
    assert VALUE not in str(tuple(row)) and row.token.startswith("gAAAA")  # a Fernet token
    if project.backends.catalog.dialect == "sqlite":
        db = Path(project.settings.resolved_catalog_url.removeprefix("sqlite:///"))
        for path in db.parent.glob(db.name + "*"):  # the file, its WAL and shared memory
            assert VALUE.encode() not in path.read_bytes()
    # a modified token fails authentication instead of decrypting to garbage
    tampered = row.token[:-4] + ("AAAA" if not row.token.endswith("AAAA") else "BBBB")
    with project.backends.catalog.engine.begin() as conn:
        conn.execute(update(secrets_table).values(token=tampered))
    with pytest.raises(IntegrityError, match="modified"):
        project.secrets.get("token")


def test_key_file_is_created_private(sqlite_project: fti.Project) -> None:
    key_file = sqlite_project.settings.secret_key_file
    assert not key_file.exists()
    sqlite_project.secrets.set("a", VALUE)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    os.chmod(key_file, 0o644)
    with pytest.raises(BackendError, match="chmod 600"):
        sqlite_project.secrets.get("a")


def test_wrong_or_missing_key_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FTI_SECRET_KEY", raising=False)
    with fti.connect(home=home) as project:
        project.secrets.set("db", VALUE)
    key_file = home / "secret.key"
    original = key_file.read_text()
    key_file.unlink()
    with fti.connect(home=home) as project, pytest.raises(BackendError, match="no secret key"):
        project.secrets.get("db")
    other = generate_key()
    monkeypatch.setenv("FTI_SECRET_KEY", other)
    with fti.connect(home=home) as project:
        with pytest.raises(BackendError, match="encrypted with another key") as err:
            project.secrets.get("db")
        assert other not in str(err.value) and original.strip() not in str(err.value)
    monkeypatch.setenv("FTI_SECRET_KEY", "not-a-key")
    with fti.connect(home=home) as project, pytest.raises(ValidationError, match="not a valid key") as err:
        project.secrets.get("db")
    assert "not-a-key" not in str(err.value)
    # the right key from the environment works, also listed after a new one (rotation)
    monkeypatch.setenv("FTI_SECRET_KEY", f"{other},{original.strip()}")
    with fti.connect(home=home) as project:
        assert project.secrets.get("db") == VALUE
        assert project.secrets.rotate_key() == 1
    monkeypatch.setenv("FTI_SECRET_KEY", other)  # the old key is no longer needed
    with fti.connect(home=home) as project:
        assert project.secrets.get("db") == VALUE


@pytest.mark.parametrize("key", ["c2hvcnQ=", "A" * 44, "!" * 44])  # 5 bytes, 33 bytes, not base64
def test_keys_fernet_would_refuse_are_refused(sqlite_project: fti.Project, key: str, monkeypatch) -> None:
    from cryptography.fernet import Fernet

    with pytest.raises(ValueError, match="32 url-safe base64-encoded bytes"):
        Fernet(key)
    monkeypatch.setenv("FTI_SECRET_KEY", key)
    with (
        fti.connect(home=sqlite_project.settings.home) as project,
        pytest.raises(ValidationError, match="not a valid key"),
    ):
        project.secrets.set("a", VALUE)


def test_deriving_a_key_does_not_import_cryptography(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model server derives the scorer cache's signing key (creating the key file the first
    time) and never encrypts: cryptography (~9 MB resident) stays out of its memory."""
    import subprocess
    import sys

    monkeypatch.delenv("FTI_SECRET_KEY", raising=False)
    script = (
        "import sys; from fti.config import load_settings; from fti.secrets.keys import load_key; "
        "key = load_key(load_settings(sys.argv[1]), create=True); key.derive('x'); "
        "print('cryptography' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    with fti.connect(home=home) as project:  # the key it made is a Fernet key
        project.secrets.set("a", VALUE)
        assert project.secrets.get("a") == VALUE


@pytest.mark.parametrize("name", ["", "UPPER", "-lead", "a b", "x" * 64, None])
def test_bad_names_are_rejected(sqlite_project: fti.Project, name: object) -> None:
    with pytest.raises(ValidationError, match="invalid secret name"):
        sqlite_project.secrets.set(name, VALUE)  # type: ignore[arg-type]


def test_bad_values_are_rejected_without_echo(sqlite_project: fti.Project) -> None:
    with pytest.raises(ValidationError, match="empty"):
        sqlite_project.secrets.set("a", "")
    with pytest.raises(ValidationError, match="must be a string"):
        sqlite_project.secrets.set("a", b"bytes")  # type: ignore[arg-type]
    big = "v" * (64 * 1024 + 1)
    with pytest.raises(ValidationError, match="longer than") as err:
        sqlite_project.secrets.set("a", big)
    assert big not in str(err.value)
    assert sqlite_project.secrets.list() == []


def test_a_run_grant_restricts_the_process(
    sqlite_project: fti.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fti.errors import PermissionDeniedError
    from fti.secrets import store

    sqlite_project.secrets.set("mine", "m-value")
    sqlite_project.secrets.set("theirs", "t-value")
    monkeypatch.setattr(store, "_run_grant", None)
    monkeypatch.setattr(store, "_run_pipeline", None)
    store.grant_run_secrets("etl", {"mine": "m-value"})
    assert sqlite_project.secrets.get("mine") == "m-value"
    with pytest.raises(PermissionDeniedError, match="did not declare secret 'theirs'"):
        sqlite_project.secrets.get("theirs")
    for action in (
        lambda: sqlite_project.secrets.set("x", "y"),
        lambda: sqlite_project.secrets.delete("mine"),
    ):
        with pytest.raises(PermissionDeniedError):
            action()
    with pytest.raises(PermissionDeniedError):
        sqlite_project.secrets.list()
