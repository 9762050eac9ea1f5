"""Configuration: one settings object, read from ``PREAUTH_*`` environment variables.

Nothing else in preauth reads the environment. Library functions take the values they need as
arguments; the CLI and the service build a :class:`Settings` once and pass its values down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob preauth has, with the default a new user should get."""

    model_config = SettingsConfigDict(env_prefix="PREAUTH_", extra="ignore")

    models_dir: Path = Field(Path("models"), description="Where model bundles are written and read.")
    results_dir: Path = Field(Path("results"), description="Where `predict` writes results files.")
    database_url: str = Field(
        "sqlite:///preauth.db",
        description="Decision store: a SQLAlchemy URL (SQLite file by default, or postgresql+psycopg://...).",
    )
    cache_path: Path = Field(Path(".preauth-cache.sqlite"), description="Label provider response cache.")
    api_keys: str = Field("", description="Comma-separated API keys; empty means the API is open.")
    max_body_bytes: int = Field(5_000_000, description="Largest request body the service accepts.")
    log_application_data: bool = Field(False, description="Put application fields in access logs.")

    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
