"""The settings declaration: schemas/settings.schema.json, the one source of every setting.

Each side reads it its own way (devenv's pydantic model, the Go struct tags, the AI service's
pydantic-settings, the ECS renderer); contract tests hold them to this file. `.env.example` is
generated from it here, so the file a user copies can never disagree with it.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO_ROOT / "schemas" / "settings.schema.json"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
WIDTH = 96


@dataclass(frozen=True)
class Setting:
    """One declared key: its JSON Schema and the annotations the readers act on."""

    key: str
    schema: dict[str, Any]

    @property
    def default(self) -> Any:
        return self.schema["default"]

    @property
    def default_text(self) -> str:
        """The default as the environment carries it."""
        return env_text(self.default)

    @property
    def readers(self) -> tuple[str, ...]:
        return tuple(self.schema["x-readers"])

    @property
    def secret(self) -> bool:
        return bool(self.schema.get("x-secret", False))

    @property
    def section(self) -> str:
        return str(self.schema["x-section"])

    def constraint(self) -> str:
        """The accepted values in words, as .env.example shows them."""
        s = self.schema
        if "enum" in s:
            text = "one of " + " | ".join(s["enum"])
        elif s.get("x-format") == "duration":
            text = "duration such as 500ms, 10s or 2m"
        elif s["type"] in ("integer", "number"):
            kind = "whole number" if s["type"] == "integer" else "number"
            if "minimum" in s and "maximum" in s:
                text = f"{kind} {s['minimum']}..{s['maximum']}"
            elif "exclusiveMinimum" in s:
                text = f"{kind} > {s['exclusiveMinimum']}"
            else:
                text = kind
        elif "pattern" in s:
            text = f"text matching {s['pattern']}"
        elif s.get("minLength", 0) > 1:
            text = f"text of at least {s['minLength']} characters"
        elif "minLength" in s:
            text = "non-empty text"
        else:
            text = "text"
        secret = "; secret" if self.secret else ""
        return f"{text}{secret}; read by {', '.join(self.readers)}"


def env_text(value: Any) -> str:
    """A typed default as environment text: 90 not 90.0, 1e-06 as Python and Go parse it."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


@cache
def settings() -> dict[str, Setting]:
    """Every declared setting by key, in the file's order."""
    return {key: Setting(key, spec) for key, spec in document()["properties"].items()}


def read_by(reader: str) -> dict[str, Setting]:
    """The settings one reader (devenv, platform, ai-inference) declares it reads."""
    return {key: s for key, s in settings().items() if reader in s.readers}


def server_ports() -> tuple[str, ...]:
    """The port settings of the monolith's servers (`x-server`), in the file's order; the Go
    side's list of servers is held to the same marks by its tests (internal/app)."""
    return tuple(key for key, s in settings().items() if "x-server" in s.schema)


def env_example() -> str:
    """The text of .env.example: every key with its default, description and constraint."""
    lines = [f"# {line}" if line else "#" for line in document()["x-env-example-header"]]
    section = None
    for setting in settings().values():
        if setting.section != section:
            section = setting.section
            lines += ["", f"# --- {section} ".ljust(80, "-")]
        lines += textwrap.wrap(
            setting.schema["description"],
            WIDTH,
            initial_indent="# ",
            subsequent_indent="# ",
            break_on_hyphens=False,
        )
        lines += [f"# [{setting.constraint()}]", f"{setting.key}={setting.default_text}"]
    return "\n".join(lines) + "\n"


def write_env_example(path: Path = ENV_EXAMPLE) -> Path:
    path.write_text(env_example())
    return path
