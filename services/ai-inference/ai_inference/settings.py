"""Settings: declared defaults < `.env` in the working directory < process environment.

Every key is declared in the repository's schemas/settings.schema.json (x-readers
"ai-inference"), which generates `.env.example`: each field's default, bounds and pattern are
read from there (`declared`); its type (and an enum, as a Literal) is written here, where mypy
sees it, and a contract test holds it to the declaration. `load_or_exit` turns a bad value
into one line naming the key, the value and the fix.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any, Literal, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ai_inference.contracts import EXIT_CONFIG, setting
from ai_inference.scoring import ModelParams

FIX = "fix it in .env or the environment (see .env.example, section 'AI inference service')"
# JSON Schema keyword -> pydantic's name for the same constraint.
CONSTRAINTS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "pattern": "pattern"}


def declared(key: str, **extra: Any) -> Any:
    """The field read from environment key `key`, with the declared default and constraints."""
    spec = setting(key)
    constraints = {ours: spec[theirs] for theirs, ours in CONSTRAINTS.items() if theirs in spec}
    return Field(default=spec["default"], validation_alias=key, **constraints, **extra)


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

    host: str = declared("AI_INFERENCE_HOST")
    port: int = declared("AI_INFERENCE_PORT")
    workers: int = declared("AI_INFERENCE_WORKERS")
    log_level: Literal["debug", "info", "warn", "error"] = declared("LOG_LEVEL")
    window: int = declared("AI_WINDOW")
    min_history: int = declared("AI_MIN_HISTORY")
    threshold: float = declared("AI_ANOMALY_THRESHOLD", allow_inf_nan=False)
    min_scale: float = declared("AI_MIN_SCALE", allow_inf_nan=False)
    # Empty: no exporter (ai_inference.tracing); devenv fills in the local viewer's.
    trace_export_url: str = declared("TRACE_EXPORT_URL")
    trace_sample_ratio: float = declared("TRACE_SAMPLE_RATIO", allow_inf_nan=False)

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
    """`get_settings`, or one line on stderr and exit status EXIT_CONFIG."""
    try:
        return get_settings()
    except SettingsError as exc:
        print(f"ai-inference: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
