"""The running env: its tasks (found by tag, so envs sharing a cluster never touch each
other), waiting for them to be healthy, their address, status lines and logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from devenv.aws import waiting
from devenv.aws.clients import Aws, error_code
from devenv.aws.config import AwsConfig
from devenv.aws.errors import AwsError
from devenv.aws.render import LOG_STREAM_PREFIX
from devenv.aws.waiting import Patience

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import TagTypeDef, TaskTypeDef

Say = Callable[[str], None]
MANAGED_BY = "devenv"
HEALTHY_IN = Patience(timeout=600.0)
STARTED_IN = Patience(timeout=300.0)


def tags(cfg: AwsConfig, sha: str, owner: str) -> dict[str, str]:
    return {"env": cfg.env, "git-sha": sha, "owner": owner, "managed-by": MANAGED_BY}


def ecs_tags(values: dict[str, str]) -> list[TagTypeDef]:
    return [{"key": k, "value": v} for k, v in values.items()]


def cluster_exists(aws: Aws, cfg: AwsConfig) -> bool:
    found = aws.ecs.describe_clusters(clusters=[cfg.cluster])["clusters"]
    return any(c.get("status") == "ACTIVE" for c in found)


def env_tasks(aws: Aws, cfg: AwsConfig, desired: str = "RUNNING") -> list[TaskTypeDef]:
    """The env's tasks: those carrying our `env` and `managed-by` tags, newest first."""
    if not cluster_exists(aws, cfg):
        return []
    arns: list[str] = []
    for page in aws.ecs.get_paginator("list_tasks").paginate(
        cluster=cfg.cluster,
        family=cfg.family,
        desiredStatus=desired,  # type: ignore[arg-type]
    ):
        arns += page["taskArns"]
    found: list[TaskTypeDef] = []
    for start in range(0, len(arns), 100):
        batch = arns[start : start + 100]
        found += aws.ecs.describe_tasks(cluster=cfg.cluster, tasks=batch, include=["TAGS"])["tasks"]
    mine = [t for t in found if _tag(t, "env") == cfg.env and _tag(t, "managed-by") == MANAGED_BY]
    return sorted(mine, key=lambda t: str(t.get("createdAt", "")), reverse=True)


def service_active(aws: Aws, cfg: AwsConfig) -> bool:
    if not cluster_exists(aws, cfg):
        return False
    found = aws.ecs.describe_services(cluster=cfg.cluster, services=[cfg.service])["services"]
    return any(s.get("status") == "ACTIVE" for s in found)


def address(aws: Aws, task: TaskTypeDef) -> tuple[str, bool]:
    """(ip, public): the ENI's public IP, else its private one (no public IP assigned)."""
    details = {
        d["name"]: d["value"]
        for attachment in task.get("attachments", [])
        if attachment.get("type") == "ElasticNetworkInterface"
        for d in attachment.get("details", [])
        if "name" in d and "value" in d
    }
    eni = details.get("networkInterfaceId")
    if eni:
        found = aws.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
        public = found[0].get("Association", {}).get("PublicIp") if found else None
        if public:
            return public, True
    return details.get("privateIPv4Address", "-"), False


def health_line(task: TaskTypeDef) -> str:
    containers = ", ".join(
        f"{c.get('name')} {c.get('healthStatus', 'UNKNOWN')}"
        for c in sorted(task.get("containers", []), key=lambda c: c.get("name", ""))
    )
    return f"task {task_id(task)}: {task.get('lastStatus')}; {containers}"


def task_id(task: TaskTypeDef) -> str:
    return task.get("taskArn", "").rsplit("/", 1)[-1]


def wait_healthy(
    aws: Aws,
    cfg: AwsConfig,
    arn: str,
    say: Say,
    *,
    patience: Patience = HEALTHY_IN,
) -> TaskTypeDef:
    """Poll DescribeTasks until the task is RUNNING and every container with a health check
    is HEALTHY; print each change. A stopped task is an error naming why and where to look."""
    last = ""

    def healthy() -> TaskTypeDef | None:
        nonlocal last
        found = aws.ecs.describe_tasks(cluster=cfg.cluster, tasks=[arn])["tasks"]
        if not found:
            raise AwsError(f"task {arn} disappeared: see `inv aws.status --env {cfg.env}`")
        task = found[0]
        line = health_line(task)
        if line != last:
            say(f"  {line}")
            last = line
        if task.get("lastStatus") == "STOPPED":
            reasons = [task.get("stoppedReason", "")] + [
                f"{c.get('name')}: {c.get('reason', c.get('exitCode', ''))}"
                for c in task.get("containers", [])
                if c.get("reason") or c.get("exitCode")
            ]
            raise AwsError(
                f"task stopped: {'; '.join(r for r in reasons if r)}; "
                f"see `inv aws.logs CONTAINER --env {cfg.env}`"
            )
        containers = task.get("containers", [])
        if task.get("lastStatus") == "RUNNING" and all(
            c.get("healthStatus") == "HEALTHY" for c in containers
        ):
            return task
        return None

    return waiting.until(
        healthy,
        lambda: (
            f"task not healthy after {patience.timeout:.0f}s ({last}); "
            f"see `inv aws.logs CONTAINER --env {cfg.env}`"
        ),
        patience,
    )


def wait_stopped(
    aws: Aws,
    cfg: AwsConfig,
    arns: list[str],
    *,
    patience: Patience = STARTED_IN,
) -> None:
    """Until every task in `arns` is STOPPED: their network interfaces hold the security group."""
    if not arns:
        return

    def stopped() -> bool | None:
        found = aws.ecs.describe_tasks(cluster=cfg.cluster, tasks=arns)["tasks"]
        return all(t.get("lastStatus") == "STOPPED" for t in found) or None

    waiting.until(
        stopped,
        lambda: f"tasks still stopping after {patience.timeout:.0f}s: run the command again",
        patience,
    )


def service_task(
    aws: Aws,
    cfg: AwsConfig,
    definition_arn: str,
    say: Say,
    *,
    patience: Patience = STARTED_IN,
) -> str:
    """The service's task running `definition_arn`, once its scheduler has started one (the
    tasks listed right after UpdateService are still the old deployment's)."""
    say(f"  waiting for service {cfg.service} to start a task of the new revision")

    def started() -> str | None:
        arns = aws.ecs.list_tasks(cluster=cfg.cluster, serviceName=cfg.service)["taskArns"]
        found = aws.ecs.describe_tasks(cluster=cfg.cluster, tasks=arns)["tasks"] if arns else []
        new = [t["taskArn"] for t in found if t.get("taskDefinitionArn") == definition_arn]
        return new[0] if new else None

    return waiting.until(
        started,
        lambda: (
            f"service {cfg.service} started no task of {definition_arn} "
            f"in {patience.timeout:.0f}s: "
            f"see its events (aws ecs describe-services) or `inv aws.status --env {cfg.env}`"
        ),
        patience,
    )


@dataclass(frozen=True)
class Row:
    task: str
    state: str
    health: str
    revision: str
    sha: str
    ip: str

    def line(self) -> str:
        return (
            f"{self.task:<34} {self.state:<9} {self.health:<10} {self.revision:<18} "
            f"{self.sha:<13} {self.ip}"
        )


HEADER = f"{'TASK':<34} {'STATE':<9} {'HEALTH':<10} {'REVISION':<18} {'GIT SHA':<13} ADDRESS"


def status(aws: Aws, cfg: AwsConfig) -> list[Row]:
    rows = []
    for task in env_tasks(aws, cfg):
        ip, public = address(aws, task)
        rows.append(
            Row(
                task=task_id(task),
                state=str(task.get("lastStatus", "-")),
                health=str(task.get("healthStatus", "UNKNOWN")),
                revision=task.get("taskDefinitionArn", "").rsplit("/", 1)[-1],
                sha=_tag(task, "git-sha") or "-",
                ip=ip if public else f"{ip} (private)",
            )
        )
    return rows


def stop(aws: Aws, cfg: AwsConfig, say: Say, dry_run: bool = False, reason: str = "") -> list[str]:
    """Stop the env's tasks (and delete its service); returns the stopped tasks' ARNs."""
    if service_active(aws, cfg):
        say(f"- service {cfg.service} (desired count 0, deleted)")
        if not dry_run:
            aws.ecs.update_service(cluster=cfg.cluster, service=cfg.service, desiredCount=0)
            aws.ecs.delete_service(cluster=cfg.cluster, service=cfg.service, force=True)
    tasks = env_tasks(aws, cfg)
    for task in tasks:
        say(f"- task {task_id(task)} ({_tag(task, 'git-sha') or 'unknown sha'})")
        if not dry_run:
            aws.ecs.stop_task(
                cluster=cfg.cluster, task=task["taskArn"], reason=reason or "inv aws.down"
            )
    return [t["taskArn"] for t in tasks]


def log_lines(
    aws: Aws,
    cfg: AwsConfig,
    container: str,
    *,
    lines: int,
    follow: bool,
    say: Say,
    poll: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The container's log in the env's newest task (`follow`: until Ctrl-C)."""
    check_container(cfg, container)
    stream = _newest_stream(aws, cfg, container)
    kwargs: dict[str, Any] = {"logGroupName": cfg.logs.group, "logStreamName": stream}
    page = aws.logs.get_log_events(**kwargs, limit=lines, startFromHead=False)
    while True:
        for event in page["events"]:
            say(event.get("message", "").rstrip("\n"))
        if not follow:
            return
        sleep(poll)
        page = aws.logs.get_log_events(
            **kwargs, nextToken=page["nextForwardToken"], startFromHead=True
        )


def check_container(cfg: AwsConfig, container: str) -> None:
    if container not in cfg.containers:
        raise AwsError(f"no container {container!r}: choose one of {', '.join(cfg.containers)}")


def _newest_stream(aws: Aws, cfg: AwsConfig, container: str) -> str:
    running = env_tasks(aws, cfg)
    prefix = f"{LOG_STREAM_PREFIX}/{container}/"
    if running:
        return prefix + task_id(running[0])
    try:
        streams = aws.logs.describe_log_streams(
            logGroupName=cfg.logs.group, logStreamNamePrefix=prefix
        )["logStreams"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        streams = []
    if not streams:
        raise AwsError(f"no logs of {container} in {cfg.logs.group}: deploy first (inv aws.deploy)")
    newest = max(streams, key=lambda s: s.get("lastEventTimestamp", s.get("creationTime", 0)))
    return newest["logStreamName"]


def _tag(task: TaskTypeDef, key: str) -> str | None:
    return next((t.get("value") for t in task.get("tags", []) if t.get("key") == key), None)
