"""What the platform says it did, read as a user reads it: the query and actions APIs through
the gateway (127.0.0.1:GATEWAY_PORT on both backends). The simulated devices (devenv.devices)
count their readings stored, their spikes listed as anomalies and their commands acknowledged
with it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests

from devenv import poll
from devenv.settings import Settings

TIMEOUT = 5.0
PAGE = 1000  # the query API's largest page


class PlatformDown(Exception):
    """The gateway or the API behind it does not answer: the message says which and why."""


class Api:
    def __init__(self, settings: Settings) -> None:
        self.base = f"http://127.0.0.1:{settings.GATEWAY_PORT}"
        self.http = requests.Session()

    def check(self, wait: float = 0.0) -> None:
        """PlatformDown unless the query and actions APIs answer through the gateway, within
        `wait` seconds."""
        problem: list[PlatformDown] = []

        def answers() -> bool:
            try:
                self._get("/query/v1/devices", limit=1)
                self._get(f"/actions/v1/commands/{uuid.UUID(int=0)}", missing_ok=True)
            except PlatformDown as exc:
                problem[:] = [exc]
                return False
            return True

        if not poll.until(answers, wait, interval=0.2):
            raise problem[0]

    def last_readings(self) -> dict[str, datetime]:
        """Every device the query API knows, and the time of its latest stored reading."""
        return {
            item["device_id"]: datetime.fromisoformat(item["last_ts"])
            for item in self._pages("/query/v1/devices", "devices")
        }

    def anomalies(self, device: str, metric: str) -> set[str]:
        """The ids of the readings the query API lists as anomalies of `device`'s `metric`."""
        items = self._pages(f"/query/v1/devices/{device}/anomalies", "anomalies", metric=metric)
        return {item["reading_event_id"] for item in items}

    def command(self, command_id: str) -> dict[str, Any] | None:
        """The command as the actions API has it (None while it does not know it)."""
        command: dict[str, Any] | None = self._get(
            f"/actions/v1/commands/{command_id}", missing_ok=True
        )
        return command

    def close(self) -> None:
        self.http.close()

    def _pages(self, path: str, field: str, **params: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._get(
                path,
                missing_ok=True,
                limit=PAGE,
                **params,
                **({"cursor": cursor} if cursor else {}),
            )
            if page is None:  # a device the query API does not know yet
                return
            yield from page[field]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def _get(self, path: str, *, missing_ok: bool = False, **params: Any) -> Any:
        url = self.base + path
        try:
            response = self.http.get(url, params=params, timeout=TIMEOUT)
        except requests.RequestException:
            raise PlatformDown(f"nothing answers at {self.base} (the gateway)") from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PlatformDown(f"GET {path} answers {response.status_code} at {self.base}")
        return response.json()
