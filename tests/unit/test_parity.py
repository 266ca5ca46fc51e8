"""Local (docker, native) and ECS renderings of the one model agree: same routes, same ports
per component, same setting names. Each side changed alone must break the agreement."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv import compose, declared
from devenv.aws import config, render
from devenv.aws.config import AwsConfig
from devenv.backends.native.traefik import ROUTES_FILE
from tests.support import parity


@pytest.fixture(scope="module")
def cfg() -> AwsConfig:
    return config.load("dev")


def test_docker_and_ecs_agree(cfg: AwsConfig, dev_definition: dict[str, Any]) -> None:
    assert parity.differences(parity.docker_view(cfg), parity.ecs_view(dev_definition)) == []


def test_native_and_ecs_route_and_name_settings_alike(
    cfg: AwsConfig, dev_definition: dict[str, Any]
) -> None:
    native, cloud = parity.native_view(cfg), parity.ecs_view(dev_definition)
    assert native.routes == cloud.routes
    assert native.settings == cloud.settings
    assert native.upstream_host == "127.0.0.1" and cloud.upstream_host == "localhost"


def test_native_and_docker_listen_where_laptop_clients_dial(cfg: AwsConfig) -> None:
    native, docker = parity.native_view(cfg), parity.docker_view(cfg)
    assert parity.differences(native, docker, published=True) == []
    assert native.ports["traefik"] == docker.published["traefik"]


def test_every_route_reaches_a_port_the_app_listens_on(
    cfg: AwsConfig, dev_definition: dict[str, Any]
) -> None:
    for view in (parity.docker_view(cfg), parity.native_view(cfg), parity.ecs_view(dev_definition)):
        assert view.routes.keys() == {"/ingest", "/query", "/actions"}
        assert parity.routed_ports_listen(view) == []


# --- one side changed alone -----------------------------------------------------------


def mutated(ecs: dict[str, Any], container: str, key: str, change: Any) -> dict[str, Any]:
    result = copy.deepcopy(ecs)
    for c in result["containerDefinitions"]:
        if c["name"] == container:
            change(c[key])
    return result


def test_an_ecs_port_changed_alone_fails(cfg: AwsConfig, dev_definition: dict[str, Any]) -> None:
    def move_query(mappings: list[dict[str, Any]]) -> None:
        mappings[1]["containerPort"] = mappings[1]["hostPort"] = 9081

    found = parity.differences(
        parity.docker_view(cfg),
        parity.ecs_view(mutated(dev_definition, "app", "portMappings", move_query)),
    )
    assert found == ["ports of app: docker (8080, 8081, 8082) != ecs (8080, 9081, 8082)"]


def test_an_ecs_route_changed_alone_fails(cfg: AwsConfig, dev_definition: dict[str, Any]) -> None:
    def retarget(env: list[dict[str, str]]) -> None:
        next(e for e in env if e["name"] == "ACTIONS_PORT")["value"] = "9082"

    cloud = parity.ecs_view(mutated(dev_definition, "traefik", "environment", retarget))
    assert any(
        line.startswith("routes:") for line in parity.differences(parity.docker_view(cfg), cloud)
    )
    assert parity.routed_ports_listen(cloud) == [
        "ecs: /actions goes to port 9082, where the app does not listen"
    ]


def test_an_ecs_setting_dropped_alone_fails(cfg: AwsConfig, dev_definition: dict[str, Any]) -> None:
    def drop(env: list[dict[str, str]]) -> None:
        env[:] = [e for e in env if e["name"] != "TOPIC_ANOMALIES"]

    cloud = parity.ecs_view(mutated(dev_definition, "app", "environment", drop))
    assert parity.differences(parity.docker_view(cfg), cloud) == [
        "settings of app: only docker ['TOPIC_ANOMALIES'], only ecs []"
    ]


def test_an_ecs_upstream_host_changed_alone_fails(
    cfg: AwsConfig, dev_definition: dict[str, Any]
) -> None:
    def host(env: list[dict[str, str]]) -> None:
        next(e for e in env if e["name"] == "GATEWAY_UPSTREAM_HOST")["value"] = "127.0.0.1"

    cloud = parity.ecs_view(mutated(dev_definition, "traefik", "environment", host))
    assert parity.differences(parity.docker_view(cfg), cloud) == [
        "ecs: gateway upstream host '127.0.0.1'"
    ]


def test_an_aws_yaml_override_of_an_app_port_fails(tmp_path: Path, cfg: AwsConfig) -> None:
    raw = yaml.safe_load(config.AWS_FILE.read_text())
    raw["containers"]["app"]["settings"]["INGESTION_PORT"] = 9080
    changed = tmp_path / "aws.yaml"
    changed.write_text(yaml.safe_dump(raw))
    other = config.load("dev", changed)
    cloud = parity.ecs_view(render.render(other, render.Target("eu-central-1", "x")))
    found = parity.differences(parity.docker_view(cfg), cloud)
    assert "ports of app: docker (8080, 8081, 8082) != ecs (9080, 8081, 8082)" in found
    assert parity.routed_ports_listen(cloud) == [
        "ecs: /ingest goes to port 8080, where the app does not listen"
    ]


def test_a_compose_port_changed_alone_fails(
    tmp_path: Path, cfg: AwsConfig, dev_definition: dict[str, Any]
) -> None:
    text = compose.COMPOSE_FILE.read_text().replace(
        '"127.0.0.1:${REDPANDA_ADMIN_PORT:-9644}:9644"',
        '"127.0.0.1:${REDPANDA_ADMIN_PORT:-9644}:9645"',
    )
    changed = tmp_path / "compose.yaml"
    changed.write_text(text)
    found = parity.differences(
        parity.docker_view(cfg, compose_file=changed), parity.ecs_view(dev_definition)
    )
    assert found == ["ports of redpanda: docker (9092, 9645) != ecs (9092, 9644)"]


def test_a_local_routing_change_alone_fails(
    tmp_path: Path, cfg: AwsConfig, dev_definition: dict[str, Any]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        ROUTES_FILE.read_text().replace("PathPrefix(`/query`)", "PathPrefix(`/read`)")
    )
    found = parity.differences(
        parity.docker_view(cfg, routes_file=routes), parity.ecs_view(dev_definition)
    )
    assert len(found) == 1 and found[0].startswith("routes:")


def test_a_setting_declared_for_an_app_but_not_rendered_fails(
    cfg: AwsConfig, dev_definition: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    read_by = declared.read_by
    knob = declared.Setting("AI_NEW_KNOB", {"default": 1, "x-readers": ["ai-inference"]})

    def with_knob(reader: str) -> dict[str, declared.Setting]:
        return read_by(reader) | ({knob.key: knob} if reader == "ai-inference" else {})

    monkeypatch.setattr(declared, "read_by", with_knob)
    assert parity.differences(parity.docker_view(cfg), parity.ecs_view(dev_definition)) == [
        "settings of ai-inference: only docker ['AI_NEW_KNOB'], only ecs []"
    ]


def _environment(definition: dict[str, Any], container: str) -> dict[str, str]:
    (found,) = [c for c in definition["containerDefinitions"] if c["name"] == container]
    return {pair["name"]: pair["value"] for pair in found["environment"]}


def test_the_task_exports_traces_only_to_an_endpoint_set_for_it(cfg: AwsConfig) -> None:
    """Locally the apps send spans to the local viewer; the task has none, so it sends them
    only where deploy/aws.yaml sets TRACE_EXPORT_URL (empty: the apps start no exporter)."""
    target = render.Target(region=cfg.region, tag="0123456789ab")
    unset = render.render(cfg, target)
    assert [_environment(unset, c)["TRACE_EXPORT_URL"] for c in ("app", "ai-inference")] == ["", ""]
    assert not any(c["name"] == "zipkin" for c in unset["containerDefinitions"])

    endpoint = "https://traces.example.internal/api/v2/spans"
    configured = cfg.model_copy(deep=True)
    for name in ("app", "ai-inference"):
        configured.containers[name].settings["TRACE_EXPORT_URL"] = endpoint
    exporting = render.render(configured, target)
    for name in ("app", "ai-inference"):
        assert _environment(exporting, name)["TRACE_EXPORT_URL"] == endpoint
    # Configured or not, the task and the laptop give the apps the same settings' names.
    assert parity.differences(parity.docker_view(cfg), parity.ecs_view(exporting)) == []
