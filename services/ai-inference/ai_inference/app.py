"""The FastAPI application: `uvicorn ai_inference.app:app`."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace.export import SpanExporter

from ai_inference import __version__, tracing
from ai_inference.api import health_router, router
from ai_inference.scoring import MODEL_NAME, MODEL_VERSION
from ai_inference.settings import get_settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Settings are validated at startup, not at the first request.
    settings = get_settings()
    log.info(
        "model %s %s ready: %s",
        MODEL_NAME,
        MODEL_VERSION,
        settings.model_params.as_dict(),
    )
    yield
    traced = app.state.tracer_provider
    if traced is not None:
        traced.shutdown()  # the spans still queued go out (bounded by the export timeout)


def _json_safe_input(value: Any) -> Any:
    """A scalar input as JSON can carry it: NaN/Infinity as strings, containers left out
    (a 4097-point list would otherwise be echoed back whole)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return None


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 `{"detail": [{"type", "loc", "msg", "input"}]}`; `loc` names the field."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "type": err["type"],
            "loc": list(err["loc"]),
            "msg": err["msg"],
            "input": _json_safe_input(err.get("input")),
        }
        for err in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


def create_app(span_exporter: SpanExporter | None = None) -> FastAPI:
    """The app; traced when TRACE_EXPORT_URL is set, or into `span_exporter` when given."""
    app = FastAPI(
        title="AI inference",
        version=__version__,
        summary="Anomaly scoring of telemetry windows (internal: never routed by the gateway).",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(health_router)
    app.include_router(router)
    app.state.tracer_provider = tracing.provider(get_settings(), span_exporter)
    tracing.instrument(app, app.state.tracer_provider)
    return app


app = create_app()
