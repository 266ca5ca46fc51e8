#!/usr/bin/env python3
"""`inv down` with the whole stack and the apps running: how long, and what is left.

Each run starts a private stack (own ports, own state folder): the four infrastructure
components, the Go monolith and the AI service under the detached supervisor.
Then it times `inv down` as a user runs it (a new `inv` process) and checks that nothing is
left: no process of the stack, no port held, no PostgreSQL socket. Goal: <= 2 s.
Run: ./scripts/bootstrap python scripts/bench_down.py [runs]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devenv import apps, backends, ports
from devenv.proc import detached
from devenv.settings import PORT_KEYS, load
from scripts.bench_up import machine
from tests.support.stack import Stack


def one_run(tmp: Path) -> tuple[float, list[str]]:
    stack = Stack(tmp / "state")
    settings = load(env_file=tmp / "none", environ=stack.env)
    backend = backends.select(settings, say=lambda _: None)
    backend.up([])
    apps.build_all()
    detached.start(apps.specs(settings), apps.supervisor_dir(settings))
    sockets = list(settings.state_dir.rglob(".s.PGSQL.*")) + list(
        (settings.state_dir / "native" / "postgres" / "data").resolve().parent.glob(".s.PGSQL.*")
    )
    t0 = time.perf_counter()
    stack.inv("down")
    took = time.perf_counter() - t0
    left = [f"process {p.pid} {p.name()}" for p in stack.our_processes()]
    left += [
        f"port {stack.port(key)} ({key})" for key in PORT_KEYS if not ports.is_free(stack.port(key))
    ]
    left += [f"socket {s}" for s in sockets if s.exists()]
    backend.remove_data()
    return took, left


def main(runs: int) -> None:
    samples = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-down-") as tmp:
            took, left = one_run(Path(tmp))
        samples.append(took)
        print(f"run {i + 1}: inv down {took:.2f}s, left behind: {', '.join(left) or 'nothing'}")
    median = statistics.median(samples)
    print(f"\n`inv down`, full stack and apps, {runs} runs: median {median:.2f}s, "
          f"min {min(samples):.2f}s, max {max(samples):.2f}s (goal <= 2 s)")  # fmt: skip
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
