"""The ECS task definition, rendered from the sources the laptop uses plus deploy/aws.yaml.

compose.yaml gives the infrastructure containers' images, ports, environment, commands,
health probes and volumes; schemas/settings.schema.json gives each app the settings its
reader reads, with their defaults (a secret only ever as a reference to deploy/aws.yaml's
`secrets`); the routing file travels inside the gateway image. Nothing here is hand-copied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv import compose, declared
from devenv.aws.config import AwsConfig, Container, ssm_name
from devenv.aws.errors import AwsError
from devenv.settings import REPO_ROOT

RENDERED = REPO_ROOT / "deploy" / "rendered" / "task-definition.json"
LOG_STREAM_PREFIX = "platform"

# Each app container and the reader (`x-readers` in schemas/settings.schema.json) it runs.
APP_READERS = {"app": "platform", "ai-inference": "ai-inference"}
# The settings each app container is given: every key its reader reads.
APP_CONTAINERS: dict[str, tuple[str, ...]] = {
    name: tuple(declared.read_by(reader)) for name, reader in APP_READERS.items()
}
# The ports each app container listens on, by setting.
APP_PORTS: dict[str, tuple[str, ...]] = {
    "app": ("INGESTION_PORT", "QUERY_PORT", "ACTIONS_PORT"),
    "ai-inference": ("AI_INFERENCE_PORT",),
}
# ECS accepts narrower health-check timings than Compose.
_LIMITS = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10)}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Target:
    """Where the definition goes. Offline renders keep placeholders for what only AWS knows."""

    region: str
    tag: str
    account: str = "{{account}}"
    # SSM parameter name -> value, for the EFS ids (never secrets: those stay references).
    resolved: Mapping[str, str] = field(default_factory=dict)

    @property
    def registry(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com"

    def value(self, reference: str) -> str:
        name = ssm_name(reference)
        if name is None:
            return reference
        return self.resolved.get(name, f"{{{{resolve:ssm:{name}}}}}")

    def arn(self, reference: str) -> str:
        name = ssm_name(reference)
        if name is None:
            return reference
        return f"arn:aws:ssm:{self.region}:{self.account}:parameter{name}"


def task_settings(compose_file: Path = compose.COMPOSE_FILE) -> dict[str, str]:
    """The declared defaults as seen inside the task: hosts are localhost (one network
    namespace) and every port compose.yaml publishes is the container's own port."""
    values = {key: s.default_text for key, s in declared.settings().items()}
    for key in values:
        if key.endswith("_HOST"):
            values[key] = "localhost"
    values.update(published_ports(compose_file))
    return values


def published_ports(compose_file: Path = compose.COMPOSE_FILE) -> dict[str, str]:
    """Port setting -> container port, from compose's `127.0.0.1:${SETTING:-x}:port` lines."""
    result = {}
    for spec in compose.load_raw(compose_file)["services"].values():
        for entry in spec.get("ports", []):
            host, container = str(entry).rsplit(":", 1)
            match = _VAR.search(host)
            if match:
                result[match.group(1)] = container.split("/")[0]
    return result


def render(
    cfg: AwsConfig,
    target: Target,
    compose_file: Path = compose.COMPOSE_FILE,
) -> dict[str, Any]:
    """The RegisterTaskDefinition input (without tags, which carry the deploy's identity)."""
    services = compose.load_raw(compose_file)["services"]
    values = task_settings(compose_file)
    containers = []
    for name, spec in cfg.containers.items():
        if spec.compose:
            body = _from_compose(
                name, spec, services[spec.compose], values=values, cfg=cfg, target=target
            )
        else:
            body = _from_settings(name, spec, values, cfg, target)
        containers.append(_common(name, spec, cfg, target) | body)
    return {
        "family": cfg.family,
        "taskRoleArn": f"arn:aws:iam::{target.account}:role/{cfg.roles.task}",
        "executionRoleArn": f"arn:aws:iam::{target.account}:role/{cfg.roles.execution}",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "cpu": str(cfg.task.cpu),
        "memory": str(cfg.task.memory),
        "containerDefinitions": containers,
        "volumes": [
            {
                "name": volume,
                "efsVolumeConfiguration": {
                    "fileSystemId": target.value(cfg.efs.file_system),
                    "transitEncryption": "ENABLED",
                    "authorizationConfig": {
                        "accessPointId": target.value(access_point),
                        "iam": "ENABLED",
                    },
                },
            }
            for volume, access_point in cfg.efs.access_points.items()
        ],
    }


def write(definition: Mapping[str, Any], path: Path = RENDERED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(definition))
    return path


def dumps(definition: Mapping[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=False) + "\n"


def image(cfg: AwsConfig, target: Target, container: str) -> str:
    return f"{target.registry}/{cfg.repository(container)}:{target.tag}"


def pinned(cfg: AwsConfig, reference: str) -> str:
    """A third-party image as `repository@digest` when `inv aws.pin` recorded its digest
    (a tag can be moved; a digest cannot), else the reference as compose.yaml names it."""
    digest = cfg.digests.get(reference)
    return f"{untagged(reference)}@{digest}" if digest else reference


def untagged(reference: str) -> str:
    """`registry:5000/name:tag` -> `registry:5000/name` (a colon after the last slash is a tag)."""
    name, _, tag = reference.rpartition(":")
    return name if name and "/" not in tag else reference


# --- containers ------------------------------------------------------------------------


def _common(name: str, spec: Container, cfg: AwsConfig, target: Target) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "essential": spec.essential,
        "cpu": spec.cpu,
        "memory": spec.memory,
        "user": spec.user,
        "readonlyRootFilesystem": spec.readonly_root,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": cfg.logs.group,
                "awslogs-region": target.region,
                "awslogs-stream-prefix": LOG_STREAM_PREFIX,
            },
        },
    }
    if spec.depends_on:
        # A non-essential container must not hold the task hostage: waiting for it to be
        # HEALTHY would stop the essential ones when it never is. START keeps the order only.
        body["dependsOn"] = [
            {"containerName": c, "condition": "HEALTHY" if cfg.containers[c].essential else "START"}
            for c in spec.depends_on
        ]
    if spec.sysctls:
        body["systemControls"] = [{"namespace": k, "value": v} for k, v in spec.sysctls.items()]
    return body


def _from_compose(
    name: str,
    spec: Container,
    service: Mapping[str, Any],
    *,
    values: Mapping[str, str],
    cfg: AwsConfig,
    target: Target,
) -> dict[str, Any]:
    environment: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for key, raw in (service.get("environment") or {}).items():
        variable = _VAR.search(str(raw))
        if variable and declared.settings()[variable.group(1)].secret:
            secrets[key] = target.arn(_secret_parameter(name, variable.group(1), cfg))
        else:
            environment[key] = compose.interpolate(str(raw), values)
    environment.update(spec.environment)
    ports = [int(str(p).rsplit(":", 1)[1].split("/")[0]) for p in service.get("ports", [])]
    check = service.get("healthcheck", {})
    test = check.get("test", [])
    probe = test if isinstance(test, list) else ["CMD-SHELL", test]
    body: dict[str, Any] = {
        "image": image(cfg, target, name) if name in cfg.images else pinned(cfg, service["image"]),
        "portMappings": _port_mappings(name, ports),
        "environment": _pairs(environment),
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
        "healthCheck": _health(
            [compose.interpolate(str(part), values) for part in probe], check, spec
        ),
        "mountPoints": [
            {"sourceVolume": volume, "containerPath": path, "readOnly": False}
            for volume, path in _named_volumes(service)
            if volume in cfg.efs.access_points
        ],
    }
    if "command" in service:
        body["command"] = _command(service["command"], values, spec.command_overrides)
    return body


def _from_settings(
    name: str, spec: Container, values: Mapping[str, str], cfg: AwsConfig, target: Target
) -> dict[str, Any]:
    names = APP_CONTAINERS[name]
    secret = [key for key in names if declared.settings()[key].secret]
    own = {key: values[key] for key in names} | {k: str(v) for k, v in spec.settings.items()}
    ports = [int(own[key]) for key in APP_PORTS[name]]
    return {
        "image": image(cfg, target, name),
        "portMappings": _port_mappings(name, ports),
        "environment": _pairs({k: v for k, v in own.items() if k not in secret}),
        "secrets": [
            {"name": key, "valueFrom": target.arn(_secret_parameter(name, key, cfg))}
            for key in secret
        ],
        "healthCheck": _health(_http_probe(name, ports), {}, spec),
    }


def _secret_parameter(container: str, key: str, cfg: AwsConfig) -> str:
    """The SSM parameter of a setting declared `x-secret`: never a plain value in the task."""
    if key not in cfg.secrets:
        raise AwsError(
            f"{container} reads the secret {key}: name its SSM parameter under `secrets` "
            "in deploy/aws.yaml"
        )
    return cfg.secrets[key]


def _http_probe(name: str, ports: list[int]) -> list[str]:
    """The apps' `GET /healthz`: busybox wget in the app image, Python in the AI image."""
    if name == "ai-inference":
        code = (
            "import urllib.request; "
            f"urllib.request.urlopen('http://127.0.0.1:{ports[0]}/healthz', timeout=2)"
        )
        return ["CMD", "python", "-c", code]
    checks = " && ".join(f"wget -q -O /dev/null http://127.0.0.1:{p}/healthz" for p in ports)
    return ["CMD-SHELL", checks]


def _health(command: list[str], check: Mapping[str, Any], spec: Container) -> dict[str, Any]:
    timings = {
        "interval": _seconds(check.get("interval", "10s")),
        "timeout": _seconds(check.get("timeout", "5s")),
        "retries": int(check.get("retries", 3)),
    }
    clamped = {k: min(max(v, _LIMITS[k][0]), _LIMITS[k][1]) for k, v in timings.items()}
    return {"command": command, **clamped, "startPeriod": spec.start_period}


def _command(
    command: list[str], values: Mapping[str, str], overrides: Mapping[str, str]
) -> list[str]:
    result = []
    for part in (compose.interpolate(str(arg), values) for arg in command):
        key = part.split("=", 1)[0]
        result.append(f"{key}={overrides[key]}" if key in overrides else part)
    present = {part.split("=", 1)[0] for part in result}
    return result + [f"{key}={value}" for key, value in overrides.items() if key not in present]


def _port_mappings(name: str, ports: list[int]) -> list[dict[str, Any]]:
    return [
        {"name": f"{name}-{port}", "containerPort": port, "hostPort": port, "protocol": "tcp"}
        for port in ports
    ]


def _named_volumes(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Named volumes only: bind mounts (the gateway's routing file) are baked into images."""
    result = []
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        if not source.startswith((".", "/")):
            result.append((source, target))
    return result


def _pairs(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": key, "value": value} for key, value in sorted(values.items())]


def _seconds(text: str | int) -> int:
    if isinstance(text, int):
        return text
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return max(1, round(total))
