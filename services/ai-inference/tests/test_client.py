"""The typed client against a real uvicorn (`-m server`) and against sockets that misbehave."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from ai_inference.client import (
    InferenceClient,
    InferenceRejected,
    InferenceUnavailable,
    Point,
    connection_retries,
    score_request,
)
from ai_inference.scoring import MODEL_NAME
from conftest import T0
from pydantic import ValidationError
from test_contract import validator
from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll GET /healthz until it answers 200, the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ai_inference exited with {proc.returncode} before /healthz")
        try:
            if requests.get(f"{base_url}/healthz", timeout=0.5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base_url}/healthz did not answer within {timeout}s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m ai_inference` on a free loopback port, stopped (TERM, then KILL) after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_")}
    env |= {"AI_INFERENCE_HOST": "127.0.0.1", "AI_INFERENCE_PORT": str(port)}
    log = tmp_path_factory.mktemp("server") / "ai-inference.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ai_inference"],
            env=env,
            cwd=log.parent,  # no stray .env
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, proc, timeout=30)
        yield base_url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    assert "Application startup complete" in log.read_text()


def spike_points() -> list[tuple[Any, float]]:
    values = [21.0, 21.2, 20.9, 21.1] * 6 + [40.0]
    return [(T0 + timedelta(seconds=10 * i), v) for i, v in enumerate(values)]


@pytest.mark.server
def test_health_and_model(server: str) -> None:
    with InferenceClient(server) as client:
        assert client.healthz().status == "ok"
        info = client.model()
    assert info.name == MODEL_NAME
    assert info.parameters.max_points == 4096


@pytest.mark.server
def test_score_returns_typed_anomalies(server: str) -> None:
    points = spike_points()
    with InferenceClient(server) as client:
        result = client.score("sensor-042", "temperature", points)
        threshold = client.model().parameters.threshold
    assert len(result.scores) == len(points)
    [anomaly] = result.anomalies
    assert anomaly.index == len(points) - 1
    assert anomaly.ts == points[-1][0].isoformat()
    assert anomaly.value == 40.0
    assert anomaly.score == result.scores[-1] >= threshold


@pytest.mark.server
def test_server_answers_validate_against_the_schema_files(server: str) -> None:
    body = {
        "device_id": "sensor-042",
        "metric": "temperature",
        "points": [{"ts": ts.isoformat(), "value": v} for ts, v in spike_points()],
    }
    validator("score-request").validate(body)
    answer = requests.post(f"{server}/v1/score", json=body, timeout=5)
    assert answer.status_code == 200
    validator("score-response").validate(answer.json())
    validator("model-info").validate(requests.get(f"{server}/v1/model", timeout=5).json())


@pytest.mark.server
def test_unsorted_window_is_rejected_with_the_field(server: str) -> None:
    points = spike_points()
    points[3], points[4] = points[4], points[3]
    with InferenceClient(server) as client, pytest.raises(InferenceRejected) as err:
        client.score("sensor-042", "temperature", points)
    assert err.value.status == 422
    assert err.value.detail[0]["loc"] == ["body", "points", 4, "ts"]


def test_request_bodies_the_client_sends_validate_against_the_schema() -> None:
    points: list[Point | tuple[datetime, float]] = list(spike_points())
    points.append(Point(ts="2026-11-26T12:10:00.123456789Z", value=-3))
    body = json.loads(score_request("sensor-042", "temperature", points).model_dump_json())
    validator("score-request").validate(body)
    assert body["points"][0] == {"ts": "2026-11-26T12:00:00+00:00", "value": 21.0}


def test_window_breaking_the_schema_is_refused_before_sending() -> None:
    with InferenceClient("http://127.0.0.1:9") as client, pytest.raises(ValidationError):
        client.score("sensor-042", "temperature", [])
    naive = [(T0.replace(tzinfo=None), 1.0)]
    with InferenceClient("http://127.0.0.1:9") as client, pytest.raises(ValidationError):
        client.score("sensor-042", "temperature", naive)
    nan = [Point(ts=T0.isoformat(), value=float("nan"))]
    with InferenceClient("http://127.0.0.1:9") as client, pytest.raises(ValidationError):
        client.score("sensor-042", "temperature", nan)


def test_retry_policy_retries_connection_errors_only() -> None:
    policy = connection_retries(retries=2, backoff=0)
    refused = NewConnectionError(None, "refused")  # type: ignore[arg-type]
    policy = policy.increment(method="POST", url="/v1/score", error=refused)
    policy = policy.increment(method="POST", url="/v1/score", error=refused)
    with pytest.raises(Exception, match="Max retries"):
        policy.increment(method="POST", url="/v1/score", error=refused)
    for error in (ReadTimeoutError(None, "/", "slow"), ProtocolError("reset")):  # type: ignore[arg-type]
        with pytest.raises(type(error)):
            connection_retries(3, 0).increment(method="POST", url="/v1/score", error=error)


def test_refused_connection_is_unavailable_after_the_retries() -> None:
    port = free_port()  # nothing listens there any more
    started = time.monotonic()
    client = InferenceClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.2)
    with client, pytest.raises(InferenceUnavailable, match="no connection"):
        client.healthz()
    # urllib3 backs off 0 s before the first retry and backoff * 2 before the second.
    assert time.monotonic() - started >= 0.4


class Listener:
    """A loopback socket that accepts connections and counts them; `reply` decides what to do."""

    def __init__(self, reply: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply = reply
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            self.accepted += 1
            conn.recv(65536)
            if self.reply == "close":
                conn.close()
            else:
                self.held.append(conn)  # never answers

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(params=["close", "silent"])
def listener(request: pytest.FixtureRequest) -> Iterator[Listener]:
    lis = Listener(request.param)
    try:
        yield lis
    finally:
        lis.close()


def test_a_request_that_reached_the_server_is_not_sent_again(listener: Listener) -> None:
    client = InferenceClient(listener.url, read_timeout=0.3, retries=3)
    with client, pytest.raises(InferenceUnavailable):
        client.score("sensor-042", "temperature", spike_points())
    assert listener.accepted == 1
