"""`inv status`'s table read by column name, as a user reads it; only PID/CONTAINER (`pid N`)
and LAST EXIT (`SIGKILL 12s ago`) hold spaces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusRow:
    role: str
    service: str
    backend: str
    state: str
    health: str
    address: str
    ident: str  # `pid N`, a container id, or `-`
    cpu: str
    memory: str
    uptime: str
    restarts: str
    last_exit: str

    @property
    def pid(self) -> int | None:
        return int(self.ident.removeprefix("pid ")) if self.ident.startswith("pid ") else None


def status_rows(table: str) -> list[StatusRow]:
    rows = []
    for line in table.splitlines():
        cells = line.split()
        if len(cells) < 11 or cells[0] == "ROLE":
            continue
        ident_end = 8 if cells[6] == "pid" else 7
        ident, rest = " ".join(cells[6:ident_end]), cells[ident_end:]
        # CPU, MEM, UPTIME, RESTARTS, then LAST EXIT's words.
        values = [*cells[:6], ident, *rest[:4], " ".join(rest[4:])]
        rows.append(StatusRow(*values))
    return rows


def status_row(table: str, role: str) -> StatusRow:
    return next(row for row in status_rows(table) if row.role == role)
