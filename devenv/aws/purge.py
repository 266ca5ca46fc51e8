"""`inv aws.down --purge --yes`: delete what outlives the env's tasks, its data first: the EFS
file system aws.yaml names (access points and mount targets before it), the SSM parameters
naming them, the env's security group and log group."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from devenv.aws import network, waiting
from devenv.aws.clients import Aws, error_code, parameter
from devenv.aws.config import AwsConfig, ssm_name
from devenv.aws.waiting import Patience

if TYPE_CHECKING:
    from mypy_boto3_efs.type_defs import MountTargetDescriptionTypeDef

Say = Callable[[str], None]
EMPTIED_IN = Patience(timeout=600.0)


def purge(
    aws: Aws,
    cfg: AwsConfig,
    say: Say,
    *,
    patience: Patience = EMPTIED_IN,
) -> None:
    references = [cfg.efs.file_system, *cfg.efs.access_points.values()]
    names = [n for n in (ssm_name(r) for r in references) if n]
    recorded = parameter(aws, fs_name) if (fs_name := ssm_name(cfg.efs.file_system)) else None
    file_system = recorded or cfg.efs.file_system
    if file_system.startswith("fs-") and _exists(aws, file_system):
        for point in aws.efs.describe_access_points(FileSystemId=file_system)["AccessPoints"]:
            say(f"- EFS access point {point['AccessPointId']}")
            aws.efs.delete_access_point(AccessPointId=point["AccessPointId"])
        for target in aws.efs.describe_mount_targets(FileSystemId=file_system)["MountTargets"]:
            say(f"- EFS mount target {target['MountTargetId']}")
            aws.efs.delete_mount_target(MountTargetId=target["MountTargetId"])
        _wait_no_mount_targets(aws, file_system, say, patience)
        say(f"- EFS file system {file_system} (all data of env {cfg.env})")
        aws.efs.delete_file_system(FileSystemId=file_system)
    for name in names:
        if parameter(aws, name) is not None:
            say(f"- SSM parameter {name}")
            aws.ssm.delete_parameter(Name=name)
    group = network.find_group(aws, cfg)
    if group:
        say(f"- security group {network.group_name(cfg)}")
        aws.ec2.delete_security_group(GroupId=group)
    groups = aws.logs.describe_log_groups(logGroupNamePrefix=cfg.logs.group)["logGroups"]
    if any(g.get("logGroupName") == cfg.logs.group for g in groups):
        say(f"- log group {cfg.logs.group}")
        aws.logs.delete_log_group(logGroupName=cfg.logs.group)


def _exists(aws: Aws, file_system: str) -> bool:
    try:
        aws.efs.describe_file_systems(FileSystemId=file_system)
    except ClientError as exc:
        if error_code(exc) != "FileSystemNotFound":
            raise
        return False
    return True


def _wait_no_mount_targets(
    aws: Aws,
    file_system: str,
    say: Say,
    patience: Patience,
) -> None:
    """DeleteMountTarget only starts the deletion; EFS refuses to delete the file system
    (FileSystemInUse) while any of its mount targets is still listed, even as `deleting`."""
    left: list[MountTargetDescriptionTypeDef] = []

    def gone() -> bool | None:
        nonlocal left
        left = aws.efs.describe_mount_targets(FileSystemId=file_system)["MountTargets"]
        if left:
            say(f"  waiting for {len(left)} mount target(s) of {file_system} to be deleted")
        return not left or None

    def late() -> str:
        states = ", ".join(f"{t['MountTargetId']} {t['LifeCycleState']}" for t in left)
        return (
            f"EFS mount targets of {file_system} still there after {patience.timeout:.0f}s "
            f"({states}): run `inv aws.down --purge --yes` again"
        )

    waiting.until(gone, late, patience)
