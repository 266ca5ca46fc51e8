"""The HTTP API through TestClient: routes, answers, and every way a body is refused."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from ai_inference.api import get_model_params
from ai_inference.app import create_app
from ai_inference.scoring import MODEL_NAME, MODEL_VERSION, ModelParams
from ai_inference.settings import Settings, get_settings
from conftest import TEST_PARAMS, body, window
from fastapi.testclient import TestClient

SPIKY = [21.0, 21.2, 20.9, 21.1] * 5 + [35.0] + [21.0, 21.1]


def score(client: TestClient, payload: Any) -> Any:
    return client.post("/v1/score", json=payload)


def error_locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [err["loc"] for err in response.json()["detail"]]


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    # The pid proves to `inv run`'s probe that this process answers, not another on the port.
    assert response.json() == {"status": "ok", "pid": os.getpid()}


def test_model_lists_name_version_and_parameters(client: TestClient) -> None:
    info = client.get("/v1/model").json()
    assert info["name"] == MODEL_NAME
    assert info["version"] == MODEL_VERSION
    assert info["parameters"] == {
        "window": 32,
        "min_history": 8,
        "threshold": 4.0,
        "min_scale": 1e-6,
        "max_points": 4096,
    }


def test_model_parameters_come_from_settings(
    default_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_ANOMALY_THRESHOLD", "7.5")
    monkeypatch.setenv("AI_WINDOW", "48")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        params = client.get("/v1/model").json()["parameters"]
    assert params["threshold"] == 7.5
    assert params["window"] == 48
    assert params["min_history"] == default_settings.min_history


def test_score_finds_the_spike(client: TestClient) -> None:
    response = score(client, body(SPIKY))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["device_id"] == "sensor-042"
    assert result["metric"] == "temperature"
    assert result["model"] == {"name": MODEL_NAME, "version": MODEL_VERSION}
    assert len(result["scores"]) == len(SPIKY)
    [anomaly] = result["anomalies"]
    assert anomaly["index"] == 20
    assert anomaly["value"] == 35.0
    assert anomaly["ts"] == "2026-11-26T12:03:20+00:00"  # exactly as sent
    assert anomaly["score"] == result["scores"][20] > TEST_PARAMS.threshold


def test_flat_window_has_no_anomaly(client: TestClient) -> None:
    result = score(client, body([3.0] * 100)).json()
    assert result["anomalies"] == []
    assert result["scores"] == [0.0] * 100


def test_threshold_override_changes_the_answer(client: TestClient) -> None:
    spike_score = score(client, body(SPIKY)).json()["scores"][20]
    app = client.app
    assert hasattr(app, "dependency_overrides")
    app.dependency_overrides[get_model_params] = lambda: ModelParams(
        window=32, min_history=8, threshold=spike_score + 1
    )
    assert score(client, body(SPIKY)).json()["anomalies"] == []


def test_anomaly_echoes_ts_exactly_as_sent(client: TestClient) -> None:
    points = window(SPIKY)
    points[20]["ts"] = "2026-11-26t13:03:20.123456789+01:00"
    result = score(client, body([], points=points)).json()
    assert result["anomalies"][0]["ts"] == "2026-11-26t13:03:20.123456789+01:00"


def test_a_ts_that_is_no_date_is_refused(client: TestClient) -> None:
    points = window([1.0, 2.0, 3.0])
    points[2]["ts"] = "2026-13-01T00:00:00Z"
    response = score(client, body([], points=points))
    assert error_locs(response) == [["body", "points", 2, "ts"]]


def test_one_point_is_scored_zero(client: TestClient) -> None:
    result = score(client, body([5.0])).json()
    assert result["scores"] == [0.0]
    assert result["anomalies"] == []


def test_4096_points_are_accepted_4097_refused(client: TestClient) -> None:
    assert score(client, body([1.0] * 4096)).status_code == 200
    response = score(client, body([1.0] * 4097))
    assert error_locs(response) == [["body", "points"]]
    assert response.json()["detail"][0]["type"] == "too_long"


def test_empty_window_is_refused_naming_points(client: TestClient) -> None:
    response = score(client, body([]))
    assert error_locs(response) == [["body", "points"]]
    assert response.json()["detail"][0]["type"] == "too_short"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinities_are_refused_naming_the_value(client: TestClient, bad: str) -> None:
    # Python's json (the service's parser) accepts these literals, so they reach validation.
    raw = body([1.0, 2.0, 3.0])
    text = str(raw).replace("'", '"').replace('"value": 2.0', f'"value": {bad}')
    response = client.post("/v1/score", content=text, headers={"Content-Type": "application/json"})
    assert error_locs(response) == [["body", "points", 1, "value"]]
    detail = response.json()["detail"][0]
    assert detail["type"] == "finite_number"
    assert isinstance(detail["input"], str)
    assert math.isnan(float(detail["input"])) or math.isinf(float(detail["input"]))


def test_values_beyond_the_bound_are_refused(client: TestClient) -> None:
    assert error_locs(score(client, body([1.0, 2e15]))) == [["body", "points", 1, "value"]]


@pytest.mark.parametrize(
    ("ts", "index"),
    [
        (["2026-11-26T12:00:10Z", "2026-11-26T12:00:00Z", "2026-11-26T12:00:20Z"], 1),
        (["2026-11-26T12:00:00Z", "2026-11-26T12:00:10Z", "2026-11-26T12:00:10Z"], 2),
        # Same instant written with another offset is a duplicate too.
        (["2026-11-26T12:00:00Z", "2026-11-26T13:00:00+01:00"], 1),
    ],
    ids=["unsorted", "duplicate", "duplicate-other-offset"],
)
def test_unsorted_or_duplicate_timestamps_are_refused_naming_the_first(
    client: TestClient, ts: list[str], index: int
) -> None:
    points = [{"ts": t, "value": 1.0} for t in ts]
    response = score(client, {"device_id": "d1", "metric": "m", "points": points})
    assert error_locs(response) == [["body", "points", index, "ts"]]
    detail = response.json()["detail"][0]
    assert detail["type"] == "ts_not_increasing"
    assert f"points[{index - 1}].ts" in detail["msg"]


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda b: b.pop("device_id"), ["body", "device_id"]),
        (lambda b: b.update(metric=""), ["body", "metric"]),
        (lambda b: b.update(device_id="a/b"), ["body", "device_id"]),
        (lambda b: b.update(extra=1), ["body", "extra"]),
        (lambda b: b["points"][0].update(ts="2026-11-26T12:00:00"), ["body", "points", 0, "ts"]),
        (lambda b: b["points"][0].update(ts=1795780800), ["body", "points", 0, "ts"]),
        (lambda b: b["points"][0].update(ts="yesterday"), ["body", "points", 0, "ts"]),
        (lambda b: b["points"][1].update(value="2"), ["body", "points", 1, "value"]),
        (lambda b: b["points"][1].update(value=True), ["body", "points", 1, "value"]),
        (lambda b: b["points"][1].pop("value"), ["body", "points", 1, "value"]),
        (lambda b: b["points"][1].update(unit="C"), ["body", "points", 1, "unit"]),
    ],
    ids=[
        "missing-device",
        "empty-metric",
        "device-with-slash",
        "unknown-field",
        "ts-without-offset",
        "ts-number",
        "ts-text",
        "value-string",
        "value-bool",
        "value-missing",
        "point-unknown-field",
    ],
)
def test_bad_fields_are_named(client: TestClient, mutate: Any, loc: list[Any]) -> None:
    payload = body([1.0, 2.0, 3.0])
    mutate(payload)
    assert error_locs(score(client, payload)) == [loc]


def test_malformed_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/v1/score", content=b'{"device_id": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_integer_values_are_numbers(client: TestClient) -> None:
    assert score(client, body([1, 2, 3])).status_code == 200
