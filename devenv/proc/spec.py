"""What the supervisor runs: one process spec for infrastructure and apps alike, JSON-able for
the detached mode. The native infrastructure recipes (`Recipe.spec`) and the app definitions
(`devenv.apps.specs`) both produce it; `Supervisor` runs it, in the foreground or detached."""

from __future__ import annotations

import graphlib
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from devenv.proc import probe, readiness


@dataclass(frozen=True)
class RestartPolicy:
    """After any exit that the supervisor did not ask for, start the process again: `initial`
    seconds later, doubling up to `longest` while it keeps crashing (one that ran for `longest`
    counts as healthy again). `give_up_after` failed starts in a row before it was ever ready
    end the run instead: a start-up that cannot work (a bad setting, corrupt data) would only
    fail again. Once it has been ready, a crash loop is retried until the next good start."""

    # Docker's policy for the same rule (compose.yaml `restart:`, held by a unit test): start
    # again after any exit, until we stop it. Docker's own backoff starts at 0.1 s.
    COMPOSE: ClassVar[str] = "unless-stopped"

    initial: float = 1.0
    longest: float = 30.0
    give_up_after: int = 3

    def delay(self, crashes: int) -> float:
        """The wait before the restart that follows crash number `crashes` (from 1)."""
        return float(min(self.initial * 2 ** (crashes - 1), self.longest))


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process. `env` is added to the supervisor's own environment; `user`
    (when the supervisor is root) is who it runs as. Ready when every check of `ready` passes
    (`readiness`), or `ready_check()` is true (in-process only: a callable cannot go detached),
    or, with neither, once started. `depends_on`: names of processes of the same run that
    must be ready before its first start; a name the run does not start is the caller's to
    bring up first (`inv run` starts the infrastructure before the apps). Stopped with
    `stop_signal`, to the whole process group or, with `leader_only`, to the leader alone
    (servers such as PostgreSQL stop their workers in order), then SIGKILL after the
    supervisor's stop timeout."""

    name: str
    argv: tuple[str, ...]
    log_file: Path
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    ready: tuple[readiness.Check, ...] = ()
    ready_check: Callable[[], bool] | None = field(default=None, compare=False)
    ready_timeout: float = 30.0
    depends_on: tuple[str, ...] = ()
    restart: RestartPolicy = RestartPolicy()
    stop_signal: signal.Signals = signal.SIGTERM
    leader_only: bool = False

    def readiness(self, pid: int) -> probe.Probe:
        """The probe of this spec's process `pid`."""
        if self.ready_check is not None:
            return self.ready_check
        return readiness.all_of(self.ready, pid)

    def to_json(self) -> dict[str, Any]:
        if self.ready_check is not None:
            raise ValueError(f"{self.name}: a callable probe cannot run detached; use ready")
        return {
            "name": self.name,
            "argv": list(self.argv),
            "log_file": str(self.log_file),
            "cwd": str(self.cwd) if self.cwd else None,
            "env": dict(self.env),
            "user": self.user,
            "ready": [readiness.to_json(check) for check in self.ready],
            "ready_timeout": self.ready_timeout,
            "depends_on": list(self.depends_on),
            "restart": {
                "initial": self.restart.initial,
                "longest": self.restart.longest,
                "give_up_after": self.restart.give_up_after,
            },
            "stop_signal": self.stop_signal.name,
            "leader_only": self.leader_only,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessSpec:
        return cls(
            name=data["name"],
            argv=tuple(data["argv"]),
            log_file=Path(data["log_file"]),
            cwd=Path(data["cwd"]) if data.get("cwd") else None,
            env=dict(data.get("env") or {}),
            user=data.get("user"),
            ready=tuple(readiness.from_json(check) for check in data.get("ready") or ()),
            ready_timeout=float(data.get("ready_timeout", 30.0)),
            depends_on=tuple(data.get("depends_on") or ()),
            restart=RestartPolicy(**data.get("restart", {})),
            stop_signal=signal.Signals[data.get("stop_signal", "SIGTERM")],
            leader_only=bool(data.get("leader_only")),
        )


def check_run(specs: Sequence[ProcessSpec]) -> None:
    """Raise ValueError unless `specs` can run together: unique names, no dependency cycle."""
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"process names must be unique: {names}")
    order = {s.name: [d for d in s.depends_on if d in names] for s in specs}
    try:
        tuple(graphlib.TopologicalSorter(order).static_order())
    except graphlib.CycleError as exc:
        raise ValueError(f"processes depend on each other in a cycle: {exc.args[1]}") from None
