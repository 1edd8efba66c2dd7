import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netgpt.edge_models.base import (
    Forecast,
    HistoryPolicy,
    prepare_history,
    usable_columns,
)
from netgpt.errors import ForecastError

pytestmark = pytest.mark.unit

LEVELS = (0.1, 0.5, 0.9)


def forecast(q, levels=LEVELS, names=None):
    q = np.asarray(q, dtype=float)
    return Forecast(
        series=tuple(names or [f"l{i}" for i in range(q.shape[0])]),
        last_time=1000.0,
        step_s=300.0,
        horizon=q.shape[1],
        levels=levels,
        quantiles=q,
    )


def test_accessors_read_the_quantiles():
    fc = forecast([[[1, 2, 3], [2, 4, 6]]])
    assert fc.median.tolist() == [[2.0, 4.0]]
    assert fc.quantile(0.3).tolist() == [[1.5, 3.0]]
    assert fc.quantile(0.01).tolist() == [[1.0, 2.0]]  # beyond the stored levels: outermost
    assert fc.times.tolist() == [1300.0, 1600.0]
    assert fc.mean[0, 0] == pytest.approx(2.0)
    assert fc.for_series("l0").median.tolist() == [[2.0, 4.0]]
    with pytest.raises(ForecastError, match="not in this forecast"):
        fc.for_series("nope")


def test_construction_checks_shape_levels_and_order():
    with pytest.raises(ForecastError, match="shape"):
        forecast(np.zeros((1, 2, 2)))
    with pytest.raises(ForecastError, match="increasing"):
        forecast(np.zeros((1, 2, 3)), levels=(0.5, 0.1, 0.9))
    with pytest.raises(ForecastError, match="inside"):
        forecast(np.zeros((1, 2, 3)), levels=(0.0, 0.5, 0.9))
    with pytest.raises(ForecastError, match="decrease"):
        forecast([[[3, 2, 1]]])
    with pytest.raises(ForecastError, match="non-finite"):
        forecast([[[1, np.nan, 3]]])


def test_probability_above_follows_the_quantiles():
    fc = forecast([[[10, 20, 30], [10, 20, 30]], [[0, 0, 0], [0, 0, 0]]])
    p = fc.exceedance_by_step(20.0)
    assert p[0] == pytest.approx([0.5, 0.5])
    assert fc.probability_above(25.0)[0] == pytest.approx(0.3)
    assert fc.probability_above(1000.0)[0] == 0.0
    assert fc.probability_above(-1000.0)[0] == 1.0
    # a flat forecast is a step function
    assert fc.probability_above(-0.1)[1] == 1.0
    assert fc.probability_above(0.1)[1] == 0.0


def test_probability_above_takes_one_threshold_per_series_and_the_worst_step():
    fc = forecast([[[10, 20, 30], [30, 40, 50]], [[10, 20, 30], [10, 20, 30]]])
    p = fc.probability_above([40.0, 20.0])
    assert p == pytest.approx([0.5, 0.5])
    with pytest.raises(ForecastError, match="one per series"):
        fc.probability_above([1.0, 2.0, 3.0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
    st.floats(-2e3, 2e3),
    st.floats(0, 500),
)
def test_probability_above_is_a_probability_and_falls_with_the_threshold(q, thr, delta):
    fc = forecast([[sorted(q)]])
    a, b = fc.probability_above(thr)[0], fc.probability_above(thr + delta)[0]
    assert 0.0 <= b <= a <= 1.0


def test_history_policy_imputes_short_gaps():
    x = np.array([np.nan, 1, 2, np.nan, np.nan, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, np.nan])
    got = prepare_history(x)[:, 0]
    assert got[0] == 1.0  # leading: back-filled
    assert got[3:5].tolist() == [3.0, 4.0]  # interior: linear
    assert got[-1] == 14.0  # trailing: forward-filled


def test_history_policy_accepts_constant_series():
    got = prepare_history(np.full((20, 2), 7.0))
    assert np.all(got == 7.0)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (np.ones(5), "'s0' has 5 observed values, fewer than the 12 needed"),
        (np.r_[np.ones(20), [np.nan] * 13], "'s0' is missing its newest 13 values"),
        (np.r_[[np.nan] * 30, np.ones(20)], "'s0' is 60% missing"),
        (np.r_[np.ones(20), [np.inf]], "'s0' holds inf at row 20"),
        (np.zeros((2, 2, 2)), "1-D .* or 2-D"),
        (np.zeros((0, 3)), "history is empty"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_history_policy_refuses_with_a_clear_error(history, message):
    with pytest.raises(ForecastError, match=message):
        prepare_history(history)


def test_errors_name_the_series():
    h = np.ones((20, 2))
    h[:, 1] = np.nan
    with pytest.raises(ForecastError, match="'link-b'"):
        prepare_history(h, series=["link-a", "link-b"])


def test_usable_columns_matches_the_policy():
    h = np.ones((20, 3))
    h[:15, 1] = np.nan
    h[-1, 2] = np.inf
    assert usable_columns(h, HistoryPolicy()).tolist() == [True, False, False]
