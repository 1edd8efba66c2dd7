import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netgpt.edge_models.tokenizer import PAD, SEP, ValueTokenizer
from netgpt.errors import ForecastError

pytestmark = pytest.mark.unit

TOK = ValueTokenizer(n_bins=512, low=-2.0, high=8.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=1, max_size=64)
)
def test_round_trip_is_within_half_a_bin(values):
    x = np.array(values)
    scale = TOK.scale_of(x)
    back = TOK.decode(TOK.encode(x, scale), scale)
    inside = x / scale <= TOK.high - TOK.bin_width  # beyond the range values are clipped
    assert np.all(np.abs(back - x)[inside] <= 0.5 * TOK.bin_width * scale + 1e-9)
    assert np.all(back[~inside] <= x[~inside])


def test_zero_decodes_to_zero_and_nan_to_pad():
    tokens = TOK.encode(np.array([0.0, np.nan, 1.0]), 1.0)
    assert tokens[1] == PAD
    assert TOK.decode(tokens[:1], 1.0)[0] == 0.0
    assert np.isnan(TOK.decode(np.array([PAD, SEP]), 1.0)).all()


def test_values_outside_the_range_are_clipped_to_the_end_bins():
    tokens = TOK.encode(np.array([-100.0, 100.0]), 1.0)
    assert tokens[0] == TOK.offset
    assert tokens[1] == TOK.offset + TOK.n_bins - 1


def test_scale_is_the_mean_absolute_value_or_one():
    ctx = np.array([[1.0, -3.0, np.nan], [0.0, 0.0, 0.0], [np.nan, np.nan, np.nan]])
    assert TOK.scale_of(ctx).tolist() == [2.0, 1.0, 1.0]


def test_quantiles_of_one_bin_stay_inside_it_and_are_ordered():
    probs = np.zeros((1, TOK.n_bins))
    k = TOK.zero_bin + 100
    probs[0, k] = 1.0
    levels = np.array([0.05, 0.5, 0.95])
    q = TOK.quantiles(probs, levels)[0]
    assert np.all(np.diff(q) >= 0)
    assert TOK.edges[k] <= q[0] <= q[-1] <= TOK.edges[k + 1]
    assert q[1] == pytest.approx(TOK.centers[k])


def test_quantiles_of_a_uniform_spread_are_linear():
    probs = np.zeros((2, TOK.n_bins))
    probs[:, TOK.zero_bin : TOK.zero_bin + 100] = 1.0
    q = TOK.quantiles(probs, np.array([0.25, 0.5, 0.75]))
    lo = TOK.edges[TOK.zero_bin]
    span = 100 * TOK.bin_width
    assert q[0] == pytest.approx(lo + span * np.array([0.25, 0.5, 0.75]))


def test_bad_tokenizer_settings_are_refused():
    with pytest.raises(ForecastError, match="n_bins"):
        ValueTokenizer(n_bins=1)
    with pytest.raises(ForecastError, match="contain 0"):
        ValueTokenizer(low=1.0, high=2.0)
