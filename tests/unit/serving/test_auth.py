"""API keys with roles: stored per project, ordered reader < writer < admin, checked by KeyChecker."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

import fti
from fti.errors import AuthenticationError, PermissionDeniedError, ValidationError
from fti.serving.auth import OPEN, KeyChecker, Principal, create_key, hash_key, list_keys, revoke_key
from fti.storage.metadata.sql import _MIGRATIONS, SqlCatalog


def test_keys_carry_their_role_and_the_checker_names_it(project: fti.Project) -> None:
    reader = create_key(project, "viewer", "reader")
    writer = create_key(project, "ci", "writer")
    admin = create_key(project, "ops")  # admin by default
    assert {k.name: k.role for k in list_keys(project)} == {
        "viewer": "reader",
        "ci": "writer",
        "ops": "admin",
    }
    checker = KeyChecker(project)
    assert checker.identify(f"Bearer {reader}") == Principal("viewer", "reader")
    assert checker.identify(f"Bearer {writer}") == Principal("ci", "writer")
    assert checker.identify(f"bearer {admin}") == Principal("ops", "admin")
    assert checker.principal(hash_key(writer)) == Principal("ci", "writer")
    revoke_key(project, "ci")
    checker.refresh()
    assert checker.principal(hash_key(writer)) is None
    with pytest.raises(AuthenticationError, match="invalid or revoked"):
        checker.identify(f"Bearer {writer}")


def test_roles_are_ordered_and_a_refusal_says_what_and_how() -> None:
    reader, writer, admin = (Principal("k", r) for r in ("reader", "writer", "admin"))
    assert [p.allows("writer") for p in (reader, writer, admin)] == [False, True, True]
    assert [p.allows("admin") for p in (reader, writer, admin)] == [False, False, True]
    assert all(p.allows("reader") for p in (reader, writer, admin))
    with pytest.raises(PermissionDeniedError) as info:
        reader.require("writer", "running a pipeline")
    assert info.value.http_status == 403
    assert "running a pipeline needs the writer role" in info.value.message
    assert "'k' has the role 'reader'" in info.value.message
    admin.require("admin", "unloading a model")  # allowed: no exception, and it returns nothing
    with pytest.raises(ValidationError, match="invalid role 'owner'"):
        admin.allows("owner")


def test_a_bad_role_is_refused_before_anything_is_stored(sqlite_project: fti.Project) -> None:
    with pytest.raises(ValidationError, match="use one of reader, writer, admin"):
        create_key(sqlite_project, "x", "root")
    assert list_keys(sqlite_project) == []


def test_static_keys_are_admin_and_auth_off_means_open(home: Path) -> None:
    with fti.connect(home=home / "a", api_keys="k1, k2") as project:
        checker = KeyChecker(project)
        assert checker.identify("Bearer k2") == Principal("FTI_API_KEYS", "admin")
    with fti.connect(home=home / "b") as project:
        checker = KeyChecker(project)
        assert not checker.enabled
        assert checker.identify(None) is OPEN
        assert OPEN.allows("admin") and not OPEN.authenticated


def test_keys_made_before_roles_existed_become_admin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = SqlCatalog(url)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with catalog.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007_source_cursors")  # the revision before roles
    with catalog.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO projects (name, created_at) VALUES ('default', '2026-01-01 00:00:00')")
        )
        conn.execute(
            text(
                "INSERT INTO api_keys (project_id, name, prefix, key_hash, created_at) "
                "VALUES (1, 'old', 'fti_x', :h, '2026-01-01 00:00:00')"
            ),
            {"h": "ab" * 32},
        )
    catalog.close()
    with fti.connect(home=tmp_path / "home", catalog_url=url) as project:  # migrates to head
        [key] = list_keys(project)
        assert (key.name, key.role) == ("old", "admin")
        assert KeyChecker(project).principal("ab" * 32) == Principal("old", "admin")
