"""`inv aws.deploy`: check, then ensure each piece, printing `+`/`~`/`-` for every change.
A dry run walks the same steps with read-only calls and stops before the first mutation."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from devenv.aws import images, lock, network, pin, render, runtime, validate
from devenv.aws.clients import Aws, error_code, parameter
from devenv.aws.config import AwsConfig, ssm_name
from devenv.aws.errors import AwsError
from devenv.aws.waiting import Patience
from devenv.gateway import routes

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import DeploymentConfigurationTypeDef

Say = Callable[[str], None]
# The service replaces its task with the old one STOPPED first: never two on one EFS volume.
ONE_AT_A_TIME: DeploymentConfigurationTypeDef = {"minimumHealthyPercent": 0, "maximumPercent": 100}
SERVICE_ORDER = "the old task stops before the new one starts (minimum 0 %, maximum 100 %)"
TASK_ORDER = "started once the old task is STOPPED (one writer per EFS volume)"


@dataclass(frozen=True)
class Endpoint:
    ip: str
    public: bool
    urls: list[str]


def resolve(aws: Aws, cfg: AwsConfig) -> dict[str, str]:
    """The EFS ids aws.yaml names by SSM parameter (plain values, never the secrets)."""
    resolved = {}
    for reference in (cfg.efs.file_system, *cfg.efs.access_points.values()):
        name = ssm_name(reference)
        if name is None:
            continue
        value = parameter(aws, name)
        if value is None:
            raise AwsError(
                f"SSM parameter {name} not found in {aws.region}: create the env's EFS file "
                f"system and access points, then `aws ssm put-parameter --name {name} "
                "--type String --value <id>` (see deploy/aws.yaml, efs)"
            )
        resolved[name] = value
    return resolved


def definition(aws: Aws, cfg: AwsConfig, tag: str) -> dict[str, Any]:
    target = render.Target(aws.region, tag, aws.account, resolve(aws, cfg))
    rendered = render.render(cfg, target)
    validate.check(rendered)
    return rendered


def diff(aws: Aws, rendered: Mapping[str, Any]) -> tuple[str | None, str]:
    """(ARN of the newest registered revision, unified diff against it; '' = unchanged).
    Only the keys we render are compared: ECS adds defaults and bookkeeping of its own."""
    try:
        current = aws.ecs.describe_task_definition(taskDefinition=rendered["family"])
    except ClientError as exc:
        if error_code(exc) not in {"ClientException", "InvalidParameterException"}:
            raise
        return None, f"+ task definition family {rendered['family']} (new)"
    registered = current["taskDefinition"]
    projected = _project(registered, rendered)
    before = json.dumps(projected, indent=2, sort_keys=True).splitlines()
    after = json.dumps(rendered, indent=2, sort_keys=True).splitlines()
    lines = difflib.unified_diff(before, after, "registered", "rendered", lineterm="", n=2)
    return registered.get("taskDefinitionArn"), "\n".join(lines)


def deploy(
    aws: Aws,
    cfg: AwsConfig,
    tag: str,
    *,
    ingress: network.Ingress,
    dry_run: bool,
    revoke_unnamed: bool = False,
    say: Say = print,
    wait: Callable[[str], Any] | None = None,
    started_in: Patience = runtime.STARTED_IN,
) -> Endpoint | None:
    say(f"account {aws.account}  region {aws.region}  env {cfg.env}  image tag {tag}")
    rendered = definition(aws, cfg, tag)
    _check_roles(aws, cfg)
    missing = images.missing(aws, cfg, tag)
    for uri in missing:
        say(f"! image {uri} is not in ECR")
    for reference in pin.unpinned(cfg):
        say(f"! image {reference} runs by tag, which can move: `inv aws.pin` records its digest")
    if missing and not dry_run:
        raise AwsError(f"{len(missing)} image(s) of {tag} not in ECR: run `inv aws.push` first")
    for line in start_order(rendered):
        say(line)
    plan = _Plan(rendered, tag, ingress, revoke_unnamed, started_in)
    if dry_run:
        busy = lock.holder(aws, cfg)
        if busy:
            say(f"! {lock.refusal(cfg, busy)}")
        _apply(aws, cfg, plan, say=say, dry_run=True)
        say("dry run: nothing was changed")
        return None
    with lock.held(aws, cfg, tag, say):
        task_arn = _apply(aws, cfg, plan, say=say, dry_run=False)
        assert task_arn is not None  # a real run starts a task or fails
        task = (wait or (lambda a: runtime.wait_healthy(aws, cfg, a, say)))(task_arn)
    ip, public = runtime.address(aws, task)
    endpoint = Endpoint(ip, public, urls(rendered, ip, cfg))
    say(f"account {aws.account}  region {aws.region}  task {runtime.task_id(task)}")
    say(f"address {ip}" + ("" if public else " (private: no public IP on this task)"))
    for url in endpoint.urls:
        say(f"  {url}")
    return endpoint


def start_order(rendered: Mapping[str, Any]) -> list[str]:
    """What each container waits for, as ECS applies it (dependsOn)."""
    lines = ["start order:"]
    for c in rendered["containerDefinitions"]:
        waits = ", ".join(f"{d['containerName']} {d['condition']}" for d in c.get("dependsOn", []))
        role = "essential" if c["essential"] else "not essential"
        lines.append(f"  {c['name']} ({role})" + (f" after {waits}" if waits else ": at once"))
    return lines


@dataclass(frozen=True)
class _Plan:
    rendered: Mapping[str, Any]
    tag: str
    ingress: network.Ingress
    revoke_unnamed: bool
    started_in: Patience


def _apply(aws: Aws, cfg: AwsConfig, plan: _Plan, *, say: Say, dry_run: bool) -> str | None:
    """Cluster, logs, security group, task definition, then the task (None in a dry run)."""
    labels = runtime.tags(cfg, plan.tag, aws.caller)
    if not runtime.cluster_exists(aws, cfg):
        say(f"+ cluster {cfg.cluster}")
        if not dry_run:
            aws.ecs.create_cluster(clusterName=cfg.cluster, tags=runtime.ecs_tags(labels))
    _ensure_log_group(aws, cfg, say, dry_run)
    vpc, subnets = network.placement(aws, cfg)
    rules = network.desired_rules(plan.rendered, plan.ingress)
    group = network.ensure_group(
        aws, cfg, vpc, rules, tags=labels, say=say, dry_run=dry_run, revoke=plan.revoke_unnamed
    )
    arn, changes = diff(aws, plan.rendered)
    say(changes or f"= task definition {arn} unchanged")
    if dry_run:
        if runtime.service_active(aws, cfg):
            say(f"~ service {cfg.service}: new deployment; {SERVICE_ORDER}")
        else:
            runtime.stop(aws, cfg, say, dry_run=True)
            say(f"+ task of {cfg.family} in {cfg.cluster}, {TASK_ORDER}")
        return None
    if changes:
        arn = aws.ecs.register_task_definition(
            **plan.rendered,
            tags=runtime.ecs_tags(labels),
        )["taskDefinition"]["taskDefinitionArn"]
        say(f"+ registered {arn}")
    assert arn is not None  # registered above when the family was new
    return _start(aws, cfg, arn, subnets=subnets, group=group, labels=labels, say=say, plan=plan)


def urls(rendered: Mapping[str, Any], ip: str, cfg: AwsConfig) -> list[str]:
    containers = {c["name"]: c for c in rendered["containerDefinitions"]}
    gateway = [m["containerPort"] for m in containers["traefik"]["portMappings"]]
    broker = [m["containerPort"] for m in containers["mqtt-broker"]["portMappings"]]
    env = {e["name"]: e["value"] for e in containers["traefik"]["environment"]}
    web = "" if gateway[0] == 80 else f":{gateway[0]}"
    found = [f"http://{ip}{web}{prefix}" for prefix in routes(env)[1]]
    found.append(f"mqtt://{ip}:{broker[0]}")
    if cfg.network.dashboard_cidr:
        found += [f"http://{ip}:{gateway[1]}/dashboard/", f"http://{ip}:{broker[1]}/"]
    return found


def _start(
    aws: Aws,
    cfg: AwsConfig,
    arn: str,
    *,
    subnets: list[str],
    group: str | None,
    labels: dict[str, str],
    say: Say,
    plan: _Plan,
) -> str:
    if runtime.service_active(aws, cfg):
        say(f"~ service {cfg.service}: new deployment of {arn}; {SERVICE_ORDER}")
        aws.ecs.update_service(
            cluster=cfg.cluster,
            service=cfg.service,
            taskDefinition=arn,
            forceNewDeployment=True,
            deploymentConfiguration=ONE_AT_A_TIME,
        )
        return runtime.service_task(aws, cfg, arn, say, patience=plan.started_in)
    # One writer per EFS volume: PostgreSQL and Redpanda must not run twice on the same data.
    stopped = runtime.stop(aws, cfg, say, reason="replaced by inv aws.deploy")
    if stopped:
        say(f"  waiting until {len(stopped)} old task(s) are STOPPED")
        runtime.wait_stopped(aws, cfg, stopped, patience=plan.started_in)
    say(f"+ task of {arn.rsplit('/', 1)[-1]}")
    started = aws.ecs.run_task(
        cluster=cfg.cluster,
        taskDefinition=arn,
        launchType="FARGATE",
        count=1,
        startedBy="devenv",
        tags=runtime.ecs_tags(labels),
        enableExecuteCommand=False,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [group] if group else [],
                "assignPublicIp": "ENABLED" if cfg.network.public_ip else "DISABLED",
            }
        },
    )
    if started.get("failures") or not started.get("tasks"):
        reasons = "; ".join(
            f"{f.get('arn', '')} {f.get('reason', '')}" for f in started["failures"]
        )
        raise AwsError(f"ECS could not start the task: {reasons or 'no reason given'}")
    return started["tasks"][0]["taskArn"]


def _check_roles(aws: Aws, cfg: AwsConfig) -> None:
    for what, name in (("execution", cfg.roles.execution), ("task", cfg.roles.task)):
        try:
            aws.iam.get_role(RoleName=name)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            raise AwsError(
                f"IAM role {name} (the task's {what} role, deploy/aws.yaml roles.{what}) does not "
                "exist: create it once with the ECS task trust policy"
            ) from None


def _ensure_log_group(aws: Aws, cfg: AwsConfig, say: Say, dry_run: bool) -> None:
    found = aws.logs.describe_log_groups(logGroupNamePrefix=cfg.logs.group)["logGroups"]
    if any(g.get("logGroupName") == cfg.logs.group for g in found):
        return
    say(f"+ log group {cfg.logs.group} ({cfg.logs.retention_days} days)")
    if not dry_run:
        aws.logs.create_log_group(logGroupName=cfg.logs.group)
        aws.logs.put_retention_policy(
            logGroupName=cfg.logs.group, retentionInDays=cfg.logs.retention_days
        )


def _project(registered: Any, rendered: Any) -> Any:
    """`registered` cut down to the shape of `rendered` (containers matched by name)."""
    if isinstance(rendered, dict) and isinstance(registered, dict):
        return {k: _project(registered.get(k), v) for k, v in rendered.items() if k in registered}
    if isinstance(rendered, list) and isinstance(registered, list):
        if rendered and all(isinstance(x, dict) and "name" in x for x in rendered):
            by_name = {x.get("name"): x for x in registered if isinstance(x, dict)}
            return [_project(by_name.get(x["name"], {}), x) for x in rendered]
        return [_project(a, b) for a, b in zip(registered, rendered, strict=False)] + registered[
            len(rendered) :
        ]
    return registered
