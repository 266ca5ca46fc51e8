"""The commit an image or a deploy stands for: its tag is the git sha, never a dirty tree."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devenv.aws.errors import AwsError
from devenv.settings import REPO_ROOT


@dataclass(frozen=True)
class Revision:
    sha: str
    dirty: list[str]

    @property
    def tag(self) -> str:
        return f"{self.sha}-dirty" if self.dirty else self.sha


def current(repo: Path = REPO_ROOT) -> Revision:
    sha = _git(repo, "rev-parse", "--short=12", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=all")
    return Revision(sha=sha, dirty=[line[3:] for line in status.splitlines() if line.strip()])


def require_clean(revision: Revision, allow_dirty: bool, what: str) -> str:
    """The image tag to use; a dirty tree is refused, since its images match no commit."""
    if revision.dirty and not allow_dirty:
        sample = ", ".join(revision.dirty[:3]) + (" ..." if len(revision.dirty) > 3 else "")
        raise AwsError(
            f"{what} refused: the work tree has {len(revision.dirty)} uncommitted change(s) "
            f"({sample}); commit or stash them, or pass --allow-dirty"
        )
    return revision.tag


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise AwsError("git not found: the image tag is the commit sha; install git") from None
    if proc.returncode != 0:
        raise AwsError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout.strip()
