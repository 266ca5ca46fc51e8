"""Shared fixtures: the app under TestClient with explicit model parameters, the contracts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ai_inference.api import get_model_params
from ai_inference.app import create_app
from ai_inference.scoring import ModelParams
from ai_inference.settings import Settings, get_settings
from fastapi.testclient import TestClient

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = REPO_ROOT / "schemas"

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

# The parameters the API tests run with, whatever the developer's `.env` or environment says.
TEST_PARAMS = ModelParams(window=32, min_history=8, threshold=4.0, min_scale=1e-6)


def window(values: list[float], *, step_s: int = 10) -> list[dict[str, Any]]:
    """Points with increasing RFC 3339 timestamps, `step_s` apart."""
    return [
        {"ts": (T0 + timedelta(seconds=step_s * i)).isoformat(), "value": v}
        for i, v in enumerate(values)
    ]


def body(values: list[float], **extra: Any) -> dict[str, Any]:
    return {"device_id": "sensor-042", "metric": "temperature", "points": window(values), **extra}


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_model_params] = lambda: TEST_PARAMS
    get_settings.cache_clear()
    with TestClient(app) as test_client:
        yield test_client
    get_settings.cache_clear()


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The built-in defaults: no `.env`, no AI_* or LOG_LEVEL in the environment."""
    for field in Settings.model_fields.values():
        monkeypatch.delenv(str(field.validation_alias), raising=False)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
