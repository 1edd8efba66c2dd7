import numpy as np
import pytest

from netgpt.edge_models.baselines import (
    BASELINES,
    LastValue,
    MovingAverage,
    RidgeLags,
    SeasonalNaive,
    make_baseline,
)
from netgpt.edge_models.evaluation import (
    SeriesData,
    chronological_split,
    evaluate,
    load_series,
    longest_segment,
)
from netgpt.errors import ForecastError

pytestmark = pytest.mark.unit


def daily(n=700, period=288, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = 100 + 30 * np.sin(2 * np.pi * t / period)
    return np.c_[base + rng.normal(0, 1, n), 2 * base + rng.normal(0, 1, n)]


def test_last_value_and_moving_average_are_exact():
    x = np.arange(1.0, 31.0)[:, None]
    assert LastValue().predict(x, 3, levels=(0.5,)).median.tolist() == [[30.0] * 3]
    ma = MovingAverage(window=4).predict(x, 2, levels=(0.5,)).median
    assert ma.tolist() == [[28.5, 28.5]]


def test_seasonal_naive_repeats_the_last_season():
    x = np.tile(np.arange(10.0), 5)[:, None]
    fc = SeasonalNaive(season_s=3000.0).predict(x, 12, step_s=300.0, levels=(0.5,))
    assert fc.median[0].tolist() == [float(v % 10) for v in range(12)]
    with pytest.raises(ForecastError, match="needs at least 10 rows"):
        SeasonalNaive(season_s=3000.0).predict(x[:-42], 1, step_s=300.0)


def test_ridge_learns_a_linear_recurrence_per_series():
    rng = np.random.default_rng(1)
    n = 600
    a = np.zeros(n)
    b = np.zeros(n)
    for i in range(1, n):
        a[i] = 0.8 * a[i - 1] + 5 + rng.normal(0, 0.1)
        b[i] = 0.5 * b[i - 1] + 50 + rng.normal(0, 0.1)
    hist = np.c_[a, b]
    model = RidgeLags(n_lags=3, alpha=1e-6, max_horizon=2)
    model.fit(hist[:500], series=["a", "b"])
    fc = model.predict(hist[:520], 1, series=["a", "b"], levels=(0.5,))
    expected = [0.8 * a[519] + 5, 0.5 * b[519] + 50]
    assert fc.median[:, 0] == pytest.approx(expected, abs=0.2)
    with pytest.raises(ForecastError, match="not fitted on series c"):
        model.predict(hist[:520, :1], 1, series=["c"])
    with pytest.raises(ForecastError, match="horizon 3"):
        model.predict(hist[:520], 3, series=["a", "b"])


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_quantiles_are_ordered_and_centred_on_the_point(name):
    x = daily()
    method = make_baseline(name)
    method.fit(x[:400], series=["a", "b"])
    fc = method.predict(x, 12, series=["a", "b"])
    assert fc.quantiles.shape == (2, 12, len(fc.levels))
    assert np.all(np.diff(fc.quantiles, axis=-1) >= 0)
    point = method.predict(x, 12, series=["a", "b"], levels=(0.5,)).median
    assert fc.median == pytest.approx(point)
    assert np.all(fc.quantiles[..., -1] > fc.quantiles[..., 0])


def test_unknown_baseline_is_refused():
    with pytest.raises(ForecastError, match="unknown baseline 'nope'"):
        make_baseline("nope")


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_series_reads_both_layouts_and_regularizes_time(tmp_path):
    t = np.array([0, 300, 600, 1200, 1500], dtype=float)  # row at 900 is missing
    one = load_series(write_npz(tmp_path / "one.npz", x=np.arange(5.0), t=t))
    assert one.values.shape == (6, 1)
    assert np.isnan(one.values[3, 0])
    assert one.step_s == 300.0
    many = load_series(
        write_npz(tmp_path / "many.npz", X=np.ones((4, 2)), od=np.array(["A_B", "B_A"]))
    )
    assert many.series == ("A_B", "B_A")
    assert many.step_s == 300.0
    with pytest.raises(ForecastError, match="neither 'X'"):
        load_series(write_npz(tmp_path / "bad.npz", y=np.ones(3)))
    with pytest.raises(ForecastError, match="no such data file"):
        load_series(tmp_path / "absent.npz")


def test_longest_segment_skips_long_outages():
    v = np.ones((100, 2))
    v[30:60] = np.nan  # a 30-row outage
    v[80:85] = np.nan  # a short one stays inside its segment
    data = SeriesData("d", v, np.arange(100) * 300.0, ("a", "b"), 300.0)
    seg, start = longest_segment(data, max_outage=12)
    assert (start, seg.n_time) == (60, 40)


def test_chronological_split_and_its_limits():
    assert chronological_split(100, 0.2) == 80
    with pytest.raises(ForecastError):
        chronological_split(100, 1.5)


def test_evaluate_scores_last_value_exactly():
    v = np.arange(1.0, 101.0)[:, None]
    data = SeriesData("ramp", v, np.arange(100) * 300.0, ("r",), 300.0)
    score = evaluate(LastValue(), data, horizons=(1, 3), split=80)
    # origins 79..98 for h=1 (error 1 each), 79..96 for h=3 (error 3 each)
    assert score.scores[1].mae == pytest.approx(1.0)
    assert score.scores[1].n == 20
    assert score.scores[3].rmse == pytest.approx(3.0)
    assert score.scores[3].nmae == pytest.approx(3 * 18 / sum(range(83, 101)))
