#!/usr/bin/env python3
"""Benchmark `POST /v1/score` of the AI inference service with 256-point windows.

Starts the service (`python -m ai_inference`, the entry point the supervisor runs) on a free
loopback port with AI_INFERENCE_WORKERS workers, waits for /healthz, warms it, then for each
concurrency level sends windows over keep-alive connections until --requests are done or
--duration seconds pass, whichever comes first, and prints p50/p99 latency and windows/s.
The server is stopped (SIGTERM to its process group, SIGKILL after 10 s) on every exit path.

The load generator is stdlib-only asyncio on raw sockets with a pre-encoded body, so the
client costs as little CPU as Python allows on a 2-core machine.

    services/ai-inference/.venv/bin/python scripts/bench_inference.py [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICE_DIR = REPO_ROOT / "services" / "ai-inference"
SERVICE_PYTHON = SERVICE_DIR / ".venv" / "bin" / "python"


@dataclass
class Phase:
    concurrency: int
    latencies_ms: list[float]
    errors: int
    elapsed_s: float
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    def line(self) -> str:
        n = len(self.latencies_ms)
        return (
            f"concurrency {self.concurrency:>2}: {n} windows in {self.elapsed_s:.1f} s, "
            f"{self.errors} errors, p50 {self.percentile(0.50):.2f} ms, "
            f"p99 {self.percentile(0.99):.2f} ms, {n / self.elapsed_s:,.0f} windows/s; "
            f"CPU per window: server {1000 * self.server_cpu_s / n:.2f} ms, "
            f"client {1000 * self.client_cpu_s / n:.2f} ms"
        )


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process of the server's process group (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / ticks


def window_body(points: int) -> bytes:
    """A realistic window: a slow wave with jitter around 21 °C and one spike near the end."""
    t0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    values = [21.0 + 0.4 * math.sin(i / 9) + 0.1 * math.cos(i * 1.7) for i in range(points)]
    values[points - 5] = 35.0
    body = {
        "device_id": "bench-001",
        "metric": "temperature",
        "points": [
            {"ts": (t0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"), "value": v}
            for i, v in enumerate(values)
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(python: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_")}
    env |= {
        "AI_INFERENCE_HOST": "127.0.0.1",
        "AI_INFERENCE_PORT": str(port),
        "AI_INFERENCE_WORKERS": str(workers),
        "LOG_LEVEL": "warn",
    }
    print(f"starting {python} -m ai_inference on 127.0.0.1:{port} with {workers} worker(s)")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(python), "-m", "ai_inference"],
            env=env,
            cwd=log.parent,  # no .env of the developer's
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def get(port: int, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll GET /healthz until it answers 200, the server dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited with {proc.returncode} before /healthz answered")
        try:
            if get(port, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"127.0.0.1:{port}/healthz did not answer within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


async def run_phase(
    port: int, body: bytes, concurrency: int, requests: int, duration: float
) -> Phase:
    request = (
        b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    latencies: list[float] = []
    errors = 0
    issued = 0
    started = time.perf_counter()
    deadline = started + duration

    async def connection() -> None:
        nonlocal issued, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while issued < requests and time.perf_counter() < deadline:
                issued += 1
                t0 = time.perf_counter_ns()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append((time.perf_counter_ns() - t0) / 1e6)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Phase(concurrency, latencies, errors, time.perf_counter() - started)


def check_answer(port: int, body: bytes, points: int) -> None:
    """One real answer: every point scored, the planted spike found."""
    status, answer = get(port, "/v1/score", body)
    assert status == 200, answer[:500]
    result = json.loads(answer)
    assert len(result["scores"]) == points, "one score per point"
    assert [a["index"] for a in result["anomalies"]] == [points - 5], result["anomalies"]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_gib:.0f} GiB, "
        f"{platform.system()} {platform.release()}, client Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers (1, the service's default)"
    )
    parser.add_argument(
        "--concurrency", default="1,4,8", help="comma-separated connections per phase (1,4,8)"
    )
    parser.add_argument("--requests", type=int, default=5000, help="windows per phase (5000)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase (30)")
    parser.add_argument("--warmup", type=int, default=500, help="windows sent first (500)")
    parser.add_argument("--points", type=int, default=256, help="points per window (256)")
    parser.add_argument(
        "--python",
        type=Path,
        default=SERVICE_PYTHON if SERVICE_PYTHON.exists() else Path(sys.executable),
        help="interpreter with ai_inference installed (the service's venv)",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    body = window_body(args.points)

    print(machine())
    print(f"load average before the run: {os.getloadavg()[0]:.2f} (1 min)")
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        port = free_port()
        log = Path(tmp) / "ai-inference.log"
        proc = start_server(args.python, port, args.workers, log)
        try:
            wait_healthy(port, proc, timeout=60)
            check_answer(port, body, args.points)
            asyncio.run(run_phase(port, body, max(levels), args.warmup, args.duration))
            print(
                f"{args.points}-point windows ({len(body):,} bytes), at most "
                f"{args.requests} windows or {args.duration:.0f} s per phase, warm-up "
                f"{args.warmup}"
            )
            for level in levels:
                server_before, client_before = group_cpu_seconds(proc.pid), time.process_time()
                phase = asyncio.run(run_phase(port, body, level, args.requests, args.duration))
                phase.server_cpu_s = group_cpu_seconds(proc.pid) - server_before
                phase.client_cpu_s = time.process_time() - client_before
                print(phase.line(), flush=True)
            print(f"load average after the run: {os.getloadavg()[0]:.2f} (1 min)")
        finally:
            stop_server(proc)
            if proc.returncode not in (0, -signal.SIGTERM):
                print(log.read_text()[-2000:], file=sys.stderr)


if __name__ == "__main__":
    main()
