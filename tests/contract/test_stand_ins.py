"""The stand-ins' override (INFRA_IMAGES=local) against compose.yaml, the one source of the
services: it covers every service and changes only what the binary changes (the image, how
it is built and started, the healthcheck command), checked on the files and on what the real
Compose loader makes of them; and each stand-in keeps its official image's user and data path."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv import compose
from devenv.aws import config, dockerfiles
from devenv.backends import stand_ins
from devenv.settings import REPO_ROOT

SERVICES: dict[str, Any] = compose.load_raw()["services"]
OVERRIDE: dict[str, Any] = yaml.safe_load(stand_ins.OVERRIDE.read_text())["services"]
# What a stand-in may change; of the healthcheck only its command, never its timings.
MAY_CHANGE = {"image", "build", "command", "entrypoint", "healthcheck"}


def test_the_override_covers_every_service_of_compose_yaml() -> None:
    assert list(OVERRIDE) == list(SERVICES)


@pytest.mark.parametrize("service", sorted(OVERRIDE))
def test_the_override_changes_only_image_build_and_commands(service: str) -> None:
    spec = OVERRIDE[service]
    assert set(spec) <= MAY_CHANGE, f"{service} overrides {sorted(set(spec) - MAY_CHANGE)}"
    assert set(spec.get("healthcheck", {})) <= {"test"}, f"{service} changes healthcheck timings"
    assert spec["image"] != SERVICES[service]["image"]
    assert (REPO_ROOT / spec["build"]["context"] / "Dockerfile").is_file()


def merged(*files: Path) -> dict[str, Any]:
    """What the real Compose v2 loader makes of `files`, interpolated with the defaults."""
    argv = [compose.binary(), "--project-directory", str(REPO_ROOT), "--project-name", "x"]
    for path in files:
        argv += ["-f", str(path)]
    done = subprocess.run([*argv, "config", "--format", "json"], capture_output=True, text=True,
                          check=True, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    return dict(json.loads(done.stdout))


def without_what_may_change(project: dict[str, Any]) -> dict[str, Any]:
    for spec in project["services"].values():
        for key in MAY_CHANGE - {"healthcheck"}:
            spec.pop(key, None)
        spec.get("healthcheck", {}).pop("test", None)
    return project


def test_through_the_compose_loader_nothing_else_differs() -> None:
    official = merged(compose.COMPOSE_FILE)
    local = merged(compose.COMPOSE_FILE, stand_ins.OVERRIDE)
    assert (
        local["services"]["redpanda"]["healthcheck"]["test"]
        != (official["services"]["redpanda"]["healthcheck"]["test"])
    )  # the override was read at all
    assert without_what_may_change(local) == without_what_may_change(official)


def final_user(dockerfile: Path) -> str:
    users = [args for word, args in dockerfiles.instructions(dockerfile) if word == "USER"]
    return users[-1] if users else "0"


def aws_users() -> dict[str, str]:
    """compose service -> the `user` deploy/aws.yaml's container renders from it runs as."""
    cfg = config.load("dev")
    return {c.compose: c.user for c in cfg.containers.values() if c.compose}


def test_each_stand_in_runs_as_the_user_the_ecs_task_names() -> None:
    users = aws_users()
    # A service under a profile (the trace viewer, TRACING) is devenv's only: no container in
    # the task, and its stand-in runs unprivileged.
    local_only = {name for name, spec in SERVICES.items() if spec.get("profiles")}
    assert set(users) == set(OVERRIDE) - local_only
    for service, user in users.items():
        dockerfile = REPO_ROOT / OVERRIDE[service]["build"]["context"] / "Dockerfile"
        assert final_user(dockerfile) == user, f"{service}: USER differs from deploy/aws.yaml"
    for service in local_only:
        dockerfile = REPO_ROOT / OVERRIDE[service]["build"]["context"] / "Dockerfile"
        assert final_user(dockerfile) not in ("0", "root", "0:0"), f"{service} runs as root"


def data_volumes(service: str) -> list[str]:
    """Where compose.yaml mounts the service's named volumes (not bind mounts)."""
    named = set(compose.load_raw().get("volumes") or {})
    mounts = [v.split(":") for v in SERVICES[service].get("volumes", [])]
    return [target for source, target, *_ in mounts if source in named]


@pytest.mark.parametrize("service", sorted(s for s in SERVICES if data_volumes(s)))
def test_each_stand_in_keeps_its_data_where_compose_yaml_mounts_the_volume(service: str) -> None:
    targets = data_volumes(service)
    context = REPO_ROOT / OVERRIDE[service]["build"]["context"]
    text = "".join(p.read_text() for p in sorted(context.iterdir()) if p.is_file())
    for target in targets:
        # The image creates the folder owned by its user, so a new named volume gets it.
        assert f"mkdir -p {target}" in text, f"{service}: the image does not create {target}"
