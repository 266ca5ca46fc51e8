"""Reload latency: from writing a source file to the first HTTP answer carrying the new text.

`--monolith`: the real Go monolith instead (services/platform, each tool on its own copy, its
own ports and consumer groups, on the infrastructure of your `.env`, which it starts if
needed): from appending a declaration to ingestion/http.go to the first answer of the new binary
(a new listening socket on the ingestion port answering /healthz), ours beside air with its
`air init` defaults (only the package and `serve` named), then where our time goes: stamping
(git), compile, link (timed through -toolexec), and stop + start + ready.

On the test fixtures (tests/fixtures/goapp, tests/fixtures/pyapp.py), each in its own copy:
our reloader (devenv.proc.reload) on the Go server, on the Python app restarted and on a Python
app with a slow-to-import dependency under `reload.preforked`, and `air` on the same Go
edit with its default settings and with its delay set to our debounce. All run at once and
are measured in turn, iteration by iteration, so a busy machine slows each of them alike.
Prints p50/p95 and the ratios; `--idle N` first measures the CPU our idle watcher costs.

    .venv/bin/python scripts/bench_reload.py [--iterations 20] [--idle 60] [--air PATH]
    .venv/bin/python scripts/bench_reload.py --monolith [--iterations 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devenv import build  # noqa: E402
from devenv.proc import group, reload  # noqa: E402
from devenv.proc.readiness import Http  # noqa: E402
from devenv.proc.supervisor import ProcessSpec  # noqa: E402
from devenv.stack import free_ports  # noqa: E402
from scripts.bench_reload_monolith import bench_monolith  # noqa: E402
from tests.support.reload_bench import Runner, measure, pct, supervised  # noqa: E402
from tests.support.running import FIXTURES, PYAPP, get  # noqa: E402
from tests.support.wait import eventually  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--idle", type=float, default=0, metavar="SECONDS")
    parser.add_argument("--air", default=shutil.which("air") or str(Path.home() / "go/bin/air"))
    parser.add_argument("--monolith", action="store_true", help="the real Go monolith")
    args = parser.parse_args()
    if args.monolith:
        return bench_monolith(args.iterations, args.air)
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        runners = {
            "devenv go": stack.enter_context(devenv_go(work / "go")),
            "devenv python": stack.enter_context(devenv_python(work / "python")),
            "devenv py forked": stack.enter_context(devenv_preforked(work / "preforked")),
        }
        if Path(args.air).exists():
            delay = str(reload.QUIET_MS)
            runners["air default"] = stack.enter_context(air(work / "air", args.air, []))
            runners[f"air delay={delay}"] = stack.enter_context(
                air(work / "air-fast", args.air, ["--build.delay", delay])
            )
        else:
            print(f"air not found at {args.air}: go install github.com/air-verse/air@latest")
        if args.idle:
            measure_idle(args.idle)
        samples: dict[str, list[float]] = {name: [] for name in runners}
        for i in range(args.iterations):
            names = list(runners)
            for name in names[i % len(names) :] + names[: i % len(names)]:
                samples[name].append(measure(runners[name], f"iteration {i}"))
        breakdown("devenv go", runners["devenv go"].history or [])
        breakdown("devenv python", runners["devenv python"].history or [])
        breakdown("devenv py forked", runners["devenv py forked"].history or [])
    print(f"\nfile write -> first answer with the new text, {args.iterations} iterations")
    for name, values in samples.items():
        print(f"  {name:<16} p50 {pct(values, 50):.3f}s  p95 {pct(values, 95):.3f}s")
    ours = pct(samples["devenv go"], 50)
    for name in (n for n in samples if n.startswith("air")):
        print(f"  devenv go p50 / {name} p50 = {ours / pct(samples[name], 50):.2f}")
    return 0


@contextmanager
def devenv_go(work: Path) -> Iterator[Runner]:
    module = _copy_goapp(work)
    binary = work / "bin" / "goapp"
    build.go_build(module, ".", binary, ldflags_vars={}, echo=None)
    (port,) = free_ports(1)
    spec = ProcessSpec(
        "app",
        (str(binary), "-addr", f"127.0.0.1:{port}"),
        work / "app.log",
        ready=(Http(f"http://127.0.0.1:{port}/readyz"),),
    )
    target = reload.GoReload("app", module, ".", work / "reload")
    with supervised(spec, target) as reloader:
        yield Runner(port, lambda text: _say_go(module, text), reloader.history)


@contextmanager
def devenv_python(work: Path) -> Iterator[Runner]:
    source = work / "src"
    source.mkdir(parents=True)
    message = source / "message.txt"
    message.write_text("start")
    (port,) = free_ports(1)
    pyapp = (sys.executable, str(PYAPP), "--port", str(port))
    spec = ProcessSpec(
        "ai",
        (*pyapp, "--message-file", str(message)),
        work / "ai.log",
        ready=(Http(f"http://127.0.0.1:{port}/healthz"),),
    )
    with supervised(spec, reload.PythonReload("ai", (source,))) as reloader:
        yield Runner(port, message.write_text, reloader.history)


@contextmanager
def devenv_preforked(work: Path) -> Iterator[Runner]:
    """The zapp fixture (its dependency takes 1.5 s to import) under the zygote."""
    app = work / "pyzapp"
    shutil.copytree(FIXTURES / "pyzapp", app)
    (port,) = free_ports(1)
    spec = ProcessSpec(
        "zapp",
        (sys.executable, "-m", "zapp", "--port", str(port)),
        work / "zapp.log",
        cwd=app,
        ready=(Http(f"http://127.0.0.1:{port}/healthz"),),
    )
    message = app / "zapp" / "message.py"
    target = reload.PythonReload("zapp", (app / "zapp",))
    with supervised(reload.preforked(spec, preload=["heavy_dep"]), target) as reloader:
        yield Runner(
            port, lambda text: message.write_text(f"MESSAGE = {text!r}\n"), reloader.history
        )


@contextmanager
def air(work: Path, air: str, extra: list[str]) -> Iterator[Runner]:
    module = _copy_goapp(work)
    (port,) = free_ports(1)
    env = {**os.environ, "GOAPP_ADDR": f"127.0.0.1:{port}"}
    proc = group.spawn([air, *extra], log_file=work / "air.log", cwd=module, env=env)
    try:
        eventually(lambda: get(f"http://127.0.0.1:{port}/") == "hello v1", 120, "air's first build")
        yield Runner(port, lambda text: _say_go(module, text))
    finally:
        group.stop_group(proc.pid, 5)
        proc.wait()


def breakdown(name: str, history: list[reload.ReloadEvent]) -> None:
    builds = [e.build_seconds for e in history if e.build_seconds is not None]
    readies = [e.ready_seconds for e in history if e.ready_seconds is not None]
    built = f"build {statistics.median(builds):.3f}s, " if builds else ""
    print(f"{name}: median {built}stop old + start new + ready {statistics.median(readies):.3f}s")


def measure_idle(seconds: float) -> None:
    me = psutil.Process()
    before, start = me.cpu_times(), time.perf_counter()
    time.sleep(seconds)  # the measurement window itself
    after, wall = me.cpu_times(), time.perf_counter() - start
    used = (after.user - before.user) + (after.system - before.system)
    print(f"idle supervisors + watchers over {wall:.0f}s: {100 * used / wall:.2f}% of one core")


def _copy_goapp(work: Path) -> Path:
    module = work / "goapp"
    shutil.copytree(FIXTURES / "goapp", module)
    return module


def _say_go(module: Path, text: str) -> None:
    (module / "message.go").write_text(f'package main\n\nconst message = "{text}"\n')


if __name__ == "__main__":
    sys.exit(main())
