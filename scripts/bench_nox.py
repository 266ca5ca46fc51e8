#!/usr/bin/env python3
"""Durations of the Nox cells: cold (a new venv; Go's build cache as it is), warm (venv reused,
installs skipped, `--force` so the tests do run) and unchanged (the kept result answers).
Then `nox -t quick` warm and unchanged. Run from the repository, with no CI variable set:
    ./scripts/bootstrap python scripts/bench_nox.py [cell ...]
Goals: `nox -t quick` warm <= 20 s; e2e warm <= 90 s; lint warm <= 15 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {key: value for key, value in os.environ.items() if key not in ("CI", "NOX_FORCE")}


def timed(*args: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nox", *args], cwd=ROOT, env=ENV, capture_output=True, check=False
    )
    return time.perf_counter() - t0, done.returncode


def cells() -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [cell["session"] for cell in json.loads(listed)]


def row(label: str, *runs: tuple[float, int] | None) -> str:
    failed = " (FAILED)" if any(run and run[1] != 0 for run in runs) else ""
    shown = [f"{run[0]:.1f} s" if run else "—" for run in runs]
    return f"| {label} | {' | '.join(shown)}{failed} |"


def main(chosen: list[str]) -> None:
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    print("| cell | cold (new venv) | warm (--force) | unchanged (kept) |")
    print("|---|---|---|---|")
    for cell in chosen or cells():
        cold = timed("--reuse-venv=no", "-s", cell, "--", "--force")
        warm = timed("-s", cell, "--", "--force")
        kept = timed("-s", cell)
        print(row(cell, cold, warm, kept), flush=True)
    if not chosen:
        quick = (timed("-t", "quick", "--", "--force"), timed("-t", "quick"))
        print(row("`nox -t quick`", None, *quick))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main(sys.argv[1:])
