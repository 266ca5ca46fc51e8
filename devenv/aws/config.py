"""deploy/aws.yaml as a typed model: the facts only the cloud has, per environment name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devenv.aws.errors import AwsError
from devenv.settings import REPO_ROOT

AWS_FILE = REPO_ROOT / "deploy" / "aws.yaml"
SSM_PREFIX = "ssm:"
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSize(_Model):
    cpu: int = Field(gt=0)
    memory: int = Field(gt=0)


class Roles(_Model):
    execution: str
    task: str


class Logs(_Model):
    group: str
    retention_days: int = Field(gt=0)


class Network(_Model):
    subnets: list[str] = []
    public_ip: bool = True
    ingress_cidr: str = ""
    dashboard_cidr: str = ""
    # The widest CIDR a deploy accepts without --allow-wide (port 80 has no authentication).
    min_prefix_ipv4: int = Field(24, ge=0, le=32)
    min_prefix_ipv6: int = Field(48, ge=0, le=128)


class Efs(_Model):
    file_system: str
    access_points: dict[str, str]


class Container(_Model):
    compose: str | None = None
    cpu: int = Field(gt=0)
    memory: int = Field(gt=0)
    user: str = Field(pattern=r"^[1-9][0-9]*:[1-9][0-9]*$")
    readonly_root: bool
    essential: bool
    start_period: int = Field(ge=0, le=300)
    command_overrides: dict[str, str] = {}
    environment: dict[str, str] = {}
    settings: dict[str, str | int] = {}
    sysctls: dict[str, str] = {}
    depends_on: list[str] = []


class AwsConfig(_Model):
    env: str
    lock: str
    region: str
    family: str
    cluster: str
    service: str
    task: TaskSize
    roles: Roles
    logs: Logs
    network: Network
    repository_prefix: str
    images: dict[str, str]
    efs: Efs
    secrets: dict[str, str]
    containers: dict[str, Container]
    # compose.yaml image reference -> the digest `inv aws.pin` resolved for it.
    digests: dict[str, Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]] = {}

    def repository(self, container: str) -> str:
        return f"{self.repository_prefix}/{container}"


def load(env: str = "dev", path: Path = AWS_FILE) -> AwsConfig:
    """aws.yaml with `{env}` filled in; a bad file or name is one line naming the key."""
    if not ENV_NAME.match(env):
        raise AwsError(f"--env {env!r}: use 1-20 lowercase letters, digits or dashes, e.g. dev")
    raw = yaml.safe_load(path.read_text())
    try:
        return AwsConfig.model_validate({**_fill(raw, env), "env": env})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"])
        raise AwsError(f"{path.name}: {key}: {err['msg']}") from None


def ssm_name(reference: str) -> str | None:
    """The SSM parameter name of an `ssm:/path` reference (None for a literal value)."""
    return reference.removeprefix(SSM_PREFIX) if reference.startswith(SSM_PREFIX) else None


def _fill(value: Any, env: str) -> Any:
    if isinstance(value, str):
        return value.replace("{env}", env)
    if isinstance(value, dict):
        return {key: _fill(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, env) for item in value]
    return value
