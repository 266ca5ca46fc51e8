"""Is a port free, and if not, who holds it: asked before anything starts."""

from __future__ import annotations

import contextlib
import socket

import psutil

from devenv.errors import UserError


class PortBusyError(UserError):
    """Ports the stack needs are taken: the message names each, its holder and the setting."""


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT would look busy though a server can bind it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def holder_pid(port: int) -> int | None:
    """The pid of the process listening on `port`, when the OS tells us."""
    with contextlib.suppress(psutil.AccessDenied):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    return None


def holder(port: int) -> str | None:
    """'name (pid N)' of the process listening on `port`, when the OS tells us."""
    pid = holder_pid(port)
    if pid is None:
        return None
    with contextlib.suppress(psutil.NoSuchProcess):
        return f"{psutil.Process(pid).name()} (pid {pid})"
    return None


def check_free(ports: dict[int, str]) -> None:
    """Raise one error naming every busy port, the setting that moves it and its holder."""
    problems = []
    for port, setting in sorted(ports.items()):
        if not is_free(port):
            who = holder(port)
            by = f" by {who}" if who else ""
            problems.append(f"port {port} is in use{by}: stop it or set {setting} in .env")
    if problems:
        raise PortBusyError("; ".join(problems))
