import numpy as np
import pytest

from netgpt.edge_models.baselines import make_baseline
from netgpt.edge_models.evaluation import SeriesData, evaluate
from netgpt.edge_models.hindsight import hindsight_features, hindsight_linear
from netgpt.errors import ForecastError

pytestmark = pytest.mark.unit

STEP = 300.0
DAY = 288


def daily(n_days: int = 4, n_series: int = 3, seed: int = 0) -> SeriesData:
    """Series that repeat every day exactly (different phases and levels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_days * DAY)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    level = rng.uniform(5, 50, n_series)
    values = level * (1.5 + np.sin(2 * np.pi * t[:, None] / DAY + phase))
    return SeriesData("daily", values, t * STEP, tuple(f"s{i}" for i in range(n_series)), STEP)


def test_a_series_that_repeats_daily_is_explained_by_its_day_ago_inputs():
    data = daily()
    split = 3 * DAY
    fits = hindsight_linear(data, split=split, horizons=(1, 12), steps=1500)
    last = evaluate(make_baseline("last"), data, horizons=(1, 12), split=split)
    assert fits[12].score.nmae < 0.02 < last.scores[12].nmae
    assert fits[12].score.nmae < last.scores[12].nmae / 10
    # the same origins as the evaluation: o from split-1, o+h inside the data
    assert fits[12].score.n == last.scores[12].n == (data.n_time - 12 - (split - 1)) * 3
    assert fits[1].features == 48 + 36 + 4


def test_the_fit_is_seeded_and_never_starts_worse_than_the_last_value():
    rng = np.random.default_rng(3)
    walk = 100 + np.cumsum(rng.normal(0, 1, (3 * DAY, 2)), axis=0)
    data = SeriesData("walk", walk, np.arange(3 * DAY) * STEP, ("a", "b"), STEP)
    split = 2 * DAY + 100
    a = hindsight_linear(data, split=split, horizons=(12,), steps=300, seed=1)
    b = hindsight_linear(data, split=split, horizons=(12,), steps=300, seed=1)
    assert a[12].score == b[12].score
    last = evaluate(make_baseline("last"), data, horizons=(12,), split=split)
    assert a[12].score.nmae <= last.scores[12].nmae * 1.01


def test_missing_values_are_left_out_and_counted():
    data = daily(n_days=4, n_series=2)
    values = data.values.copy()
    values[3 * DAY + 50 :, 1] = np.nan  # the second series stops reporting
    gappy = SeriesData("gappy", values, data.times, data.series, STEP)
    fits = hindsight_linear(gappy, split=3 * DAY, horizons=(12,), steps=300)
    assert fits[12].left_out > 0
    assert np.isfinite(fits[12].score.nmae)
    feats, level = hindsight_features(gappy, np.array([3 * DAY + 100]))
    assert np.isfinite(feats).all() and level.shape == (1, 2)


@pytest.mark.parametrize("split", [0, 1151, 5000])
def test_a_split_without_test_origins_is_refused(split):
    with pytest.raises(ForecastError, match="no test origin"):
        hindsight_linear(daily(), split=split)
