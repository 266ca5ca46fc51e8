"""What every infrastructure backend gives its callers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from devenv.errors import UserError
from devenv.proc.status import duration

Say = Callable[[str], None]


class InfraError(UserError):
    """A failure the user can act on; the message says what and how."""


@dataclass(frozen=True)
class ComponentStatus:
    service: str
    role: str
    backend: str
    state: str  # running | restarting | orphan | stopped | stale | exited | ...
    healthy: bool | None
    address: str
    ident: str  # pid or container id
    uptime: float | None  # seconds
    pid: int | None = None  # the process (group leader) when it runs natively
    ports: tuple[int, ...] = ()  # host ports its container publishes (docker)
    cpu: float | None = None  # % of one core, its whole process tree (devenv.usage)
    memory: int | None = None  # bytes, its whole process tree (devenv.usage)
    restarts: int | None = None  # by its supervisor (None: nothing counts them)
    last_exit: str | None = None  # how and when it last exited (`SIGKILL 12s ago`)

    def line(self) -> str:
        health = {True: "healthy", False: "UNHEALTHY", None: "-"}[self.healthy]
        up = duration(self.uptime) if self.uptime is not None else "-"
        restarts = "-" if self.restarts is None else str(self.restarts)
        return (
            f"{self.role:<8} {self.service:<10} {self.backend:<7} {self.state:<8} "
            f"{health:<9} {self.address:<24} {self.ident:<14} {_percent(self.cpu):>6} "
            f"{_size(self.memory):>6} {up:<7} {restarts:<8} {self.last_exit or '-'}"
        )


STATUS_HEADER = (
    f"{'ROLE':<8} {'SERVICE':<10} {'BACKEND':<7} {'STATE':<8} {'HEALTH':<9} "
    f"{'ADDRESS':<24} {'PID/CONTAINER':<14} {'CPU':>6} {'MEM':>6} {'UPTIME':<7} RESTARTS LAST EXIT"
)


class Backend(Protocol):
    name: str

    def up(self, names: list[str]) -> None: ...
    def down(self, names: list[str]) -> None: ...
    def status(self) -> list[ComponentStatus]: ...
    def logs(self, name: str | None, follow: bool, lines: int) -> None: ...
    def clean(self) -> None: ...
    def remove_data(self) -> None: ...
    # Addresses of this host, besides loopback, where the backend's gateway sends to the apps.
    def upstream_hosts(self) -> list[str]: ...


def _percent(cpu: float | None) -> str:
    return "-" if cpu is None else f"{cpu:.1f}%"


def _size(memory: int | None) -> str:
    """`8.1M`, `342M`, `1.50G`: binary units, three figures."""
    if memory is None:
        return "-"
    mib = memory / 2**20
    if mib < 10:
        return f"{mib:.1f}M"
    return f"{mib:.0f}M" if mib < 1000 else f"{mib / 1024:.2f}G"
