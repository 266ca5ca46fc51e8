#!/usr/bin/env python3
"""Benchmark what tracing costs HTTP ingest: the Go monolith (app.Serve) on a private native
PostgreSQL, Kafka and Mosquitto, with tracing off, on (every trace sampled, spans posted as
Zipkin v2 JSON to an intake) and on with a viewer that takes 3 s per POST, in the same run,
rounds interleaved (services/platform/integration/tracing_bench_test.go). Prints readings/s,
each setup's ratio to off and /readyz's span counts; the infrastructure is stopped and its
data deleted afterwards, even on failure or Ctrl-C.

    .venv/bin/python scripts/bench_tracing.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devenv import backends
from devenv.settings import load
from devenv.stack import isolated_env
from scripts.bench_up import machine

PLATFORM = Path(__file__).resolve().parent.parent / "services" / "platform"
TEST = ["go", "test", "-tags", "integration,bench", "-run", "TestBenchIngestTracing", "-v",
        "-count=1", "-timeout", "10m", "./integration/"]  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_env(Path(tmp) / "state")
        settings = load(env_file=Path(tmp) / "none", environ=env)
        backend = backends.select(settings, print)
        try:
            backend.up(["db", "bus", "mqtt"])
            run = subprocess.run(TEST, cwd=PLATFORM, env={**os.environ, **settings.as_env()},
                                 capture_output=True, text=True, check=False)  # fmt: skip
        finally:
            backend.down([])
            backend.remove_data()
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("BENCH ")]
    if run.returncode != 0 or not lines:
        print(run.stdout[-4000:], run.stderr[-2000:], sep="\n")
        return run.returncode or 1
    print(f"machine: {machine()}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
