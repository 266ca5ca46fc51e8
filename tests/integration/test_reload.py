"""Live reload with real processes: the fixture Go server rebuilt and swapped, a Python app
restarted, editor noise ignored, a burst of writes coalesced into one rebuild."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from devenv import build
from devenv.proc import reload
from devenv.proc.probe import http as reload_probe
from devenv.proc.readiness import Http
from devenv.proc.supervisor import ProcessSpec, Supervisor
from devenv.stack import free_ports
from tests.support.running import FIXTURES, Run, get, gone, running
from tests.support.wait import eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed"),
]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class GoApp:
    module: Path
    url: str
    run: Run
    reloader: reload.Reloader
    out: io.StringIO

    def say(self, message: str) -> None:
        (self.module / "message.go").write_text(f'package main\n\nconst message = "{message}"\n')

    def served(self) -> str | None:
        return get(self.url)


def _goapp(tmp_path: Path) -> tuple[Path, ProcessSpec, int]:
    """A copy of the fixture Go server, built, and the spec that runs it on a free port."""
    module = tmp_path / "goapp"
    shutil.copytree(FIXTURES / "goapp", module)
    binary = tmp_path / "bin" / "goapp"
    build.go_build(module, ".", binary, ldflags_vars={}, echo=None)
    (port,) = free_ports(1)
    spec = ProcessSpec(
        name="app",
        argv=(str(binary), "-addr", f"127.0.0.1:{port}"),
        log_file=tmp_path / "app.log",
        ready=(Http(f"http://127.0.0.1:{port}/readyz"),),
    )
    return module, spec, port


@pytest.fixture
def goapp(tmp_path: Path) -> Iterator[GoApp]:
    module, spec, port = _goapp(tmp_path)
    out = io.StringIO()
    supervisor = Supervisor([spec], out=out, color=False)
    target = reload.GoReload("app", module, ".", tmp_path / "reload")
    reloader = reload.Reloader(supervisor, [target])
    with running(supervisor) as run:
        assert run.ready.wait(20)
        reloader.start()
        try:
            yield GoApp(module, f"http://127.0.0.1:{port}/", run, reloader, out)
        finally:
            reloader.close()


def test_an_edit_is_served_a_compile_error_keeps_the_old_binary_and_a_fix_recovers(
    goapp: GoApp,
) -> None:
    assert goapp.served() == "hello v1"

    goapp.say("hello v2")
    eventually(lambda: goapp.served() == "hello v2", 30, "the edited answer")
    eventually(lambda: len(goapp.reloader.history) == 1, 5, "the reload recorded")
    first = goapp.reloader.history[0]
    assert first.ok and first.changed == ("message.go",)
    assert first.build_seconds is not None and first.ready_seconds is not None
    serving_pid = goapp.run.supervisor.pid("app")

    (goapp.module / "message.go").write_text("package main\n\nconst message = notDeclared\n")
    eventually(lambda: len(goapp.reloader.history) == 2, 30, "the failed build")
    assert not goapp.reloader.history[1].ok
    assert goapp.served() == "hello v2"  # the old binary still answers
    assert goapp.run.supervisor.pid("app") == serving_pid
    shown = goapp.out.getvalue()
    assert "# goapp\n./message.go:3:17: undefined: notDeclared\n" in shown
    assert "reload app: message.go changed; built in" in shown
    assert "build FAILED, the old process keeps serving" in shown

    goapp.say("hello v3")
    eventually(lambda: goapp.served() == "hello v3", 30, "the fixed answer")
    eventually(lambda: len(goapp.reloader.history) == 3, 5, "the recovery recorded")
    assert goapp.reloader.history[-1].ok


def test_a_new_binary_that_does_not_start_is_rolled_back(goapp: GoApp) -> None:
    goapp.say("hello v2")
    eventually(lambda: goapp.served() == "hello v2", 30, "the edited answer")
    eventually(lambda: len(goapp.reloader.history) == 1, 5, "the reload recorded")

    panics = 'package main\n\nconst message = "never served"\n\nfunc init() { panic("bad") }\n'
    (goapp.module / "message.go").write_text(panics)
    eventually(lambda: len(goapp.reloader.history) == 2, 30, "the failed start")

    assert goapp.reloader.history[1].failed == "rollback"
    assert goapp.served() == "hello v2"
    shown = goapp.out.getvalue()
    assert "the new binary did NOT get ready; the previous one serves again" in shown
    # The crashed binary's output reaches the console through the log follower, which
    # may print it after the verdict line: wait for it rather than race it.
    eventually(lambda: "app | panic: bad" in goapp.out.getvalue(), 10, "the crash's output shown")
    goapp.say("hello v3")
    eventually(lambda: goapp.served() == "hello v3", 30, "the next good save")
    assert goapp.run.supervisor.failure is None


def test_a_burst_of_50_files_is_one_rebuild(goapp: GoApp) -> None:
    for i in range(50):
        (goapp.module / f"gen{i:02}.go").write_text(f"package main\n\nconst gen{i:02} = {i}\n")
    goapp.say("after the burst")

    eventually(lambda: goapp.served() == "after the burst", 30, "the answer after the burst")
    # Nothing else may follow: give a second rebuild more than enough time to show up.
    time.sleep(1.5)
    assert len(goapp.reloader.history) == 1
    assert len(goapp.reloader.history[0].changed) == 51
    assert goapp.out.getvalue().count("reload app:") == 1


def test_editor_temp_files_git_and_go_tests_are_ignored(goapp: GoApp) -> None:
    for name in (".message.go.swp", "message.go~", "4913", ".#message.go", "x.go.tmp"):
        (goapp.module / name).write_text("noise")
    (goapp.module / "message_test.go").write_text("package main\n")
    (goapp.module / "testdata").mkdir()
    (goapp.module / "testdata" / "case.json").write_text("{}")
    (goapp.module / ".git").mkdir()
    (goapp.module / ".git" / "index").write_text("noise")

    # A real change after the noise: had any noise counted, it would show up in this reload
    # or in one before it (the watcher hands over changes in the order they happened).
    goapp.say("still watching")
    eventually(lambda: goapp.served() == "still watching", 30, "a real change to reload")
    eventually(lambda: bool(goapp.reloader.history), 10, "the reload recorded")
    assert [event.changed for event in goapp.reloader.history] == [("message.go",)]


def test_python_app_is_restarted_readiness_gated(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "message.txt").write_text("before")
    (port,) = free_ports(1)
    pyapp = (sys.executable, str(FIXTURES / "pyapp.py"), "--port", str(port))
    spec = ProcessSpec(
        name="ai",
        argv=(*pyapp, "--message-file", str(source / "message.txt")),
        log_file=tmp_path / "ai.log",
        ready=(Http(f"http://127.0.0.1:{port}/healthz"),),
    )
    out = io.StringIO()
    supervisor = Supervisor([spec], out=out, color=False)
    reloader = reload.Reloader(supervisor, [reload.PythonReload("ai", (source,))])
    with running(supervisor) as run:
        assert run.ready.wait(20)
        reloader.start()
        try:
            (source / "message.txt").write_text("after")
            eventually(lambda: get(f"http://127.0.0.1:{port}/") == "after", 20, "the restart")
            eventually(lambda: len(reloader.history) == 1, 5, "the reload recorded")
        finally:
            reloader.close()
    event = reloader.history[0]
    assert event.ok and event.build_seconds is None and event.ready_seconds is not None
    assert f"reload ai: message.txt changed; ready in {event.ready_seconds:.2f}s" in out.getvalue()


@dataclass
class Watched:
    module: Path
    url: str
    supervisor: Supervisor
    out: io.StringIO
    gate: threading.Event  # the app counts as ready only once the test opens it

    def say(self, message: str) -> None:
        (self.module / "message.go").write_text(f'package main\n\nconst message = "{message}"\n')


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Watched]:
    """`run_watch` on the fixture Go server, its first start held not-ready until the test
    opens the gate: the start-up window is as long as the test needs, on any machine."""
    module, spec, port = _goapp(tmp_path)
    gate = threading.Event()
    answers = reload_probe(f"http://127.0.0.1:{port}/readyz")
    spec = dataclasses.replace(spec, ready=(), ready_check=lambda: gate.is_set() and answers())
    out = io.StringIO()
    supervisor = Supervisor([spec], out=out, color=False)
    target = reload.GoReload("app", module, ".", tmp_path / "reload")
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(reload.run_watch(supervisor, [target])))
    thread.start()
    try:
        yield Watched(module, f"http://127.0.0.1:{port}/", supervisor, out, gate)
    finally:
        supervisor.request_stop()
        thread.join(30)
    assert codes == [0]
    assert get(f"http://127.0.0.1:{port}/readyz") is None


def test_an_edit_saved_while_the_app_starts_is_served_once_it_is_up(watched: Watched) -> None:
    # It answers but does not count as ready: it is still starting.
    eventually(lambda: get(watched.url) == "hello v1", 20, "the first start serving")
    watched.say("saved during start-up")
    eventually(lambda: "changed while it starts" in watched.out.getvalue(), 10, "the edit queued")
    watched.gate.set()
    eventually(lambda: get(watched.url) == "saved during start-up", 30, "the edit served")


def test_saves_during_start_up_and_during_a_build_end_with_the_last_one_served(
    watched: Watched,
) -> None:
    eventually(lambda: get(watched.url) == "hello v1", 20, "the first start serving")
    watched.say("first")
    watched.say("second")
    eventually(lambda: "changed while it starts" in watched.out.getvalue(), 10, "the edits queued")
    watched.gate.set()
    eventually(lambda: get(watched.url) == "second", 30, "the last save of the start-up")
    watched.say("third")
    eventually(lambda: watched.out.getvalue().count("reload app:") >= 2, 30, "a build started")
    watched.say("fourth")  # during or after the third's build: either way it must win
    eventually(lambda: get(watched.url) == "fourth", 30, "the last save served")
    assert "FAILED" not in watched.out.getvalue()


def test_a_reload_build_is_stamped_like_inv_build(tmp_path: Path) -> None:
    module, spec, port = _goapp(tmp_path)
    git = ["git", "-C", str(module), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "goapp"], check=True)
    sha = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                         text=True, check=True).stdout.strip()  # fmt: skip
    supervisor = Supervisor([spec], out=io.StringIO(), color=False)
    reloader = reload.Reloader(supervisor, [reload.GoReload("app", module, ".", tmp_path / "r")])
    with running(supervisor) as run:
        reloader.start()
        try:
            assert run.ready.wait(20)
            (module / "message.go").write_text('package main\n\nconst message = "stamped"\n')
            eventually(lambda: get(f"http://127.0.0.1:{port}/") == "stamped", 30, "the reload")
        finally:
            reloader.close()
        reloaded = supervisor.spec("app").argv[0]
    shown = subprocess.run([reloaded, "-version"], capture_output=True, text=True, check=True)
    assert f"commit={sha}-dirty" in shown.stdout  # message.go was edited: the tree is dirty
    assert "version=dev" not in shown.stdout


def test_a_preforked_python_app_reloads_without_importing_its_dependencies_again(
    tmp_path: Path,
) -> None:
    app = tmp_path / "pyzapp"
    shutil.copytree(FIXTURES / "pyzapp", app)
    (port,) = free_ports(1)
    spec = ProcessSpec(
        name="ai",
        argv=(sys.executable, "-m", "zapp", "--port", str(port)),
        log_file=tmp_path / "ai.log",
        cwd=app,
        ready=(Http(f"http://127.0.0.1:{port}/healthz"),),
    )
    out = io.StringIO()
    supervisor = Supervisor([reload.preforked(spec, preload=["heavy_dep"])], out=out, color=False)
    reloader = reload.Reloader(supervisor, [reload.PythonReload("ai", (app / "zapp",))])
    started = time.monotonic()
    with running(supervisor) as run:
        assert run.ready.wait(20)
        assert time.monotonic() - started >= 1.5  # heavy_dep's import, paid once
        launcher = supervisor.pid("ai")
        assert launcher is not None
        first_worker = psutil.Process(launcher).children()
        reloader.start()
        try:
            (app / "zapp" / "message.py").write_text('MESSAGE = "zapp v2"\n')
            eventually(lambda: get(f"http://127.0.0.1:{port}/") == "zapp v2", 20, "the reload")
            eventually(lambda: len(reloader.history) == 1, 5, "the reload recorded")
            workers = psutil.Process(launcher).children()
        finally:
            reloader.close()
    event = reloader.history[0]
    assert event.ok and event.ready_seconds is not None
    assert event.ready_seconds < 1.0  # less than heavy_dep's import alone
    assert supervisor.pid("ai") is None
    assert [p.pid for p in workers] != [p.pid for p in first_worker]
    assert all(gone(p.pid) for p in [*workers, *first_worker]) and gone(launcher)
    assert "zygote: preloaded heavy_dep in 1.5" in out.getvalue()


def test_preforked_preloads_the_declared_dependencies(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "s"\nversion = "0"\ndependencies = ["PyYAML>=6", "psutil"]\n'
    )
    spec = ProcessSpec("ai", (sys.executable, "-m", "svc", "--flag"), tmp_path / "ai.log")

    wrapped = reload.preforked(spec, pyproject=pyproject)

    assert wrapped.argv == (
        sys.executable,
        str(reload.ZYGOTE),
        "--preload-from",
        str(pyproject),
        "-m",
        "svc",
        "--flag",
    )
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from devenv.proc import zygote as z; "
            "print(z.declared_modules(__import__('pathlib').Path(sys.argv[1])))",
            str(pyproject),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert listed.strip() == "['psutil', 'yaml']"
    with pytest.raises(ValueError, match="needs `python -m module`"):
        reload.preforked(ProcessSpec("x", ("python", "x.py"), tmp_path / "x.log"))
