"""PostgreSQL from the OS package: `initdb` once, then the postmaster on 127.0.0.1."""

from __future__ import annotations

import glob
import hashlib
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from devenv import probes
from devenv.backends.native.recipe import Launch, Recipe, Say, require, unprivileged_user


class Postgres(Recipe):
    # SIGINT is PostgreSQL's "fast shutdown": it does not wait for clients to disconnect.
    stop_signal = signal.SIGINT
    signal_leader_only = True

    def listen_ports(self) -> list[int]:
        return [self.settings.POSTGRES_PORT]

    @property
    def bin_dir(self) -> Path:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_major)
        on_path = shutil.which("postgres")
        found = candidates[-1] if candidates else on_path
        if not found:
            require("postgres", "postgresql")
        return Path(str(found)).resolve().parent

    @property
    def data_dir(self) -> Path:
        link = self.home / "data"
        return link.resolve() if link.is_symlink() else link

    def prepare(self, say: Say) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        say(f"postgres: initdb {self.data_dir} (once)")
        self.home.mkdir(parents=True, exist_ok=True)
        data = self._reachable_data_dir()
        user = unprivileged_user()
        pwfile = data.parent / "initdb.pw"
        pwfile.write_text(self.settings.POSTGRES_PASSWORD + "\n")
        if user:
            shutil.chown(data.parent, user)
            shutil.chown(pwfile, user)
        try:
            subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D", str(data),
                    "-U", self.settings.POSTGRES_USER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
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
                "-c", "listen_addresses=127.0.0.1",
                "-c", "logging_collector=off",
                "-c", "max_connections=200",
                "-c", "fsync=on",
            ],
            env={"LC_ALL": "C"},
            user=unprivileged_user(),
        )  # fmt: skip

    def probe(self) -> probes.Probe:
        return self._probe("postgres")

    def database_probe(self) -> probes.Probe:
        return self._probe(self.settings.POSTGRES_DB)

    def after_ready(self, say: Say) -> None:
        s = self.settings
        with psycopg.connect(
            host="127.0.0.1", port=s.POSTGRES_PORT, user=s.POSTGRES_USER,
            password=s.POSTGRES_PASSWORD, dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (s.POSTGRES_DB,)
            ).fetchone()
            if not exists:
                say(f"postgres: create database {s.POSTGRES_DB}")
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.POSTGRES_DB)))

    def _probe(self, dbname: str) -> probes.Probe:
        s = self.settings
        return probes.postgres(
            "127.0.0.1", s.POSTGRES_PORT, s.POSTGRES_USER, s.POSTGRES_PASSWORD, dbname
        )

    def _reachable_data_dir(self) -> Path:
        """Under the state dir, unless the unprivileged server user cannot reach it (a
        checkout in root's home): then under /var/tmp, linked from the state dir."""
        data = self.home / "data"
        user = unprivileged_user()
        if user is None or _user_can_reach(user, self.home.parent):
            return data
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        outside = Path("/var/tmp/platform-devenv") / digest / "data"  # noqa: S108 - a fixed, owned path
        outside.parent.mkdir(parents=True, exist_ok=True)
        outside.parent.parent.chmod(0o755)
        data.unlink(missing_ok=True)
        data.symlink_to(outside)
        return outside


def _user_can_reach(user: str, path: Path) -> bool:
    return subprocess.run(["test", "-x", str(path)], user=user, check=False).returncode == 0


def _major(path: str) -> int:
    return int(Path(path).parent.parent.name)
