"""`inv up | down | status | logs | clean | doctor`: the infrastructure lifecycle."""

from __future__ import annotations

import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from devenv import apps, backends, screen, settings, usage
from devenv import doctor as checks
from devenv.backends.docker import DockerBackend
from devenv.proc import logs as logfiles
from devenv.tasks import user_errors


@task(
    iterable=["component"],
    help={
        "component": "Start only this component (role or service name); repeatable.",
        "dry-run": "Print the exact `docker compose` commands (docker backend); start nothing.",
    },
)
def up(c: Context, component: list[str] | None = None, dry_run: bool = False) -> None:
    """Start PostgreSQL, the Kafka-API bus, the MQTT broker and the gateway; wait until healthy."""
    with user_errors():
        current = settings.load()
        if dry_run:
            lines = DockerBackend(current).dry_run_up(component or [])
            here = current.INFRA_BACKEND
            print(f"# `inv up` with INFRA_BACKEND=docker, nothing running yet (here: {here}):")
            print("\n".join(lines))
            return
        backends.select(current).up(component or [])


@task(iterable=["component"], help={"component": "Stop only this component (or app); repeatable."})
def down(c: Context, component: list[str] | None = None) -> None:
    """Stop everything this project started: apps, then infrastructure (data is kept)."""
    names = component or []
    with user_errors():
        current = settings.load()
        if not names or "app" in names:
            print("apps stopped" if apps.stop(current) else "no apps running")
        infra = [name for name in names if name != "app"]
        if infra or not names:
            backends.select(current).down(infra)


@task(
    help={
        "watch": "Redraw the table in place every --interval seconds until Ctrl-C.",
        "interval": "Seconds between two tables with --watch (default 2).",
    }
)
def status(c: Context, watch: bool = False, interval: float = 2.0) -> None:
    """One line per component: backend, state, health, address, pid, CPU, memory, uptime."""
    if interval <= 0:
        raise Exit(f"error: --interval must be more than 0 seconds (got {interval:g})", 1)
    with user_errors():
        current = settings.load()
        # Made first, the meter measures CPU while the backend answers.
        meter, backend = usage.Meter(), backends.select(current)

        def table() -> list[str]:
            rows = meter.read(backend.status() + apps.status(current))
            return [backends.STATUS_HEADER, *(row.line() for row in rows)]

        if watch:
            screen.watch(table, interval, sys.stdout)
        else:
            print("\n".join(table()))


@task(
    help={
        "component": "Role or service (-c bus), an app (-c app, -c ai, -c apps); default: infra.",
        "follow": "Keep printing new lines until Ctrl-C.",
        "lines": "How many past lines to show first (default 50).",
    }
)
def logs(c: Context, component: str = "", follow: bool = False, lines: int = 50) -> None:
    """Show a component's log (all components without an argument)."""
    with user_errors():
        current = settings.load()
        app_logs = apps.log_files(current)
        if component in app_logs or component == "apps":
            chosen = {k: v for k, v in app_logs.items() if component in (k, "apps")}
            logfiles.tail(chosen, lines, follow, sys.stdout)
        else:
            backends.select(current).logs(component or None, follow, lines)


@task(help={"yes": "Required: confirms deleting the project's data and state."})
def clean(c: Context, yes: bool = False) -> None:
    """Stop everything and delete the project's data and state (needs --yes)."""
    if not yes:
        raise Exit("error: `inv clean` deletes all local data; run `inv clean --yes` to confirm", 1)
    with user_errors():
        current = settings.load()
        apps.stop(current)
        backends.select(current).clean()


@task
def doctor(c: Context) -> None:
    """Check tools, versions, settings, free ports and the backend; print each fix."""
    problems = checks.run(print)
    if problems:
        raise Exit(f"{problems} problem(s) found", code=1)
