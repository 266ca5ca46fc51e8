"""The model: a robust z-score of each reading against a trailing rolling median/MAD.

For point i the reference is the `window` readings before it (not itself, so a spike
cannot mask itself). With m = median(reference) and MAD = median(|reference - m|):

    scale_i = 1.4826 * MAD            (MAD scaled to a standard deviation for normal data)
            | 1.2533 * MeanAD         when MAD is 0 (more than half the reference is equal)
    scale_i = max(scale_i, min_scale) (a perfectly flat reference)
    score_i = (x_i - m) / scale_i     (signed: positive above the median)

A point is an anomaly when |score_i| >= threshold. Points with fewer than `min_history`
reference readings (the start of a window) score 0 and are never anomalies. The result
depends only on the values and the parameters: the same window always scores the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from ai_inference.contracts import setting

MODEL_NAME = "robust-zscore"
MODEL_VERSION = "1.0.0"
MODEL_DESCRIPTION = (
    "Robust z-score of each reading against the median and MAD of the `window` readings "
    "before it (MeanAD fallback when MAD is 0, floored at `min_scale`); anomaly when "
    "|score| >= `threshold`; the first `min_history` readings of a window score 0."
)

# AI_WINDOW's declared maximum (256). Cost grows with points x window: a 4096-point request
# scores in ~4 ms at window 64 and ~11 ms (24 MiB transient) at 256, instead of half a second
# at window 4096.
MAX_WINDOW: int = setting("AI_WINDOW")["maximum"]

MAD_TO_SIGMA = 1.4826
MEANAD_TO_SIGMA = 1.2533

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ModelParams:
    """The model's parameters; `Settings` is where they come from. The defaults are the
    settings' declared defaults."""

    window: int = setting("AI_WINDOW")["default"]
    min_history: int = setting("AI_MIN_HISTORY")["default"]
    threshold: float = setting("AI_ANOMALY_THRESHOLD")["default"]
    min_scale: float = setting("AI_MIN_SCALE")["default"]

    def __post_init__(self) -> None:
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window must be between 1 and {MAX_WINDOW}")
        if not 1 <= self.min_history <= self.window:
            raise ValueError("min_history must be between 1 and window")
        if not self.threshold > 0:
            raise ValueError("threshold must be > 0")
        if not self.min_scale > 0:
            raise ValueError("min_scale must be > 0")

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Scored:
    """Scores of a window, one per point, and the indices of its anomalies."""

    scores: FloatArray
    anomalies: NDArray[np.intp]


def robust_zscores(values: Sequence[float] | FloatArray, params: ModelParams) -> FloatArray:
    """One signed robust z-score per value (0 for the first `min_history` values)."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    scores = np.zeros(n, dtype=np.float64)
    first = params.min_history
    if n <= first:
        return scores
    w = params.window
    # Row i of the view holds x[i-w:i]; positions before the series start are +inf, so
    # after sorting a row its k_i real readings come first.
    padded = np.concatenate((np.full(w, np.inf), x[:-1]))
    step = padded.strides[0]
    # A read-only strided view (no copy): rows first..n-1, each w wide, one element apart.
    rows = np.lib.stride_tricks.as_strided(
        padded[first:], shape=(n - first, w), strides=(step, step), writeable=False
    )
    ref = np.sort(rows, axis=1)
    k = np.minimum(np.arange(first, n), w)
    r = np.arange(k.size)
    lo, hi = (k - 1) // 2, k // 2
    median = 0.5 * (ref[r, lo] + ref[r, hi])
    dev = np.abs(ref - median[:, None])
    dev_sorted = np.sort(dev, axis=1)
    mad = 0.5 * (dev_sorted[r, lo] + dev_sorted[r, hi])
    scale = MAD_TO_SIGMA * mad
    flat = scale == 0
    if flat.any():
        real = np.arange(w)[None, :] < k[:, None]
        mean_ad = np.where(real, dev, 0.0).sum(axis=1) / k
        scale = np.where(flat, MEANAD_TO_SIGMA * mean_ad, scale)
    scale = np.maximum(scale, params.min_scale)
    scores[first:] = (x[first:] - median) / scale
    return scores


def score_window(values: Sequence[float] | FloatArray, params: ModelParams) -> Scored:
    """Scores and the indices of the points with |score| >= threshold."""
    scores = robust_zscores(values, params)
    anomalies = np.flatnonzero(np.abs(scores) >= params.threshold)
    return Scored(scores=scores, anomalies=anomalies)
