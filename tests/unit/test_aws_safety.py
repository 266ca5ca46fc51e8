"""`inv aws.deploy` and `aws.down --purge` safe by default, against moto: a mistyped CIDR
never opens the env, a deploy without --cidr keeps the access others have, one deploy of an
env at a time with the old task STOPPED before the new one starts, and a purge that waits
for EFS to finish deleting mount targets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from invoke.context import Context
from invoke.exceptions import Exit
from moto.ecs.models import ecs_backends
from moto.efs.models import EFSBackend

from devenv.aws import clients, config, lock, network, purge, revision, runtime
from devenv.aws.clients import Aws
from devenv.aws.errors import AwsError
from devenv.aws.revision import Revision
from devenv.aws.waiting import Patience
from devenv.settings import REPO_ROOT
from devenv.tasks import aws as aws_tasks
from tests.unit.aws_account import (
    REGION,
    fake_push,
    prepare_account,
    run_deploy,
    snapshot,
)

ACCOUNT = "123456789012"


def ingress_rules(aws: Aws) -> set[tuple[int, str]]:
    group = network.find_group(aws, config.load("dev"))
    found = aws.ec2.describe_security_groups(GroupIds=[group or ""])["SecurityGroups"][0]
    return {
        (perm["FromPort"], cidr)
        for perm in found["IpPermissions"]
        for cidr in [r["CidrIp"] for r in perm.get("IpRanges", [])]
        + [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
    }


# --- 1. the CIDR ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("203.0.113.7/0", r"has host bits set, so it would mean 0.0.0.0/0 .* write 203.0.113.7/32"),
        ("0.0.0.0/0", r"0.0.0.0/0 lets 4294967296 addresses .* narrowest allowed is /24"),
        ("10.0.0.0/16", r"/24 \(network.min_prefix_ipv4 in deploy/aws.yaml\).*--allow-wide"),
        ("2001:db8::/32", r"narrowest allowed is /48 \(network.min_prefix_ipv6"),
        ("my-laptop", r"'my-laptop' is not a CIDR"),
    ],
)
def test_a_bad_or_wide_cidr_is_refused(cidr: str, message: str) -> None:
    with pytest.raises(AwsError, match=message):
        network.check_cidr(config.load("dev"), cidr, "--cidr", allow_wide=False)


def test_narrow_cidrs_pass_and_a_wide_one_only_when_asked() -> None:
    cfg = config.load("dev")
    for cidr in ("203.0.113.7/32", "203.0.113.0/24", "2001:db8:1::/48"):
        assert network.check_cidr(cfg, cidr, "--cidr", allow_wide=False) == cidr
    assert network.check_cidr(cfg, "0.0.0.0/0", "--cidr", allow_wide=True) == "0.0.0.0/0"
    with pytest.raises(AwsError, match="host bits"):  # a typo stays a typo
        network.check_cidr(cfg, "203.0.113.7/0", "--cidr", allow_wide=True)


def test_a_bad_cidr_is_refused_before_any_aws_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(revision, "current", lambda: Revision("abc123def456", []))

    def no_aws(region: str) -> Aws:
        raise AssertionError("AWS was called")

    monkeypatch.setattr(clients, "connect", no_aws)
    with pytest.raises(Exit) as caught:
        aws_tasks.deploy(Context(), cidr="203.0.113.7/0")
    assert str(caught.value.message).startswith("error: --cidr 203.0.113.7/0 has host bits set")


def test_an_ipv6_cidr_becomes_an_ipv6_rule(aws_env: None) -> None:
    prepare_account()
    aws, lines = run_deploy(cidr="2001:db8:1::/48")
    assert "+ ingress tcp/80 from 2001:db8:1::/48" in lines
    assert ingress_rules(aws) == {(80, "2001:db8:1::/48"), (1883, "2001:db8:1::/48")}


# --- 4. ingress a deploy did not name ---------------------------------------------------


def test_a_deploy_without_cidr_keeps_the_access_others_have(aws_env: None) -> None:
    prepare_account()
    aws, _ = run_deploy(cidr="203.0.113.7/32")
    mine = {(80, "203.0.113.7/32"), (1883, "203.0.113.7/32")}
    assert ingress_rules(aws) == mine

    _, dry = run_deploy(cidr="", dry_run=True)  # what CI's deploy-dev.yml runs
    assert "= ingress tcp/80 from 203.0.113.7/32 (kept: not named by this deploy; " in "\n".join(
        dry
    )
    run_deploy(cidr="")
    assert ingress_rules(aws) == mine

    run_deploy(cidr="198.51.100.0/24")
    assert ingress_rules(aws) == mine | {(80, "198.51.100.0/24"), (1883, "198.51.100.0/24")}

    # A world-open rule left by hand (or by an old bug) is kept, but called out.
    group = network.find_group(aws, config.load("dev")) or ""
    aws.ec2.authorize_security_group_ingress(
        GroupId=group, IpProtocol="tcp", FromPort=80, ToPort=80, CidrIp="0.0.0.0/0"
    )
    _, dry = run_deploy(cidr="", dry_run=True)
    assert "! ingress tcp/80 from 0.0.0.0/0 is wider than network.min_prefix_ipv*" in dry

    _, lines = run_deploy(cidr="198.51.100.0/24", revoke_unnamed=True)
    assert "- ingress tcp/80 from 0.0.0.0/0" in lines
    assert "- ingress tcp/80 from 203.0.113.7/32" in lines
    assert ingress_rules(aws) == {(80, "198.51.100.0/24"), (1883, "198.51.100.0/24")}


def test_the_ci_deploy_removes_no_ones_access() -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy-dev.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["deploy"]["steps"]]
    deploys = [run for run in runs if "inv aws.deploy" in run]
    assert len(deploys) == 1 and "--revoke-unnamed" not in deploys[0]


# --- 2. one writer per EFS volume -------------------------------------------------------


def test_the_new_task_starts_only_after_the_old_one_is_stopped(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_account()
    aws, _ = run_deploy(tag="aaaaaaaaaaaa")
    cfg = config.load("dev")
    old = runtime.env_tasks(aws, cfg)[0]["taskArn"]
    tasks = ecs_backends[ACCOUNT][REGION].tasks[cfg.cluster]
    # Fargate takes a while to stop a task: STOPPED only two DescribeTasks after StopTask.
    stopping: dict[str, int] = {}

    def after_stop(**_: Any) -> None:
        tasks[old].last_status = "DEPROVISIONING"
        stopping[old] = 2

    def after_describe(**_: Any) -> None:
        if stopping.get(old):
            stopping[old] -= 1
            if not stopping[old]:
                tasks[old].last_status = "STOPPED"

    seen_at_run: list[str] = []
    aws.ecs.meta.events.register("after-call.ecs.StopTask", after_stop)
    aws.ecs.meta.events.register("after-call.ecs.DescribeTasks", after_describe)
    aws.ecs.meta.events.register(
        "before-call.ecs.RunTask", lambda **_: seen_at_run.append(tasks[old].last_status)
    )
    monkeypatch.setattr(clients, "connect", lambda region: aws)

    _, lines = run_deploy(tag="bbbbbbbbbbbb")
    assert seen_at_run == ["STOPPED"]
    assert "  waiting until 1 old task(s) are STOPPED" in lines
    running = runtime.env_tasks(aws, cfg)
    assert len(running) == 1 and running[0]["taskArn"] != old


def test_a_second_deploy_of_the_env_is_refused_while_one_runs(aws_env: None) -> None:
    prepare_account()
    cfg = config.load("dev")
    first = clients.connect(cfg.region)
    fake_push("bbbbbbbbbbbb")
    with lock.held(first, cfg, "aaaaaaaaaaaa", print):
        before = snapshot()
        with pytest.raises(AwsError, match=r"env dev is being deployed by .*aaaaaaaaaaaa.*since"):
            run_deploy(tag="bbbbbbbbbbbb")
        assert snapshot() == before
        _, dry = run_deploy(tag="bbbbbbbbbbbb", dry_run=True)
        assert any(line.startswith("! env dev is being deployed by") for line in dry)
    # Released: the next deploy runs, and leaves no lock behind, even when it fails.
    run_deploy(tag="bbbbbbbbbbbb")
    assert lock.holder(first, cfg) is None

    def never_healthy(arn: str) -> Any:
        raise AwsError("task not healthy")

    with pytest.raises(AwsError, match="task not healthy"):
        run_deploy(tag="bbbbbbbbbbbb", wait=never_healthy)
    assert lock.holder(first, cfg) is None
    ssm = boto3.client("ssm", region_name=REGION)
    assert cfg.lock not in {p["Name"] for p in ssm.describe_parameters()["Parameters"]}


def test_an_unreadable_lock_still_refuses(aws_env: None) -> None:
    prepare_account()
    cfg = config.load("dev")
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=cfg.lock, Value="held by hand", Type="String"
    )
    with pytest.raises(AwsError, match=r"being deployed by held by hand: wait .* delete-parameter"):
        run_deploy()
    assert lock.holder(clients.connect(cfg.region), cfg) == "held by hand"


# --- 5. purge ---------------------------------------------------------------------------


@pytest.fixture
def slow_mount_target_deletion(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """EFS deletes a mount target asynchronously: listed as `deleting` until a later look."""
    pending: list[tuple[EFSBackend, str]] = []
    delete, describe = EFSBackend.delete_mount_target, EFSBackend.describe_mount_targets

    def start_deleting(self: EFSBackend, mount_target_id: str) -> None:
        self.mount_targets_by_id[mount_target_id].life_cycle_state = "deleting"
        pending.append((self, mount_target_id))

    def look(self: EFSBackend, *args: Any, **kwargs: Any) -> Any:
        found = describe(self, *args, **kwargs)
        while pending:
            delete(*pending.pop())
        return found

    monkeypatch.setattr(EFSBackend, "delete_mount_target", start_deleting)
    monkeypatch.setattr(EFSBackend, "describe_mount_targets", look)
    yield


def test_purge_waits_for_the_mount_targets_before_deleting_the_file_system(
    aws_env: None, slow_mount_target_deletion: None
) -> None:
    prepare_account()
    cfg = config.load("dev")
    aws = clients.connect(cfg.region)
    ssm = boto3.client("ssm", region_name=REGION)
    fs = ssm.get_parameter(Name="/platform/dev/efs/file-system-id")["Parameter"]["Value"]
    subnet = aws.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    aws.efs.create_mount_target(FileSystemId=fs, SubnetId=subnet)
    lines: list[str] = []
    purge.purge(aws, cfg, lines.append, patience=Patience(timeout=600.0, poll=0.0))
    assert any("waiting for 1 mount target(s)" in line for line in lines)
    assert aws.efs.describe_file_systems()["FileSystems"] == []


def test_purge_gives_up_with_one_line_when_mount_targets_stay(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_account()
    cfg = config.load("dev")
    aws = clients.connect(cfg.region)
    fs = boto3.client("ssm", region_name=REGION).get_parameter(
        Name="/platform/dev/efs/file-system-id"
    )["Parameter"]["Value"]
    aws.efs.create_mount_target(
        FileSystemId=fs, SubnetId=aws.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    )
    monkeypatch.setattr(EFSBackend, "delete_mount_target", lambda self, mount_target_id: None)
    with pytest.raises(AwsError, match=r"mount targets of fs-\w+ still there after 0s .*again"):
        purge.purge(aws, cfg, print, patience=Patience(timeout=0.0, poll=0.0))
    assert len(aws.efs.describe_file_systems()["FileSystems"]) == 1
