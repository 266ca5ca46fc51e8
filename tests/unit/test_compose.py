"""compose.yaml rules the ADR and ARCHITECTURE.md promise, checked on the file itself."""

from __future__ import annotations

from typing import Any

import pytest

from devenv import apps, compose
from devenv.aws import config
from devenv.backends.native import RECIPES
from devenv.proc.spec import RestartPolicy

RAW = compose.load_raw()
SERVICES: dict[str, Any] = RAW["services"]


def test_infrastructure_only_and_every_role_once() -> None:
    roles = sorted(spec["labels"][compose.ROLE_LABEL] for spec in SERVICES.values())
    assert roles == ["bus", "db", "gateway", "mqtt", "traces"]
    assert set(SERVICES) == {"postgres", "redpanda", "emqx", "traefik", "zipkin"}


def test_the_trace_viewer_runs_only_with_tracing_on() -> None:
    """TRACING=off leaves the viewer out of `inv up`, `status` and Compose's profiles;
    a service under a profile is one whose setting devenv knows."""
    services = lambda env: [c.service for c in compose.components(env)]  # noqa: E731
    assert "zipkin" in services({}) and "zipkin" in services({"TRACING": "on"})  # the default
    assert services({"TRACING": "off"}) == ["postgres", "redpanda", "emqx", "traefik"]
    assert compose.active_profiles({"TRACING": "off"}) == []
    assert compose.active_profiles({"TRACING": "on"}) == ["tracing"]
    profiles = {p for spec in SERVICES.values() for p in spec.get("profiles", [])}
    assert profiles <= set(compose.PROFILE_SETTINGS)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_a_healthcheck(service: str) -> None:
    check = SERVICES[service].get("healthcheck", {})
    assert check.get("test"), f"{service} has no healthcheck"
    assert check.get("interval") and check.get("retries")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_ports_are_published_on_loopback_only(service: str) -> None:
    for entry in SERVICES[service].get("ports", []):
        assert str(entry).startswith("127.0.0.1:"), f"{service} publishes {entry} beyond loopback"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_images_are_pinned(service: str) -> None:
    image = SERVICES[service]["image"]
    tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
    assert tag and tag != "latest", f"{service} image {image} is not pinned to a version"


def test_stateful_services_keep_data_in_named_volumes() -> None:
    for service in ("postgres", "redpanda", "emqx"):
        mounts = SERVICES[service]["volumes"]
        names = [m.split(":")[0] for m in mounts]
        assert any(name in RAW["volumes"] for name in names), f"{service} has no named volume"


def test_gateway_reaches_natively_running_apps() -> None:
    assert "host.docker.internal:host-gateway" in SERVICES["traefik"]["extra_hosts"]
    assert SERVICES["traefik"]["environment"]["GATEWAY_UPSTREAM_HOST"] == "host.docker.internal"


def test_ports_follow_the_settings() -> None:
    items = compose.components({"POSTGRES_PORT": "6543", "GATEWAY_PORT": "9000"})
    assert compose.find(items, "db").main_port.host_port == 6543
    assert compose.find(items, "gateway").main_port.host_port == 9000
    assert compose.find(items, "bus").main_port.host_port == 9092  # default kept


def test_every_compose_service_has_a_native_recipe() -> None:
    assert set(RECIPES) == set(SERVICES)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_docker_restarts_a_service_as_the_native_supervisor_restarts_its_recipe(
    service: str,
) -> None:
    """One restart policy on both backends: started again after any exit until stopped."""
    policy = RECIPES[service].restart
    assert isinstance(policy, RestartPolicy) and policy.give_up_after >= 1
    assert SERVICES[service].get("restart") == RestartPolicy.COMPOSE


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_service_waits_for_another_on_either_backend(service: str) -> None:
    """The native backend starts the four at once, each under its own supervisor, and their
    specs depend on nothing: a `depends_on` here would order docker alone."""
    assert "depends_on" not in SERVICES[service]


def test_the_monolith_needs_what_the_ecs_task_makes_it_wait_for() -> None:
    """The app spec's depends_on (what `inv run` brings up before it) are the components the
    ECS task's app container waits for to be HEALTHY (deploy/aws.yaml)."""
    cfg = config.load("dev")
    roles = {c.service: c.role for c in compose.components({})}
    waits_for = [cfg.containers[name] for name in cfg.containers["app"].depends_on]
    healthy = {roles[c.compose] for c in waits_for if c.essential and c.compose in roles}
    assert healthy == set(apps.INFRASTRUCTURE_NEEDED)


def test_find_by_role_or_service_and_clear_error() -> None:
    items = compose.components({})
    assert compose.find(items, "bus") == compose.find(items, "redpanda")
    with pytest.raises(KeyError, match="choose one of db \\(postgres\\)"):
        compose.find(items, "kafka-ish")


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-1}", {}, "1"),
        ("${A:-1}", {"A": ""}, "1"),
        ("${A-1}", {"A": ""}, ""),
        ("${A}", {"A": "x"}, "x"),
        ("$${A}", {"A": "x"}, "${A}"),
    ],
)
def test_interpolation_matches_compose(text: str, env: dict[str, str], expected: str) -> None:
    assert compose.interpolate(text, env) == expected
