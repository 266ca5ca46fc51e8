"""`python -m ai_inference`: serve the app with uvicorn on the configured host and port."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from ai_inference.contracts import EXIT_CONFIG, SchemasMissing

try:  # the settings' defaults and the bodies' patterns are read from schemas/ as they load
    from ai_inference.settings import Settings, load_or_exit
except SchemasMissing as exc:
    print(f"ai-inference: {exc}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG) from None

LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "error": "ERROR"}


def log_config(settings: Settings) -> dict[str, Any]:
    """Everything to stdout, one format; the access log only at LOG_LEVEL=debug."""
    level = LEVELS[settings.log_level]
    stdout = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}
        },
        "handlers": {"stdout": stdout},
        "loggers": {
            "": {"handlers": ["stdout"], "level": level},
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
    }


def main() -> None:
    settings = load_or_exit()
    uvicorn.run(
        "ai_inference.app:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=log_config(settings),
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
