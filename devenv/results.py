"""Kept results: a session whose inputs have not changed since it last passed is not run
again, and a test that failed and then passed on the same inputs is named as flaky.

A session's inputs are every file of the repository and values such as interpreter and tool
versions and the settings it reads. The files are those git lists — tracked and untracked,
minus what .gitignore excludes (.venv, .nox, .state, bin, caches: what runs write) — and
`.env`, the one ignored file a run may read. No session narrows that set: a hand-kept list of
the files each session reads went stale unnoticed (issue 22), and a traced one misses what a
cache decides from a file's mtime without opening it (Python's bytecode, mypy, ruff). The
content hash of all that keys the record in `.state/results/<session>.json`; only a run that
passed writes it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml

# Input states remembered per session: passes (switching branches back and forth reuses them)
# and failures (whose tests become flaky if the same inputs then pass).
KEPT_STATES = 5
ENV_FILE = ".env"  # a developer's settings: git-ignored, but read by devenv.settings.load


@dataclass(frozen=True)
class Passed:
    at: datetime
    commit: str

    def reuse_message(self) -> str:
        """Nox prints it as `Session e2e skipped: inputs unchanged since ...`."""
        today = self.at.date() == datetime.now().date()
        when = self.at.strftime("%H:%M" if today else "%Y-%m-%d %H:%M")
        return (
            f"inputs unchanged since it passed at {when} ({self.commit}) "
            "— not run again; --force runs it"
        )


@dataclass(frozen=True)
class Flaky:
    test: str
    failed_at: str

    def line(self) -> str:
        return f"flaky: {self.test} failed at {self.failed_at} and passed now, on the same inputs"


def tree_files(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout  # fmt: skip
    return sorted({name for name in listed.decode().split("\0") if name})


def input_files(root: Path) -> list[str]:
    """Every file a session may read: the tree's, and `.env` (ignored, never committed)."""
    return sorted({*tree_files(root), ENV_FILE})


def digest(root: Path, values: Sequence[str]) -> str:
    """One hash over the values and the paths and contents of every input file."""
    total = hashlib.sha256()
    for value in values:
        total.update(b"value\0" + value.encode() + b"\0")
    for name in input_files(root):
        path = root / name
        content = hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"absent"
        total.update(b"file\0" + name.encode() + b"\0" + content)
    return total.hexdigest()


def failed_tests(reports: Path) -> list[str]:
    """`classname::name` of every failed or errored test case in the JUnit files under it."""
    failed = []
    for report in sorted(reports.glob("*.xml")):
        for suite in JUnitXml.fromfile(str(report)):  # a lone <testsuite> is wrapped too
            for case in suite:
                if any(isinstance(result, Failure | Error) for result in case.result):
                    failed.append(f"{case.classname}::{case.name}")
    return sorted(set(failed))


class Results:
    """The kept record of each session, one JSON file per session under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def passed_with(self, session: str, inputs_digest: str) -> Passed | None:
        passed = self._read(session).get("passed", {}).get(inputs_digest)
        if passed is None:
            return None
        return Passed(datetime.fromisoformat(passed["at"]), passed["commit"])

    def record_pass(self, session: str, inputs_digest: str, commit: str) -> list[Flaky]:
        """Keep the pass; the tests that failed earlier on these very inputs were flaky."""
        record = self._read(session)
        earlier = record.setdefault("failures", {}).pop(inputs_digest, None)
        flaky = [Flaky(test, earlier["at"]) for test in earlier["tests"]] if earlier else []
        now = datetime.now().isoformat(timespec="seconds")
        _keep_last(record.setdefault("passed", {}), inputs_digest, {"at": now, "commit": commit})
        record.setdefault("flaky", []).extend(
            {"test": f.test, "failed_at": f.failed_at, "passed_at": now} for f in flaky
        )
        self._write(session, record)
        return flaky

    def record_failure(self, session: str, inputs_digest: str, tests: Iterable[str]) -> None:
        """Forget a pass on these inputs (a failed run is never reused); remember what failed."""
        record = self._read(session)
        record.setdefault("passed", {}).pop(inputs_digest, None)
        at = datetime.now().strftime("%H:%M:%S")
        _keep_last(
            record.setdefault("failures", {}), inputs_digest, {"at": at, "tests": sorted(tests)}
        )
        self._write(session, record)

    def _path(self, session: str) -> Path:
        return self.folder / f"{session}.json"

    def _read(self, session: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self._path(session).read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _write(self, session: str, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path(session).write_text(json.dumps(record, indent=2) + "\n")


def _keep_last(entries: dict[str, Any], key: str, value: dict[str, Any]) -> None:
    """Add or move `key` to the end, then drop the oldest beyond KEPT_STATES."""
    entries.pop(key, None)
    entries[key] = value
    for old in list(entries)[:-KEPT_STATES]:
        del entries[old]


def commit(root: Path) -> str:
    """The short commit the tree is at, `-dirty` when it has changes."""
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=7", "--match=NO-TAGS"],
        cwd=root, capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return described or "no commit"


def enabled(environ: dict[str, str], posargs: Sequence[str]) -> bool:
    """On locally; off in CI (CI=true) and when asked to run anyway (--force, NOX_FORCE=1)."""
    ci = environ.get("CI", "").lower() not in ("", "0", "false", "no")
    force = environ.get("NOX_FORCE", "") not in ("", "0") or "--force" in posargs
    return not (ci or force)
