"""The GitHub Actions matrix, read from Nox itself so the two cannot drift: one job per cell
that `nox -t ci` runs, with the Python it needs and a name fit for artifacts.

    python -m devenv.ci_matrix     # prints {"include": [{"session": ..., ...}, ...]}
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from devenv.sessions import cell_slug

AUTOMATION_PYTHON = "3.11"  # what .venv, nox and the cells without their own Python run on


def listing(tag: str = "ci") -> list[dict[str, Any]]:
    """`nox -l --json -t TAG`: every cell nox knows, with a flag for those the tag selects."""
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json", "-t", tag],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return list(json.loads(listed))


def matrix(cells: list[dict[str, Any]], tag: str = "ci") -> dict[str, list[dict[str, str]]]:
    return {
        "include": [
            {
                "session": cell["session"],
                "python": cell["python"] or AUTOMATION_PYTHON,
                "slug": cell_slug(cell["session"]),
            }
            for cell in cells
            if tag in cell["tags"]
        ]
    }


if __name__ == "__main__":
    print(json.dumps(matrix(listing())))
