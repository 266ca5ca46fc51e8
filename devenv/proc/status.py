"""The status file a supervisor shares with other shells (`inv status`, `inv down`): itself
and each app by kernel identity, whether it is ready, its log file. No environment, so no
secret, is ever written there."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from devenv.proc import group
from devenv.proc.record import Identity, Record, write_atomic

STATUS_FILE = "status.json"


def write(state_dir: Path, apps: dict[str, dict[str, Any]]) -> None:
    me = Identity.of(os.getpid())
    text = json.dumps({"supervisor": me.as_json() if me else None, "apps": apps}, indent=2)
    write_atomic(state_dir / STATUS_FILE, text)


def read(state_dir: Path) -> dict[str, Any] | None:
    return Record(state_dir / STATUS_FILE).read()


def remove(state_dir: Path) -> None:
    (state_dir / STATUS_FILE).unlink(missing_ok=True)


def stop_orphans(state_dir: Path, timeout: float) -> list[str]:
    """Stop the apps a supervisor killed with -9 left running (recognised by kernel identity,
    never by pid alone); one line per app stopped."""
    recorded = read(state_dir)
    if recorded is None:
        return []
    said = []
    for name, app in recorded.get("apps", {}).items():
        identity = Identity.from_json(app.get("identity"))
        if identity is not None and identity.alive():
            group.stop_group(identity.pid, timeout)
            said.append(f"stopped {name} (pid {identity.pid}), left running by a killed supervisor")
    remove(state_dir)
    return said
