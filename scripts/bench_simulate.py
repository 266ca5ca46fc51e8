#!/usr/bin/env python3
"""Benchmark: time to the first acknowledged command of a fresh `inv run --simulate`.

Each run starts `inv run --simulate` on a new state folder and free ports (native backend:
initdb, Kafka format, the apps built incrementally), reads its output until the simulated
devices' count shows an acknowledged command, then Ctrl-C and `inv clean --yes`. Prints, per
run and as median / max over N runs (default 3): apps ready, and the first acknowledged
command after the start of the command and after the first reading (the simulator's summary).
Run: ./scripts/bootstrap python scripts/bench_simulate.py [runs]
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devenv.settings import REPO_ROOT
from devenv.stack import isolated_env

INV = [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT)]
DEADLINE = 180.0


def one_run(state: Path) -> tuple[float, float, float]:
    """Apps ready, devices started, first command acknowledged after the first reading (s)."""
    env = {**os.environ, **isolated_env(state)}
    started = time.monotonic()
    run = subprocess.Popen([*INV, "run", "--simulate"], env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert run.stdout is not None
    ready = devices = None
    try:
        for line in run.stdout:
            now = time.monotonic() - started
            if ready is None and "answers through the gateway" in line:
                ready = now
            if devices is None and "| simulating " in line:
                devices = now
            if re.search(r"\| .* acks [1-9]", line) or now > DEADLINE:
                break
        run.send_signal(signal.SIGINT)
        rest, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
        subprocess.run([*INV, "clean", "--yes"], env=env, capture_output=True, check=False)
    loop = re.search(r"first command acknowledged ([\d.]+) s after the first reading", rest)
    if ready is None or devices is None or loop is None:
        raise SystemExit(f"no acknowledged command within {DEADLINE:g} s:\n{rest}")
    return ready, devices, float(loop.group(1))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    totals, loops = [], []
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        for n in range(runs):
            ready, devices, loop = one_run(Path(tmp) / f"state-{n}")
            totals.append(devices + loop)
            loops.append(loop)
            print(f"run {n + 1}: apps ready {ready:.1f} s, first acknowledged command "
                  f"{devices + loop:.1f} s after `inv run --simulate`, {loop:.1f} s after the "
                  "first reading")  # fmt: skip
    after_start = f"{statistics.median(totals):.1f} s (max {max(totals):.1f} s)"
    after_reading = f"{statistics.median(loops):.1f} s (max {max(loops):.1f} s)"
    print(f"median {after_start} after the start; {after_reading} after the first reading")


if __name__ == "__main__":
    main()
