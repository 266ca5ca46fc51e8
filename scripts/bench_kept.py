#!/usr/bin/env python3
"""`nox -t quick` wall time as a developer meets it: nothing changed, after a one-line edit to
a Go file, after a one-line edit to a devenv module (each edit undone after its run, so the
next round starts from the kept passes). Rounds alternate between the checkouts given, so a
before/after pair meets the same load:
    ./scripts/bootstrap python scripts/bench_kept.py [CHECKOUT ...] [--rounds N]
Each CHECKOUT (default: this one) needs its own bootstrapped .venv; run with no CI variable."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {key: value for key, value in os.environ.items() if key not in ("CI", "NOX_FORCE")}
GO_FILE = "services/platform/internal/pause/pause.go"  # imported by the relays and consumers
DEVENV_FILE = "devenv/results.py"


def quick(checkout: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-m", "nox", "-t", "quick"],
        cwd=checkout, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"nox -t quick failed in {checkout}:\n{done.stdout[-3000:]}")
    return time.perf_counter() - t0


def go_line(text: str) -> str:
    return f"// bench edit {uuid.uuid4().hex}\n{text}"  # joins the package comment: gofmt-clean


def python_line(text: str) -> str:
    return f"# bench edit {uuid.uuid4().hex}\n{text}"  # above the docstring: ruff-clean


def edited(checkout: Path, name: str, edit: Callable[[str], str]) -> float:
    """`nox -t quick` after a one-line edit of `name`; the file is restored afterwards."""
    path = checkout / name
    original = path.read_text()
    path.write_text(edit(original))
    try:
        return quick(checkout)
    finally:
        path.write_text(original)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkouts", nargs="*", type=Path, default=[ROOT])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    for checkout in args.checkouts:
        quick(checkout)  # every quick cell passed and kept before the first round
    scenarios = {
        "nothing changed": quick,
        f"one-line edit to {GO_FILE}": lambda c: edited(c, GO_FILE, go_line),
        f"one-line edit to {DEVENV_FILE}": lambda c: edited(c, DEVENV_FILE, python_line),
    }
    times: dict[tuple[Path, str], list[float]] = {}
    for _ in range(args.rounds):
        for scenario, run in scenarios.items():
            for checkout in args.checkouts:
                times.setdefault((checkout, scenario), []).append(run(checkout))
    print("| checkout | `nox -t quick` after | runs | median |")
    print("|---|---|---|---|")
    for (checkout, scenario), runs in times.items():
        shown = ", ".join(f"{t:.1f}" for t in runs)
        print(f"| {checkout.name} | {scenario} | {shown} s | {statistics.median(runs):.1f} s |")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
