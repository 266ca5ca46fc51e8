"""The project's database from the host: `psql` on it, snapshots (`pg_dump` custom format in
the state folder) and their restore.

Every client reads host, port, user and database from the settings and the password from its
environment (`PGPASSWORD`), never from a command line. `pg_dump` and `pg_restore` must be at
least the server's major version: this host's are used when they are, else (docker backend)
the database container's own, through `docker exec`; each command says which.

A restore refuses while the apps run (they hold connections and consumer groups, and a run
started in another terminal is the user's to stop), and replaces the database whole, leaving
the old one in place until the new one is complete: it restores into a database of its own,
runs `platform after-restore` on it (the event relay republishes exactly the restored events
whose effects may be missing, the consumer groups skip what the bus carried before; see
services/platform/internal/restore), then swaps the two.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, LiteralString

import psycopg
from psycopg import sql

from devenv import apps, backends
from devenv.build import ToolchainError
from devenv.errors import UserError
from devenv.proc.record import AlreadyRunning
from devenv.settings import Settings

Say = Callable[[str], None]
SUFFIX = ".dump"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
CLIENT_TOOLS = (
    "install PostgreSQL's client tools (Debian/Ubuntu: `apt-get install postgresql-client`, "
    "macOS: `brew install libpq`)"
)
# The docker backend's official image is TimescaleDB, which asks for these around a restore.
TIMESCALE_ENTRY = "EXTENSION - timescaledb"
AFTER_RESTORE_DONE = "relay and consumers follow the restored database"


class SnapshotError(UserError):
    """A snapshot that is not there, or cannot be taken or restored: one line with the fix."""


@dataclass(frozen=True)
class Tools:
    """Where pg_dump and pg_restore run: on this host (from `bin_dir`, reaching the server
    through the libpq variables), or in the database's container (`docker exec`, reaching its
    own port there; user and password handed over by name, `-e PGPASSWORD`)."""

    where: str
    bin_dir: Path | None = None
    container: str | None = None

    def argv(self, program: str, *args: str, dbname: str | None = None) -> list[str]:
        target = [f"--dbname={dbname}"] if dbname else []
        if self.container is None:
            assert self.bin_dir is not None
            return [str(self.bin_dir / program), *args, *target]
        inside = ["--host=127.0.0.1", "--port=5432", *target] if dbname else []
        exec_ = ["docker", "exec", "-i", "-e", "PGUSER", "-e", "PGPASSWORD", self.container]
        return [*exec_, program, *args, *inside]


def client_env(settings: Settings, dbname: str | None = None) -> dict[str, str]:
    """The libpq variables of the project's database, its password among them."""
    return {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(settings.POSTGRES_PORT),
        "PGUSER": settings.POSTGRES_USER,
        "PGPASSWORD": settings.POSTGRES_PASSWORD.get_secret_value(),
        "PGDATABASE": dbname or settings.POSTGRES_DB,
    }


def psql(settings: Settings, command: str | None = None) -> int:
    """psql on the project's database, on this terminal; returns its exit code. Ctrl-C is
    psql's (it cancels the running query), not ours."""
    program = shutil.which("psql")
    if program is None:
        raise ToolchainError(f"psql not found: {CLIENT_TOOLS}")
    argv = [program, "--no-psqlrc", "--set=ON_ERROR_STOP=1"]
    argv += ["--command", command] if command is not None else []
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        env = {**os.environ, **client_env(settings)}
        return subprocess.run(argv, env=env, check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)


# --- snapshots -------------------------------------------------------------------------------


def snapshot_dir(settings: Settings) -> Path:
    return settings.state_dir / "snapshots"


def snapshots(settings: Settings) -> list[Path]:
    folder = snapshot_dir(settings)
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def listing(settings: Settings) -> list[str]:
    """One line per snapshot: its name, size and when it was taken."""
    lines = []
    for path in snapshots(settings):
        info = path.stat()
        taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.st_mtime))
        lines.append(f"{path.stem:<28} {info.st_size / 1e6:>8.2f} MB  {taken}")
    return lines


def snapshot_path(settings: Settings, name: str) -> Path:
    if not NAME.match(name):
        raise SnapshotError(
            f"{name!r} is not a snapshot name: use letters, digits, '.', '_' and '-' "
            "(e.g. before-migration)"
        )
    return snapshot_dir(settings) / f"{name}{SUFFIX}"


def existing(settings: Settings, name: str) -> Path:
    path = snapshot_path(settings, name)
    if not path.is_file():
        names = ", ".join(p.stem for p in snapshots(settings))
        have = f"the snapshots are: {names}" if names else "there is none yet"
        raise SnapshotError(
            f"no snapshot {name!r} in {snapshot_dir(settings)}; {have} "
            "(take one with `inv db.snapshot NAME`)"
        )
    return path


def take(settings: Settings, name: str, say: Say = print) -> Path:
    """Dump the project's database into the snapshot `name`; an existing one is kept."""
    path = snapshot_path(settings, name)
    if path.exists():
        raise SnapshotError(
            f"snapshot {name!r} exists ({path}): choose another name, or delete that file first"
        )
    backends.select(settings).up(["db"])
    tools = dump_tools(settings)
    say(f"pg_dump: {tools.where}")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            argv = tools.argv("pg_dump", "--format=custom", dbname=settings.POSTGRES_DB)
            _run(argv, settings, say, stdout=out)
        partial.rename(path)  # complete or absent: an interrupted dump is never a snapshot
    finally:
        partial.unlink(missing_ok=True)
    return path


def restore(settings: Settings, name: str, say: Say = print) -> int:
    """Replace the project's database with the snapshot `name`; returns how many of its
    events the relay publishes again."""
    path = existing(settings, name)
    with _apps_stopped(settings):
        backends.select(settings).up(["db", "bus"])
        for line in apps.build_all():  # `after-restore` is the monolith's
            say(line)
        tools = dump_tools(settings)
        say(f"pg_restore: {tools.where}")
        listed = _run(tools.argv("pg_restore", "--list"), settings, say, stdin=path).stdout
        timescale = TIMESCALE_ENTRY in listed.decode(errors="replace")
        staging = f"{settings.POSTGRES_DB}_restoring"
        _drop(settings, staging)  # what an interrupted restore left
        with _connect(settings, "postgres") as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(staging)))
        try:
            if timescale:
                _execute(settings, staging, "CREATE EXTENSION IF NOT EXISTS timescaledb",
                         "SELECT timescaledb_pre_restore()")  # fmt: skip
            options = ("--no-owner", "--no-privileges", "--exit-on-error")
            _run(tools.argv("pg_restore", *options, dbname=staging), settings, say, stdin=path)
            if timescale:
                _execute(settings, staging, "SELECT timescaledb_post_restore()")
            republished = _after_restore(settings, staging, name)
        except BaseException:
            _drop(settings, staging)  # the live database was not touched
            raise
        _swap(settings, staging)
    return republished


def dump_tools(settings: Settings) -> Tools:
    """pg_dump and pg_restore of at least the server's major version: this host's, else the
    database container's."""
    server = server_major(settings)
    host = host_tools(server)
    if host is not None:
        return host
    db = next((row for row in backends.select(settings).status() if row.role == "db"), None)
    if db is not None and db.backend == "docker" and db.state == "running":
        return Tools(
            where=f"the database container's ({db.ident}; this host has none for "
            f"PostgreSQL {server} or newer)",
            container=db.ident,
        )
    raise ToolchainError(f"pg_dump and pg_restore {server} or newer not found: {CLIENT_TOOLS}")


def server_major(settings: Settings) -> int:
    with _connect(settings, settings.POSTGRES_DB) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(str(row[0])) // 10000


def host_tools(server: int) -> Tools | None:
    """The newest pg_dump and pg_restore of this host that serve a server of major version
    `server`: Debian's versioned folders, then those on PATH."""
    folders = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_dump")]
    on_path = shutil.which("pg_dump")
    if on_path:
        folders.append(Path(on_path).parent)
    usable = [
        (major, folder)
        for folder in folders
        if (folder / "pg_restore").exists() and (major := tool_major(folder / "pg_dump")) >= server
    ]
    if not usable:
        return None
    major, folder = max(usable)
    return Tools(where=f"this host's (PostgreSQL {major}, {folder})", bin_dir=folder)


def tool_major(program: Path) -> int:
    """The major version `program --version` prints (`pg_dump (PostgreSQL) 15.18 (...)`)."""
    try:
        out = subprocess.run(
            [str(program), "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return 0
    match = re.search(r"\)\s*(\d+)", out)
    return int(match.group(1)) if match else 0


# --- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _apps_stopped(settings: Settings) -> Iterator[None]:
    """Hold the apps' lock (no `inv run` starts meanwhile) or refuse while they run."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(apps.claim(settings))
        except AlreadyRunning:
            raise SnapshotError(
                "the apps are running: stop them with `inv down -c app` (or Ctrl-C where "
                "`inv run` runs), then restore; a restore replaces what they are writing"
            ) from None
        yield


def _connect(settings: Settings, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    env = client_env(settings, dbname)
    return psycopg.connect(
        host=env["PGHOST"], port=int(env["PGPORT"]), user=env["PGUSER"],
        password=env["PGPASSWORD"], dbname=dbname, autocommit=True, connect_timeout=10,
    )  # fmt: skip


def _execute(settings: Settings, dbname: str, *statements: LiteralString) -> None:
    with _connect(settings, dbname) as conn:
        for statement in statements:
            conn.execute(statement)


def _drop(settings: Settings, dbname: str) -> None:
    with _connect(settings, "postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(dbname)))  # fmt: skip


def _after_restore(settings: Settings, staging: str, name: str) -> int:
    """`platform after-restore` on the restored database; the events it republishes."""
    env = {**os.environ, **settings.as_env(), "POSTGRES_DB": staging}
    result = subprocess.run(
        [str(apps.BINARY), "after-restore"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        raise SnapshotError(f"{why}; the database is unchanged: run `inv db.restore {name}` again")
    for line in result.stdout.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("msg") == AFTER_RESTORE_DONE:
                return int(record["republished"])
    raise SnapshotError(f"platform after-restore said nothing of what it did: {result.stdout}")


def _swap(settings: Settings, staging: str) -> None:
    """The restored database takes the project database's name; the old one goes. Sessions
    still on the old one (a psql left open) are ended: a rename waits for none."""
    current = settings.POSTGRES_DB
    replaced = f"{current}_replaced"
    _drop(settings, replaced)
    with _connect(settings, "postgres") as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (current,),
        )
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (current,))
        if exists.fetchone():
            admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(current), sql.Identifier(replaced)))  # fmt: skip
        admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(staging), sql.Identifier(current)))  # fmt: skip
    _drop(settings, replaced)


def _run(
    argv: Sequence[str],
    settings: Settings,
    say: Say,
    *,
    stdin: Path | None = None,
    stdout: IO[bytes] | int = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    """Run a client tool with the database's libpq variables; its last error line on failure."""
    say(f"$ {shlex.join(argv)}")
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        proc = subprocess.run(
            list(argv),
            env={**os.environ, **client_env(settings)},
            stdin=source,
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        tool = next(arg for arg in argv if arg.rsplit("/", 1)[-1].startswith("pg_"))
        why = lines[-1] if lines else f"exit {proc.returncode}"
        raise SnapshotError(f"{Path(tool).name} failed: {why}")
    return proc
