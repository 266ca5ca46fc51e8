"""PostgreSQL from the OS package: `initdb` once, then the postmaster on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from devenv.backends.base import InfraError
from devenv.backends.native.needs import POSTGRES
from devenv.backends.native.recipe import Launch, Recipe, Say, require, unprivileged_user
from devenv.proc import readiness
from devenv.proc.record import write_atomic


class Postgres(Recipe):
    program = "postgresql"
    needs = (POSTGRES,)
    # SIGINT is PostgreSQL's "fast shutdown": it does not wait for clients to disconnect.
    stop_signal = signal.SIGINT
    signal_leader_only = True

    def listen_ports(self) -> list[int]:
        return [self.settings.POSTGRES_PORT]

    @property
    def bin_dir(self) -> Path:
        """The folder of the server its need finds (the newest major); initdb is beside it."""
        (server,) = self.needs
        return Path(require(server)).resolve().parent

    @property
    def data_dir(self) -> Path:
        link = self.home / "data"
        return link.resolve() if link.is_symlink() else link

    def prepare(self, say: Say) -> None:
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A password file an interrupted initdb left behind goes before anything else.
        (self.data_dir.parent / "initdb.pw").unlink(missing_ok=True)
        if (self.data_dir / "PG_VERSION").exists():
            refuse_earlier_data(self.data_dir)
            return
        say(f"postgres: initdb {self.data_dir} (once)")
        data = self._reachable_data_dir()
        user = unprivileged_user()
        socket_dir = data.parent
        if user:
            shutil.chown(socket_dir, user)
        socket_dir.chmod(0o700)  # the socket folder: the server's user alone
        pwfile = socket_dir / "initdb.pw"
        write_atomic(pwfile, self.settings.POSTGRES_PASSWORD.get_secret_value() + "\n", mode=0o600)
        if user:
            shutil.chown(pwfile, user)
        try:
            subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D", str(data),
                    "-U", self.settings.POSTGRES_USER,
                    f"--pwfile={pwfile}",
                    # The socket asks for the password too: no local user is superuser for free.
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=True, capture_output=True, text=True, user=user,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr.strip()}") from None
        finally:
            pwfile.unlink(missing_ok=True)

    def launch(self) -> Launch:
        return Launch(
            argv=[
                str(self.bin_dir / "postgres"),
                "-D", str(self.data_dir),
                "-p", str(self.settings.POSTGRES_PORT),
                "-k", str(self.data_dir.parent),
                "-c", "unix_socket_permissions=0700",
                "-c", "listen_addresses=127.0.0.1",
                "-c", "logging_collector=off",
                "-c", "max_connections=200",
                "-c", "fsync=on",
            ],
            env={"LC_ALL": "C"},
            user=unprivileged_user(),
        )  # fmt: skip

    def ready_checks(self) -> tuple[readiness.Check, ...]:
        s = self.settings
        password = s.POSTGRES_PASSWORD.get_secret_value()
        return (readiness.Postgres(s.POSTGRES_PORT, s.POSTGRES_USER, "postgres", password),)

    def after_ready(self, say: Say) -> None:
        s = self.settings
        with psycopg.connect(
            host="127.0.0.1", port=s.POSTGRES_PORT, user=s.POSTGRES_USER,
            password=s.POSTGRES_PASSWORD.get_secret_value(), dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (s.POSTGRES_DB,)
            ).fetchone()
            if not exists:
                say(f"postgres: create database {s.POSTGRES_DB}")
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.POSTGRES_DB)))

    def remove_data(self) -> None:
        outside = self._outside()
        super().remove_data()
        if outside is not None:
            shutil.rmtree(outside)

    def _outside(self) -> Path | None:
        """The data folder under FALLBACK_ROOT this state folder records, if there is one."""
        link = self.home / "data"
        if not link.is_symlink():
            return None
        target = Path(os.readlink(link)).parent
        root = fallback_root()
        # Only ever our own folder there, whatever the link was edited to say.
        if target.parent != root or target.name != self._digest() or not target.is_dir():
            return None
        return target

    def _reachable_data_dir(self) -> Path:
        """Under the state dir, unless the unprivileged server user cannot reach it (a
        checkout in root's home, a 0700 state folder): then under FALLBACK_ROOT, linked from
        the state dir so that `down`/`clean` find it."""
        data = self.home / "data"
        user = unprivileged_user()
        if user is None or _user_can_reach(user, self.home):
            return data
        root = fallback_root()
        own_private_folder(root)
        outside = root / self._digest()
        outside.mkdir(mode=0o700, exist_ok=True)
        data.unlink(missing_ok=True)
        data.symlink_to(outside / "data")
        return outside / "data"

    def _digest(self) -> str:
        return hashlib.sha256(str(self.home).encode()).hexdigest()[:12]


def refuse_earlier_data(data: Path) -> None:
    """Data that an earlier version of this project initialised lets every local user in
    without a password (`trust` in pg_hba.conf), and usually sits where the server's user can
    no longer reach it (the state folder is private now): say so, and how to start afresh,
    instead of serving it or failing on "Permission denied"."""
    hba = data / "pg_hba.conf"
    try:
        rules = [line.split() for line in hba.read_text().splitlines()]
    except OSError:
        rules = []
    if any(rule and not rule[0].startswith("#") and "trust" in rule for rule in rules):
        raise InfraError(
            f"PostgreSQL data at {data} was made by an earlier version of this project and "
            "trusts every local user without a password: `inv clean --yes` removes it (the "
            "next `inv up` starts an empty database; `pg_dump` first to keep it)"
        )


def fallback_root() -> Path:
    """Where PostgreSQL's data goes when its user cannot reach the state folder: one folder
    per user who runs the stack, created by that user."""
    return Path("/var/tmp") / f"platform-devenv-{os.geteuid()}"  # noqa: S108 - checked below


def own_private_folder(path: Path) -> None:
    """Create `path` (traversable, not listable, by others), or accept it only if it is a real
    folder of ours that nobody else can write to: a predictable name in /var/tmp must not be
    one another user prepared."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o711)
    info = path.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise InfraError(
            f"{path} exists but is not a private folder of yours (another user may have made "
            "it): remove it, or set STATE_DIR to a folder the postgres user can reach"
        )
    path.chmod(0o711)


def _user_can_reach(user: str, path: Path) -> bool:
    return subprocess.run(["test", "-x", str(path)], user=user, check=False).returncode == 0
