import dataclasses

import numpy as np
import pytest
import torch

from netgpt.edge_models.adapters import (
    AdapterSettings,
    SiteAdaptedForecaster,
    list_adapters,
    load_adapter,
    loaded_adapters,
    save_adapter,
    train_adapter,
    unload_adapters,
    use_adapter,
)
from netgpt.edge_models.gpt_forecaster import (
    GPTForecaster,
    GPTForecasterConfig,
    TrainingPanel,
    TrainingSettings,
)
from netgpt.edge_models.training import site_groups
from netgpt.errors import ForecastError

pytestmark = pytest.mark.unit

TINY = GPTForecasterConfig(
    n_layer=1,
    n_embd=16,
    n_head=2,
    n_bins=64,
    recent_len=24,
    season_len=16,
    max_horizon=6,
    loss_positions=4,
    min_length=8,
)


def traffic(n=900, cols=3, seed=0, noise=0.05):
    """Daily-shaped positive series with noise (5-minute steps)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    level = rng.uniform(20, 200, size=(1, cols))
    day = 1 + 0.4 * np.sin(2 * np.pi * t / 288 + rng.uniform(0, 6, size=(1, cols)))
    return level * day * (1 + noise * rng.standard_normal((n, cols)))


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    f = GPTForecaster(TINY)
    f.train_on(
        [TrainingPanel("synthetic", traffic())],
        TrainingSettings(steps=40, batch_size=16, lr=3e-3, warmup=5, log_every=10),
    )
    return f


def test_training_lowers_the_loss():
    f = GPTForecaster(TINY)
    log = f.train_on(
        [TrainingPanel("synthetic", traffic(noise=0.01))],
        TrainingSettings(steps=60, batch_size=16, lr=3e-3, warmup=5, log_every=10),
    )
    assert log.steps == 60
    assert log.final_loss < 0.6 * log.first_loss, log.losses


def test_training_is_reproducible_with_a_seed():
    states = []
    for _ in range(2):
        torch.rand(7)  # whatever the global random state, the seed decides
        f = GPTForecaster(TINY, seed=3)
        f.train_on([TrainingPanel("s", traffic())], TrainingSettings(steps=3, batch_size=8))
        settings = AdapterSettings(rank=2, steps=2, batch_size=8)
        train_adapter(f, "site", [TrainingPanel("s", traffic(seed=1))], settings)
        states.append({k: v.clone() for k, v in f.net.state_dict().items()})
    assert states[0].keys() == states[1].keys()
    assert any("lora_A" in k for k in states[0])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    other = GPTForecaster(TINY, seed=4).global_state_dict()
    assert not torch.equal(other["gpt.wte.weight"], GPTForecaster(TINY, seed=3).net.gpt.wte.weight)


def test_forecast_shape_and_ordered_quantiles(trained):
    hist = traffic(400, 4, seed=3)
    fc = trained.predict(hist, 6, series=["a", "b", "c", "d"], last_time=1e9)
    assert fc.quantiles.shape == (4, 6, len(fc.levels))
    assert np.all(np.diff(fc.quantiles, axis=-1) >= 0)
    assert fc.series == ("a", "b", "c", "d")
    assert fc.times[0] == 1e9 + 300
    probs = fc.probability_above(fc.median.max(axis=1))
    assert np.all((probs >= 0) & (probs <= 1))
    other = trained.predict(hist, 3, levels=(0.25, 0.5, 0.75))
    assert other.quantiles.shape == (4, 3, 3)


def test_short_history_without_a_season_still_forecasts(trained):
    fc = trained.predict(traffic(30, 1), 6)  # 30 rows: no day-ago segment
    assert np.all(np.isfinite(fc.quantiles))


def test_bad_input_is_imputed_or_refused_clearly(trained):
    hist = traffic(400, 2)
    gappy = hist.copy()
    gappy[100:105, 0] = np.nan
    gappy[-2:, 1] = np.nan
    assert np.all(np.isfinite(trained.predict(gappy, 6).quantiles))
    with pytest.raises(ForecastError, match="'x' has 5 observed values"):
        trained.predict(hist[-5:, :1], 6, series=["x"])
    with pytest.raises(ForecastError, match=r"horizon 7 is outside 1\.\.6"):
        trained.predict(hist, 7)
    with pytest.raises(ForecastError, match="newest 20 values"):
        trained.predict(np.r_[hist[:, :1], np.full((20, 1), np.nan)], 6)


@pytest.mark.parametrize("value", [0.0, 5.0])
def test_constant_series_give_finite_ordered_forecasts(trained, value):
    fc = trained.predict(np.full((400, 1), value), 6)
    assert np.all(np.isfinite(fc.quantiles))
    assert np.all(np.diff(fc.quantiles, axis=-1) >= 0)


def test_save_and_load_give_the_same_forecasts(trained, tmp_path):
    trained.save(tmp_path)
    again = GPTForecaster.load(tmp_path)
    hist = traffic(400, 2, seed=5)
    assert np.array_equal(trained.predict(hist, 6).quantiles, again.predict(hist, 6).quantiles)
    with pytest.raises(ForecastError, match="no forecaster weights"):
        GPTForecaster.load(tmp_path / "absent")


def test_int8_copy_is_close_to_fp32(trained):
    q = trained.quantized()
    hist = traffic(400, 2, seed=6)
    a, b = trained.predict(hist, 6).median, q.predict(hist, 6).median
    assert q.int8
    assert np.abs(a - b).mean() / np.abs(a).mean() < 0.05
    with pytest.raises(ForecastError, match="int8"):
        q.save("unused")


def test_adapters_change_forecasts_and_unload_back_to_global(trained, tmp_path):
    f = GPTForecaster.load(trained.save(tmp_path / "g"))
    hist = traffic(400, 2, seed=7)
    global_q = f.predict(hist, 6).quantiles
    settings = AdapterSettings(rank=4, steps=15, batch_size=8, lr=2e-2)
    log = train_adapter(f, "site-a", [TrainingPanel("a", traffic(900, 2, seed=8) * 3)], settings)
    assert 0 < log.trainable_parameters < f.parameter_count() // 4
    adapted_q = f.predict(hist, 6).quantiles
    assert not np.allclose(adapted_q, global_q)
    use_adapter(f, None)
    assert np.allclose(f.predict(hist, 6).quantiles, global_q, atol=1e-6)
    use_adapter(f, "site-a")
    save_adapter(f, "site-a", tmp_path / "g")
    assert list_adapters(tmp_path / "g") == ["site-a"]
    unload_adapters(f)
    assert loaded_adapters(f) == []
    assert np.array_equal(f.predict(hist, 6).quantiles, global_q)
    load_adapter(f, "site-a", tmp_path / "g")
    assert np.allclose(f.predict(hist, 6).quantiles, adapted_q, atol=1e-6)
    with pytest.raises(ForecastError, match="no adapter for site 'nope'"):
        load_adapter(f, "nope", tmp_path / "g")
    with pytest.raises(ForecastError, match="site name"):
        train_adapter(f, "../evil", [TrainingPanel("a", hist)], settings)


def test_site_routing_uses_each_series_adapter(trained, tmp_path):
    f = GPTForecaster.load(trained.save(tmp_path / "g"))
    settings = AdapterSettings(rank=4, steps=10, batch_size=8, lr=2e-2)
    train_adapter(f, "left", [TrainingPanel("l", traffic(900, 1, seed=9))], settings)
    hist = traffic(400, 2, seed=10)
    routed = SiteAdaptedForecaster(f, {"x": "left"})
    fc = routed.predict(hist, 6, series=["x", "y"])
    use_adapter(f, "left")
    assert np.allclose(fc.quantiles[0], f.predict(hist[:, :1], 6).quantiles[0], atol=1e-6)
    use_adapter(f, None)
    assert np.allclose(fc.quantiles[1], f.predict(hist[:, 1:], 6).quantiles[0], atol=1e-6)


def test_the_chronos_bins_head_also_trains_and_gives_ordered_quantiles():
    f = GPTForecaster(dataclasses.replace(TINY, output="bins"))
    log = f.train_on([TrainingPanel("s", traffic())], TrainingSettings(steps=5, batch_size=8))
    assert np.isfinite(log.final_loss)
    fc = f.predict(traffic(400, 2), 6)
    assert np.all(np.diff(fc.quantiles, axis=-1) >= 0)


def test_site_groups_split_flows_by_source_router():
    groups = site_groups("abilene", ["A_B", "A_C", "B_A"])
    assert groups == {"abilene-A": [0, 1], "abilene-B": [2]}
    assert site_groups("uk", ["s0"]) == {"uk": [0]}


def test_config_is_checked():
    with pytest.raises(ForecastError, match=r"include 0\.5"):
        dataclasses.replace(TINY, levels=(0.1, 0.9))
    with pytest.raises(ForecastError, match="output"):
        dataclasses.replace(TINY, output="samples")


def test_weighted_pinball_weighs_windows_and_ignores_nan():
    from netgpt.edge_models.gpt_forecaster import _pinball

    levels = torch.tensor([0.1, 0.5, 0.9])
    pred = torch.zeros(2, 3, 3)
    target = torch.tensor([[1.0, 1.0, float("nan")], [4.0, 4.0, 4.0]])
    plain = _pinball(pred, target, levels)
    assert torch.isclose(_pinball(pred, target, levels, torch.ones(2)), plain)
    only_first = _pinball(pred, target, levels, torch.tensor([1.0, 0.0]))
    only_second = _pinball(pred, target, levels, torch.tensor([0.0, 1.0]))
    assert torch.isclose(only_first, torch.tensor(0.5))  # mean(0.1, 0.5, 0.9) * 1
    assert torch.isclose(only_second, torch.tensor(2.0))
    assert only_first < plain < only_second


def test_size_weighting_favours_the_large_series():
    from netgpt.edge_models.gpt_forecaster import _WindowSampler

    rng = np.random.default_rng(0)
    values = np.column_stack(
        [1.0 + 0.1 * rng.random(600), 100.0 + 10 * rng.random(600), np.full(600, np.nan)]
    )
    panel = TrainingPanel("p", values, mix=False)
    base = TrainingSettings(drop_season_prob=0.0, truncate_prob=0.0)
    plain = _WindowSampler(TINY, [panel], base, np.random.default_rng(1))
    *_, w = plain.batch(64)
    assert torch.all(w == 1.0)
    weighted = _WindowSampler(
        TINY, [panel], dataclasses.replace(base, size_weight=1.0), np.random.default_rng(1)
    )
    assert weighted.col_probs[0] is not None
    assert weighted.col_probs[0][1] > 0.95  # the 100x larger column dominates the draws
    *_, w = weighted.batch(64)
    assert torch.all((w > 0.5) & (w < 2.0))  # each window's level is near its column's


def test_size_weighted_training_lowers_the_loss():
    f = GPTForecaster(TINY)
    log = f.train_on(
        [TrainingPanel("synthetic", traffic(noise=0.01))],
        TrainingSettings(steps=60, batch_size=16, lr=3e-3, warmup=5, log_every=10, size_weight=1),
    )
    assert log.final_loss < 0.6 * log.first_loss, log.losses
