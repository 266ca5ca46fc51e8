"""The one routing file: three prefixes, nothing else routed, only the host varies."""

from __future__ import annotations

import yaml

from devenv.backends.native.traefik import ROUTES_FILE, native_arguments

ROUTES = yaml.safe_load(ROUTES_FILE.read_text())["http"]


def test_exactly_three_public_prefixes_on_the_web_entrypoint() -> None:
    public = {
        name: router["rule"]
        for name, router in ROUTES["routers"].items()
        if router["entryPoints"] == ["web"]
    }
    assert public == {
        "ingestion": "PathPrefix(`/ingest`)",
        "query": "PathPrefix(`/query`)",
        "actions": "PathPrefix(`/actions`)",
    }


def test_upstreams_vary_only_by_host_and_use_the_app_port_settings() -> None:
    urls = {
        name: service["loadBalancer"]["servers"][0]["url"]
        for name, service in ROUTES["services"].items()
    }
    host = '{{ env "GATEWAY_UPSTREAM_HOST" }}'
    assert urls == {
        "ingestion": f'http://{host}:{{{{ env "INGESTION_PORT" }}}}',
        "query": f'http://{host}:{{{{ env "QUERY_PORT" }}}}',
        "actions": f'http://{host}:{{{{ env "ACTIONS_PORT" }}}}',
    }


def test_ai_inference_is_never_routed() -> None:
    text = ROUTES_FILE.read_text()
    assert "8090" not in text and "AI_INFERENCE" not in text


def test_dashboard_is_served_without_insecure_mode() -> None:
    assert ROUTES["routers"]["dashboard"]["service"] == "api@internal"
    assert not any("insecure" in arg for arg in native_arguments(8000, 8180))


def test_native_gateway_binds_loopback_and_reads_the_same_file() -> None:
    args = native_arguments(8123, 8124)
    assert "--entryPoints.web.address=127.0.0.1:8123" in args
    assert "--entryPoints.traefik.address=127.0.0.1:8124" in args
    assert f"--providers.file.filename={ROUTES_FILE}" in args
