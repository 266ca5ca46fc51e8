"""Nox sessions: the same test and lint matrix on a laptop and in GitHub Actions.

`nox -l` lists every cell; run one with `nox -s "unit(3.12)"`, `nox -s "e2e(docker)"`, or
select by tag (`-t quick`: lint + the unit tests on 3.11 + the AI scoring + Go without -race;
`-t ci`: everything CI runs) or by Python (`-p 3.13`).

- Pythons come from the classifiers of pyproject.toml (and of the AI service's); pyenv's
  interpreters are found. A missing one skips its cells with one line locally and fails in CI
  (nox's own rule: `error_on_missing_interpreters` is on when CI is set).
- Backend cells (`integration`, `e2e`, `faults`, each `(native|docker)`) and `aws-local`: a
  docker cell skips with one line when no Docker engine answers, unless REQUIRE_DOCKER=1, which
  ci.yml and .ci/run set (.ci/run starts a private engine, ./scripts/with-docker-engine, and
  builds stand-in images, INFRA_IMAGES=local, since no registry answers there).
- Arguments after `--` go to the session's runner; `--go` / `--pytest` route what follows in a
  session that has both (devenv/sessions.py). `--force` or NOX_FORCE=1: run even if unchanged.
- Kept results: locally, a cell is not run again while no file of the repository and none of
  its values (Python, tools, settings) changed since it passed (off when CI is set). Every
  cell writes JUnit XML under .state/reports/<cell>/.
"""

from __future__ import annotations

from pathlib import Path

import nox

from devenv import requirements_installed

with requirements_installed():
    from devenv import lint as lint_tools
    from devenv import sessions
    from devenv.sessions import (
        find_interpreters,
        go_test,
        kept,
        private_infra,
        private_stack,
        pytest,
        require_engine,
        route,
    )

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.download_python = "never"  # interpreters come from the machine (pyenv, apt)

PYPROJECT = nox.project.load_toml("pyproject.toml")
AI = "services/ai-inference"
AI_PYPROJECT = nox.project.load_toml(f"{AI}/pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
AI_PYTHONS = nox.project.python_versions(AI_PYPROJECT)
BACKENDS = [nox.param(name, id=name) for name in ("native", "docker")]
GO = ("go", "version")
find_interpreters(sorted({*PYTHONS, *AI_PYTHONS}))


def pythons(versions: list[str]) -> list[object]:
    """One cell per Python; the oldest supported one is also in the quick loop."""
    return [nox.param(v, id=v, tags=["quick"] if v == versions[0] else []) for v in versions]


def install(session: nox.Session, *groups: str) -> None:
    """The automation package and the named dependency groups of pyproject.toml."""
    sessions.install(session, "-e", ".", *nox.project.dependency_groups(PYPROJECT, *groups))


def install_ai(session: nox.Session, *groups: str) -> None:
    """The AI inference service from its own pyproject.toml, with its dependency groups."""
    sessions.install(session, "-e", AI, *nox.project.dependency_groups(AI_PYPROJECT, *groups))


@nox.session(tags=["quick", "ci"])
@kept(tools=[GO])
def lint(session: nox.Session) -> None:
    """Ruff, mypy, gofmt, go vet, actionlint, compose.yaml through the real Compose loader."""
    install(session, "lint")
    install_ai(session, "lint", "test")
    reports = sessions.reports_dir(session)
    session.run("ruff", "check", "--output-format=junit", f"-o={reports / 'ruff.xml'}", ".",
                success_codes=[0, 1], silent=True)  # fmt: skip
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", f"--junit-xml={reports / 'mypy.xml'}")
    with session.chdir(AI):
        session.run("mypy", f"--junit-xml={reports / 'mypy-ai.xml'}")
    with session.chdir("services/platform"):
        unformatted = session.run("gofmt", "-l", ".", external=True, silent=True)
        if unformatted:
            session.error(f"gofmt would change:\n{unformatted}run `gofmt -w services/platform`")
        session.run("go", "vet", "-tags", "component,integration", "./...", external=True)
    session.run("python", "-m", "devenv.lint")  # compose.yaml through the Compose v2 loader
    session.run("python", "-m", "devenv.aws.validate")  # the ECS task definition, by botocore
    session.run("python", "-m", "devenv.aws.dockerfiles")
    session.run(lint_tools.actionlint(), *lint_tools.workflows(), external=True)


@nox.session(tags=["ci"])
@nox.parametrize("python", pythons(PYTHONS))
@kept()
def unit(session: nox.Session) -> None:
    """The automation's pure unit tests. `-- ARGS`: pytest."""
    install(session, "test")
    pytest(session, "pytest", "tests/unit", "-m", "not tools", chosen=route(session.posargs).pytest)


@nox.session(tags=["ci"])
@kept(tools=[GO])
def tools(session: nox.Session) -> None:
    """The automation's tests that drive heavy tools: moto's AWS emulation, go build, venvs."""
    install(session, "test")
    pytest(session, "pytest", "tests/unit", "-m", "tools", chosen=route(session.posargs).pytest)


@nox.session(tags=["ci"])
@nox.parametrize("python", pythons(AI_PYTHONS))
@kept()
def ai(session: nox.Session) -> None:
    """The AI service's unit tests (scoring, settings, tracing). `-- ARGS`: pytest."""
    install_ai(session, "test")
    with session.chdir(AI):
        pytest(session, "pytest", "tests/test_scoring.py", "tests/test_settings.py",
               "tests/test_tracing.py", chosen=route(session.posargs).pytest)  # fmt: skip


@nox.session
@nox.parametrize(
    "race",
    [nox.param(False, id="plain", tags=["quick"]), nox.param(True, id="race", tags=["ci"])],
)
@kept(tools=[GO])
def go(session: nox.Session, race: bool) -> None:
    """The Go packages' unit tests (race cell: -race -count=1). `-- ARGS`: go test flags."""
    flags = ["-race", "-count=1"] if race else []
    go_test(session, "go", *flags, chosen=route(session.posargs, default="go").go)


@nox.session(tags=["ci"])
@kept(tools=[GO], reads_settings=True)
def component(session: nox.Session) -> None:
    """Each server through its client library, on a real PostgreSQL. `-- ARGS --go ARGS`."""
    args = route(session.posargs)
    install_ai(session, "test")
    with session.chdir(AI):
        pytest(session, "ai", "tests/test_api.py", "tests/test_client.py", chosen=args.pytest)
    with private_infra(session, "native", ["db"]) as db:
        go_test(session, "go", "-race", "-count=1", "-tags=component", chosen=args.go,
                env=db.as_env())  # fmt: skip


@nox.session(tags=["ci"])
@kept(tools=[GO])
def contract(session: nox.Session) -> None:
    """schemas/ valid, OpenAPI <-> schemas, Go and Python on the same files. `-- ARGS --go ARGS`."""
    args = route(session.posargs)
    install(session, "test")
    install_ai(session, "test")
    pytest(session, "contract", "tests/contract", chosen=args.pytest)
    with session.chdir(AI):
        pytest(session, "ai", "tests/test_contract.py", chosen=args.pytest)
    go_test(session, "go", "-count=1", chosen=args.go,
            packages=["./internal/contracts/...", "./internal/config/..."])  # fmt: skip


@nox.session(tags=["ci"])
@nox.parametrize("backend", BACKENDS)
@kept(tools=[GO], reads_settings=True)
def integration(session: nox.Session, backend: str) -> None:
    """Real infrastructure under the Go tests (+ native: supervisor, reload; docker: the tasks).

    `-- ARGS --go ARGS`: pytest, then go test."""
    args = route(session.posargs)
    install(session, "test")
    install_ai(session)  # the Go anomaly-loop test runs the real inference service
    # native: tests that drive its own processes; docker: the `inv` tasks and the stand-ins
    marker = "integration" if backend == "native" else "docker"
    pytest(session, "pytest", "-m", marker, "tests/integration", chosen=args.pytest)
    python = str(Path(str(session.virtualenv.location)) / "bin" / "python")
    with private_infra(session, backend, ["db", "bus", "mqtt"]) as infra:
        env = {**infra.as_env(), "AI_INFERENCE_PYTHON": python}
        go_test(session, "go", "-count=1", "-tags=integration", chosen=args.go, env=env)


@nox.session(tags=["ci"])
@nox.parametrize("backend", BACKENDS)
@kept(tools=[GO], reads_settings=True)
def e2e(session: nox.Session, backend: str) -> None:
    """A private whole stack driven from outside. `-- ARGS`: pytest; `-- --reuse`: inv run's."""
    args = route(session.posargs)
    install(session, "test")
    if "--reuse" in args.flags:
        pytest(session, "e2e", "tests/e2e", chosen=args.pytest)
        return
    with private_stack(session, backend) as env:
        pytest(session, "e2e", "tests/e2e", chosen=args.pytest, env=env)


@nox.session(tags=["ci"])
@nox.parametrize("backend", BACKENDS)
@kept(tools=[GO], reads_settings=True)
def faults(session: nox.Session, backend: str) -> None:
    """Real faults on a private stack (docker: only `docker kill` of the bus and the database).

    Native: kill -9 of the bus and the database, a paused app, poison records, two apps."""
    install(session, "test")
    tests = "tests/faults" if backend == "native" else "tests/faults/test_infrastructure.py"
    env = {"FAULTS_BACKEND": backend, **sessions.compose_project(session)}
    # The suite starts its stack itself (tests/faults/conftest.py); the supervisors it starts
    # there reap what a fault kills.
    pytest(session, "faults", "-p", "no:cacheprovider", tests, "-v",
           chosen=route(session.posargs).pytest, env=env)  # fmt: skip


@nox.session(name="aws-local", tags=["ci"])
@kept(tools=[GO], reads_settings=True)
def aws_local(session: nox.Session) -> None:
    """`inv aws.local`'s six containers on the engine: a reading and a spike through them."""
    require_engine(session, "docker")
    install(session, "test")
    pytest(session, "aws-local", "tests/aws_local", "-v", "-s",
           chosen=route(session.posargs).pytest)  # fmt: skip
