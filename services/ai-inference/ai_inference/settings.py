"""Settings: built-in defaults < `.env` in the working directory < process environment.

Every key is declared in the repository's schemas/settings.schema.json (x-readers
"ai-inference"), which generates `.env.example`; a contract test holds this model to it.
`load_or_exit` turns a bad value into one line naming the key, the value and the fix.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ai_inference.scoring import MAX_WINDOW, ModelParams

# A host name or an IP address (the declaration's pattern for every *_HOST setting).
HOST_PATTERN = r"^([A-Za-z0-9_.-]+|[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)$"
# sysexits' EX_CONFIG: the supervisor of `inv run` stops at once instead of restarting.
EXIT_BAD_SETTINGS = 78
FIX = "fix it in .env or the environment (see .env.example, section 'AI inference service')"


class Settings(BaseSettings):
    """The service's settings; each field is read from the environment key of its alias."""

    model_config = SettingsConfigDict(
        env_file=".env",
        # KEY= means the default, as for the monolith and devenv ("every key is optional").
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        case_sensitive=True,
    )

    host: str = Field(
        default="127.0.0.1", validation_alias="AI_INFERENCE_HOST", pattern=HOST_PATTERN
    )
    port: int = Field(default=8090, validation_alias="AI_INFERENCE_PORT", ge=1, le=65535)
    workers: int = Field(default=1, validation_alias="AI_INFERENCE_WORKERS", ge=1, le=64)
    log_level: Literal["debug", "info", "warn", "error"] = Field(
        default="info", validation_alias="LOG_LEVEL"
    )
    window: int = Field(default=64, validation_alias="AI_WINDOW", ge=1, le=MAX_WINDOW)
    min_history: int = Field(default=16, validation_alias="AI_MIN_HISTORY", ge=1, le=MAX_WINDOW)
    threshold: float = Field(
        default=5.0, validation_alias="AI_ANOMALY_THRESHOLD", gt=0, allow_inf_nan=False
    )
    min_scale: float = Field(
        default=1e-6, validation_alias="AI_MIN_SCALE", gt=0, allow_inf_nan=False
    )

    @model_validator(mode="after")
    def _history_fits_window(self) -> Self:
        if self.min_history > self.window:
            raise ValueError(
                f"AI_MIN_HISTORY={self.min_history} is larger than AI_WINDOW={self.window}: "
                "it must be between 1 and AI_WINDOW"
            )
        return self

    @property
    def model_params(self) -> ModelParams:
        return ModelParams(
            window=self.window,
            min_history=self.min_history,
            threshold=self.threshold,
            min_scale=self.min_scale,
        )


class SettingsError(Exception):
    """A bad setting; the message is the one line the user sees."""


def load() -> Settings:
    """Read and validate the settings, raising `SettingsError` with one line on a bad value."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        reason = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:
            raise SettingsError(f"{reason}; {FIX}") from None
        key = str(err["loc"][0])
        raise SettingsError(f"{key}={err['input']!r} is invalid: {reason}; {FIX}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings singleton (tests override the dependency instead)."""
    return load()


def load_or_exit() -> Settings:
    """`get_settings`, or one line on stderr and exit status EXIT_BAD_SETTINGS."""
    try:
        return get_settings()
    except SettingsError as exc:
        print(f"ai-inference: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None
