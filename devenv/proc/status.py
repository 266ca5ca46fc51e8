"""The status file a supervisor shares with other shells (`inv status`, `inv down`): itself
and each process by kernel identity, whether it is ready, how often it was restarted and how
it last exited, how to stop it, its log file. No environment, so no secret, is ever written
there. A supervisor that gave up leaves the file behind with why (`failed`), for the command
that started it to read (`detached.start`)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from devenv.proc import group
from devenv.proc.record import Identity, Record, write_atomic
from devenv.proc.spec import ProcessSpec

STATUS_FILE = "status.json"


def entry(
    spec: ProcessSpec,
    identity: Identity | None,
    *,
    started_at: float | None,
    ready: bool,
    restarts: int,
    last_exit: tuple[int, float] | None,
) -> dict[str, Any]:
    """One process as the file records it: `identity` None while it is not running."""
    return {
        "identity": identity.as_json() if identity else None,
        "started_at": started_at,
        "ready": ready,
        "restarts": restarts,
        "last_exit": {"code": last_exit[0], "at": last_exit[1]} if last_exit else None,
        "log_file": str(spec.log_file),
        "stop_signal": spec.stop_signal.name,
        "leader_only": spec.leader_only,
    }


def write(
    state_dir: Path, apps: dict[str, dict[str, Any]], failed: dict[str, str] | None = None
) -> None:
    me = Identity.of(os.getpid())
    recorded: dict[str, Any] = {"supervisor": me.as_json() if me else None, "apps": apps}
    if failed is not None:
        recorded["failed"] = failed
    write_atomic(state_dir / STATUS_FILE, json.dumps(recorded, indent=2))


def read(state_dir: Path) -> dict[str, Any] | None:
    return Record(state_dir / STATUS_FILE).read()


def remove(state_dir: Path) -> None:
    (state_dir / STATUS_FILE).unlink(missing_ok=True)


def describe_exit(code: int) -> str:
    """`exited with code 3`, or `killed by SIGKILL` (Popen's negative return codes)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `2h10m`: an uptime, or how long ago something happened."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def stop_orphans(state_dir: Path, timeout: float) -> list[str]:
    """Stop the processes a supervisor killed with -9 left running (recognised by kernel
    identity, never by pid alone), each the way its spec says; one line per process."""
    recorded = read(state_dir)
    if recorded is None:
        return []
    said = []
    for name, app in recorded.get("apps", {}).items():
        identity = Identity.from_json(app.get("identity"))
        if identity is not None and identity.alive():
            group.stop_group(
                identity.pid,
                timeout,
                first_signal=signal.Signals[app.get("stop_signal", "SIGTERM")],
                leader_only=bool(app.get("leader_only")),
            )
            said.append(f"stopped {name} (pid {identity.pid}), left running by a killed supervisor")
    remove(state_dir)
    return said
