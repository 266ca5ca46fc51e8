"""Shared test helpers: isolated settings so tests never touch a developer's running stack."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv import settings

PORT_KEYS = sorted(k for k in settings.KNOWN_KEYS if k.endswith("_PORT"))


def free_ports(count: int) -> list[int]:
    """Ports the OS just handed out; held open together so they are distinct."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def isolated_env(state_dir: Path) -> dict[str, str]:
    """Settings for a private stack: its own state folder and its own free ports."""
    env = dict(zip(PORT_KEYS, map(str, free_ports(len(PORT_KEYS))), strict=True))
    env.update(STATE_DIR=str(state_dir), INFRA_BACKEND="native", UP_TIMEOUT="90")
    return env


@pytest.fixture
def no_env_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "absent.env"
