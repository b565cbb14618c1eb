"""Settings: one typed object, loaded once at the edge and passed down explicitly.

Precedence: arguments (``fti.connect(..., catalog_url=...)``) > ``FTI_*`` environment variables >
the optional TOML config file ``config.toml`` in the home directory > defaults under the home
directory. The home directory is the ``home`` argument (``fti.connect(home=...)``,
``fti --home``), else ``FTI_HOME``, else ``./.fti``. Every setting is documented with
a ``description``; a test checks that none is left undocumented.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class Settings(BaseSettings):
    """Where fti keeps its state and which backend serves each storage role."""

    model_config = SettingsConfigDict(env_prefix="FTI_", extra="ignore", frozen=True)

    home: Path = Field(
        default=Path(".fti"),
        description="Home directory for embedded state (catalog, Delta tables, online store, artifacts).",
    )
    catalog_url: str | None = Field(
        default=None,
        description="Metadata catalog URL: sqlite:///path (default $FTI_HOME/catalog.db) or postgresql://...",
    )
    offline_url: str | None = Field(
        default=None,
        description="Offline store URL: a directory of Delta tables (default $FTI_HOME/offline) or file:///...",
    )
    online_url: str | None = Field(
        default=None,
        description="Online store URL: sqlite:///path (default $FTI_HOME/online.db) or redis://host:port/db.",
    )
    artifacts_url: str | None = Field(
        default=None,
        description="Artifact store URL: a directory (default $FTI_HOME/artifacts) or an fsspec URL (s3://...).",
    )
    api_keys: str | None = Field(
        default=None,
        description="Comma-separated API keys the servers accept (in addition to keys stored in the catalog).",
    )
    ui_secret_key: str | None = Field(
        default=None,
        description="Key that signs web UI session cookies (default: a random key kept in $FTI_HOME/ui/secret_key).",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file lives in the home directory, and a home given as an argument wins over
        # FTI_HOME: the file source must look where the settings will point, not only at FTI_HOME.
        home = None
        if isinstance(init_settings, InitSettingsSource):
            home = init_settings.init_kwargs.get("home")
        return (init_settings, env_settings, _TomlFileSource(settings_cls, home))

    # Resolved URLs: defaults live under ``home``.
    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def resolved_offline_url(self) -> str:
        return self.offline_url or str(self.home / "offline")

    @property
    def resolved_online_url(self) -> str:
        return self.online_url or f"sqlite:///{self.home / 'online.db'}"

    @property
    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or str(self.home / "artifacts")

    def describe(self) -> dict[str, str]:
        """The effective settings as strings, for ``fti info``. Passwords in URLs are masked."""
        return {
            "home": str(self.home),
            "catalog_url": _mask(self.resolved_catalog_url),
            "offline_url": _mask(self.resolved_offline_url),
            "online_url": _mask(self.resolved_online_url),
            "artifacts_url": _mask(self.resolved_artifacts_url),
        }


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads ``config.toml`` from the home directory: ``home`` if given, else ``FTI_HOME`` or ``./.fti``."""

    def __init__(self, settings_cls: type[BaseSettings], home: str | Path | None = None) -> None:
        super().__init__(settings_cls)
        self._home = home

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data().get(field_name), field_name, False

    def _data(self) -> dict[str, Any]:
        import os

        home = Path(self._home if self._home is not None else os.environ.get("FTI_HOME", ".fti"))
        path = home.expanduser() / "config.toml"
        if not path.is_file():
            return {}
        with path.open("rb") as fh:
            return dict(tomllib.load(fh))

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data().items() if k in self.settings_cls.model_fields}


def _mask(url: str) -> str:
    """Hide the password part of ``scheme://user:password@host``."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the environment and config file; ``home`` and keyword overrides win."""
    if home is not None:
        overrides["home"] = Path(home)
    return Settings(**overrides)
