"""The model on its own: known spikes found, quiet series quiet, parameters respected."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from ai_inference.scoring import MAD_TO_SIGMA, FloatArray, ModelParams, robust_zscores, score_window

PARAMS = ModelParams(window=32, min_history=8, threshold=4.0, min_scale=1e-6)


def noisy(n: int, seed: int = 1, level: float = 20.0, sigma: float = 0.5) -> FloatArray:
    return level + np.random.default_rng(seed).normal(0.0, sigma, n)


def wavy(n: int, level: float = 20.0) -> FloatArray:
    """Bounded deterministic jitter (two incommensurate waves): no outlier of its own."""
    i = np.arange(n, dtype=np.float64)
    values: FloatArray = level + 0.3 * np.sin(0.7 * i) + 0.2 * np.cos(1.3 * i)
    return values


def reference_scores(values: list[float], p: ModelParams) -> list[float]:
    """The documented definition, one point at a time with the statistics module."""
    out = []
    for i, x in enumerate(values):
        ref = values[max(0, i - p.window) : i]
        if len(ref) < p.min_history:
            out.append(0.0)
            continue
        med = statistics.median(ref)
        scale = MAD_TO_SIGMA * statistics.median(abs(v - med) for v in ref)
        if scale == 0:
            scale = 1.2533 * statistics.fmean(abs(v - med) for v in ref)
        out.append((x - med) / max(scale, p.min_scale))
    return out


def test_known_spike_is_the_only_anomaly() -> None:
    values = wavy(256, level=21.0)
    values[200] = 35.0
    result = score_window(values, PARAMS)
    assert result.anomalies.tolist() == [200]
    assert result.scores[200] > 20


def test_drop_is_an_anomaly_with_a_negative_score() -> None:
    values = wavy(100)
    values[60] = 5.0
    result = score_window(values, PARAMS)
    assert result.anomalies.tolist() == [60]
    assert result.scores[60] < -20


def test_bounded_jitter_gives_no_anomaly() -> None:
    assert score_window(wavy(1000), PARAMS).anomalies.size == 0


def test_flat_series_gives_no_anomaly_and_zero_scores() -> None:
    result = score_window([3.0] * 300, PARAMS)
    assert result.anomalies.size == 0
    assert not result.scores.any()


def test_step_after_a_flat_series_is_found() -> None:
    # MAD and MeanAD are 0 on a flat reference: the floor min_scale keeps the score finite.
    result = score_window([3.0] * 40 + [3.5], PARAMS)
    assert result.anomalies.tolist() == [40]
    assert result.scores[40] == pytest.approx(0.5 / PARAMS.min_scale)


def test_mean_absolute_deviation_is_the_fallback_when_mad_is_zero() -> None:
    # 7 of 9 reference values equal: MAD is 0, MeanAD is (2 * 1) / 9.
    values = [10.0] * 7 + [11.0, 9.0] + [10.5]
    p = ModelParams(window=9, min_history=9, threshold=4.0, min_scale=1e-6)
    assert robust_zscores(values, p)[9] == pytest.approx(0.5 / (1.2533 * 2 / 9))


def test_threshold_is_respected_at_and_around_the_score() -> None:
    values = wavy(120)
    values[100] = 24.0
    score = float(robust_zscores(values, PARAMS)[100])
    assert 5 < score < 100
    at = score_window(values, ModelParams(window=32, min_history=8, threshold=score))
    above = score_window(values, ModelParams(window=32, min_history=8, threshold=score * 1.001))
    assert 100 in at.anomalies.tolist()
    assert 100 not in above.anomalies.tolist()


def test_points_before_min_history_score_zero() -> None:
    values = [1.0, 100.0, -50.0, 7.0, 1000.0, 1.0, 2.0, 3.0, 500.0]
    scores = robust_zscores(values, PARAMS)
    assert scores[: PARAMS.min_history].tolist() == [0.0] * PARAMS.min_history
    assert scores[8] != 0


def test_single_point_and_short_windows_score_zero() -> None:
    assert robust_zscores([42.0], PARAMS).tolist() == [0.0]
    assert score_window([1.0] * PARAMS.min_history, PARAMS).anomalies.size == 0


@pytest.mark.parametrize(
    "params",
    [
        PARAMS,
        ModelParams(window=5, min_history=1),
        ModelParams(window=7, min_history=3),
        ModelParams(window=64, min_history=16),
    ],
)
@pytest.mark.parametrize("n", [1, 9, 33, 100, 300])
def test_vectorised_scores_match_the_definition(params: ModelParams, n: int) -> None:
    values = np.round(noisy(n, seed=n), 1).tolist()  # rounding makes MAD == 0 rows likely
    assert robust_zscores(values, params) == pytest.approx(reference_scores(values, params))


def test_scoring_is_deterministic_and_causal() -> None:
    values = noisy(256)
    first = robust_zscores(values, PARAMS)
    assert np.array_equal(first, robust_zscores(values.copy(), PARAMS))
    # A point's score depends only on the points before it and itself.
    changed = values.copy()
    changed[150:] += 100
    assert np.array_equal(robust_zscores(changed, PARAMS)[:150], first[:150])


def test_extreme_values_keep_scores_finite() -> None:
    values = [1e15, -1e15] * 20
    assert np.isfinite(robust_zscores(values, PARAMS)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "window"),
        ({"window": 257}, "window"),
        ({"window": 8, "min_history": 9}, "min_history"),
        ({"min_history": 0}, "min_history"),
        ({"threshold": 0.0}, "threshold"),
        ({"min_scale": 0.0}, "min_scale"),
    ],
)
def test_invalid_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelParams(**kwargs)  # type: ignore[arg-type]
