#!/usr/bin/env python3
"""Benchmark of the native infrastructure's supervisors, on a private stack: the memory of the
four per-component supervisors beside one supervisor running all four specs (the other shape),
the time to healthy of both shapes, and the time from a kill -9 of each server to healthy
again, with nothing typed (kills in a row: the backoff shows). Prints figures; asserts nothing.
Run: ./scripts/bootstrap python scripts/bench_supervisors.py [kills per component, default 3]
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devenv import poll
from devenv.backends.native import NativeBackend
from devenv.proc import detached, group
from devenv.settings import load
from devenv.stack import isolated_env


def memory(pid: int) -> tuple[float, float, float]:
    """RSS, PSS, USS in MiB."""
    info = psutil.Process(pid).memory_full_info()
    return info.rss / 2**20, info.pss / 2**20, info.uss / 2**20


def main(kills: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load(env_file=Path(tmp) / "none", environ=isolated_env(Path(tmp) / "state"))
        backend = NativeBackend(settings, say=lambda _: None)
        recipes = list(backend.recipes.values())
        try:
            backend.up([])
            print(
                f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
            )
            print()
            print("| supervisor of | RSS MiB | PSS MiB | USS MiB | its server's RSS MiB |")
            print("|---------------|---------|---------|---------|----------------------|")
            total = [0.0, 0.0, 0.0]
            for recipe in recipes:
                running = detached.status(recipe.home)
                assert running is not None and running.apps[0].pid is not None
                sizes = memory(running.pid)
                total = [a + b for a, b in zip(total, sizes, strict=True)]
                server = memory(running.apps[0].pid)[0]
                print(f"| {recipe.program:<13} | " + " | ".join(f"{v:7.1f}" for v in sizes)
                      + f" | {server:20.1f} |")  # fmt: skip
            print("| all four      | " + " | ".join(f"{v:7.1f}" for v in total) + " |")

            # Kills in a row: each restart waits twice as long as the one before (1 s, 2 s,
            # 4 s: the backoff), until the server has run for the policy's longest delay.
            print(f"\nkill -9 of the server's group -> healthy again, seconds, {kills} in a row")
            print("| component  | " + " | ".join(f"kill {n + 1}" for n in range(kills)) + " |")
            print("|------------|" + "--------|" * kills)
            for recipe in recipes:
                samples = [heal(recipe.home) for _ in range(kills)]
                print(
                    f"| {recipe.program:<10} | " + " | ".join(f"{v:6.2f}" for v in samples) + " |"
                )
            backend.down([])

            # The other shape: one supervisor for all four (prepared already).
            together = Path(tmp) / "state" / "one-supervisor"
            t0 = time.perf_counter()
            one = detached.start([r.spec() for r in recipes], together, timeout=120)
            took = time.perf_counter() - t0
            shown = " / ".join(f"{v:.1f}" for v in memory(one.pid))
            print(
                f"\none supervisor running all four: ready in {took:.2f}s, RSS/PSS/USS {shown} MiB"
            )
            detached.stop(together)
        finally:
            backend.down([])
            backend.remove_data()


def heal(home: Path) -> float:
    running = detached.status(home)
    assert running is not None
    killed = running.apps[0].pid
    assert killed is not None
    group.stop_group(killed, 5, first_signal=signal.SIGKILL)
    t0 = time.perf_counter()

    def healed() -> bool:
        now = detached.status(home)
        return bool(now and now.apps[0].ready and now.apps[0].pid not in (None, killed))

    assert poll.until(healed, 120, interval=0.02), f"{home} did not heal"
    return time.perf_counter() - t0


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
