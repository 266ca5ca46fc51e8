"""What every native component provides to the native backend: how to prepare it, and the
process spec its supervisor runs (`spec`)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devenv.backends.native.needs import Need
from devenv.compose import Component
from devenv.errors import UserError
from devenv.proc import readiness
from devenv.proc.spec import ProcessSpec, RestartPolicy
from devenv.settings import Settings

Say = Callable[[str], None]

# A server that cannot start says why at once: the same data and config would only fail again.
# Once it has served, a crash is restarted with backoff for as long as the stack is up.
RESTART = RestartPolicy(initial=1.0, longest=30.0, give_up_after=1)


class MissingToolError(UserError):
    """A program the component needs is not installed; the message says how to install it."""


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    user: str | None = None


class Recipe:
    """One infrastructure role as a host process. Subclasses fill in the blanks."""

    program = ""  # what actually runs, named in every line (compose names the docker image)
    needs: tuple[Need, ...] = ()  # what must be installed: `inv doctor` and bootstrap ask
    stop_signal: signal.Signals = signal.SIGTERM
    # Servers like PostgreSQL stop their own workers in order when only the leader is told.
    signal_leader_only = False
    restart = RESTART

    def __init__(self, settings: Settings, component: Component, home: Path, cache: Path):
        self.settings = settings
        self.component = component
        self.home = home  # this component's folder under the state dir
        self.cache = cache  # downloaded tools, kept across `inv clean`

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.component.service}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.component.main_port.host_port}"

    def listen_ports(self) -> list[int]:
        raise NotImplementedError

    def prepare(self, say: Say) -> None:
        """Install, initialise, write config: idempotent, and says what it does."""

    def launch(self) -> Launch:
        raise NotImplementedError

    def ready_checks(self) -> tuple[readiness.Check, ...]:
        """The check in the component's own protocol that says it serves."""
        raise NotImplementedError

    def spec(self) -> ProcessSpec:
        """The process its supervisor runs (after `prepare`): ready once the started server
        itself listens on every port it must (not a foreign one that took a port) and
        answers its protocol."""
        launch = self.launch()
        return ProcessSpec(
            name=self.program,
            argv=tuple(launch.argv),
            log_file=self.log_file,
            env=launch.env,
            user=launch.user,
            ready=(readiness.Listening(tuple(self.listen_ports())), *self.ready_checks()),
            ready_timeout=self.settings.UP_TIMEOUT,
            restart=self.restart,
            stop_signal=self.stop_signal,
            leader_only=self.signal_leader_only,
        )

    def after_ready(self, say: Say) -> None:
        """First-start work that needs the server up (e.g. creating the database)."""

    def remove_data(self) -> None:
        """Delete what the component stored (`inv clean`, a test stack's teardown)."""
        data = self.home / "data"
        if data.is_symlink():
            data.unlink()
        elif data.is_dir():
            shutil.rmtree(data)


def require(need: Need) -> str:
    """The absolute path of the program `need` names, or an error saying how to install it."""
    found = need.locate()
    if not found:
        raise MissingToolError(need.missing())
    return found


def unprivileged_user() -> str | None:
    """The OS user servers run as: ourselves, unless we are root (PostgreSQL refuses root)."""
    return "postgres" if os.geteuid() == 0 else None


def current_user() -> str:
    return getpass.getuser()
