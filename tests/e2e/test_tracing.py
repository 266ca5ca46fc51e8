"""One reading's whole journey in the trace viewer: a batch for one device ending in a spike
is one trace holding spans from ingestion, the relay, the detector, the AI service and
actions, in causal order; the viewer's page for it, opened in a real browser (headless
Chromium), names those services. Its screenshot is kept beside the JUnit report."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.clients import MqttClient, Platform, device_id, readings
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e

JOURNEY = ("ingestion", "relay", "detector", "ai-inference", "actions")
# Which hop causes which: the detector calls the AI service, and its anomaly event (published
# by the relay in turn) reaches actions.
CAUSES = (
    ("ingestion", "relay"),
    ("relay", "detector"),
    ("detector", "ai-inference"),
    ("detector", "actions"),
)


def test_a_spike_is_one_trace_from_ingestion_to_the_command(
    stack: Platform, device_mqtt: MqttClient, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if stack.settings.TRACING != "on":
        pytest.skip("TRACING=off: no viewer runs")
    device = device_id("trace")
    device_mqtt.subscribe(f"devices/{device}/commands")
    batch = readings(device, 41, temperature=0.0)
    for i, reading in enumerate(batch[:40]):
        reading["metrics"] = {"temperature": 21.0 + (0.1 if i % 2 else -0.1)}
    batch[40]["metrics"] = {"temperature": 95.0}
    # The client starts the trace, as a caller that traces itself would.
    trace_id = secrets.token_hex(16)
    posted = requests.post(
        stack.gateway + "/ingest/v1/telemetry",
        json={"readings": batch},
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        timeout=30,
    )
    assert posted.status_code in (200, 202), posted.text
    device_mqtt.wait_for(f"devices/{device}/commands", timeout=60)

    viewer = f"http://127.0.0.1:{stack.settings.ZIPKIN_PORT}"
    spans = eventually(lambda: _whole_journey(viewer, trace_id), 60, f"the trace {trace_id}")
    by_id = {span["id"]: span for span in spans}
    first = {service: _first(spans, service) for service in JOURNEY}
    # Causal order: each hop descends from the one before it, and starts after it.
    for earlier, later in CAUSES:
        ancestors = list(_ancestors(first[later], by_id))
        assert any(_service(a) == earlier for a in ancestors), (earlier, later, spans)
        assert first[earlier]["timestamp"] <= first[later]["timestamp"], (earlier, later)

    page = f"{viewer}/zipkin/traces/{trace_id}"
    shown = _rendered(page)
    reports = Path(request.config.option.xmlpath or tmp_path).parent
    _screenshot(page, reports / f"trace-{trace_id}.png")
    for service in JOURNEY:
        assert service in shown, f"{page} does not show {service}"


def _whole_journey(viewer: str, trace_id: str) -> list[dict[str, Any]]:
    """The trace once it holds every hop (spans arrive a little after the work)."""
    answer = requests.get(f"{viewer}/api/v2/trace/{trace_id}", timeout=10)
    spans: list[dict[str, Any]] = answer.json() if answer.ok else []
    return spans if {_service(s) for s in spans} >= set(JOURNEY) else []


def _service(span: dict[str, Any]) -> str:
    return str(span.get("localEndpoint", {}).get("serviceName", ""))


def _first(spans: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return min((s for s in spans if _service(s) == service), key=lambda s: s["timestamp"])


def _ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    while (parent := by_id.get(span.get("parentId", ""))) is not None:
        yield parent
        span = parent


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is missing: apt-get install chromium", pytrace=False)
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=15000", "--window-size=1400,900", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


def _rendered(url: str) -> str:
    """The page's DOM after its scripts ran: what a user sees, as text."""
    return _chromium("--dump-dom", url).stdout


def _screenshot(url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _chromium(f"--screenshot={path}", url)
    assert path.stat().st_size > 0
