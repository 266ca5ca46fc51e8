"""`inv build`, `inv run`, `inv db.migrate`: the apps' inner loop."""

from __future__ import annotations

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from devenv import apps, backends, debug, devices, settings
from devenv.proc import detached, reload
from devenv.proc.supervisor import Supervisor
from devenv.tasks import user_errors


@task(help={"check": "Build nothing; exit 1 if the binary or a venv is stale."})
def build(c: Context, check: bool = False) -> None:
    """Build the Go monolith into bin/ and the AI service's venv (incremental)."""
    with user_errors():
        if check:
            reasons = apps.stale()
            for reason in reasons:
                print(f"stale: {reason}")
            if reasons:
                raise Exit(code=1)
            print("everything is up to date")
            return
        for line in apps.build_all():
            print(line)


@task(
    optional=["debug_"],
    help={
        "detach": "Run the apps in the background (`inv status`, `inv logs -c app`, `inv down`).",
        "watch": "Live reload: rebuild and swap the Go binary, restart the AI service, on save.",
        "simulate": "Once the apps are ready, run `inv devices.simulate`'s devices beside them.",
        "debug_": "Under a debugger on 127.0.0.1: `app` (Delve), `ai` (debugpy), no name: both.",
    },
)
def run(
    c: Context,
    detach: bool = False,
    watch: bool = False,
    simulate: bool = False,
    debug_: str | bool = "",
) -> None:
    """Infra up, build, then the apps with prefixed logs (Ctrl-C stops them); the monolith
    applies the database migrations as it starts."""
    if detach and (watch or simulate):
        flag = "--watch" if watch else "--simulate"
        raise Exit(f"error: {flag} needs a terminal; use it without --detach", code=1)
    with user_errors():
        debugged = debug.chosen(debug_)
        current = settings.load()
        # The lock first: before a build replaces the binary of another run.
        with apps.claim(current) as lock, devices.beside_apps(current, simulate) as simulation:
            debug.check_ports(current, debugged)
            backends.select(current).up([])
            for line in apps.build_all(debug.go_target(debugged)):
                print(line)
            specs = debug.specs(current, debugged)  # the monolith migrates as it starts
            state = apps.supervisor_dir(current)

            def ready() -> None:
                print_urls(current, debug.attach_lines(current, debugged))

            if detach:
                detached.start(specs, state, lock=lock)
                ready()
                return
            if watch:
                go, ai = specs
                if "ai" not in debugged:  # debugpy starts anew on a reload: no fork server
                    ai = reload.preforked(ai, pyproject=apps.AI_SERVICE / "pyproject.toml")
                specs = [go, ai]
            runner = Supervisor(specs, state_dir=state, lock=lock)
            on_ready = simulation.after(ready, say=runner.console.line)
            if watch:
                builds = state / "builds"
                go_reload = reload.GoReload("app", apps.GO_MODULE, apps.GO_PACKAGE, builds)
                targets: list[reload.Target] = [
                    debug.go_reload(go_reload) if "app" in debugged else go_reload,
                    reload.PythonReload("ai", (apps.AI_SERVICE / "ai_inference",)),
                ]
                code = reload.run_watch(runner, targets, on_ready=on_ready)
            else:
                code = runner.run(on_ready)
    if code != 0:  # the supervisor has said why already, when it knows
        why = "interrupted before the apps were ready" if runner.interrupted else "the apps stopped"
        raise Exit(None if runner.failure else why, code=code)


@task
def migrate(c: Context) -> None:
    """Apply the database migrations now (idempotent; the monolith does it as it starts)."""
    with user_errors():
        current = settings.load()
        backends.select(current).up(["db"])
        apps.build_all()
        apps.migrate(current)
        print("migrations applied")


def print_urls(current: settings.Settings, debuggers: list[str] | None = None) -> None:
    print("\nThe platform answers through the gateway:")
    for line in apps.gateway_urls(current):
        print(f"  {line}")
    if debuggers:
        print("Debuggers listen (the apps run whether one is attached or not):")
        for line in debuggers:
            print(f"  {line}")
    print()
