"""Live reload (`inv run --watch`): watch sources, rebuild, swap the supervised process.

Go: build into a new binary first; only a good build replaces the running process (stop old,
start new, wait ready), so a compile error leaves the old one serving, and a binary that
builds but does not get ready is rolled back. Python: restart, readiness-gated; under
`preforked` only the worker forked from a launcher that already imported the dependencies is
replaced (`zygote`). One line per reload: what changed, build time, time to ready. Go builds
are version-stamped as `inv build` stamps them.

The watcher is armed before the first start; a worker thread does the reloads. What changes
while a process starts, or while a build runs, waits in a queue and is taken whole by the
next reload once the process is up: the last save always wins, nothing is dropped, and a line
says when the running process is behind the sources.

Debounce: a batch is handed over once the watched trees were quiet for QUIET_MS (50 ms), at
most MAX_BATCH_MS after its first change. The writes of a `git checkout` of 50 files, or of an
editor's save (temp file, rename), follow each other within a millisecond or two, so a 50 ms
gap already makes them one batch (tested with 51 files); every millisecond more is added to
each reload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TextIO

import watchfiles

from devenv import build
from devenv.proc.supervisor import ProcessSpec, Supervisor

ZYGOTE = Path(__file__).resolve().with_name("zygote.py")
QUIET_MS = 50
MAX_BATCH_MS = 1600
_ARM_TIMEOUT_MS = 300
EDITOR_TEMP_PATTERNS = (r"^4913$", r"\.sw.$", r"~$", r"^\.#", r"\.tmp$", r"^\.goutputstream-")


@dataclass(frozen=True)
class GoReload:
    """Rebuild `package` of `module_dir` into `build_dir` and swap process `name` onto it."""

    name: str
    module_dir: Path
    package: str
    build_dir: Path
    watch: tuple[Path, ...] = ()
    # Reload builds skip DWARF: linking is most of an incremental build (see build.go_build).
    # A debugger's build keeps it, and has its compiler flags.
    strip: bool = True
    gcflags: str = ""
    # Where the binary is in the process's argv: 0, or further on under a debugger
    # (`dlv exec BINARY ...`), which a reload starts again on the new binary.
    binary_arg: int = 0

    def paths(self) -> tuple[Path, ...]:
        return self.watch or (self.module_dir,)


@dataclass(frozen=True)
class PythonReload:
    """Restart process `name` when anything under `watch` changes (watch the package folder,
    not a folder holding a venv). A process started through `preforked` only has its worker
    replaced, without importing its dependencies again."""

    name: str
    watch: tuple[Path, ...]

    def paths(self) -> tuple[Path, ...]:
        return self.watch


Target = GoReload | PythonReload


@dataclass(frozen=True)
class ReloadEvent:
    name: str
    changed: tuple[str, ...]
    build_seconds: float | None
    ready_seconds: float | None
    failed: Literal["build", "start", "rollback", "reload"] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


class SourceFilter(watchfiles.DefaultFilter):
    """watchfiles' defaults (.git, .venv, __pycache__, ...) plus editor temp files and the
    folders builds write into."""

    ignore_entity_patterns = (
        *watchfiles.DefaultFilter.ignore_entity_patterns,
        *EDITOR_TEMP_PATTERNS,
    )


@dataclass
class Reloader:
    supervisor: Supervisor
    targets: Sequence[Target]
    ignore: Sequence[Path] = ()
    out: TextIO | None = None
    history: list[ReloadEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._armed = threading.Event()
        self._watcher = threading.Thread(target=self._loop, name="watcher", daemon=True)
        self._worker = threading.Thread(target=self._work, name="reloader", daemon=True)
        self._queued: dict[str, set[Path]] = {}
        self._changed = threading.Condition()
        self._builds = 0
        self._failed: Exception | None = None

    def start(self, timeout: float = 5.0) -> None:
        """Start watching; returns once a change made from now on will be seen. Call it before
        the supervisor starts: what changes while the processes start is queued, and reloaded
        once each has started."""
        for target in self.targets:
            if isinstance(target, GoReload):  # builds left by an earlier run that was killed
                running = Path(self.supervisor.spec(target.name).argv[target.binary_arg])
                for stale in target.build_dir.glob(f"{target.name}-reload-*"):
                    if stale.resolve() != running.resolve():
                        stale.unlink(missing_ok=True)
        self._watcher.start()
        if not self._armed.wait(timeout):
            raise RuntimeError(f"the file watcher did not start within {timeout:g}s")
        if self._failed is not None:
            raise self._failed
        self._worker.start()

    def close(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        for thread in (self._watcher, self._worker):
            if thread.is_alive():
                thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            self._watch()
        except Exception as exc:  # e.g. a watched folder that does not exist
            self._failed = exc
            self._armed.set()

    def _watch(self) -> None:
        roots = sorted({path.resolve() for target in self.targets for path in target.paths()})
        ignored = [*self.ignore, *(t.build_dir for t in self.targets if isinstance(t, GoReload))]
        batches = watchfiles.watch(
            *roots,
            watch_filter=SourceFilter(ignore_paths=[p.resolve() for p in ignored]),
            debounce=MAX_BATCH_MS,
            step=QUIET_MS,
            stop_event=self._stop,
            rust_timeout=_ARM_TIMEOUT_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        for changes in batches:
            self._armed.set()
            paths = {Path(path) for _, path in changes}
            with self._changed:
                for target in self.targets:
                    mine = {p for p in paths if _concerns(target, p)}
                    if mine:
                        self._queued.setdefault(target.name, set()).update(mine)
                        self._changed.notify_all()

    def _work(self) -> None:
        """Reload each target whose sources changed, one reload at a time. Whatever changes
        during a build or a start waits in the queue and is taken, all of it, by the next
        reload: the last save always wins, and nothing is dropped."""
        while not self._stop.is_set():
            with self._changed:
                self._changed.wait_for(lambda: self._queued or self._stop.is_set())
                if self._stop.is_set():
                    return
                name = next(iter(self._queued))
            target = next(t for t in self.targets if t.name == name)
            if not self.supervisor.settle(name, 0):
                self._say(
                    f"reload {name}: sources changed while it starts; reloading once it is up"
                )
            if not self._settled(name):
                continue
            with self._changed:
                changed = self._queued.pop(name, set())
            if changed and not self._stop.is_set():
                self._reload(target, sorted(changed))
                with self._changed:
                    if name in self._queued:
                        self._say(f"reload {name}: the running {name} is behind the sources "
                                  "(they changed during the reload); reloading again")  # fmt: skip

    def _settled(self, name: str) -> bool:
        """Wait until `name` has started and its readiness is known (ready or failed)."""
        while not self._stop.is_set():
            if self.supervisor.settle(name, 0.1):
                return True
        return False

    def _reload(self, target: Target, changed: list[Path]) -> None:
        names = tuple(path.name for path in changed)
        what = names[0] + (f" (+{len(names) - 1} more)" if len(names) > 1 else "")
        try:
            if isinstance(target, GoReload):
                event = self._reload_go(target, names)
            elif self.supervisor.spec(target.name).argv[1:2] == (str(ZYGOTE),):
                event = self._timed(target.name, names, None, self.supervisor.reload)
            else:
                event = self._swap(target.name, names, None)
        except Exception as exc:  # the watcher must outlive any one failed reload
            event = ReloadEvent(target.name, names, None, None, "reload", str(exc))
        self.history.append(event)
        built = f"built in {event.build_seconds:.2f}s; " if event.build_seconds is not None else ""
        outcome = {
            None: f"ready in {event.ready_seconds or 0:.2f}s",
            "build": "build FAILED, the old process keeps serving",
            "start": "NOT ready; the supervisor restarts it with backoff (see its log)",
            "rollback": "the new binary did NOT get ready; the previous one serves again",
            "reload": f"FAILED: {event.error}",
        }[event.failed]
        self._say(f"reload {target.name}: {what} changed; {built}{outcome}")

    def _reload_go(self, target: GoReload, names: tuple[str, ...]) -> ReloadEvent:
        self._builds += 1
        current = self.supervisor.spec(target.name)
        build_dir = target.build_dir.resolve()
        binary = build_dir / f"{target.name}-reload-{self._builds}"
        start = time.monotonic()
        try:
            result = build.go_build(
                target.module_dir,
                target.package,
                binary,
                ldflags_vars=build.stamp_vars(target.module_dir),
                strip=target.strip,
                gcflags=target.gcflags,
                echo=None,
            )
        except build.BuildError as exc:
            self._say(exc.output.rstrip())
            took = time.monotonic() - start
            return ReloadEvent(target.name, names, took, None, "build", exc.output)
        at = target.binary_arg
        spec = replace(current, argv=(*current.argv[:at], str(binary), *current.argv[at + 1 :]))
        event = self._swap(target.name, names, result.duration, spec)
        if not event.ok:
            # It built but does not start (a panic in init, say): keep the promise that the
            # old binary serves until a good one is ready.
            self.supervisor.swap(target.name, current)
            binary.unlink(missing_ok=True)
            return replace(event, failed="rollback")
        previous = Path(current.argv[at])
        if previous.parent == build_dir and previous != binary:
            previous.unlink(missing_ok=True)  # a replaced reload build, never the `inv build` one
        return event

    def _swap(
        self,
        name: str,
        names: tuple[str, ...],
        build_seconds: float | None,
        spec: ProcessSpec | None = None,
    ) -> ReloadEvent:
        return self._timed(name, names, build_seconds, lambda n: self.supervisor.swap(n, spec))

    def _timed(
        self,
        name: str,
        names: tuple[str, ...],
        build_seconds: float | None,
        restart: Callable[[str], bool],
    ) -> ReloadEvent:
        start = time.monotonic()
        if not restart(name):
            return ReloadEvent(name, names, build_seconds, None, "start")
        return ReloadEvent(name, names, build_seconds, time.monotonic() - start)

    def _say(self, text: str) -> None:
        if self.out is None:
            self.supervisor.console.say(text)
        else:
            print(text, file=self.out, flush=True)


def preforked(
    spec: ProcessSpec, *, pyproject: Path | None = None, preload: Sequence[str] = ()
) -> ProcessSpec:
    """`spec` (`python -m module ...`) run through `zygote`, which imports the
    dependencies `pyproject` declares (and `preload`) once, so a reload restarts in a fraction
    of the time."""
    if len(spec.argv) < 3 or spec.argv[1] != "-m":
        raise ValueError(f"{spec.name}: preforked needs `python -m module`, not {spec.argv}")
    python, _, module, *rest = spec.argv
    options = [*(["--preload-from", str(pyproject)] if pyproject else [])]
    options += [arg for name in preload for arg in ("--preload", name)]
    return replace(spec, argv=(python, str(ZYGOTE), *options, "-m", module, *rest))


def run_watch(
    supervisor: Supervisor,
    targets: Sequence[Target],
    *,
    on_ready: Callable[[], None] | None = None,
    ignore: Iterable[Path] = (),
) -> int:
    """`supervisor.run()` with live reload; the watcher is armed before the first start."""
    reloader = Reloader(supervisor, targets, ignore=list(ignore))
    reloader.start()
    try:
        return supervisor.run(on_ready)
    finally:
        reloader.close()


def _concerns(target: Target, path: Path) -> bool:
    if not any(path.is_relative_to(root.resolve()) for root in target.paths()):
        return False
    # Go tests and their data are not in the binary: rebuilding for them would only restart it.
    return not isinstance(target, GoReload) or not (
        path.name.endswith("_test.go") or "testdata" in path.parts
    )
