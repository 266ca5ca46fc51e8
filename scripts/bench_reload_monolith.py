"""The monolith target of `scripts/bench_reload.py --monolith` (see its docstring)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from devenv import apps, build
from devenv.proc import group, reload
from devenv.proc.readiness import Http
from devenv.proc.supervisor import ProcessSpec
from devenv.settings import REPO_ROOT, Settings, load
from devenv.stack import free_ports
from tests.support.reload_bench import Runner, measure, pct, supervised
from tests.support.running import get
from tests.support.stack import infra_running
from tests.support.wait import eventually

PACKAGE = apps.GO_PACKAGE


def bench_monolith(iterations: int, air_path: str) -> int:
    settings = load()
    with ExitStack() as stack:
        stack.enter_context(infra_running(settings, ["db", "bus", "mqtt"], say=lambda _: None))
        build.go_build(apps.GO_MODULE, PACKAGE, apps.BINARY, ldflags_vars={}, echo=None)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-mono-")))
        runners = {"devenv monolith": stack.enter_context(devenv_monolith(work / "ours", settings))}
        if Path(air_path).exists():
            runners["air monolith"] = stack.enter_context(
                air_monolith(work / "air", settings, air_path)
            )
        else:
            print(f"air not found at {air_path}: go install github.com/air-verse/air@latest")
        samples: dict[str, list[float]] = {name: [] for name in runners}
        for i in range(iterations):
            names = list(runners)
            for name in names[i % len(names) :] + names[: i % len(names)]:
                samples[name].append(measure(runners[name], f"edit {i} {name}"))
        history = runners["devenv monolith"].history or []
        ours_module = work / "ours" / "services" / "platform"
        split = compile_link_split(ours_module)
        stamping = [timed(lambda: build.stamp_vars(ours_module)) for _ in range(10)]
    print(f"\nmonolith: file write -> the new binary answering, {iterations} edits")
    for name, values in samples.items():
        print(f"  {name:<16} p50 {pct(values, 50):.3f}s  p95 {pct(values, 95):.3f}s")
    ours, builds = pct(samples["devenv monolith"], 50), [e.build_seconds or 0 for e in history]
    if "air monolith" in samples:
        print(f"  devenv / air p50 = {ours / pct(samples['air monolith'], 50):.2f}")
    readies = [e.ready_seconds or 0 for e in history]
    print(f"  ours: build (go build + stamping) median {statistics.median(builds):.3f}s; "
          f"stop old + start new + ready median {statistics.median(readies):.3f}s; "
          f"p50 above the build {ours - statistics.median(builds):.3f}s")  # fmt: skip
    print(f"  stamping (2 git calls, at once) median {statistics.median(stamping):.3f}s; {split}")
    return 0


def _monolith_copy(work: Path) -> Path:
    """services/platform (and the schemas/ it embeds) copied into a git repository of their
    own: stamping asks git, as in the checkout."""
    module = work / "services" / "platform"
    shutil.copytree(apps.GO_MODULE, module, ignore=shutil.ignore_patterns("tmp", "bin"))
    shutil.copytree(REPO_ROOT / "schemas", work / "schemas")
    git = ["git", "-C", str(work), "-c", "user.name=b", "-c", "user.email=b@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "copy"]):
        subprocess.run([*git, *args], check=True)
    return module


def _monolith_env(settings: Settings, name: str) -> tuple[dict[str, str], int]:
    ingestion, query, actions = free_ports(3)
    env = {**settings.as_env(), "INGESTION_PORT": str(ingestion), "QUERY_PORT": str(query),
           "ACTIONS_PORT": str(actions), "MQTT_CLIENT_ID": f"bench-{name}"}  # fmt: skip
    for key in ("QUERY_CONSUMER_GROUP", "ANOMALY_CONSUMER_GROUP", "ACTIONS_CONSUMER_GROUP"):
        env[key] = f"{env[key]}-bench-{name}"
    return env, ingestion


def _monolith_runner(module: Path, port: int, history: list[reload.ReloadEvent] | None) -> Runner:
    """Edit: a declaration appended to ingestion/http.go, so the package compiles to new code
    and the binary must be linked again (a comment alone can leave Go's link cached). Served:
    a new listening socket (a new process) on the ingestion port answers /healthz."""
    before: list[int | None] = [None]

    def edit(text: str) -> None:
        before[0] = _listener(port)
        _append_declaration(module, text)

    def served(_text: str) -> bool:
        now = _listener(port)
        return now not in (None, before[0]) and get(f"http://127.0.0.1:{port}/healthz") is not None

    return Runner(port, edit, history, served)


@contextmanager
def devenv_monolith(work: Path, settings: Settings) -> Iterator[Runner]:
    module = _monolith_copy(work)
    env, port = _monolith_env(settings, "ours")
    binary = work / "bin" / "platform"
    build.go_build(module, PACKAGE, binary, ldflags_vars={}, echo=None)
    ready = (Http(f"http://127.0.0.1:{port}/readyz"),)
    spec = ProcessSpec("app", (str(binary), "serve"), work / "app.log", env=env, ready=ready,
                       ready_timeout=60)  # fmt: skip
    target = reload.GoReload("app", module, PACKAGE, work / "reload")
    with supervised(spec, target) as reloader:
        yield _monolith_runner(module, port, reloader.history)


@contextmanager
def air_monolith(work: Path, settings: Settings, air: str) -> Iterator[Runner]:
    module = _monolith_copy(work)
    env, port = _monolith_env(settings, "air")
    flags = ["--build.cmd", f"go build -o ./tmp/main {PACKAGE}", "--build.bin",
             "./tmp/main", "--build.args_bin", "serve"]  # fmt: skip
    proc = group.spawn([air, *flags], log_file=work / "air.log", cwd=module,
                       env={**os.environ, **env})  # fmt: skip
    try:
        eventually(
            lambda: get(f"http://127.0.0.1:{port}/healthz") is not None, 180, "air's first build"
        )
        yield _monolith_runner(module, port, None)
    finally:
        group.stop_group(proc.pid, 5)
        proc.wait()


def compile_link_split(module: Path, builds: int = 5) -> str:
    """Median seconds of `compile` and `link` in an incremental reload build, timed by a
    -toolexec wrapper; and the same build with and without -buildvcs."""
    log = module.parent / "toolexec.log"
    wrapper = module.parent / "toolexec.sh"
    stamp = f'echo "$(basename "$1") $(( $(date +%s%N) - s ))" >> {log}'
    wrapper.write_text(f'#!/bin/sh\ns=$(date +%s%N); "$@"; rc=$?\n{stamp}\nexit $rc\n')
    wrapper.chmod(0o755)
    go = build.require_go(module)
    out = module.parent / "split" / "platform"
    totals: dict[str, list[float]] = {"compile": [], "link": [], "auto": [], "false": []}
    for i in range(builds + 1):
        for how in ("auto", "false", "toolexec"):
            _append_declaration(module, f"split {i} {how}")
            argv = [go, "build", f"-buildvcs={'auto' if how == 'auto' else 'false'}"]
            argv += ["-o", str(out), "-ldflags", "-s -w"]
            argv += ["-toolexec", str(wrapper)] if how == "toolexec" else []
            log.unlink(missing_ok=True)
            took = timed(lambda a=argv: subprocess.run([*a, PACKAGE], cwd=module, check=True))
            if i == 0:
                continue  # the first round fills the build cache for each kind of build
            if how != "toolexec":
                totals[how].append(took)
                continue
            tools = [line.split() for line in log.read_text().splitlines()]
            for tool in ("compile", "link"):
                totals[tool].append(sum(int(ns) for name, ns in tools if name == tool) / 1e9)
    med = {key: statistics.median(values) for key, values in totals.items()}
    return (
        f"compile {med['compile']:.3f}s, link {med['link']:.3f}s (timed through -toolexec); "
        f"go build -buildvcs=auto {med['auto']:.3f}s vs -buildvcs=false {med['false']:.3f}s"
    )


def _append_declaration(module: Path, text: str) -> None:
    with (module / "ingestion" / "http.go").open("a") as f:
        f.write(f'\nvar benchEdit{abs(hash(text))} = "{text}"\n')


def _listener(port: int) -> int | None:
    """The inode of the socket listening on 127.0.0.1:`port`: a new process, a new inode."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            return int(fields[9])
    return None


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
