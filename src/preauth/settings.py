"""Configuration: one settings object, read from ``PREAUTH_*`` environment variables.

Nothing else in preauth reads the environment. Library functions take the values they need as
arguments; the CLI and the service build a :class:`Settings` once and pass its values down.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError


class Settings(BaseSettings):
    """Every knob preauth has, with the default a new user should get."""

    model_config = SettingsConfigDict(env_prefix="PREAUTH_", extra="ignore")

    models_dir: Path = Field(Path("models"), description="Where model bundles are written and read.")
    results_dir: Path = Field(Path("results"), description="Where `predict` writes results files.")
    database_url: str = Field(
        "sqlite:///preauth.db",
        description="Decision store: a SQLAlchemy URL (SQLite file by default, or postgresql+psycopg://...).",
    )
    schema_path: Path | None = Field(
        None,
        validation_alias=AliasChoices("PREAUTH_SCHEMA", "PREAUTH_SCHEMA_PATH"),
        description="Schema file (TOML) of the applications; default: the bundled German Credit schema.",
    )
    batch_rows: int = Field(
        100_000,
        ge=1,
        description="Rows `predict` reads, scores and writes at a time: memory is bounded by this, not by the file.",
    )
    cache_path: Path = Field(Path(".preauth-cache.sqlite"), description="Label provider response cache.")
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("PREAUTH_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="API key for `--llm openai:MODEL` (sent only as the Authorization header; never logged).",
    )
    api_keys: str = Field(
        "",
        description=(
            "Comma-separated API keys, each `name:key` (a bare `key` without ':' is named key-1, key-2... "
            "by its place; a key holding ':' needs a name); the name (a letter, then up to 63 letters, "
            "digits, '.', '_', '-' or '@') is the reviewer of reviews made with the key. Empty means the "
            "API is open."
        ),
    )
    max_body_bytes: int = Field(5_000_000, gt=0, description="Largest request body the service accepts.")
    log_application_data: bool = Field(False, description="Put application fields in access logs.")
    serve_model: str | None = Field(
        None, description="Model the service serves: version, alias or bundle path (default: production)."
    )
    sagemaker_model_dir: Path | None = Field(
        Path("/opt/ml/model"), description="SageMaker's model directory; served from when it exists."
    )
    host: str = Field("127.0.0.1", description="Address `preauth serve` listens on.")
    port: int = Field(
        8080,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("SAGEMAKER_BIND_TO_PORT", "PREAUTH_PORT"),
        description="Port `preauth serve` listens on (SAGEMAKER_BIND_TO_PORT when set).",
    )
    workers: int = Field(1, ge=1, le=64, description="Service worker processes.")
    fast_booster_calls: bool = Field(
        True,
        description=(
            "Score through XGBoost's C API (checked against the Python API at load, tested XGBoost "
            "versions only); false uses the Python API everywhere."
        ),
    )
    direct_writes: bool = Field(
        True,
        description=(
            "`predict` writes JSON Lines and JSON results around the page cache (O_DIRECT, 8 MiB "
            "blocks), which saves the kernel's page allocation; false writes through the page cache "
            "(better on a disk slower than about 200 MB/s, with memory to spare)."
        ),
    )
    review_band: float | None = Field(
        None,
        ge=0,
        lt=0.5,
        description=(
            "Refer decisions whose calibrated probability is within this of the threshold (each side); "
            "default: the band the served bundle was trained with (0 for bundles made before bands)."
        ),
    )
    metrics_dir: Path | None = Field(
        None, description="Shared directory for Prometheus metrics of several workers (set by `serve`)."
    )
    monitor_interval_seconds: float = Field(
        60.0,
        gt=0,
        description="How often the service refreshes its monitoring gauges (PSI, rates, live AUC) at /metrics.",
    )
    monitor_window_days: float = Field(
        7.0,
        gt=0,
        le=36_525,  # a century; a window reaching before the year 1 fails every refresh
        description="The monitoring gauges cover the served model's decisions of this many days.",
    )

    @classmethod
    def from_environment(cls) -> Settings:
        """The settings from the environment; a value it cannot take is one line naming the
        variable (a ConfigurationError), not pydantic's traceback. Values are not echoed: some
        are keys or URLs with passwords."""
        from pydantic import ValidationError

        try:
            return cls()
        except ValidationError as error:
            first = error.errors()[0]
            where = str(first["loc"][0]) if first["loc"] else ""
            variable = where if where.isupper() else f"PREAUTH_{where.upper()}"
            message = first["msg"][:1].lower() + first["msg"][1:]
            raise ConfigurationError(f"{variable}: {message} (set in the environment)") from None

    def api_key_list(self) -> list[str]:
        return [key for _, key in self.named_api_keys()]

    def named_api_keys(self) -> list[tuple[str, str]]:
        """``(name, key)`` pairs from ``name:key,...``; a bare key is ``key-N`` (N: its place, from 1).

        An entry is split at its first ``:``, and only where what comes before is a name
        (:data:`API_KEY_NAME`): a bare key holding a colon (``abc$1:xyz``) is refused at start-up,
        never silently read as the key ``xyz`` of someone called ``abc$1``. A key holding a colon is
        given with a name (``ci:key:with:colons``). Two entries with the same name or the same key
        are refused: a review must name one person. No message shows any part of an entry.
        """
        pairs: list[tuple[str, str]] = []
        entries = [e.strip() for e in self.api_keys.split(",") if e.strip()]
        for place, entry in enumerate(entries, start=1):
            name, colon, key = entry.partition(":")
            name, key = (name.strip(), key.strip()) if colon else (f"key-{place}", entry)
            if not API_KEY_NAME.fullmatch(name):
                raise ConfigurationError(
                    f"PREAUTH_API_KEYS entry {place}: what comes before its first ':' is not a name "
                    "(a letter, then up to 63 letters, digits, '.', '_', '-' or '@'); write each entry "
                    "as name:key, and a key holding ':' with a name (ci:key:with:colons)"
                )
            if not key:
                raise ConfigurationError(f"PREAUTH_API_KEYS entry {place}: the key after '{name}:' is empty")
            pairs.append((name, key))
        for index in (0, 1):
            seen: set[str] = set()
            for place, pair in enumerate(pairs, start=1):
                if pair[index] in seen:
                    shown = f"name '{pair[0]}'" if index == 0 else f"key of '{pair[0]}'"
                    raise ConfigurationError(
                        f"PREAUTH_API_KEYS entry {place}: the {shown} is already used by an earlier "
                        f"entry; every key needs its own name and its own value"
                    )
                seen.add(pair[index])
        return pairs


API_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._@-]{0,63}")
"""The name of an API key (it signs reviews): what may come before the ``:`` of ``name:key``."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment()
