"""Settings: precedence, defaults under home, documentation of every field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fti.config import Settings, load_settings
from fti.errors import ValidationError


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 20, name


def test_defaults_live_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FTI_HOME", "FTI_CATALOG_URL", "FTI_ONLINE_URL", "FTI_OFFLINE_URL", "FTI_ARTIFACTS_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings(tmp_path)
    assert settings.resolved_catalog_url == f"sqlite:///{tmp_path}/catalog.db"
    assert settings.resolved_online_url == f"sqlite:///{tmp_path}/online.db"
    assert settings.resolved_offline_url == f"{tmp_path}/offline"
    assert settings.resolved_artifacts_url == f"{tmp_path}/artifacts"


def test_env_beats_config_file_and_arguments_beat_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text(
        'online_url = "redis://filehost:6379/0"\ncatalog_url = "sqlite:///f.db"\n'
    )
    monkeypatch.setenv("FTI_HOME", str(tmp_path))
    monkeypatch.setenv("FTI_CATALOG_URL", "sqlite:///env.db")
    settings = load_settings()
    assert settings.online_url == "redis://filehost:6379/0"
    assert settings.catalog_url == "sqlite:///env.db"
    assert load_settings(catalog_url="sqlite:///arg.db").catalog_url == "sqlite:///arg.db"


def test_passwords_are_masked_in_describe(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, catalog_url="postgresql://fti:secret@db:5432/fti")
    assert settings.describe()["catalog_url"] == "postgresql://fti:***@db:5432/fti"


_URL_VARS = ("FTI_HOME", "FTI_CATALOG_URL", "FTI_ONLINE_URL", "FTI_OFFLINE_URL", "FTI_ARTIFACTS_URL")


def _home_with_config(root: Path) -> tuple[Path, Path]:
    """A home directory whose config.toml puts the catalog elsewhere; returns (home, catalog path)."""
    home, catalog = root / "home", root / "elsewhere" / "catalog.db"
    home.mkdir()
    (home / "config.toml").write_text(f'catalog_url = "sqlite:///{catalog}"\n')
    return home, catalog


def test_connect_reads_the_config_file_of_the_home_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fti

    for var in _URL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./.fti/config.toml to fall back on
    home, catalog = _home_with_config(tmp_path)
    with fti.connect(home=home) as project:
        assert project.settings.resolved_catalog_url == f"sqlite:///{catalog}"
    assert catalog.is_file()
    assert not (home / "catalog.db").exists()


def test_the_home_argument_beats_fti_home_for_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in _URL_VARS:
        monkeypatch.delenv(var, raising=False)
    home, catalog = _home_with_config(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text('catalog_url = "sqlite:///other.db"\n')
    monkeypatch.setenv("FTI_HOME", str(other))
    assert load_settings(home).catalog_url == f"sqlite:///{catalog}"
    assert load_settings().catalog_url == "sqlite:///other.db"


def test_cli_home_option_reads_that_homes_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from fti.cli.main import cli

    for var in _URL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    home, catalog = _home_with_config(tmp_path)
    result = CliRunner().invoke(cli, ["--home", str(home), "info", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["settings"]["catalog_url"] == f"sqlite:///{catalog}"
    assert catalog.is_file()


def test_s3_settings_for_fsspec_and_object_store(tmp_path: Path) -> None:
    from fti.errors import ValidationError

    settings = load_settings(tmp_path, s3_endpoint_url="http://127.0.0.1:9000", s3_region="eu-central-1")
    with pytest.raises(ValidationError, match="FTI_S3_ALLOW_HTTP"):
        settings.s3_options()
    settings = load_settings(
        tmp_path, s3_endpoint_url="http://127.0.0.1:9000", s3_region="eu-central-1", s3_allow_http=True
    )
    assert settings.s3_options() == {
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-central-1"},
    }
    assert settings.s3_object_store_options() == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu-central-1",
        "AWS_ALLOW_HTTP": "true",
    }
    assert load_settings(tmp_path).s3_options() == {}


def test_the_secret_key_is_never_described(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_SECRET_KEY", "k" * 44)
    settings = load_settings(tmp_path)
    assert settings.describe()["secret_key"] == "from FTI_SECRET_KEY"
    assert "k" * 44 not in repr(settings) and "k" * 44 not in str(settings.describe())


def test_spark_settings_come_from_env_and_fti_info_shows_them_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from fti.cli.main import cli

    monkeypatch.setenv("FTI_SPARK_MASTER", "spark://spark-master:7077")
    monkeypatch.setenv(
        "FTI_SPARK_CONF",
        '{"spark.executor.memory": "8g", "spark.hadoop.fs.s3a.secret.key": "hunter2"}',
    )
    settings = load_settings(tmp_path)
    assert settings.spark_master == "spark://spark-master:7077"
    assert settings.spark_conf == {"spark.executor.memory": "8g", "spark.hadoop.fs.s3a.secret.key": "hunter2"}
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "--json", "info", "--create"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["settings"]
    assert shown["spark_master"] == "spark://spark-master:7077"
    assert shown["spark_conf"] == "spark.executor.memory=8g, spark.hadoop.fs.s3a.secret.key=***"
    assert "hunter2" not in result.output
    monkeypatch.setenv("FTI_SPARK_CONF", '{"executor.memory": "8g"}')
    with pytest.raises(ValidationError, match=r"keys must be Spark settings starting with 'spark\.'"):
        load_settings(tmp_path)
