"""`inv db.shell`, `db.snapshot`, `db.restore` as a user runs them on a private native stack:
psql answers, and a restore brings the database back to the snapshot with every effect of its
events present once — those its consumers had not applied yet included — while what came after
it is gone for good and new readings flow."""

from __future__ import annotations

import json
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from devenv.proc import group
from tests.support.stack import Stack
from tests.support.wait import eventually

pytestmark = pytest.mark.integration


def test_shell_runs_a_query_and_prints_its_result(stack: Stack) -> None:
    result = stack.inv("db.shell", "-c", "SELECT 6 * 7 AS answer, current_user AS who")
    header, rule, row, count = result.stdout.strip().splitlines()
    assert header.split() == ["answer", "|", "who"] and set(rule) == {"-", "+"}, result.stdout
    assert row.split() == ["42", "|", "platform"] and count == "(1 row)", result.stdout
    failed = stack.inv("db.shell", "-c", "SELECT no_such_column", check=False)
    assert failed.returncode != 0 and "no_such_column" in failed.stderr


def test_unknown_snapshot_is_one_line_listing_the_snapshots(stack: Stack) -> None:
    stack.inv("db.snapshot", "first")
    stack.inv("db.snapshot", "second")
    result = stack.inv("db.restore", "third", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no snapshot 'third' in {stack.state_dir / 'snapshots'}; the snapshots are: "
        "first, second (take one with `inv db.snapshot NAME`)"
    ]
    listed = stack.inv("db.snapshots").stdout.split()
    assert listed[0] == "first" and "second" in listed
    again = stack.inv("db.snapshot", "first", check=False)
    assert again.returncode == 1 and "snapshot 'first' exists" in again.stderr


def test_a_broken_snapshot_is_one_line_and_the_database_is_untouched(stack: Stack) -> None:
    stack.inv("db.shell", "-c", "CREATE TABLE kept (n int); INSERT INTO kept SELECT 1")
    stack.inv("db.shell", "-c", "INSERT INTO kept SELECT generate_series(1, 200000)")
    stack.inv("db.snapshot", "whole")
    whole = stack.state_dir / "snapshots" / "whole.dump"
    cut = whole.with_name("cut.dump")
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # its table of contents kept
    stack.inv("db.shell", "-c", "INSERT INTO kept SELECT 2")
    result = stack.inv("db.restore", "cut", check=False)
    assert result.returncode == 1
    *echoed, line = result.stderr.strip().splitlines()  # the build's command lines first
    assert all(e.startswith("$ ") for e in echoed), result.stderr
    assert line.startswith("error: pg_restore failed: "), result.stderr
    with stack.pg() as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (200002,)
        names = conn.execute("SELECT array_agg(datname::text) FROM pg_database").fetchone()
    assert names and "platform_restoring" not in names[0], names


def test_restore_brings_back_each_effect_of_the_snapshot_once_and_new_readings_flow(
    stack: Stack,
) -> None:
    stack.inv("run", "--detach", timeout=300)
    api = Api(stack)
    done = api.post(readings("done", spike=True))  # every effect there before the snapshot
    api.wait_for_anomaly("done")
    # The detector lags: the AI service is paused, so its readings are stored and projected
    # but not scored yet when the snapshot is taken.
    ai = recorded_pid(stack, "ai")
    group.signal_group(ai, signal.SIGSTOP)
    try:
        lagged = api.post(readings("lagged", spike=True))
        eventually(lambda: len(api.readings("lagged")) == len(lagged), 30, "lagged projected")
        # The relay lags: the bus is down, so these are stored but not published yet.
        stack.inv("down", "-c", "bus")
        unpublished = api.post(readings("unpublished", spike=True))
        stack.inv("db.snapshot", "base")
    finally:
        group.signal_group(ai, signal.SIGCONT)
    stack.inv("up", "-c", "bus")
    api.wait_for_anomaly("lagged")
    api.wait_for_anomaly("unpublished")
    later = api.post(readings("later", spike=True))  # after the snapshot: gone with the restore
    api.wait_for_anomaly("later")

    refused = stack.inv("db.restore", "base", check=False)
    assert refused.returncode == 1 and "the apps are running" in refused.stderr
    stack.inv("down", "-c", "app")
    restored = stack.inv("db.restore", "base", timeout=300)
    stack.inv("run", "--detach", timeout=300)

    for device in ("done", "lagged", "unpublished"):
        api.wait_for_anomaly(device)
        eventually(lambda d=device: len(api.readings(d)) >= 41, 30, f"{device} readings")
        eventually(lambda d=device: bool(api.commands(d)), 30, f"the command of {device}")
    fresh = api.post(readings("fresh", spike=True))
    api.wait_for_anomaly("fresh")
    eventually(lambda: len(api.readings("fresh")) == len(fresh), 30, "fresh readings")
    again = api.post(later)  # the same readings, sent again: new to the restored database
    api.wait_for_anomaly("later")
    eventually(lambda: len(api.readings("later")) == len(again), 30, "later sent again")

    for device, sent in (("done", done), ("lagged", lagged), ("unpublished", unpublished),
                         ("fresh", fresh), ("later", later)):  # fmt: skip
        stored = api.readings(device)
        assert sorted(r["event_id"] for r in stored) == sorted(r["event_id"] for r in sent)
        assert len(api.anomalies(device)) == 1, (device, api.anomalies(device))
        commands = api.commands(device)
        assert len(commands) == 1, (device, commands)
        assert api.command(commands[0])["name"] == "cooldown"
    # Published again: the snapshot's unpublished events and the lagged one the detector
    # had not scored; the rest were done.
    assert "the relay publishes" in restored.stdout
    republished = int(restored.stdout.split("the relay publishes ")[1].split()[0])
    assert republished == len(unpublished) + len(lagged), restored.stdout


class Api:
    """The query and actions APIs through the gateway, and the ingest endpoint."""

    def __init__(self, stack: Stack) -> None:
        self.base = f"http://127.0.0.1:{stack.port('GATEWAY_PORT')}"
        self.prefix = uuid.uuid4().hex[:8]

    def device(self, name: str) -> str:
        return f"{name}-{self.prefix}"

    def post(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {"readings": [{**r, "device_id": self.device(r["device_id"])} for r in batch]}
        response = requests.post(f"{self.base}/ingest/v1/telemetry", json=body, timeout=30)
        assert response.status_code in (200, 202), response.text
        return batch

    def pages(self, path: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = requests.get(f"{self.base}{path}", params=params, timeout=10)
            if page.status_code == 404:
                return []
            assert page.status_code == 200, page.text
            body = page.json()
            items += body[key]
            cursor = body.get("next_cursor")
            if not cursor:
                return items

    def readings(self, name: str) -> list[dict[str, Any]]:
        return self.pages(f"/query/v1/devices/{self.device(name)}/readings", "readings")

    def anomalies(self, name: str) -> list[dict[str, Any]]:
        return self.pages(f"/query/v1/devices/{self.device(name)}/anomalies", "anomalies")

    def commands(self, name: str) -> list[str]:
        """The ids of the commands issued to the device, from its event stream."""
        events = self.pages(f"/query/v1/devices/{self.device(name)}/events", "events")
        return [e["payload"]["command_id"] for e in events if e["type"] == "CommandIssued"]

    def command(self, command_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base}/actions/v1/commands/{command_id}", timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for_anomaly(self, name: str) -> None:
        eventually(lambda: bool(self.anomalies(name)), 60, f"an anomaly of {name}")


def readings(device: str, *, count: int = 41, spike: bool = False) -> list[dict[str, Any]]:
    """`count` readings one second apart around 21 degrees; the last a spike if asked."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    batch = [
        {
            "event_id": str(uuid.uuid4()),
            "device_id": device,
            "ts": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "metrics": {"temperature": 21.0 + (0.1 if i % 2 else -0.1)},
        }
        for i in range(count)
    ]
    if spike:
        batch[-1]["metrics"] = {"temperature": 95.0}
    return batch


def recorded_pid(stack: Stack, app: str) -> int:
    recorded = json.loads((stack.state_dir / "apps" / "status.json").read_text())
    return int(recorded["apps"][app]["identity"]["pid"])


def test_a_snapshot_restored_on_a_new_cluster_publishes_what_comes_next(stack: Stack) -> None:
    """A new cluster (after `inv clean`, or on the other backend) hands out transaction ids
    below the snapshot's: the restored ones are renumbered, so the relay neither waits for them
    nor leaves new events behind its cursor."""
    stack.inv("run", "--detach", timeout=300)
    api = Api(stack)
    with stack.pg() as conn:  # a cluster that has lived: its transaction ids are high
        for _ in range(3000):
            conn.execute("SELECT pg_current_xact_id()")
    before = api.post(readings("before", spike=True))
    api.wait_for_anomaly("before")
    stack.inv("db.snapshot", "moved")
    with stack.pg() as conn:
        newest = conn.execute("SELECT max(tx)::text::bigint FROM events").fetchone()
    snapshot = stack.state_dir / "snapshots" / "moved.dump"
    kept = snapshot.read_bytes()
    stack.inv("clean", "--yes")  # the snapshots too: they are in the state folder
    stack.inv("up", "-c", "db")
    snapshot.parent.mkdir()
    snapshot.write_bytes(kept)
    with stack.pg() as conn:
        next_id = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
    # Younger by more than what the restore and the apps' start use up.
    assert newest and next_id and next_id[0] + 1000 < newest[0], (next_id, newest)
    stack.inv("db.restore", "moved", timeout=300)
    stack.inv("run", "--detach", timeout=300)
    after = api.post(readings("after", spike=True))
    api.wait_for_anomaly("after")
    eventually(lambda: len(api.readings("after")) == len(after), 30, "new readings projected")
    assert len(api.readings("before")) == len(before)
    assert len(api.anomalies("before")) == 1 and len(api.commands("before")) == 1
