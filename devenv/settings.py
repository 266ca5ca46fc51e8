"""Settings devenv reads: built-in defaults < `.env` < process environment < overrides.

schemas/settings.schema.json declares every setting once (devenv/declared.py reads it). The
model below declares only the keys devenv itself reads (`x-readers` has "devenv"): backend,
state folder, timeouts, ports and credentials, each with its type; the default and the range,
pattern or length come from the declaration (`declared_field`). Every other declared key is
passed through to the apps untouched by `as_env` (the app that reads it validates it, with
its own one-line error); `value` gives any key's effective text. A contract test holds this
model to the declaration (keys, types, enums, secret flags). A bad value is one line naming
the key, the value (never a secret's), where it came from and the fix.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from devenv import declared
from devenv.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent

FIX = "fix it in .env or the environment (see .env.example)"
# JSON Schema keyword -> pydantic's name for the same constraint.
CONSTRAINTS = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "pattern": "pattern",
    "minLength": "min_length",
    "maxLength": "max_length",
}


def declared_field(key: str) -> Any:
    """`key`'s field as schemas/settings.schema.json declares it: its default and its range,
    pattern or length. The type (and an enum, as a Literal) stays written in the model, where
    mypy sees it; the contract test holds it to the declaration."""
    spec = declared.settings()[key].schema
    default = spec["default"]
    constraints = {ours: spec[theirs] for theirs, ours in CONSTRAINTS.items() if theirs in spec}
    return Field(SecretStr(default) if spec.get("x-secret") else default, **constraints)


class SettingsError(UserError):
    """A setting is missing its mark: the message is the one line the user sees."""


class Settings(BaseModel):
    """The settings devenv reads, typed; secrets are `SecretStr` (never shown by repr)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    INFRA_BACKEND: Literal["auto", "docker", "native"] = declared_field("INFRA_BACKEND")
    INFRA_IMAGES: Literal["official", "local"] = declared_field("INFRA_IMAGES")
    STATE_DIR: str = declared_field("STATE_DIR")
    UP_TIMEOUT: float = declared_field("UP_TIMEOUT")
    STOP_TIMEOUT: float = declared_field("STOP_TIMEOUT")

    GATEWAY_PORT: int = declared_field("GATEWAY_PORT")
    GATEWAY_DASHBOARD_PORT: int = declared_field("GATEWAY_DASHBOARD_PORT")

    POSTGRES_PORT: int = declared_field("POSTGRES_PORT")
    POSTGRES_USER: str = declared_field("POSTGRES_USER")
    POSTGRES_PASSWORD: SecretStr = declared_field("POSTGRES_PASSWORD")
    POSTGRES_DB: str = declared_field("POSTGRES_DB")

    KAFKA_PORT: int = declared_field("KAFKA_PORT")
    KAFKA_CONTROLLER_PORT: int = declared_field("KAFKA_CONTROLLER_PORT")
    REDPANDA_ADMIN_PORT: int = declared_field("REDPANDA_ADMIN_PORT")

    MQTT_PORT: int = declared_field("MQTT_PORT")
    EMQX_DASHBOARD_PORT: int = declared_field("EMQX_DASHBOARD_PORT")
    EMQX_DASHBOARD_PASSWORD: SecretStr = declared_field("EMQX_DASHBOARD_PASSWORD")

    INGESTION_PORT: int = declared_field("INGESTION_PORT")
    QUERY_PORT: int = declared_field("QUERY_PORT")
    ACTIONS_PORT: int = declared_field("ACTIONS_PORT")
    AI_INFERENCE_PORT: int = declared_field("AI_INFERENCE_PORT")

    TRACING: Literal["on", "off"] = declared_field("TRACING")
    ZIPKIN_PORT: int = declared_field("ZIPKIN_PORT")

    DELVE_PORT: int = declared_field("DELVE_PORT")
    DEBUGPY_PORT: int = declared_field("DEBUGPY_PORT")

    # The declared keys devenv does not read, as the apps will get them (set value, else the
    # declared default): carried through, never validated here.
    _passed: dict[str, str] = PrivateAttr(default_factory=dict)

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
            return str(path)
        return value

    @model_validator(mode="after")
    def _ports_distinct(self) -> Settings:
        seen: dict[int, str] = {}
        for key in PORT_KEYS:
            value = getattr(self, key)
            if value in seen:
                raise ValueError(
                    f"{key} and {seen[value]} are both {value}: give each its own port"
                )
            seen[value] = key
        return self

    @property
    def state_dir(self) -> Path:
        """STATE_DIR made absolute against the repository root."""
        path = Path(self.STATE_DIR)
        return path if path.is_absolute() else REPO_ROOT / path

    def as_env(self) -> dict[str, str]:
        """Every declared setting as the environment variables the apps and compose read."""
        own = {key: _text(getattr(self, key)) for key in KNOWN_KEYS}
        return {key: own[key] if key in own else self._passed[key] for key in DECLARED_KEYS}

    def value(self, key: str) -> str:
        """The effective text of any declared key: its set value, else the declared default."""
        if key not in DECLARED_KEYS:
            raise KeyError(f"{key} is not declared in {declared.SCHEMA_FILE.name}")
        return self.as_env()[key]

    def port_owner(self) -> dict[int, str]:
        """Each configured port and the setting that moves it."""
        return {getattr(self, key): key for key in PORT_KEYS}


DECLARED_KEYS = tuple(declared.settings())
# The keys devenv reads and validates; the rest pass through.
KNOWN_KEYS = frozenset(Settings.model_fields)
PORT_KEYS = tuple(key for key in Settings.model_fields if key.endswith("_PORT"))
SECRET_KEYS = frozenset(
    key for key, field in Settings.model_fields.items() if field.annotation is SecretStr
)


def _text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return declared.env_text(value)


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
            if key not in DECLARED_KEYS:
                hint = difflib.get_close_matches(key, DECLARED_KEYS, n=1)
                fix = f"did you mean {hint[0]}?" if hint else "see .env.example for the keys"
                raise SettingsError(f"{env_file.name}: unknown setting {key}: {fix}")
            raw[key], origin[key] = value or "", env_file.name
    for source, values in (("environment", environ), ("override", overrides or {})):
        for key in values.keys() & set(DECLARED_KEYS):
            raw[key], origin[key] = values[key], source
    try:
        settings = Settings.model_validate({k: v for k, v in raw.items() if k in KNOWN_KEYS})
    except ValidationError as exc:
        err = exc.errors()[0]
        reason = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:
            raise SettingsError(f"{reason}; {FIX}") from None
        key = str(err["loc"][0])
        where = origin.get(key, "defaults")
        shown = "(hidden)" if key in SECRET_KEYS else repr(raw.get(key, ""))
        raise SettingsError(f"{key}={shown} (from {where}) is invalid: {reason}; {FIX}") from None
    settings._passed = {
        key: raw.get(key, setting.default_text)
        for key, setting in declared.settings().items()
        if key not in KNOWN_KEYS
    }
    return settings


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
