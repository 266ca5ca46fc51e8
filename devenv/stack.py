"""The private stacks that test sessions bring up (free ports, their own state folder) and
take down again, even on failure or Ctrl-C."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

from devenv import apps, backends
from devenv.backends.base import Say
from devenv.proc import detached
from devenv.settings import PORT_KEYS, Settings


def free_ports(count: int) -> list[int]:
    """Ports the OS just handed out; held open together so they are distinct."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def isolated_env(state_dir: Path, tracing: bool = False) -> dict[str, str]:
    """Settings of a private native stack: its own state folder and free ports, so it never
    meets a developer's running stack. Without its trace viewer unless `tracing` (a JVM
    more to start: the whole-stack suites, e2e and faults, want their traces)."""
    env = dict(zip(PORT_KEYS, map(str, free_ports(len(PORT_KEYS))), strict=True))
    env.update(STATE_DIR=str(state_dir), INFRA_BACKEND="native", TRACING="on" if tracing else "off")
    return env


@contextlib.contextmanager
def platform_running(settings: Settings, say: Say = print) -> Iterator[None]:
    """A whole private stack: infrastructure, the apps under the detached supervisor (the
    monolith migrates the database as it starts); everything stopped and its data deleted
    afterwards, even on failure or Ctrl-C. Logs stay in STATE_DIR for whoever reads them next."""
    backend = backends.select(settings, say)
    try:
        backend.remove_data()  # what a killed run left behind (a Compose project's volumes)
        backend.up([])
        for line in apps.build_all():
            say(line)
        detached.start(apps.specs(settings), apps.supervisor_dir(settings))
        say("apps ready")
        yield
    finally:
        apps.stop(settings)
        backend.down([])
        backend.remove_data()
        say(f"stack stopped, its data deleted; logs under {settings.state_dir}")
