"""`inv aws.*` against moto: render -> register -> run -> status -> logs -> down, env tags,
dry runs that change nothing, and the one-line refusals (dirty tree, no credentials)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from devenv.aws import clients, config, deploy, purge, render, revision, runtime
from devenv.aws.clients import Aws
from devenv.aws.errors import AwsError
from devenv.aws.revision import Revision, require_clean
from devenv.aws.waiting import Patience
from devenv.tasks import aws as aws_tasks
from tests.unit.aws_account import (
    NOBODY,
    REGION,
    SECRET_VALUES,
    fake_push,
    prepare_account,
    run_deploy,
    snapshot,
)


def test_round_trip_register_run_status_logs_down(aws_env: None) -> None:
    prepare_account()
    aws, lines = run_deploy()
    cfg = config.load("dev")
    output = "\n".join(lines)

    registered = aws.ecs.describe_task_definition(taskDefinition="platform-dev")["taskDefinition"]
    assert [c["name"] for c in registered["containerDefinitions"]] == list(cfg.containers)
    assert registered["requiresCompatibilities"] == ["FARGATE"]
    volumes = {v["name"]: v["efsVolumeConfiguration"] for v in registered["volumes"]}
    ssm = boto3.client("ssm", region_name=REGION)
    fs = ssm.get_parameter(Name="/platform/dev/efs/file-system-id")["Parameter"]["Value"]
    assert {v["fileSystemId"] for v in volumes.values()} == {fs}
    assert all(
        v["authorizationConfig"]["accessPointId"].startswith("fsap-") for v in volumes.values()
    )

    rows = runtime.status(aws, cfg)
    assert len(rows) == 1
    assert rows[0].state == "RUNNING" and rows[0].sha == "abc123def456"
    assert rows[0].ip.endswith("(private)")  # moto assigns no public IP
    ip = rows[0].ip.split()[0]
    assert f"http://{ip}/ingest" in output and f"mqtt://{ip}:1883" in output
    assert "account 123456789012  region eu-central-1" in output
    assert "no public IP" in output
    for secret in SECRET_VALUES:
        assert secret not in output
        assert secret not in render.dumps(registered)

    task = runtime.env_tasks(aws, cfg)[0]
    logs = boto3.client("logs", region_name=REGION)
    stream = f"platform/app/{runtime.task_id(task)}"
    logs.create_log_stream(logGroupName="/platform/dev", logStreamName=stream)
    logs.put_log_events(
        logGroupName="/platform/dev",
        logStreamName=stream,
        logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "ingestion listening on :8080"}
        ],
    )
    shown: list[str] = []
    runtime.log_lines(aws, cfg, "app", lines=10, follow=False, say=shown.append)
    assert shown == ["ingestion listening on :8080"]

    stopped = runtime.stop(aws, cfg, print)
    assert len(stopped) == 1
    assert runtime.status(aws, cfg) == []


def test_redeploy_reuses_an_unchanged_definition_and_replaces_the_task(aws_env: None) -> None:
    prepare_account()
    aws, _ = run_deploy()
    first = runtime.env_tasks(aws, config.load("dev"))[0]["taskArn"]
    _, lines = run_deploy()
    assert any(line.startswith("= task definition") and "unchanged" in line for line in lines)
    assert (
        len(aws.ecs.list_task_definitions(familyPrefix="platform-dev")["taskDefinitionArns"]) == 1
    )
    # One writer per EFS volume: the old task is stopped before the new one starts.
    running = runtime.env_tasks(aws, config.load("dev"))
    assert [t["taskArn"] for t in running] != [first] and len(running) == 1


def test_envs_sharing_a_cluster_only_see_and_stop_their_own_tasks(aws_env: None) -> None:
    prepare_account("dev")
    prepare_account("qa")
    aws, _ = run_deploy("dev")
    run_deploy("qa", tag="fedcba987654")
    dev, qa = config.load("dev"), config.load("qa")
    # A task of the same family without our tags (started by hand) is not ours to touch.
    stranger = aws.ecs.run_task(
        cluster=dev.cluster,
        taskDefinition="platform-dev",
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": network_subnets(aws), "securityGroups": []}
        },
    )["tasks"][0]["taskArn"]

    assert [r.sha for r in runtime.status(aws, dev)] == ["abc123def456"]
    assert [r.sha for r in runtime.status(aws, qa)] == ["fedcba987654"]
    runtime.stop(aws, qa, print)
    assert runtime.status(aws, qa) == []
    assert [r.sha for r in runtime.status(aws, dev)] == ["abc123def456"]
    status = aws.ecs.describe_tasks(cluster=dev.cluster, tasks=[stranger])["tasks"][0]
    assert status["lastStatus"] == "RUNNING"


def network_subnets(aws: Aws) -> list[str]:
    return [s["SubnetId"] for s in aws.ec2.describe_subnets()["Subnets"]][:1]


def test_dry_run_changes_nothing_and_shows_what_would(aws_env: None) -> None:
    prepare_account()
    before = snapshot()
    _, lines = run_deploy(dry_run=True)
    assert snapshot() == before
    text = "\n".join(lines)
    assert "+ cluster platform-dev" in text
    assert "+ log group /platform/dev" in text
    assert "+ ingress tcp/80 from 203.0.113.7/32" in text
    assert "+ ingress tcp/1883 from 203.0.113.7/32" in text
    assert "18083" not in text.split("+ task definition")[0]  # dashboards open to nobody
    assert "+ task definition family platform-dev (new)" in text
    assert lines[-1] == "dry run: nothing was changed"


def test_dry_run_after_a_deploy_diffs_against_the_registered_revision(aws_env: None) -> None:
    prepare_account()
    run_deploy(tag="aaaaaaaaaaaa")
    before = snapshot()
    _, lines = run_deploy(tag="bbbbbbbbbbbb", dry_run=True)
    assert snapshot() == before
    diff = [line for line in "\n".join(lines).splitlines() if line.startswith(("-", "+"))]
    assert any(":aaaaaaaaaaaa" in line for line in diff if line.startswith("-"))
    assert any(":bbbbbbbbbbbb" in line for line in diff if line.startswith("+"))
    assert "- task " in "\n".join(lines)  # the running task would be replaced


def test_deploy_refuses_images_that_were_never_pushed(aws_env: None) -> None:
    prepare_account()
    cfg = config.load("dev")
    lines: list[str] = []
    with pytest.raises(
        AwsError, match=r"3 image\(s\) of 0badc0ffee00 not in ECR: run `inv aws.push`"
    ):
        deploy.deploy(
            clients.connect(cfg.region),
            cfg,
            "0badc0ffee00",
            ingress=NOBODY,
            dry_run=False,
            say=lines.append,
        )
    assert any(
        line.startswith("! image ") and "platform/app:0badc0ffee00" in line for line in lines
    )
    assert boto3.client("ecs", region_name=REGION).list_clusters()["clusterArns"] == []


def test_an_existing_service_gets_a_new_deployment_instead_of_a_task(aws_env: None) -> None:
    prepare_account()
    aws, _ = run_deploy(tag="aaaaaaaaaaaa")
    cfg = config.load("dev")
    runtime.stop(aws, cfg, print)
    aws.ecs.create_service(
        cluster=cfg.cluster, serviceName=cfg.service, taskDefinition="platform-dev", desiredCount=1
    )
    fake_push("bbbbbbbbbbbb")
    asked: list[dict[str, Any]] = []
    aws.ecs.meta.events.register(
        "provide-client-params.ecs.UpdateService", lambda params, **_: asked.append(dict(params))
    )
    lines: list[str] = []
    # moto's services start no tasks: the deploy must say so once its deadline passes.
    with pytest.raises(AwsError, match=r"service platform-dev started no task of .*platform-dev:2"):
        deploy.deploy(
            aws, cfg, "bbbbbbbbbbbb", ingress=NOBODY, dry_run=False, say=lines.append,
            started_in=Patience(0.0),
        )  # fmt: skip
    service = aws.ecs.describe_services(cluster=cfg.cluster, services=[cfg.service])["services"][0]
    assert service["taskDefinition"].endswith("platform-dev:2")
    assert "~ service platform-dev: new deployment of" in "\n".join(lines)
    assert runtime.env_tasks(aws, cfg) == []  # no stray task beside the service
    # One writer per EFS volume: the old task stops before the service starts the new one.
    assert [a.get("deploymentConfiguration") for a in asked] == [
        {"minimumHealthyPercent": 0, "maximumPercent": 100}
    ]


def test_deploy_names_a_missing_efs_parameter(aws_env: None) -> None:
    with pytest.raises(AwsError, match=r"SSM parameter /platform/dev/efs/file-system-id not found"):
        run_deploy(dry_run=True)


def test_deploy_names_a_missing_role(aws_env: None) -> None:
    prepare_account()
    boto3.client("iam").delete_role(RoleName="platform-dev-ecs-task")
    with pytest.raises(AwsError, match=r"IAM role platform-dev-ecs-task .* does not exist"):
        run_deploy(dry_run=True)


def test_purge_deletes_the_env_data_and_keeps_the_others(aws_env: None) -> None:
    prepare_account("dev")
    prepare_account("qa")
    aws, _ = run_deploy("dev")
    cfg = config.load("dev")
    runtime.stop(aws, cfg, print)
    purge.purge(aws, cfg, print)
    ssm = boto3.client("ssm", region_name=REGION)
    remaining = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
    assert not any(name.startswith("/platform/dev/efs") for name in remaining)
    assert "/platform/qa/efs/file-system-id" in remaining
    assert len(boto3.client("efs", region_name=REGION).describe_file_systems()["FileSystems"]) == 1


def test_dirty_tree_is_refused_before_any_aws_call(monkeypatch: pytest.MonkeyPatch) -> None:
    dirty = Revision(sha="abc123def456", dirty=["compose.yaml"])
    monkeypatch.setattr(revision, "current", lambda: dirty)

    def no_aws(region: str) -> Aws:
        raise AssertionError("AWS was called")

    monkeypatch.setattr(clients, "connect", no_aws)
    for call in (aws_tasks.deploy, aws_tasks.push):
        with pytest.raises(Exit) as caught:
            call(Context())
        assert "uncommitted change(s) (compose.yaml)" in str(caught.value.message)
        assert "--allow-dirty" in str(caught.value.message)
    assert require_clean(dirty, allow_dirty=True, what="aws.push") == "abc123def456-dirty"


def test_no_credentials_is_one_line_saying_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, no_aws_credentials: None
) -> None:
    monkeypatch.setattr(revision, "current", lambda: Revision("abc123def456", []))
    with pytest.raises(Exit) as caught:
        aws_tasks.deploy(Context(), dry_run=True)
    message = str(caught.value.message)
    assert message.startswith("error: no AWS credentials found: run `aws configure`")
    assert "\n" not in message


def test_the_invoke_tasks_end_to_end(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_account()
    fake_push("abc123def456")
    monkeypatch.setattr(revision, "current", lambda: Revision("abc123def456", []))
    before = snapshot()
    aws_tasks.deploy(Context(), dry_run=True, cidr="203.0.113.7/32")
    assert snapshot() == before
    assert "dry run: nothing was changed" in capsys.readouterr().out

    aws_tasks.deploy(Context(), cidr="203.0.113.7/32")
    out = capsys.readouterr().out
    assert (
        "+ registered arn:aws:ecs:eu-central-1:123456789012:task-definition/platform-dev:1" in out
    )

    aws_tasks.status(Context())
    status = capsys.readouterr().out.splitlines()
    assert status[0].startswith("TASK") and "RUNNING" in status[1] and "abc123def456" in status[1]

    with pytest.raises(Exit, match="no container 'nginx'"):
        aws_tasks.logs(Context(), "nginx")
    with pytest.raises(Exit, match="--purge --yes"):
        aws_tasks.down(Context(), purge=True)

    aws_tasks.down(Context())
    assert capsys.readouterr().out.splitlines()[-1] == "env dev: 1 task(s) stopped, data kept"
    aws_tasks.status(Context())
    assert (
        capsys.readouterr().out.strip()
        == "no task of env dev is running (inv aws.deploy --env dev)"
    )
    efs = boto3.client("efs", region_name=REGION)
    assert len(efs.describe_file_systems()["FileSystems"]) == 1  # data kept

    aws_tasks.down(Context(), purge=True, yes=True)
    assert efs.describe_file_systems()["FileSystems"] == []


def test_waiting_for_a_task_that_stops_names_why_and_where_to_look(aws_env: None) -> None:
    prepare_account()
    aws, _ = run_deploy()
    cfg = config.load("dev")
    arn = runtime.env_tasks(aws, cfg)[0]["taskArn"]
    aws.ecs.stop_task(cluster=cfg.cluster, task=arn, reason="Essential container exited")
    lines: list[str] = []
    with pytest.raises(
        AwsError, match=r"task stopped: Essential container exited; see `inv aws.logs"
    ):
        runtime.wait_healthy(aws, cfg, arn, lines.append, patience=Patience(600.0, poll=0))
    assert "STOPPED" in lines[-1]


def test_logs_follow_prints_new_lines_until_interrupted(aws_env: None) -> None:
    prepare_account()
    aws, _ = run_deploy()
    cfg = config.load("dev")
    stream = f"platform/postgres/{runtime.task_id(runtime.env_tasks(aws, cfg)[0])}"
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_stream(logGroupName=cfg.logs.group, logStreamName=stream)

    def put(message: str) -> None:
        event = {"timestamp": int(time.time() * 1000), "message": message}
        logs.put_log_events(logGroupName=cfg.logs.group, logStreamName=stream, logEvents=[event])

    put("database system is ready")
    naps = iter([lambda: put("checkpoint complete"), lambda: None])

    def sleep(_: float) -> None:
        step = next(naps, None)
        if step is None:
            raise KeyboardInterrupt
        step()

    shown: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        runtime.log_lines(aws, cfg, "postgres", lines=5, follow=True, say=shown.append, sleep=sleep)
    assert shown == ["database system is ready", "checkpoint complete"]
