#!/usr/bin/env python3
"""Benchmark of the infrastructure lifecycle of a backend (default native), on a private stack.

Prints, over N runs (default 5): first `up` on a fresh state folder (initdb, Kafka format;
docker: a new Compose project, images present), `up` of the whole stack with data present,
each component alone, the no-op `up`, and `down`; then the ratio all-healthy / slowest
component alone (goal <= 1.25).
Run: ./scripts/bootstrap python scripts/bench_up.py [runs] [native|docker]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devenv.backends.docker import DockerBackend
from devenv.backends.native import NativeBackend
from devenv.settings import load
from devenv.stack import isolated_env

ROLES = ("db", "bus", "mqtt", "gateway")
BACKENDS = {"native": NativeBackend, "docker": DockerBackend}


def timed(action: Callable[[list[str]], None], names: list[str]) -> float:
    t0 = time.perf_counter()
    action(names)
    return time.perf_counter() - t0


def summary(label: str, samples: list[float]) -> str:
    return (
        f"| {label:<34} | {statistics.median(samples):7.2f} | {min(samples):7.2f} | "
        f"{max(samples):7.2f} |"
    )


def main(runs: int, name: str) -> None:
    os.environ["COMPOSE_PROJECT_NAME"] = f"bench-up-{os.getpid()}"  # docker: a project of its own
    results: dict[str, list[float]] = {}

    def record(label: str, seconds: float) -> None:
        results.setdefault(label, []).append(seconds)

    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = isolated_env(Path(tmp) / "state")
            settings = load(env_file=Path(tmp) / "none", environ=env)
            backend = BACKENDS[name](settings, say=lambda _: None)
            record("up, fresh state (initdb, format)", timed(backend.up, []))
            record("down", timed(backend.down, []))
            record("up, all four (data present)", timed(backend.up, []))
            record("up when already up (no-op)", timed(backend.up, []))
            backend.down([])
            for role in ROLES:
                record(f"up {role} alone", timed(backend.up, [role]))
                backend.down([role])
            backend.remove_data()  # PostgreSQL's may live outside it; docker: the volumes

    print(f"{name} backend lifecycle, {runs} runs, seconds (median | min | max)")
    print(f"machine: {machine()}\n")
    print("| step                               |  median |     min |     max |")
    print("|------------------------------------|---------|---------|---------|")
    for label, samples in results.items():
        print(summary(label, samples))
    all_up = statistics.median(results["up, all four (data present)"])
    slowest = max(statistics.median(results[f"up {r} alone"]) for r in ROLES)
    print(f"\nall-healthy / slowest component alone = {all_up / slowest:.2f} (goal <= 1.25)")


def machine() -> str:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    models = [ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if "Model name" in ln]
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {models[0] if models else '?'}, {mem:.0f} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 5, sys.argv[2] if len(sys.argv) > 2 else "native"
    )
