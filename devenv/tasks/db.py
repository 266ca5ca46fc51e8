"""`inv db.shell | db.snapshot | db.restore | db.snapshots`: the project's database by hand
(`db.migrate` is with the apps, in devenv/tasks/app.py)."""

from __future__ import annotations

import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from devenv import backends, database, settings
from devenv.tasks import user_errors


@task(help={"command": "Run this SQL, print its result and exit (psql -c)."})
def shell(c: Context, command: str | None = None) -> None:
    """psql on the project's database (host, port, user, password from the settings)."""
    with user_errors():
        current = settings.load()
        # What the backend says goes to stderr: stdout is psql's alone (`> result.txt`).
        backends.select(current, say=lambda line: print(line, file=sys.stderr)).up(["db"])
        code = database.psql(current, command)
    if code != 0:
        raise Exit(code=code)


@task(help={"name": "The snapshot's name (letters, digits, '.', '_', '-')."})
def snapshot(c: Context, name: str) -> None:
    """Dump the database into the state folder's snapshots/NAME.dump (pg_dump custom format)."""
    with user_errors():
        current = settings.load()
        path = database.take(current, name)
    print(f"snapshot {name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


@task(help={"name": "The snapshot to restore (`inv db.snapshots` lists them)."})
def restore(c: Context, name: str) -> None:
    """Replace the database with a snapshot (refused while the apps run: `inv down -c app`);
    the event relay then publishes again exactly what the snapshot's consumers lack."""
    with user_errors():
        current = settings.load()
        republished = database.restore(current, name)
    print(f"restored {name}; the relay publishes {republished} of its events again once the "
          "apps run (`inv run`)")  # fmt: skip


@task
def snapshots(c: Context) -> None:
    """List the snapshots (name, size, when taken)."""
    with user_errors():
        print_snapshots(settings.load())


def print_snapshots(current: settings.Settings) -> None:
    lines = database.listing(current)
    if not lines:
        print(f"no snapshots yet in {database.snapshot_dir(current)}: `inv db.snapshot NAME`")
    for line in lines:
        print(line)
