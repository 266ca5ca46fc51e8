"""The supervisor in the background: `inv run --detach`, then `status` and `stop` from any shell.

`start` writes the specs to a JSON file under the state folder and spawns
`python -m devenv.supervisor_detached run --spec <file> --state-dir <dir>`, which is the very
`Supervisor.run` of the foreground (it records its pid file and a status file there).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from devenv import procs
from devenv.supervisor import PID_FILE, STATUS_FILE, ProcessSpec, Supervisor
from devenv.supervisor_console import lines_since

SPEC_FILE = "supervisor.json"
LOG_FILE = "supervisor.log"
_REPO_ROOT = Path(__file__).resolve().parent.parent


class DetachedError(RuntimeError):
    pass


@dataclass(frozen=True)
class AppStatus:
    name: str
    pid: int | None
    uptime: float | None
    ready: bool
    restarts: int
    log_file: Path


@dataclass(frozen=True)
class DetachedStatus:
    pid: int
    apps: list[AppStatus]


def start(
    specs: Sequence[ProcessSpec],
    state_dir: Path,
    *,
    max_start_crashes: int = 3,
    backoff: tuple[float, float] = (1.0, 30.0),
    stop_timeout: float = 5.0,
    timeout: float = 60.0,
) -> DetachedStatus:
    """Start the supervisor in the background and wait until every app is ready. Raises
    DetachedError (with the supervisor's last lines) if it gives up or is already running."""
    state_dir.mkdir(parents=True, exist_ok=True)
    running = status(state_dir)
    if running is not None:
        raise DetachedError(f"already running (supervisor pid {running.pid}); stop it first")
    spec_file = state_dir / SPEC_FILE
    options = {
        "max_start_crashes": max_start_crashes,
        "backoff": list(backoff),
        "stop_timeout": stop_timeout,
    }
    spec_file.write_text(json.dumps({**options, "apps": [s.to_json() for s in specs]}, indent=2))
    log = state_dir / LOG_FILE
    offset = log.stat().st_size if log.exists() else 0
    argv = [sys.executable, "-m", "devenv.supervisor_detached", "run"]
    argv += ["--spec", str(spec_file), "--state-dir", str(state_dir)]
    pythonpath = [str(_REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    proc = procs.spawn(argv, log_file=log, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status(state_dir)
        if current and len(current.apps) == len(specs) and all(a.ready for a in current.apps):
            return current
        if proc.poll() is not None:
            break
        time.sleep(0.05)  # polling interval of the readiness wait, bounded by `deadline`
    if proc.poll() is None:
        stop(state_dir, timeout=stop_timeout + 5)
    tail = "\n".join(f"    {line}" for line in lines_since(log, offset, 20))
    raise DetachedError(f"the detached supervisor did not get every app ready:\n{tail}")


def status(state_dir: Path) -> DetachedStatus | None:
    """What the supervisor recorded, if it is running (None otherwise)."""
    pid = procs.PidFile(state_dir / PID_FILE).running_pid()
    if pid is None:
        return None
    try:
        recorded: dict[str, Any] = json.loads((state_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return DetachedStatus(pid=pid, apps=[])
    now = time.time()
    apps = [
        AppStatus(
            name=name,
            pid=app["pid"],
            uptime=now - app["started_at"] if app["started_at"] else None,
            ready=bool(app["ready"]),
            restarts=int(app["restarts"]),
            log_file=Path(app["log_file"]),
        )
        for name, app in recorded["apps"].items()
    ]
    return DetachedStatus(pid=pid, apps=apps)


def stop(state_dir: Path, timeout: float = 15.0) -> bool:
    """SIGTERM the supervisor, which stops its apps. If it is gone or does not exit within
    `timeout`, stop its group and any recorded app still alive ourselves. True if it ran."""
    current = status(state_dir)
    if current is None:
        _stop_orphans(state_dir)
        procs.PidFile(state_dir / PID_FILE).remove()
        return False
    os.kill(current.pid, signal.SIGTERM)
    if not procs.wait_gone(current.pid, timeout):
        procs.stop_group(current.pid, 5)
        _stop_orphans(state_dir)
        procs.PidFile(state_dir / PID_FILE).remove()
    return True


def _stop_orphans(state_dir: Path) -> None:
    """Apps a killed supervisor left behind, recognised by pid and start time."""
    try:
        recorded: dict[str, Any] = json.loads((state_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return
    for app in recorded["apps"].values():
        if app["pid"] is None:
            continue
        try:
            same = abs(psutil.Process(app["pid"]).create_time() - app["started_at"]) < 2
        except psutil.NoSuchProcess:
            continue
        if same:
            procs.stop_group(app["pid"], 5)
    (state_dir / STATUS_FILE).unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.supervisor_detached")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="supervise the apps of a spec file until signalled")
    run.add_argument("--spec", type=Path, required=True)
    run.add_argument("--state-dir", type=Path, required=True)
    run.add_argument("--echo", action="store_true", help="also echo app lines (foreground use)")
    args = parser.parse_args(argv)
    config = json.loads(args.spec.read_text())
    initial, maximum = config.get("backoff", (1.0, 30.0))
    supervisor = Supervisor(
        [ProcessSpec.from_json(app) for app in config["apps"]],
        echo=args.echo,
        color=False,
        state_dir=args.state_dir,
        max_start_crashes=int(config.get("max_start_crashes", 3)),
        backoff=(float(initial), float(maximum)),
        stop_timeout=float(config.get("stop_timeout", 5.0)),
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
