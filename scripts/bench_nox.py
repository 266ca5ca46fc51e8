#!/usr/bin/env python3
"""Durations of the Nox sessions, cold (new venvs) and warm (`-R`: venvs reused, installs
skipped). Run from the repository: ./scripts/bootstrap python scripts/bench_nox.py [session ...]
Goals (warm): e2e <= 90 s, lint <= 15 s."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ["lint", "unit", "component", "contract", "integration", "e2e"]


def timed(*args: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    code = subprocess.run(
        [sys.executable, "-m", "nox", *args], cwd=ROOT, capture_output=True, check=False
    )
    return time.perf_counter() - t0, code.returncode


def main(sessions: list[str]) -> None:
    print("| session | cold (new venv) | warm (-R) |")
    print("|---|---|---|")
    for name in sessions:
        shutil.rmtree(ROOT / ".nox" / name, ignore_errors=True)
        cold, cold_code = timed("-s", name)
        warm, warm_code = timed("-R", "-s", name)
        flag = "" if cold_code == warm_code == 0 else " (FAILED)"
        print(f"| {name} | {cold:.0f} s | {warm:.0f} s{flag} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or SESSIONS)
