"""Request and response bodies of the HTTP API.

These models and the JSON Schemas in the repository's `schemas/` folder describe the same
contract; `tests/test_contract.py` fails when one changes without the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from ai_inference.contracts import resolve

# Read from schemas/score-request.schema.json, which takes device ids and timestamps from the
# platform's shared definitions (telemetry-reading.schema.json): the detector forwards what
# passed ingestion's validation.
_REQUEST = "score-request.schema.json#"
MAX_POINTS: int = resolve(f"{_REQUEST}/properties/points")["maxItems"]
MAX_ABS_VALUE: float = resolve(f"{_REQUEST}/$defs/point/properties/value")["maximum"]
DEVICE_ID_PATTERN: str = resolve(f"{_REQUEST}/properties/device_id")["pattern"]
METRIC_PATTERN: str = resolve(f"{_REQUEST}/properties/metric")["pattern"]
TIMESTAMP_PATTERN: str = resolve(f"{_REQUEST}/$defs/point/properties/ts")["pattern"]

# Timestamps stay text in the models (checked by the pattern, in pydantic-core) so an
# anomaly echoes the reading's `ts` exactly as sent, nanoseconds included; they are parsed
# into instants once per window by `ScoreRequest.instants`.
Timestamp = Annotated[
    str,
    Field(
        pattern=TIMESTAMP_PATTERN,
        json_schema_extra={"format": "date-time"},
        description="RFC 3339 date-time with a time zone offset.",
    ),
]
Value = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=-MAX_ABS_VALUE,
        le=MAX_ABS_VALUE,
        description="The reading: a finite number within ±1e15 (NaN and infinities are rejected).",
    ),
]
_INSTANTS: TypeAdapter[list[datetime]] = TypeAdapter(list[AwareDatetime])


@with_config(ConfigDict(extra="forbid"))
class Point(TypedDict):
    """One reading of the window (a typed dict: validating 4096 of them stays cheap)."""

    ts: Timestamp
    value: Value


class WindowError(ValueError):
    """A point of a schema-valid window that still cannot be scored."""

    def __init__(self, index: int, kind: str, message: str, ts: str) -> None:
        super().__init__(f"points[{index}].ts: {message}")
        self.index, self.kind, self.message, self.ts = index, kind, message, ts


class ScoreRequest(BaseModel):
    """A window of readings of one metric of one device, oldest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    metric: str = Field(pattern=METRIC_PATTERN)
    points: list[Point] = Field(
        min_length=1,
        max_length=MAX_POINTS,
        description=(
            "1..4096 readings with strictly increasing `ts` (sorted, no duplicates): "
            "a window out of order is rejected with 422 naming `points[i].ts`."
        ),
    )

    def instants(self) -> list[datetime]:
        """The points' `ts` as aware datetimes (microsecond precision), strictly increasing.

        Raises `WindowError` for the first point whose `ts` is not a real date-time (a
        month 13) or is not later than its predecessor's (unsorted or duplicated)."""
        texts = [p["ts"] for p in self.points]
        try:
            times = _INSTANTS.validate_python(texts)
        except ValidationError as exc:
            err = exc.errors()[0]
            i = int(err["loc"][0])
            raise WindowError(i, err["type"], err["msg"], texts[i]) from None
        for i in range(1, len(times)):
            if times[i] <= times[i - 1]:
                raise WindowError(
                    i,
                    "ts_not_increasing",
                    f"must be later than points[{i - 1}].ts ({texts[i - 1]}): "
                    "timestamps must be strictly increasing (sorted, no duplicates)",
                    texts[i],
                )
        return times


class ModelRef(BaseModel):
    """Which model produced a score."""

    name: str
    version: str


class Anomaly(BaseModel):
    """A point whose |score| reached the threshold."""

    index: int = Field(ge=0, description="Position of the point in the request's `points`.")
    ts: Timestamp = Field(description="The point's `ts`, exactly as sent.")
    value: float
    score: float


class ScoreResponse(BaseModel):
    """One score per request point (same order) and the points that are anomalies."""

    device_id: str
    metric: str
    scores: list[float] = Field(min_length=1, max_length=MAX_POINTS)
    anomalies: list[Anomaly]
    model: ModelRef


class ModelParameters(BaseModel):
    """The parameters the model runs with (from settings)."""

    window: int = Field(ge=1, description="Trailing reference points per score.")
    min_history: int = Field(
        ge=1, description="Reference points needed before a point is scored (else 0)."
    )
    threshold: float = Field(gt=0, description="|score| at or above which a point is an anomaly.")
    min_scale: float = Field(gt=0, description="Floor of the robust spread, in metric units.")
    max_points: int = Field(ge=1, description="Most points one request may carry.")


class ModelInfo(BaseModel):
    """What `GET /v1/model` answers."""

    name: str
    version: str
    description: str
    parameters: ModelParameters


class Health(BaseModel):
    """What `GET /healthz` answers: `pid` lets a readiness probe tell the process it started
    (or one of its workers) from another one answering on the same port."""

    status: Literal["ok"] = "ok"
    pid: int = Field(ge=1)
