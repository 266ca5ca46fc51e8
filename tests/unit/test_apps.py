"""The monolith's readiness follows its servers' port settings (`x-server` in the settings
schema, which the Go side's list of servers is held to), wherever each port is."""

from __future__ import annotations

from pathlib import Path

from devenv import apps, declared
from devenv.proc.readiness import Http
from devenv.settings import load


def test_readiness_asks_every_server_on_its_own_port(tmp_path: Path) -> None:
    # Neither consecutive nor in order: nothing may assume either.
    ports = {"INGESTION_PORT": "9101", "QUERY_PORT": "7207", "ACTIONS_PORT": "8413"}
    settings = load(
        env_file=tmp_path / "no.env",
        environ={"INFRA_BACKEND": "native", "STATE_DIR": str(tmp_path / "state"), **ports},
    )
    app = next(spec for spec in apps.specs(settings) if spec.name == "app")
    assert sorted(check.url for check in app.ready if isinstance(check, Http)) == [
        "http://127.0.0.1:7207/healthz",
        "http://127.0.0.1:8413/healthz",
        "http://127.0.0.1:9101/readyz",
    ]
    assert all(check.answers_pid for check in app.ready if isinstance(check, Http))


def test_every_server_port_is_an_app_port() -> None:
    """`inv run` checks these free before it starts anything, and names their holder."""
    assert declared.server_ports(), "the schema marks no port setting x-server"
    assert set(apps.APP_PORT_KEYS) == {*declared.server_ports(), "AI_INFERENCE_PORT"}
