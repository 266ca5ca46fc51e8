"""`inv devices.simulate`, `inv bus.tail`, `inv mqtt.watch` on bad input or with nothing
running: one line naming the problem and the fix, exit 1, nothing started. And how they show
what they read."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from devenv.bus import Record
from devenv.devices.report import Output, Tally
from devenv.payload import describe
from devenv.stack import free_ports
from devenv.tasks import bus, devices, mqtt


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The gateway, the broker and the bus on ports where nothing listens."""
    ports = dict(zip(("GATEWAY_PORT", "MQTT_PORT", "KAFKA_PORT"), free_ports(3), strict=True))
    for key, port in ports.items():
        monkeypatch.setenv(key, str(port))
    return ports


def one_line_error(call: object, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(Exit) as exit_:
        call()  # type: ignore[operator]
    assert exit_.value.code == 1
    assert capsys.readouterr().out == ""
    message = str(exit_.value.message)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"devices_": "0"}, "error: --devices 0: give 1 to 500 devices"),
        ({"devices_": "501"}, "error: --devices 501: give 1 to 500 devices"),
        ({"devices_": "two"}, "error: --devices 'two': give a whole number"),
        ({"rate": "0"}, "error: --rate 0: give readings per second per device, more than 0"),
        ({"rate": "nan"}, "error: --rate nan: give readings per second per device"),
        ({"rate": "fast"}, "error: --rate 'fast': give a number"),
        ({"seconds": "-1"}, "error: --seconds -1: give 0 (until Ctrl-C) or more"),
        ({"seconds": "inf"}, "error: --seconds inf: give 0 (until Ctrl-C) or more"),
        ({"anomalies": "1.5"}, "error: --anomalies 1.5: give a probability from 0 to 1"),
        ({"anomalies": "-0.1"}, "error: --anomalies -0.1: give a probability from 0 to 1"),
    ],
)
def test_simulate_refuses_a_bad_value(
    nothing_runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    flags: dict[str, str],
    expected: str,
) -> None:
    message = one_line_error(lambda: devices.simulate(Context(), **flags), capsys)
    assert message.startswith(expected), message


def test_simulate_without_the_platform_says_to_start_it(
    nothing_runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    message = one_line_error(lambda: devices.simulate(Context()), capsys)
    gateway = nothing_runs["GATEWAY_PORT"]
    assert message == (
        f"error: nothing answers at http://127.0.0.1:{gateway} (the gateway): "
        "start the platform with `inv run` (or `inv run --detach`) first"
    )


def test_simulate_with_a_bad_model_setting_names_it(
    nothing_runs: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AI_MIN_HISTORY", "sixteen")
    message = one_line_error(lambda: devices.simulate(Context()), capsys)
    assert message.startswith("error: AI_MIN_HISTORY='sixteen' is not a whole number")


def test_watch_without_a_broker_says_inv_up_first(
    nothing_runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    message = one_line_error(lambda: mqtt.watch(Context()), capsys)
    assert message.startswith(
        f"error: the MQTT broker at 127.0.0.1:{nothing_runs['MQTT_PORT']} does not answer ("
    )
    assert message.endswith("): run `inv up` first (`inv status` shows what runs)")


@pytest.mark.parametrize("topic_filter", ["devices/#/telemetry", "devices/a+", "dev#", ""])
def test_watch_refuses_what_is_not_a_topic_filter(
    nothing_runs: dict[str, int], capsys: pytest.CaptureFixture[str], topic_filter: str
) -> None:
    message = one_line_error(lambda: mqtt.watch(Context(), filter_=topic_filter), capsys)
    assert message.startswith(f"error: {topic_filter!r} is not an MQTT topic filter: ")


def test_tail_without_a_bus_says_inv_up_first(
    nothing_runs: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    message = one_line_error(lambda: bus.tail(Context(), "telemetry.v1"), capsys)
    assert message.startswith(
        f"error: the bus at 127.0.0.1:{nothing_runs['KAFKA_PORT']} does not answer ("
    )
    assert message.endswith("): run `inv up` first (`inv status` shows what runs)")


@pytest.mark.parametrize("n", ["-1", "ten", "1.5"])
def test_tail_refuses_a_bad_count(
    nothing_runs: dict[str, int], capsys: pytest.CaptureFixture[str], n: str
) -> None:
    message = one_line_error(lambda: bus.tail(Context(), "telemetry.v1", n=n), capsys)
    assert message == f"error: -n {n!r}: give how many past records to show, a whole number >= 0"


@pytest.mark.parametrize(
    ("payload", "shown"),
    [
        (b'{"temperature": 21.5, "unit": "\xc2\xb0C"}', '{"temperature": 21.5, "unit": "°C"}'),
        (b"reboot now", "'reboot now'"),
        (b"\xff\x00", "<2 bytes> ff00"),
        (b"", "''"),
        (None, "<no value>"),
    ],
)
def test_a_payload_is_shown_as_json_text_or_bytes(payload: bytes | None, shown: str) -> None:
    assert describe(payload) == shown


def test_a_record_shows_where_it_is_and_what_it_carries() -> None:
    record = Record(
        topic="telemetry.v1",
        partition=2,
        offset=17,
        key="dev-1",
        timestamp="2026-12-03T10:00:00.123Z",
        headers={"traceparent": "00-ab-cd-01"},
        value=b'{"event_id": "e1"}',
    )
    assert record.lines() == [
        'telemetry.v1 partition=2 offset=17 key="dev-1" timestamp=2026-12-03T10:00:00.123Z '
        'headers={"traceparent": "00-ab-cd-01"}',
        '  {"event_id": "e1"}',
    ]


def test_progress_is_a_line_now_and_then_off_a_terminal() -> None:
    out = io.StringIO()
    output = Output.to(out)
    output.progress("1 s", due=False)
    output.progress("5 s", due=True)
    output.line("summary")
    assert out.getvalue() == "5 s\nsummary\n"


def test_progress_is_rewritten_in_place_on_a_terminal() -> None:
    terminal = io.StringIO()
    written: list[str] = []
    output = Output(written.append, terminal=terminal)
    output.progress("1 s", due=False)
    output.progress("2 s", due=False)
    output.line("summary")
    assert terminal.getvalue() == "\r\033[K1 s\r\033[K2 s\r\033[K"
    assert written == ["summary"]


def test_the_summary_gives_the_time_to_the_first_acknowledged_command() -> None:
    first = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    tally = Tally(sent=300, broker_acked=300, stored=299, spikes=9, anomalies=9, commands=9,
                  acks_sent=9, acknowledged=8, connected=2, disconnected=2, first_reading=first,
                  first_acknowledged=first + timedelta(seconds=17.25))  # fmt: skip
    assert tally.summary(["sim-a-01", "sim-a-05"], 60.04, "stopped by Ctrl-C", True) == [
        "summary: 2 devices (sim-a-01 … sim-a-05) for 60.0 s, stopped by Ctrl-C",
        "  readings  300 sent, 300 acknowledged by the broker, 299 stored (query API)",
        "  spikes    9 injected, 9 listed as anomalies (query API)",
        "  commands  9 received, 9 acks acknowledged by the broker, 8 acknowledged (actions API)",
        "  devices   2 connected, 2 disconnected cleanly",
        "  loop      first command acknowledged 17.2 s after the first reading",
    ]
