"""The rendered ECS task definition: ADR-0007's six containers, as a reviewer would check it,
and botocore's own validator on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke.context import Context

from devenv import compose
from devenv.aws import config, render, validate
from devenv.aws.errors import AwsError
from devenv.settings import REPO_ROOT
from devenv.tasks import aws as aws_tasks

ADR_TABLE = {
    "traefik": (80, 8180),
    "app": (8080, 8081, 8082),
    "mqtt-broker": (1883, 18083),
    "redpanda": (9092, 9644),
    "postgres": (5432,),
    "ai-inference": (8090,),
}


def containers(dev_definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in dev_definition["containerDefinitions"]}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def test_six_containers_with_the_adr_ports(dev_definition: dict[str, Any]) -> None:
    ports = {
        name: tuple(m["containerPort"] for m in c["portMappings"])
        for name, c in containers(dev_definition).items()
    }
    assert ports == ADR_TABLE


def test_fargate_awsvpc_with_task_and_container_sizes(dev_definition: dict[str, Any]) -> None:
    assert dev_definition["requiresCompatibilities"] == ["FARGATE"]
    assert dev_definition["networkMode"] == "awsvpc"
    assert (dev_definition["cpu"], dev_definition["memory"]) == ("2048", "8192")
    for c in dev_definition["containerDefinitions"]:
        assert c["cpu"] > 0 and c["memory"] > 0, c["name"]


def test_botocore_accepts_the_rendered_definition(dev_definition: dict[str, Any]) -> None:
    assert validate.problems(dev_definition) == []


def test_botocore_refuses_a_broken_definition(dev_definition: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(dev_definition))
    broken["containerDefinitions"][0]["portMappings"][0]["containerPort"] = "5432"
    del broken["containerDefinitions"][1]["memory"]
    found = validate.problems(broken)
    assert any("containerPort" in line for line in found)
    assert any("Fargate needs container memory" in line for line in found)
    with pytest.raises(AwsError, match="task definition invalid"):
        validate.check(broken)


def test_every_container_has_a_health_check_within_ecs_limits(
    dev_definition: dict[str, Any],
) -> None:
    for c in dev_definition["containerDefinitions"]:
        check = c["healthCheck"]
        assert check["command"][0] in {"CMD", "CMD-SHELL"}, c["name"]
        assert 5 <= check["interval"] <= 300 and 2 <= check["timeout"] <= 60
        assert 1 <= check["retries"] <= 10 and 0 <= check["startPeriod"] <= 300


def test_infrastructure_probes_and_images_come_from_compose(dev_definition: dict[str, Any]) -> None:
    by_name = containers(dev_definition)
    assert by_name["postgres"]["healthCheck"]["command"] == [
        "CMD-SHELL",
        "pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB} -h 127.0.0.1",
    ]
    cfg = config.load("dev")
    services = compose.load_raw()["services"]
    for name in ("postgres", "redpanda", "mqtt-broker"):
        reference = services[cfg.containers[name].compose]["image"]
        digest = cfg.digests.get(reference)
        expected = f"{render.untagged(reference)}@{digest}" if digest else reference
        assert by_name[name]["image"] == expected, name
    for ours in ("app", "ai-inference", "traefik"):
        assert by_name[ours]["image"].endswith(f"/platform/{ours}:0123456789ab")


def test_apps_probe_healthz_on_every_server(dev_definition: dict[str, Any]) -> None:
    by_name = containers(dev_definition)
    app_probe = by_name["app"]["healthCheck"]["command"][1]
    for port in (8080, 8081, 8082):
        assert f"http://127.0.0.1:{port}/healthz" in app_probe
    assert "http://127.0.0.1:8090/healthz" in by_name["ai-inference"]["healthCheck"]["command"][3]


def test_start_order_waits_for_healthy_essentials_and_only_the_start_of_the_rest(
    dev_definition: dict[str, Any],
) -> None:
    order = {
        name: {(d["containerName"], d["condition"]) for d in c.get("dependsOn", [])}
        for name, c in containers(dev_definition).items()
    }
    healthy = {(name, "HEALTHY") for name in ("postgres", "redpanda", "mqtt-broker")}
    # The AI service is not essential: if it never became HEALTHY, app would never start.
    assert order["app"] == healthy | {("ai-inference", "START")}
    assert order["traefik"] == {("app", "HEALTHY")}
    assert not any(order[name] for name in ("postgres", "redpanda", "mqtt-broker", "ai-inference"))


def test_essential_flags_are_deliberate(dev_definition: dict[str, Any]) -> None:
    essential = {name: c["essential"] for name, c in containers(dev_definition).items()}
    assert essential == {name: name != "ai-inference" for name in ADR_TABLE}


def test_awslogs_per_container(dev_definition: dict[str, Any]) -> None:
    for c in dev_definition["containerDefinitions"]:
        logs = c["logConfiguration"]
        assert logs["logDriver"] == "awslogs"
        assert logs["options"]["awslogs-group"] == "/platform/dev"
        assert logs["options"]["awslogs-region"] == "eu-central-1"


def test_stateful_containers_mount_efs_with_transit_encryption(
    dev_definition: dict[str, Any],
) -> None:
    volumes = {v["name"]: v["efsVolumeConfiguration"] for v in dev_definition["volumes"]}
    for efs in volumes.values():
        assert efs["transitEncryption"] == "ENABLED"
        assert efs["authorizationConfig"]["iam"] == "ENABLED"
        assert efs["authorizationConfig"]["accessPointId"].startswith(
            "{{resolve:ssm:/platform/dev/"
        )
    mounts = {
        name: {(m["sourceVolume"], m["containerPath"]) for m in c.get("mountPoints", [])}
        for name, c in containers(dev_definition).items()
    }
    assert mounts == {
        "postgres": {("postgres-data", "/var/lib/postgresql/data")},
        "redpanda": {("redpanda-data", "/var/lib/redpanda/data")},
        "mqtt-broker": {("emqx-data", "/opt/emqx/data")},
        "traefik": set(),
        "app": set(),
        "ai-inference": set(),
    }


def test_non_root_everywhere_and_read_only_where_the_image_allows(
    dev_definition: dict[str, Any],
) -> None:
    by_name = containers(dev_definition)
    for name, c in by_name.items():
        uid = c["user"].split(":")[0]
        assert uid.isdigit() and int(uid) > 0, name
    readonly = {name for name, c in by_name.items() if c["readonlyRootFilesystem"]}
    assert readonly == {"traefik", "app", "ai-inference"}


def test_secrets_only_as_references(dev_definition: dict[str, Any]) -> None:
    by_name = containers(dev_definition)
    for name, c in by_name.items():
        for entry in c.get("environment", []):
            assert "PASSWORD" not in entry["name"], (name, entry["name"])
        for secret in c.get("secrets", []):
            assert set(secret) == {"name", "valueFrom"}
            assert secret["valueFrom"].startswith("arn:aws:ssm:eu-central-1:")
    assert {s["name"] for s in by_name["postgres"]["secrets"]} == {"POSTGRES_PASSWORD"}
    assert {s["name"] for s in by_name["app"]["secrets"]} == {"POSTGRES_PASSWORD"}
    assert {s["name"] for s in by_name["mqtt-broker"]["secrets"]} == {
        "EMQX_DASHBOARD__DEFAULT_PASSWORD"
    }


def test_local_secret_values_never_reach_the_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "pg-LEAK")
    monkeypatch.setenv("EMQX_DASHBOARD_PASSWORD", "emqx-LEAK")
    target = render.Target(region="eu-central-1", tag="0123456789ab")
    assert "LEAK" not in render.dumps(render.render(config.load("dev"), target))


def test_a_secret_an_app_reads_without_a_parameter_is_one_clear_error(tmp_path: Path) -> None:
    raw = yaml.safe_load(config.AWS_FILE.read_text())
    del raw["secrets"]["POSTGRES_PASSWORD"]
    changed = tmp_path / "aws.yaml"
    changed.write_text(yaml.safe_dump(raw))
    target = render.Target(region="eu-central-1", tag="x")
    with pytest.raises(AwsError, match="app reads the secret POSTGRES_PASSWORD: name its SSM"):
        render.render(config.load("dev", changed), target)


def test_emqx_refuses_anonymous_clients(dev_definition: dict[str, Any]) -> None:
    broker = env_of(containers(dev_definition)["mqtt-broker"])
    assert broker["EMQX_AUTHENTICATION__1__MECHANISM"] == "password_based"
    assert broker["EMQX_LISTENERS__TCP__DEFAULT__ENABLE_AUTHN"] == "quick_deny_anonymous"
    # The only unauthenticated listener is on the task's loopback, where the app connects.
    assert broker["EMQX_LISTENERS__TCP__INTERNAL__BIND"].startswith("127.0.0.1:")
    app = env_of(containers(dev_definition)["app"])
    assert broker["EMQX_LISTENERS__TCP__INTERNAL__BIND"] == f"127.0.0.1:{app['MQTT_PORT']}"


def test_traefik_dashboard_is_not_insecure_and_upstreams_are_localhost(
    dev_definition: dict[str, Any],
) -> None:
    gateway = containers(dev_definition)["traefik"]
    assert not any("insecure" in arg for arg in gateway["command"])
    assert "--api.dashboard=true" in gateway["command"]
    assert env_of(gateway) == {
        "GATEWAY_UPSTREAM_HOST": "localhost",
        "INGESTION_PORT": "8080",
        "QUERY_PORT": "8081",
        "ACTIONS_PORT": "8082",
    }
    assert gateway["systemControls"] == [
        {"namespace": "net.ipv4.ip_unprivileged_port_start", "value": "0"}
    ]


def test_app_environment_uses_our_setting_names_inside_the_task(
    dev_definition: dict[str, Any],
) -> None:
    app = env_of(containers(dev_definition)["app"])
    assert app["APP_BIND_HOST"] == "0.0.0.0"  # noqa: S104 (in the task, by design)
    for key in ("POSTGRES_HOST", "KAFKA_HOST", "MQTT_HOST", "AI_INFERENCE_HOST"):
        assert app[key] == "localhost", key
    assert (app["POSTGRES_PORT"], app["KAFKA_PORT"], app["AI_INFERENCE_PORT"]) == (
        "5432",
        "9092",
        "8090",
    )
    assert app["TOPIC_TELEMETRY"] == "telemetry.v1"
    # The image's own `platform serve` applies the migrations before serving.
    assert "command" not in containers(dev_definition)["app"]


def test_redpanda_talks_to_itself_on_loopback(dev_definition: dict[str, Any]) -> None:
    command = containers(dev_definition)["redpanda"]["command"]
    assert "--advertise-rpc-addr=127.0.0.1:33145" in command
    assert "--advertise-kafka-addr=internal://127.0.0.1:9092" in command


def test_inv_aws_render_writes_the_file_and_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "td.json"
    aws_tasks.render(Context(), output=str(out))
    assert capsys.readouterr().out.strip() == str(out)
    written = json.loads(out.read_text())
    assert len(written["containerDefinitions"]) == 6
    assert validate.problems(written) == []
    aws_tasks.render(Context(), output=str(out), stdout=True)
    assert json.loads(capsys.readouterr().out) == written


def test_rendered_file_is_git_ignored() -> None:
    assert "deploy/rendered/" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_bad_env_name_is_one_line() -> None:
    with pytest.raises(AwsError, match=r"--env 'Prod!'"):
        config.load("Prod!")


def test_validate_cli_for_the_lint_session(tmp_path: Path) -> None:
    assert validate.main([]) == 0
    broken = tmp_path / "td.json"
    broken.write_text(json.dumps({"family": "x", "containerDefinitions": [{"name": 1}]}))
    assert validate.main([str(broken)]) == 1


def test_no_essential_container_waits_for_a_non_essential_one_to_be_healthy(
    dev_definition: dict[str, Any],
) -> None:
    assert validate.problems(dev_definition) == []
    hostage = json.loads(json.dumps(dev_definition))
    app = next(c for c in hostage["containerDefinitions"] if c["name"] == "app")
    for dependency in app["dependsOn"]:
        dependency["condition"] = "HEALTHY"
    assert validate.problems(hostage) == [
        "container app (essential) waits for ai-inference (not essential) to be HEALTHY: "
        "use condition START, or no dependency"
    ]


def test_third_party_images_render_by_digest_when_pinned(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    raw = config.AWS_FILE.read_text().replace(
        "digests: {}", f"digests:\n  emqx/emqx:5.8.6: {digest}"
    )
    pinned_file = tmp_path / "aws.yaml"
    pinned_file.write_text(raw)
    cfg = config.load("dev", pinned_file)
    rendered = render.render(cfg, render.Target(region="eu-central-1", tag="0123456789ab"))
    assert containers(rendered)["mqtt-broker"]["image"] == f"emqx/emqx@{digest}"
    assert validate.problems(rendered) == []
    assert render.untagged("registry.example:5000/team/app:1.2") == "registry.example:5000/team/app"
    assert render.untagged("registry.example:5000/team/app") == "registry.example:5000/team/app"
    pinned_file.write_text(raw.replace(digest, "sha256:not-a-digest"))
    with pytest.raises(AwsError, match=r"aws.yaml: digests.emqx/emqx:5.8.6: String should match"):
        config.load("dev", pinned_file)


def test_redpanda_keeps_fsync_on_its_persistent_volume(dev_definition: dict[str, Any]) -> None:
    command = containers(dev_definition)["redpanda"]["command"]
    # dev-container mode bundles --unsafe-bypass-fsync unless the flag is given explicitly.
    assert "--mode=dev-container" in command
    assert "--unsafe-bypass-fsync=false" in command
    assert compose.load_raw()["services"]["redpanda"]["command"].count("--mode=dev-container") == 1
