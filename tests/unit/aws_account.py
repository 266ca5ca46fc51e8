"""A moto AWS account for the `inv aws.*` tests: credentials, what exists before the first
deploy (roles, EFS, SSM parameters), pushed images, and a snapshot for "nothing changed"."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import boto3

from devenv.aws import clients, config, deploy, network, runtime
from devenv.aws.clients import Aws

REGION = "eu-central-1"
SECRET_VALUES = ("s3cret-db-password", "s3cret-emqx-password")
CALLER = "CIDR 203.0.113.7/32"
NOBODY = network.Ingress(public="", dashboard="")
# The deploy's own deadline for its task to start, checked again without a pause (moto is at once).
NO_PAUSE = dataclasses.replace(runtime.STARTED_IN, poll=0.0)


def prepare_account(env: str = "dev") -> None:
    """What exists before the first deploy: roles, the env's EFS and its SSM parameters."""
    cfg = config.load(env)
    iam = boto3.client("iam")
    for role in (cfg.roles.execution, cfg.roles.task):
        if role not in {r["RoleName"] for r in iam.list_roles()["Roles"]}:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    efs = boto3.client("efs", region_name=REGION)
    ssm = boto3.client("ssm", region_name=REGION)
    fs = efs.create_file_system(CreationToken=f"platform-{env}", Encrypted=True)["FileSystemId"]
    ssm.put_parameter(Name=f"/platform/{env}/efs/file-system-id", Value=fs, Type="String")
    for volume, uid in (("postgres-data", 70), ("redpanda-data", 101), ("emqx-data", 1000)):
        point = efs.create_access_point(
            ClientToken=volume, FileSystemId=fs, PosixUser={"Uid": uid, "Gid": uid}
        )
        ssm.put_parameter(
            Name=f"/platform/{env}/efs/access-point/{volume}",
            Value=point["AccessPointId"],
            Type="String",
        )
    for name, value in zip(
        ("postgres-password", "emqx-dashboard-password"), SECRET_VALUES, strict=True
    ):
        ssm.put_parameter(Name=f"/platform/{env}/{name}", Value=value, Type="SecureString")


def fake_push(tag: str) -> None:
    """What `inv aws.push` leaves in ECR (moto stores manifests, not layers)."""
    ecr = boto3.client("ecr", region_name=REGION)
    manifest = (
        '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    )
    existing = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    for name in config.load("dev").images:
        if f"platform/{name}" not in existing:
            ecr.create_repository(repositoryName=f"platform/{name}")
        with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
            ecr.put_image(repositoryName=f"platform/{name}", imageManifest=manifest, imageTag=tag)


def snapshot() -> dict[str, Any]:
    """Everything a deploy could create or change, for 'nothing changed' assertions."""
    ecs = boto3.client("ecs", region_name=REGION)
    clusters = ecs.list_clusters()["clusterArns"]
    return {
        "clusters": clusters,
        "families": ecs.list_task_definitions()["taskDefinitionArns"],
        "tasks": sorted(
            (arn, t["lastStatus"])
            for c in clusters
            for arn in ecs.list_tasks(cluster=c)["taskArns"]
            for t in ecs.describe_tasks(cluster=c, tasks=[arn])["tasks"]
        ),
        "log_groups": boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"],
        "groups": sorted(
            (g["GroupName"], str(g.get("IpPermissions")))
            for g in boto3.client("ec2", region_name=REGION).describe_security_groups()[
                "SecurityGroups"
            ]
        ),
        "repositories": boto3.client("ecr", region_name=REGION).describe_repositories()[
            "repositories"
        ],
    }


def run_deploy(
    env: str = "dev", tag: str = "abc123def456", cidr: str = "203.0.113.7/32", **kwargs: Any
) -> tuple[Aws, list[str]]:
    lines: list[str] = []
    cfg = config.load(env)
    aws = clients.connect(cfg.region)
    options: dict[str, Any] = {"dry_run": False, "started_in": NO_PAUSE} | kwargs
    if not options["dry_run"]:
        fake_push(tag)
    ingress = network.ingress(cfg, cidr, allow_wide=False)
    deploy.deploy(aws, cfg, tag, ingress=ingress, say=lines.append, **options)
    return aws, lines
