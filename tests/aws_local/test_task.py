"""`inv aws.local` for real: the six containers of the rendered ECS task on this machine's
Docker engine (`nox -s aws-local`), driven from outside as a client and a device would: a
reading POSTed through the task's gateway and read back through it, one spike becoming a
command on the task's broker. Its own Compose project and free ports; `down --volumes` at
the end, and nothing of the project left (containers, network, volumes)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv import settings as local_settings
from devenv.aws import config, local, render
from devenv.stack import isolated_env
from tests.support.clients import MqttClient, device_id, readings
from tests.support.stack import INV
from tests.support.wait import eventually

# The first test's set-up builds the six images (cold: minutes); the probes bound the rest.
pytestmark = [pytest.mark.aws_local, pytest.mark.timeout(3600)]

PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class Task:
    project: str
    path: Path
    env: dict[str, str]

    @property
    def settings(self) -> local_settings.Settings:
        return local_settings.load(environ=self.env)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.settings.GATEWAY_PORT}"

    @property
    def compose_env(self) -> dict[str, str]:
        """For commands that load the file but need no secret (the task has its values)."""
        return {**self.env, **local.placeholders(config.load("dev").secrets)}

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return local.run(self.path, list(args), self.compose_env, capture=True)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.gateway + path, json=body, timeout=30)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.gateway + path, timeout=10)


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Task]:
    folder = tmp_path_factory.mktemp("aws-local")
    project = f"platform-aws-local-{uuid.uuid4().hex[:8]}"
    env = {**isolated_env(folder / "state"), "COMPOSE_PROJECT_NAME": project}
    env.pop("INFRA_BACKEND")  # not a stack of `inv up`'s
    path = folder / "compose.aws-local.yaml"
    t = Task(project, path, {**os.environ, **env})
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*INV, "aws.local", "--detach", "--output", str(path)],
            env=t.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        timings = [line for line in done.stdout.splitlines() if line.startswith("images built")]
        print(f"aws.local: up in {time.monotonic() - started:.1f}s ({'; '.join(timings)})")
        assert done.returncode == 0, f"inv aws.local --detach:\n{done.stdout}\n{done.stderr}"
        yield t
    finally:
        if path.exists():
            local.down(path, t.compose_env, volumes=True)
        assert leftovers(project) == [], f"left behind by project {project}"


def leftovers(project: str) -> list[str]:
    """Containers, networks and volumes the engine still has for `project`."""
    found = []
    for kind in ("container", "network", "volume"):
        listing = ["docker", kind, "ls", "--quiet", "--filter", f"label={PROJECT_LABEL}={project}"]
        if kind == "container":
            listing.insert(3, "--all")
        out = subprocess.run(listing, capture_output=True, text=True, check=True).stdout
        found += [f"{kind} {name}" for name in out.split()]
    return found


def test_every_container_runs_healthy_as_the_task_says(task: Task) -> None:
    definition = render.render(config.load("dev"), render.Target("eu-central-1", "unused"))
    wanted = {c["name"]: c for c in definition["containerDefinitions"]}
    rows = [json.loads(line) for line in task.compose("ps", "--format", "json").stdout.splitlines()]
    assert sorted(row["Service"] for row in rows) == sorted(wanted)
    for row in rows:
        assert (row["State"], row["Health"]) == ("running", "healthy"), row
        inspected = json.loads(
            subprocess.run(["docker", "inspect", row["ID"]], capture_output=True, check=True).stdout
        )[0]
        c = wanted[row["Service"]]
        assert inspected["Config"]["User"] == c["user"], row["Service"]
        assert inspected["HostConfig"]["ReadonlyRootfs"] is c["readonlyRootFilesystem"]
        assert inspected["HostConfig"]["Memory"] == c["memory"] * 1024 * 1024


def test_a_reading_posted_through_the_gateway_is_read_back_through_it(task: Task) -> None:
    device = device_id("aws-local")
    batch = readings(device, 3, temperature=20.0)
    response = task.post("/ingest/v1/telemetry", {"readings": batch})
    assert response.status_code in (200, 202), response.text
    assert response.json() == {"accepted": 3, "duplicates": 0}

    def read_back() -> list[dict[str, Any]] | None:
        page = task.get(f"/query/v1/devices/{device}/readings?metric=temperature")
        items = page.json()["readings"] if page.status_code == 200 else []
        return items if len(items) == 3 else None

    items = eventually(read_back, timeout=30, what=f"3 readings of {device} through the gateway")
    assert [item["event_id"] for item in items] == [r["event_id"] for r in batch]


def connack(port: int, login: tuple[str, str] | None = None) -> Any:
    """The reason code of the broker's CONNACK to a client with `login` (None: anonymous)."""
    answered: list[object] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda _c, _u, _f, reason, _p: answered.append(reason)
    if login:
        client.username_pw_set(*login)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return eventually(lambda: answered, timeout=10, what="the broker's CONNACK")[0]
    finally:
        client.loop_stop()
        client.disconnect()


def test_the_public_broker_refuses_anonymous_devices(task: Task) -> None:
    assert connack(task.settings.MQTT_PORT).is_failure


def test_a_spike_becomes_a_command_on_the_tasks_broker(task: Task) -> None:
    device = device_id("aws-spike")
    login = (device, uuid.uuid4().hex)
    add_device_user(task, *login)
    subscriber = MqttClient("127.0.0.1", task.settings.MQTT_PORT, login=login)
    try:
        subscriber.subscribe(f"devices/{device}/commands")
        # 40 readings jittering around 21 degrees, then a spike (tests/e2e/test_anomalies.py).
        batch = readings(device, 41, temperature=0.0)
        for i, reading in enumerate(batch[:40]):
            reading["metrics"] = {"temperature": 21.0 + (0.1 if i % 2 else -0.1)}
        batch[40]["metrics"] = {"temperature": 95.0}
        for part in (batch[:40], batch[40:]):
            response = task.post("/ingest/v1/telemetry", {"readings": part})
            assert response.status_code in (200, 202), response.text
        message = json.loads(subscriber.wait_for(f"devices/{device}/commands", timeout=60)[0])
    finally:
        subscriber.close()
    assert (message["name"], message["device_id"]) == ("cooldown", device)


def add_device_user(task: Task, username: str, password: str) -> None:
    """Give a device its login on the broker's public listener, which refuses anonymous
    clients in the task. EMQX: its built-in database, through the dashboard's API. The
    Mosquitto stand-in (INFRA_IMAGES=local): its password file in the data volume, re-read
    on SIGHUP."""
    settings = task.settings
    if settings.INFRA_IMAGES == "local":
        passwd = "/opt/emqx/data/passwd"
        added = task.compose("exec", "-T", "mqtt-broker", "mosquitto_passwd", "-b", passwd,
                             username, password)  # fmt: skip
        assert added.returncode == 0, added.stderr
        reloaded = task.compose("kill", "--signal", "HUP", "mqtt-broker")
        assert reloaded.returncode == 0, reloaded.stderr
    else:
        add_emqx_user(settings, username, password)
    port, login = settings.MQTT_PORT, (username, password)
    eventually(lambda: not connack(port, login).is_failure, what=f"{username} may connect")


def add_emqx_user(settings: local_settings.Settings, username: str, password: str) -> None:
    api = f"http://127.0.0.1:{settings.EMQX_DASHBOARD_PORT}/api/v5"
    secret = settings.EMQX_DASHBOARD_PASSWORD.get_secret_value()
    login = requests.post(
        f"{api}/login", json={"username": "admin", "password": secret}, timeout=10
    )
    login.raise_for_status()
    created = requests.post(
        f"{api}/authentication/password_based:built_in_database/users",
        json={"user_id": username, "password": password},
        headers={"Authorization": f"Bearer {login.json()['token']}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
