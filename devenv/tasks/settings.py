"""`inv settings.example`: .env.example from schemas/settings.schema.json, where every setting
is declared once."""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from devenv import declared


@task
def example(c: Context) -> None:
    """Regenerate .env.example from schemas/settings.schema.json (after adding or changing a
    setting there; a contract test fails while the two differ)."""
    path = declared.write_env_example()
    print(f"wrote {path.relative_to(declared.REPO_ROOT)}")
