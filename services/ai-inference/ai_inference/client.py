"""Typed client of the inference service: `requests` with timeouts, retries on connection
errors only (a request the server may have received is never sent twice).

    with InferenceClient("http://127.0.0.1:8090") as client:
        result = client.score("sensor-042", "temperature", [(aware_datetime, 21.0), ...])
        for anomaly in result.anomalies: ...
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import requests
from pydantic import BaseModel, ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ai_inference.schemas import Health, ModelInfo, Point, ScoreRequest, ScoreResponse

__all__ = [
    "InferenceClient",
    "InferenceError",
    "InferenceRejected",
    "InferenceUnavailable",
    "Point",
    "ScoreResponse",
    "score_request",
]

M = TypeVar("M", bound=BaseModel)


class InferenceError(Exception):
    """Any failure of a call; `status` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InferenceUnavailable(InferenceError):
    """No answer: connection refused after the retries, or a timeout. Safe to try later."""


class InferenceRejected(InferenceError):
    """The service refused the request (4xx); `detail` is its list of errors (422)."""

    def __init__(self, message: str, status: int, detail: list[dict[str, Any]]) -> None:
        super().__init__(message, status)
        self.detail = detail


def score_request(
    device_id: str, metric: str, points: Iterable[Point | tuple[datetime, float]]
) -> ScoreRequest:
    """The body of `POST /v1/score`; `(datetime, value)` pairs need time-zone aware datetimes."""
    return ScoreRequest(
        device_id=device_id,
        metric=metric,
        points=[
            p if isinstance(p, dict) else Point(ts=p[0].isoformat(), value=p[1]) for p in points
        ],
    )


def connection_retries(retries: int, backoff: float) -> Retry:
    """Retry connection errors only (the request never reached the server); a read error,
    a timeout after sending, or any status is returned or raised as it is."""
    return Retry(
        total=None,
        connect=retries,
        read=False,
        redirect=False,
        status=False,
        other=False,
        allowed_methods=None,
        backoff_factor=backoff,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


class InferenceClient:
    """A session to one inference service; thread-compatible like `requests.Session`."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=connection_retries(retries, backoff))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def healthz(self) -> Health:
        return self._call("GET", "/healthz", Health)

    def model(self) -> ModelInfo:
        return self._call("GET", "/v1/model", ModelInfo)

    def score(
        self,
        device_id: str,
        metric: str,
        points: Iterable[Point | tuple[datetime, float]],
    ) -> ScoreResponse:
        """Score a window (oldest first). Raises `pydantic.ValidationError` before sending
        when the window breaks the request schema, `InferenceRejected` on 422 (e.g.
        timestamps not increasing), `InferenceUnavailable` when there is no answer."""
        request = score_request(device_id, metric, points)
        return self._call("POST", "/v1/score", ScoreResponse, body=request.model_dump_json())

    def _call(self, method: str, path: str, model: type[M], body: str | None = None) -> M:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            response = self._session.request(
                method, url, data=body, headers=headers, timeout=self.timeout
            )
        except requests.Timeout as exc:
            raise InferenceUnavailable(f"{method} {url}: timed out: {exc}") from exc
        except requests.ConnectionError as exc:
            raise InferenceUnavailable(f"{method} {url}: no connection: {exc}") from exc
        status = response.status_code
        if 400 <= status < 500:
            detail = _detail(response)
            raise InferenceRejected(f"{method} {url}: {status}: {detail}", status, detail)
        if status != 200:
            raise InferenceError(f"{method} {url}: {status}: {response.text[:200]}", status)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise InferenceError(f"{method} {url}: answer breaks the contract: {exc}") from exc


def _detail(response: requests.Response) -> list[dict[str, Any]]:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return [{"msg": response.text[:200]}]
    return detail if isinstance(detail, list) else [{"msg": str(detail)}]
