"""A failed e2e or fault test shows where its last reading went: the trace of the last
reading the test's clients sent (HTTP or MQTT), as `inv trace EVENT_ID` draws it, or why
there is none. Conftests take the hook with `from tests.support.traced import ...`."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any

import pytest

from devenv import trace
from devenv.settings import Settings

# (settings of the stack, event id) of each reading sent since the current test began.
_sent: list[tuple[Settings, str]] = []


def sent(settings: Settings, bodies: Iterable[Mapping[str, Any]]) -> None:
    """Note the readings in request or message bodies: a batch (`readings`) or one reading."""
    for body in bodies:
        for reading in body.get("readings", [body]):
            if isinstance(reading, Mapping) and isinstance(reading.get("event_id"), str):
                _sent.append((settings, reading["event_id"]))


def last_trace() -> str | None:
    if not _sent:
        return None
    settings, event_id = _sent[-1]
    if settings.TRACING != "on":
        return f"reading {event_id}: no trace (TRACING=off)"
    try:
        return "\n".join([f"reading {event_id}:", *trace.show(settings, event_id, wait=3)])
    except trace.TraceError as exc:
        return f"reading {event_id}: {exc}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "setup":
        _sent.clear()
    elif call.when == "call" and report.failed and (shown := last_trace()):
        report.sections.append(("trace of the last reading sent", shown))
    return report
