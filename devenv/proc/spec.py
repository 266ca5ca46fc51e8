"""What the supervisor runs: a process spec (JSON-able for the detached mode)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv.proc import probe


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process. `env` is added to the supervisor's own environment. Ready when
    `ready_url` and each of `also_ready` answer 2xx, or `ready_check()` is true, or (none
    given) once started. `ready_pid`: those URLs answer `{"pid": N}`, and only this process
    or one of its workers counts (not another one that holds the port)."""

    name: str
    argv: tuple[str, ...]
    log_file: Path
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    also_ready: tuple[str, ...] = ()
    ready_pid: bool = False
    ready_check: Callable[[], bool] | None = field(default=None, compare=False)
    ready_timeout: float = 30.0

    def readiness(self, pid: int) -> probe.Probe:
        """The probe of this spec's process `pid`: every URL it names, or its callable."""
        if self.ready_check is not None:
            return self.ready_check
        urls = [url for url in (self.ready_url, *self.also_ready) if url]
        checks = [probe.http(url, started=pid if self.ready_pid else None) for url in urls]
        return lambda: all(check() for check in checks)

    def to_json(self) -> dict[str, Any]:
        if self.ready_check is not None:
            raise ValueError(f"{self.name}: a callable probe cannot run detached; use ready_url")
        return {
            "name": self.name,
            "argv": list(self.argv),
            "log_file": str(self.log_file),
            "cwd": str(self.cwd) if self.cwd else None,
            "env": dict(self.env),
            "ready_url": self.ready_url,
            "also_ready": list(self.also_ready),
            "ready_pid": self.ready_pid,
            "ready_timeout": self.ready_timeout,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessSpec:
        return cls(
            name=data["name"],
            argv=tuple(data["argv"]),
            log_file=Path(data["log_file"]),
            cwd=Path(data["cwd"]) if data.get("cwd") else None,
            env=dict(data.get("env") or {}),
            ready_url=data.get("ready_url"),
            also_ready=tuple(data.get("also_ready") or ()),
            ready_pid=bool(data.get("ready_pid")),
            ready_timeout=float(data.get("ready_timeout", 30.0)),
        )
