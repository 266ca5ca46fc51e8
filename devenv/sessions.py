"""What the Nox sessions share: where each positional argument goes, kept results, JUnit
reports under `.state/reports/<cell>/`, the interpreters pyenv installed, and the docker cells.

Positional arguments go to the run they are meant for: a session's own runner gets them
(`nox -s "unit(3.12)" -- -k settings`, `nox -s go -- -run TestDecode`); in a session that runs
both pytest and `go test`, `--go` switches what follows to `go test` and `--pytest` back. A
pytest run that your selection leaves empty (exit 5) is not a failure; without arguments it is.
`--force` (or NOX_FORCE=1) runs a session whose inputs have not changed since it passed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nox

from devenv import backends, gotools, results, settings, state
from devenv.settings import REPO_ROOT, Settings
from devenv.stack import isolated_env, platform_running

REPORTS = REPO_ROOT / ".state" / "reports"
RESULTS = REPO_ROOT / ".state" / "results"
PLATFORM = "services/platform"
OWN_FLAGS = ("--force", "--reuse")  # the sessions' own; never passed on to a runner
PYTEST_EMPTY_SELECTION = 5
Body = Callable[..., None]  # a session function


@dataclass(frozen=True)
class Args:
    pytest: tuple[str, ...] = ()
    go: tuple[str, ...] = ()
    flags: frozenset[str] = field(default_factory=frozenset)


def route(posargs: Sequence[str], default: str = "pytest") -> Args:
    """Split positional arguments between pytest and `go test`; pick out the sessions' own."""
    target = default
    routed: dict[str, list[str]] = {"pytest": [], "go": []}
    for arg in posargs:
        if arg in ("--go", "--pytest"):
            target = arg[2:]
        elif arg not in OWN_FLAGS:
            routed[target].append(arg)
    own = frozenset(arg for arg in posargs if arg in OWN_FLAGS)
    return Args(tuple(routed["pytest"]), tuple(routed["go"]), own)


def install(session: nox.Session, *args: str) -> None:
    """`session.install`, skipped while the venv already holds these very requirements from
    unchanged pyproject files (a new venv, `nox -r`, or an edit installs again)."""
    key = hashlib.sha256("\0".join(args).encode())
    for name in results.tree_files(REPO_ROOT):
        if name.endswith("pyproject.toml"):
            key.update((REPO_ROOT / name).read_bytes())
    stamp = Path(str(session.virtualenv.location)) / ".installed" / key.hexdigest()
    if stamp.exists():
        return
    session.install(*args)
    stamp.parent.mkdir(exist_ok=True)
    stamp.touch()


def cell_slug(session_name: str) -> str:
    """`integration(native)` -> `integration-native`: a folder and artifact name."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", session_name).strip("-")


def reports_dir(session: nox.Session) -> Path:
    return REPORTS / cell_slug(session.name)


def pytest(
    session: nox.Session, report: str, *args: str, chosen: Sequence[str] = (), **kwargs: Any
) -> None:
    """pytest writing JUnit XML; `chosen` are the user's arguments for this run."""
    junit = reports_dir(session) / f"{report}.xml"
    codes = [0, PYTEST_EMPTY_SELECTION] if chosen else [0]
    session.run("pytest", f"--junitxml={junit}", *args, *chosen, success_codes=codes, **kwargs)


def go_test(
    session: nox.Session, report: str, *args: str, packages: Sequence[str] = ("./...",),
    chosen: Sequence[str] = (), env: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """`go test` through gotestsum, which also writes its results as JUnit XML."""
    junit = reports_dir(session) / f"{report}.xml"
    runner = gotools.installed(gotools.GOTESTSUM)
    with session.chdir(PLATFORM):
        session.run(
            runner, "--format", "standard-quiet", "--junitfile", str(junit), "--",
            *args, *chosen, *packages, external=True, env=env,
        )  # fmt: skip


def kept(
    *, tools: Sequence[Sequence[str]] = (), reads_settings: bool = False
) -> Callable[[Body], Body]:
    """Run the session only when its inputs changed since it last passed (locally; always in
    CI). Inputs: every file of the repository (`results.input_files`), the session's Python,
    the output of each of `tools` (a version command), and the settings when it
    `reads_settings`."""

    def decorate(body: Body) -> Body:
        @functools.wraps(body)
        def run(session: nox.Session, **params: Any) -> None:
            if "backend" in params:
                require_engine(session, params["backend"])
            chosen = [arg for arg in session.posargs if arg != "--force"]  # a selection is an input
            values = [session.name, *chosen, _interpreter(session), *(_output(t) for t in tools)]
            if reads_settings:
                values += [f"{k}={v}" for k, v in sorted(settings.load().as_env().items())]
            kept_results = results.Results(RESULTS)
            slug = cell_slug(session.name)
            digest = results.digest(REPO_ROOT, values)
            if results.enabled(dict(os.environ), session.posargs):
                passed = kept_results.passed_with(slug, digest)
                if passed:
                    session.skip(passed.reuse_message())
            shutil.rmtree(reports_dir(session), ignore_errors=True)
            state.claim(REPORTS.parent)  # created and marked as ours, as `inv up` would
            reports_dir(session).mkdir(parents=True)
            try:
                body(session, **params)
            except Exception:
                failed = results.failed_tests(reports_dir(session))
                kept_results.record_failure(slug, digest, failed)
                raise
            for flaky in kept_results.record_pass(slug, digest, results.commit(REPO_ROOT)):
                session.warn(flaky.line())

        return run

    return decorate


def _interpreter(session: nox.Session) -> str:
    config = Path(str(session.virtualenv.location)) / "pyvenv.cfg"
    return config.read_text() if config.is_file() else sys.version


def _output(command: Sequence[str]) -> str:
    done = subprocess.run(list(command), capture_output=True, text=True, check=False)
    return f"{' '.join(command)}: {done.stdout}{done.stderr}"


def require_engine(session: nox.Session, backend: str) -> None:
    """A docker cell without an engine skips with one line, unless REQUIRE_DOCKER=1 (set in
    ci.yml, so a broken docker path cannot hide there)."""
    if backend == "docker" and not backends.docker_engine_answers():
        if os.environ.get("REQUIRE_DOCKER") == "1":
            session.error("REQUIRE_DOCKER=1 but no Docker engine answers (`docker info` fails)")
        session.skip("no Docker engine answers here; CI runs this cell (REQUIRE_DOCKER=1)")


@contextlib.contextmanager
def private_stack(session: nox.Session, backend: str) -> Iterator[dict[str, str]]:
    """A fresh whole stack of its own (free ports, state and logs under .state/<cell>/, its
    own Compose project) for the duration; yields the environment that points at it."""
    env, project = _private(session, backend, "stack", tracing=True)
    with (
        _environ(project),
        platform_running(settings.load(environ={**os.environ, **env}), say=session.log),
    ):
        yield env


@contextlib.contextmanager
def private_infra(session: nox.Session, backend: str, names: list[str]) -> Iterator[Settings]:
    """Infrastructure components of the cell's own (free ports, state under .state/<cell>/),
    never a developer's stack or data; stopped and its data deleted afterwards, even on
    failure. Yields the settings that point at it."""
    env, project = _private(session, backend, "+".join(names))
    current = settings.load(environ={**os.environ, **env})
    with _environ(project):
        backend_ = backends.select(current, session.log)
        try:
            backend_.remove_data()  # what a killed run of this cell left behind
            backend_.up(names)
            yield current
        finally:
            backend_.down([])
            backend_.remove_data()


def _private(
    session: nox.Session, backend: str, what: str, tracing: bool = False
) -> tuple[dict[str, str], dict[str, str]]:
    """The environment of a cell's private infrastructure, and its Compose project name."""
    folder = REPO_ROOT / ".state" / cell_slug(session.name)
    shutil.rmtree(folder, ignore_errors=True)  # cold: fresh every run
    env = {**isolated_env(folder, tracing=tracing), "INFRA_BACKEND": backend}
    session.log(f"starting a private {backend} {what} on free ports; state and logs in {folder}")
    return env, compose_project(session)


def compose_project(session: nox.Session) -> dict[str, str]:
    """The cell's own Compose project: its containers and volumes meet no one else's."""
    return {"COMPOSE_PROJECT_NAME": f"platform-{cell_slug(session.name)}".lower()}


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def find_interpreters(versions: Sequence[str]) -> None:
    """Put pyenv's interpreters of `versions` on PATH ahead of its shims (a shim answers only
    for the active version); say in one line how to get one that is missing."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found: list[str] = []
    for version in versions:
        candidates = sorted(root.glob(f"{version}.*/bin/python{version}"))
        if candidates:
            found.append(str(candidates[-1].parent))
        elif not _real_python_on_path(version):
            hint = f"python{version} not found: its cells skip locally (`pyenv install {version}`)"
            print(hint, file=sys.stderr)  # stdout may be `nox -l --json`
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


def _real_python_on_path(version: str) -> bool:
    program = shutil.which(f"python{version}")
    if program is None:
        return False
    probe = subprocess.run([program, "-c", ""], capture_output=True, check=False)
    return probe.returncode == 0
