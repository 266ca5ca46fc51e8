"""Settings: built-in defaults < `.env` < process environment, validated in one typed model.

`.env.example` documents every key; a key there and a field here are the same fact, and a
unit test holds them together. A bad value is one line naming the key, the value, where it
came from and the fix.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

Port = int
# Go's time.ParseDuration subset the apps accept: 500ms, 10s, 2m.
DURATION = r"^\d+(ms|s|m)$"


class SettingsError(Exception):
    """A setting is missing its mark: the message is the one line the user sees."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    INFRA_BACKEND: Literal["auto", "docker", "native"] = "auto"
    STATE_DIR: Path = Path(".state")
    UP_TIMEOUT: float = Field(90.0, gt=0)
    STOP_TIMEOUT: float = Field(10.0, gt=0)

    GATEWAY_PORT: Port = 8000
    GATEWAY_DASHBOARD_PORT: Port = 8180

    POSTGRES_HOST: str = "127.0.0.1"
    POSTGRES_PORT: Port = 5432
    POSTGRES_USER: str = Field("platform", pattern=r"^[a-z_][a-z0-9_]*$")
    POSTGRES_PASSWORD: str = Field("platform", min_length=1)
    POSTGRES_DB: str = Field("platform", pattern=r"^[a-z_][a-z0-9_]*$")

    KAFKA_HOST: str = "127.0.0.1"
    KAFKA_PORT: Port = 9092
    KAFKA_CONTROLLER_PORT: Port = 9093
    REDPANDA_ADMIN_PORT: Port = 9644
    TOPIC_TELEMETRY: str = "telemetry.v1"
    TOPIC_TELEMETRY_DLQ: str = "telemetry.dlq"
    TOPIC_ANOMALIES: str = "anomalies.v1"

    MQTT_HOST: str = "127.0.0.1"
    MQTT_PORT: Port = 1883
    EMQX_DASHBOARD_PORT: Port = 18083
    EMQX_DASHBOARD_PASSWORD: str = Field("platform-dev", min_length=8)

    APP_BIND_HOST: str = "127.0.0.1"
    INGESTION_PORT: Port = 8080
    QUERY_PORT: Port = 8081
    ACTIONS_PORT: Port = 8082
    LOG_LEVEL: Literal["debug", "info", "warn", "error"] = "info"
    SHUTDOWN_TIMEOUT: str = Field("10s", pattern=DURATION)
    KAFKA_TOPIC_PARTITIONS: int = Field(3, ge=1, le=64)
    QUERY_CONSUMER_GROUP: str = Field("platform-query", min_length=1)
    MQTT_CLIENT_ID: str = Field("auto", min_length=1)
    MQTT_SHARE_GROUP: str = Field("platform", min_length=1)
    OUTBOX_POLL_INTERVAL: str = Field("500ms", pattern=DURATION)
    OUTBOX_BATCH_SIZE: int = Field(1000, ge=1, le=10000)
    ANOMALY_CONSUMER_GROUP: str = Field("anomaly-detector", pattern=r"^[A-Za-z0-9_.-]+$")
    ANOMALY_WINDOW: int = Field(64, ge=1, le=4000)
    ACTIONS_CONSUMER_GROUP: str = Field("platform-actions", pattern=r"^[A-Za-z0-9_.-]+$")
    ANOMALY_COMMAND_RULES: str = Field(
        "temperature:cooldown",
        pattern=r"^(none|-|[A-Za-z0-9_.-]{1,64}:[A-Za-z][A-Za-z0-9_.-]{0,63}"
        r"(\s*,\s*[A-Za-z0-9_.-]{1,64}:[A-Za-z][A-Za-z0-9_.-]{0,63})*)$",
    )
    AI_INFERENCE_TIMEOUT: str = Field("5s", pattern=DURATION)

    AI_INFERENCE_HOST: str = "127.0.0.1"
    AI_INFERENCE_PORT: Port = 8090
    AI_INFERENCE_WORKERS: int = Field(1, ge=1, le=64)
    AI_WINDOW: int = Field(64, ge=1, le=256)
    AI_MIN_HISTORY: int = Field(16, ge=1, le=256)
    AI_ANOMALY_THRESHOLD: float = Field(5.0, gt=0)
    AI_MIN_SCALE: float = Field(1e-6, gt=0)

    @field_validator(
        "GATEWAY_PORT",
        "GATEWAY_DASHBOARD_PORT",
        "POSTGRES_PORT",
        "KAFKA_PORT",
        "KAFKA_CONTROLLER_PORT",
        "REDPANDA_ADMIN_PORT",
        "MQTT_PORT",
        "EMQX_DASHBOARD_PORT",
        "INGESTION_PORT",
        "QUERY_PORT",
        "ACTIONS_PORT",
        "AI_INFERENCE_PORT",
    )
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be between 1 and 65535")
        return value

    @field_validator("STATE_DIR", mode="before")
    @classmethod
    def _state_dir_is_a_folder_of_ours(cls, value: object) -> object:
        if isinstance(value, str | Path):
            text = str(value).strip()
            if not text:
                raise ValueError("is empty: leave it out for the default .state, or name a folder")
            path = Path(text).expanduser()
            reason = forbidden_state_dir(path if path.is_absolute() else REPO_ROOT / path)
            if reason:
                raise ValueError(reason)
            return path
        return value

    @model_validator(mode="after")
    def _ports_distinct(self) -> Settings:
        seen: dict[int, str] = {}
        for key, value in self.model_dump().items():
            if key.endswith("_PORT"):
                if value in seen:
                    raise ValueError(
                        f"{key} and {seen[value]} are both {value}: give each its own port"
                    )
                seen[value] = key
        return self

    @model_validator(mode="after")
    def _history_fits_window(self) -> Settings:
        if self.AI_MIN_HISTORY > self.AI_WINDOW:
            raise ValueError(
                f"AI_MIN_HISTORY={self.AI_MIN_HISTORY} is larger than AI_WINDOW={self.AI_WINDOW}: "
                "lower it or raise AI_WINDOW"
            )
        return self

    @property
    def state_dir(self) -> Path:
        """STATE_DIR made absolute against the repository root."""
        return self.STATE_DIR if self.STATE_DIR.is_absolute() else REPO_ROOT / self.STATE_DIR

    def as_env(self) -> dict[str, str]:
        """Every setting as the environment variables the apps and compose read."""
        return {key: str(value) for key, value in self.model_dump().items()}

    def port_owner(self) -> dict[int, str]:
        """Each configured port and the setting that moves it."""
        return {
            value: key
            for key, value in self.model_dump().items()
            if key.endswith("_PORT") and isinstance(value, int)
        }


KNOWN_KEYS = frozenset(Settings.model_fields)
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN")


def forbidden_state_dir(path: Path) -> str | None:
    """Why `path` can never be the state folder (None when it may be): `inv clean` deletes it,
    so it must not be `/`, $HOME, this checkout or a folder holding it."""
    resolved = Path(os.path.realpath(path))
    if resolved == Path(resolved.anchor):
        return "is the file system root: name a folder of its own, e.g. .state"
    if resolved == Path(os.path.realpath(Path.home())):
        return "is your home folder: name a folder of its own, e.g. ~/.platform-state"
    if REPO_ROOT.is_relative_to(resolved):
        return "is this checkout or a folder holding it: name a folder of its own, e.g. .state"
    return None


def is_secret(key: str) -> bool:
    return any(word in key for word in SECRET_WORDS)


def load(
    env_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults < `.env` < environment < explicit overrides (what a test or task passes)."""
    env_file = env_file if env_file is not None else REPO_ROOT / ".env"
    environ = environ if environ is not None else os.environ
    raw: dict[str, str] = {}
    origin: dict[str, str] = {}
    if env_file.is_file():
        _check_lines(env_file)
        for key, value in dotenv_values(env_file).items():
            if key not in KNOWN_KEYS:
                hint = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
                fix = f"did you mean {hint[0]}?" if hint else "see .env.example for the keys"
                raise SettingsError(f"{env_file.name}: unknown setting {key}: {fix}")
            raw[key], origin[key] = value or "", env_file.name
    for source, values in (("environment", environ), ("override", overrides or {})):
        for key in KNOWN_KEYS & values.keys():
            raw[key], origin[key] = values[key], source
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        reason = err["msg"].removeprefix("Value error, ")
        fix = "fix it in .env or the environment (see .env.example)"
        if not err["loc"]:
            raise SettingsError(f"{reason}; {fix}") from None
        key = str(err["loc"][0])
        where = origin.get(key, "defaults")
        shown = "(hidden)" if is_secret(key) else repr(raw.get(key, ""))
        raise SettingsError(f"{key}={shown} (from {where}) is invalid: {reason}; {fix}") from None


def _check_lines(env_file: Path) -> None:
    """A line that is not `KEY=value` (or a comment) is an error naming it, not skipped."""
    for binding in parse_stream(io.StringIO(env_file.read_text())):
        line = binding.original.line
        if binding.error:
            # Only the leading name is shown: the rest may be a password.
            name = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)?", binding.original.string)
            start = f" ({name.group(1)} ...)" if name and name.group(1) else ""
            raise SettingsError(
                f"{env_file.name} line {line}{start} is not KEY=value: "
                "fix or delete it (see .env.example)"
            )
        if binding.key is not None and binding.value is None:
            raise SettingsError(
                f"{env_file.name} line {line}: {binding.key} has no `=`: "
                f"write {binding.key}=value, or delete the line"
            )
