"""Local (docker, native) and ECS views of one stack, to hold them against each other.

Each view answers the same three questions in its own terms: which path prefix the gateway
sends to which port, which ports each component listens on, and which setting names each app
receives. Only the upstream host and the gateway's published ports may differ, by design.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv import compose, declared
from devenv import settings as settings_mod
from devenv.aws import render
from devenv.aws.config import AwsConfig
from devenv.backends.native import RECIPES
from devenv.backends.native.traefik import ROUTES_FILE
from devenv.gateway import routes
from devenv.settings import REPO_ROOT

UPSTREAM_HOST = {"docker": "host.docker.internal", "native": "127.0.0.1", "ecs": "localhost"}


@dataclass(frozen=True)
class View:
    name: str
    upstream_host: str
    routes: dict[str, int]  # path prefix -> upstream port
    ports: dict[str, tuple[int, ...]]  # component -> ports it listens on, in its namespace
    published: dict[str, tuple[int, ...]]  # component -> ports its clients dial
    settings: dict[str, frozenset[str]]  # app container -> setting names it is given


def local_settings() -> dict[str, frozenset[str]]:
    """What each app reads, as declared (contract tests hold the apps' own readers to it)."""
    return {
        name: frozenset(declared.read_by(reader)) for name, reader in render.APP_READERS.items()
    }


def docker_view(
    cfg: AwsConfig,
    compose_file: Path = compose.COMPOSE_FILE,
    routes_file: Path = ROUTES_FILE,
) -> View:
    """compose.yaml's services as their containers see themselves; apps native on the host."""
    s = _laptop_settings()
    services = compose.load_raw(compose_file)["services"]
    components = compose.components(s.as_env(), compose_file)
    traefik_env = {
        key: compose.interpolate(str(value), s.as_env())
        for key, value in services["traefik"]["environment"].items()
    }
    host, table = routes(traefik_env, routes_file)
    published = {
        name: tuple(p.host_port for p in compose.find(components, c.compose).ports)
        for name, c in cfg.containers.items()
        if c.compose
    }
    inside = {
        name: tuple(p.container_port for p in compose.find(components, c.compose).ports)
        for name, c in cfg.containers.items()
        if c.compose
    }
    apps = _app_ports(s)
    return View("docker", host, table, inside | apps, published | apps, local_settings())


def native_view(cfg: AwsConfig) -> View:
    """The native recipes' own listen ports and the gateway's own environment."""
    s = _laptop_settings()
    home = s.state_dir / "native"
    recipes = {
        c.service: RECIPES[c.service](s, c, home / c.service, home)
        for c in compose.components(s.as_env())
    }
    host, table = routes(recipes["traefik"].launch().env)
    ports = {
        name: tuple(recipes[c.compose].listen_ports())
        for name, c in cfg.containers.items()
        if c.compose
    }
    ports |= _app_ports(s)
    return View("native", host, table, ports, ports, local_settings())


def ecs_view(definition: Mapping[str, Any]) -> View:
    """The rendered task definition: port mappings, the gateway's and the apps' environments."""
    containers = {c["name"]: c for c in definition["containerDefinitions"]}
    gateway_env = {e["name"]: e["value"] for e in containers["traefik"].get("environment", [])}
    host, table = routes(gateway_env)
    ports = {
        name: tuple(m["containerPort"] for m in c.get("portMappings", []))
        for name, c in containers.items()
    }
    names = {
        name: frozenset(e["name"] for e in [*c.get("environment", []), *c.get("secrets", [])])
        for name, c in containers.items()
        if name in render.APP_CONTAINERS
    }
    return View("ecs", host, table, ports, ports, names)


def differences(local: View, ecs: View, *, published: bool = False) -> list[str]:
    """What `ecs` says differently from `local`; empty when they agree. `published=True`
    compares the ports clients dial, and only each infrastructure component's main one
    (native vs docker: the native roles are other programs with other extra listeners)."""
    found = []
    for view in (local, ecs):
        if view.upstream_host != UPSTREAM_HOST[view.name]:
            found.append(f"{view.name}: gateway upstream host {view.upstream_host!r}")
    if local.routes != ecs.routes:
        found.append(f"routes: {local.name} {local.routes} != {ecs.name} {ecs.routes}")
    a, b = (local.published, ecs.published) if published else (local.ports, ecs.ports)
    for component in sorted(a.keys() | b.keys()):
        mine, theirs = a.get(component, ()), b.get(component, ())
        whole = not published or component in render.APP_PORTS
        if (mine != theirs) if whole else (mine[:1] != theirs[:1]):
            found.append(f"ports of {component}: {local.name} {mine} != {ecs.name} {theirs}")
    for app in sorted(local.settings.keys() | ecs.settings.keys()):
        mine_s, theirs_s = local.settings.get(app, frozenset()), ecs.settings.get(app, frozenset())
        if mine_s != theirs_s:
            only = sorted(mine_s - theirs_s), sorted(theirs_s - mine_s)
            found.append(
                f"settings of {app}: only {local.name} {only[0]}, only {ecs.name} {only[1]}"
            )
    return found


def routed_ports_listen(view: View) -> list[str]:
    """Every route's upstream port is one the app listens on."""
    app = set(view.ports.get("app", ()))
    return [
        f"{view.name}: {prefix} goes to port {port}, where the app does not listen"
        for prefix, port in view.routes.items()
        if port not in app
    ]


def _laptop_settings() -> settings_mod.Settings:
    """devenv's settings at their declared defaults (no .env, no environment)."""
    return settings_mod.load(env_file=REPO_ROOT / ".absent", environ={})


def _app_ports(s: settings_mod.Settings) -> dict[str, tuple[int, ...]]:
    values = s.model_dump()
    return {name: tuple(values[key] for key in keys) for name, keys in render.APP_PORTS.items()}
