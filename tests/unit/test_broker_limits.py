"""The MQTT session limits (docs/mqtt-sizing.md) are one fact: compose.yaml's EMQX settings,
the native Mosquitto config generated from them, and the ECS task rendered from compose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devenv import compose
from devenv.aws import config, render
from devenv.backends.native.mosquitto import Mosquitto, session_limits
from devenv.settings import load


def test_the_limits_are_raised_from_the_broker_defaults() -> None:
    queued, inflight = session_limits()
    assert queued >= 300_000, "5 min of 1,000 devices at 1 Hz"
    assert inflight >= 500, "a batch fills to the intake's MaxBatch"


@pytest.mark.skipif(
    shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None, reason="no mosquitto"
)
def test_the_native_mosquitto_config_carries_them(tmp_path: Path) -> None:
    settings = load(environ={"STATE_DIR": str(tmp_path)})
    component = compose.find(compose.components(settings.as_env()), "emqx")
    recipe = Mosquitto(settings, component, tmp_path / "emqx", tmp_path / "cache")
    recipe.prepare(lambda _line: None)
    conf = (tmp_path / "emqx" / "mosquitto.conf").read_text().splitlines()
    queued, inflight = session_limits()
    assert f"max_queued_messages {queued}" in conf
    assert f"max_inflight_messages {inflight}" in conf
    assert "log_type notice" in " ".join(conf), "drops are logged at notice level"


def test_the_ecs_task_carries_them() -> None:
    definition = render.render(config.load("dev"), render.Target(region="eu-central-1", tag="x"))
    broker = next(c for c in definition["containerDefinitions"] if c["name"] == "mqtt-broker")
    env = {e["name"]: e["value"] for e in broker["environment"]}
    assert (
        int(env["EMQX_MQTT__MAX_MQUEUE_LEN"]),
        int(env["EMQX_MQTT__MAX_INFLIGHT"]),
    ) == session_limits()
