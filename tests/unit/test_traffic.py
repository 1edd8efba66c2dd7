import math

import numpy as np
import pytest

from netgpt.errors import ConfigError
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import (
    DEFAULT_ABILENE_FILE,
    AbileneReplay,
    DiurnalTraffic,
    TrafficModel,
    traffic_model,
    traffic_model_names,
)
from netgpt.sim_networks.twin import DigitalTwin

pytestmark = pytest.mark.unit

HOUR = 3600.0

needs_abilene_file = pytest.mark.skipif(
    not DEFAULT_ABILENE_FILE.is_file(),
    reason=f"shared Abilene data not found at {DEFAULT_ABILENE_FILE} (../shared/data/traffic)",
)


@pytest.fixture(scope="module")
def abilene():
    return build_topology("abilene")


@pytest.fixture(scope="module")
def diurnal(abilene):
    return DiurnalTraffic(abilene, seed=7)


def rates(matrix) -> list[float]:
    return [d.rate_mbps for d in matrix.demands]


# ------------------------------------------------------------------------------------------
# diurnal


def test_diurnal_is_deterministic_per_seed_and_time(abilene, diurnal):
    twin = DiurnalTraffic(abilene, seed=7)
    for t in (0.0, 1234.5, 15 * HOUR, 3 * 86_400.0 + 17.0):
        assert diurnal.matrix_at(t) == twin.matrix_at(t)
    other = DiurnalTraffic(abilene, seed=8)
    assert rates(other.matrix_at(15 * HOUR)) != rates(diurnal.matrix_at(15 * HOUR))
    # asking out of order changes nothing (no hidden state)
    late = diurnal.matrix_at(10 * HOUR)
    diurnal.matrix_at(2 * HOUR)
    assert diurnal.matrix_at(10 * HOUR) == late


def test_diurnal_rates_are_positive_and_cover_every_pair(abilene, diurnal):
    devices = abilene.devices
    for t in np.linspace(0, 2 * 86_400, 25):
        matrix = diurnal.matrix_at(float(t))
        assert len(matrix) == len(devices) * (len(devices) - 1)
        assert all(d.rate_mbps > 0 and math.isfinite(d.rate_mbps) for d in matrix)
        assert all(d.src != d.dst for d in matrix)
    assert [(d.src, d.dst) for d in diurnal.matrix_at(0)] == diurnal.pairs


def test_diurnal_peaks_in_the_afternoon_and_dips_at_night(abilene):
    model = DiurnalTraffic(abilene, seed=1, noise=0.0, burst_rate_per_hour=0.0)
    totals = {h: model.matrix_at(h * HOUR).total_mbps for h in range(24)}
    assert max(totals, key=totals.__getitem__) == 15
    assert min(totals, key=totals.__getitem__) == 3
    assert totals[3] / totals[15] == pytest.approx(model.night_level)
    assert model.diurnal_factor(15 * HOUR) == pytest.approx(1.0)
    # periodic
    assert model.matrix_at(5 * HOUR) == model.matrix_at(5 * HOUR + model.period_s)


@pytest.mark.parametrize("topo_name,peak", [("abilene", 0.5), ("campus", 0.7), ("tree,2,3", 0.3)])
def test_diurnal_calibrates_the_busiest_link_at_peak(topo_name, peak):
    topo = build_topology(topo_name)
    model = DiurnalTraffic(topo, peak_utilization=peak, noise=0.0, burst_rate_per_hour=0.0)
    twin = DigitalTwin(topo)
    assert twin.evaluate(model.matrix_at(15 * HOUR)).max_utilization == pytest.approx(peak)
    assert twin.evaluate(model.matrix_at(3 * HOUR)).max_utilization < peak / 2


def test_diurnal_noise_is_small_smooth_and_mean_one(abilene):
    calm = DiurnalTraffic(abilene, seed=3, noise=0.0, burst_rate_per_hour=0.0)
    noisy = DiurnalTraffic(abilene, seed=3, noise=0.1, burst_rate_per_hour=0.0)
    ratios = np.concatenate([
        np.array(rates(noisy.matrix_at(t))) / np.array(rates(calm.matrix_at(t)))
        for t in np.arange(0, 86_400, 600.0)
    ])
    assert ratios.mean() == pytest.approx(1.0, abs=0.01)
    assert 0.05 < ratios.std() < 0.15
    # interpolated between draws: one second apart barely moves
    a = np.array(noisy.rates_at(1000.0))
    b = np.array(noisy.rates_at(1001.0))
    assert np.max(np.abs(a / b - 1)) < 0.02


def test_diurnal_bursts_add_their_extra_to_one_pair(abilene):
    busy = DiurnalTraffic(abilene, seed=5, burst_rate_per_hour=6.0)
    quiet = DiurnalTraffic(abilene, seed=5, burst_rate_per_hour=0.0)
    seen = 0
    for t in np.arange(0, 6 * HOUR, 60.0):
        bursts = busy.bursts_at(float(t))
        extra = busy.rates_at(float(t)) - quiet.rates_at(float(t))
        expected = np.zeros(len(busy.pairs))
        for b in bursts:
            assert b.active_at(float(t))
            assert 120 <= b.duration_s <= 600
            assert b.extra_mbps > 0
            expected[busy.pairs.index((b.src, b.dst))] += b.extra_mbps
        assert extra == pytest.approx(expected)
        seen += len(bursts)
    assert seen > 0
    assert busy.bursts_at(2 * HOUR) == DiurnalTraffic(
        abilene, seed=5, burst_rate_per_hour=6.0).bursts_at(2 * HOUR)


def test_diurnal_time_scale_speeds_up_the_clock(abilene):
    normal = DiurnalTraffic(abilene, seed=2)
    fast = DiurnalTraffic(abilene, seed=2, time_scale=60.0)
    for t in (0.0, 10.0, 900.0):
        assert rates(fast.matrix_at(t)) == pytest.approx(rates(normal.matrix_at(t * 60.0)))


def test_diurnal_limits_pairs_on_big_topologies():
    topo = build_topology("linear,40")
    model = DiurnalTraffic(topo, max_pairs=200, noise=0.0, burst_rate_per_hour=0.0)
    pairs = model.pairs
    assert len(pairs) == 200 and len(set(pairs)) == 200
    assert {s for s, _ in pairs} == set(topo.devices)
    assert DiurnalTraffic(topo, max_pairs=200).pairs == pairs


def test_diurnal_bad_options_raise_config_errors(abilene):
    for options in ({"peak_utilization": 0}, {"peak_utilization": -1}, {"seed": -1},
                    {"noise": -0.1}, {"time_scale": 0}, {"period_s": math.inf},
                    {"burst_rate_per_hour": -1}, {"night_level": 2}, {"max_pairs": 0}):
        with pytest.raises(ConfigError):
            DiurnalTraffic(abilene, **options)
    with pytest.raises(ConfigError, match="at least two devices"):
        DiurnalTraffic(build_topology("linear,1"))


def test_models_are_traffic_models(abilene, diurnal):
    assert isinstance(diurnal, TrafficModel)
    with pytest.raises(TypeError):
        TrafficModel()  # type: ignore[abstract]


# ------------------------------------------------------------------------------------------
# replay


def write_matrix(path, x, od) -> None:
    np.savez(path, X=np.asarray(x, dtype=np.float32), t=np.arange(len(x)) * 300,
             od=np.array(od))


def test_replay_interpolates_and_fills_gaps(tmp_path, abilene):
    od = ["ATLAng_CHINng", "CHINng_NYCMng", "NYCMng_WASHng"]
    x = [
        [10.0, np.nan, 1.0],
        [20.0, 5.0, np.nan],
        [np.nan, np.nan, np.nan],
        [40.0, 7.0, 3.0],
    ]
    path = tmp_path / "tm.npz"
    write_matrix(path, x, od)
    replay = AbileneReplay(abilene, path)
    assert replay.pairs == [("ATLAng", "CHINng"), ("CHINng", "NYCMng"), ("NYCMng", "WASHng")]
    assert replay.n_steps == 4
    assert list(replay.rates_at(0)) == [10.0, 0.0, 1.0]  # a leading gap is 0
    assert list(replay.rates_at(300)) == [20.0, 5.0, 1.0]  # a gap keeps the last value
    assert list(replay.rates_at(600)) == [20.0, 5.0, 1.0]
    assert list(replay.rates_at(150)) == pytest.approx([15.0, 2.5, 1.0])
    assert list(replay.rates_at(825)) == pytest.approx([35.0, 6.5, 2.5])
    # wraps around after the last row: between row 3 and row 0
    assert list(replay.rates_at(1050)) == pytest.approx([25.0, 3.5, 2.0])
    matrix = replay.matrix_at(150)
    assert [(d.src, d.dst) for d in matrix] == replay.pairs
    assert all(d.rate_mbps >= 0 for d in matrix)


def test_replay_options(tmp_path, abilene):
    path = tmp_path / "tm.npz"
    write_matrix(path, [[1.0], [3.0], [5.0]], ["ATLAng_CHINng"])
    assert AbileneReplay(abilene, path, scale=2.0).rates_at(300)[0] == 6.0
    assert AbileneReplay(abilene, path, start_index=2).rates_at(0)[0] == 5.0
    assert AbileneReplay(abilene, path, step_s=60.0).rates_at(30)[0] == 2.0
    assert AbileneReplay(abilene, path, time_scale=10.0).rates_at(30)[0] == 3.0
    with pytest.raises(ConfigError, match="start_index"):
        AbileneReplay(abilene, path, start_index=3)
    with pytest.raises(ConfigError, match="scale"):
        AbileneReplay(abilene, path, scale=-1.0)


def test_replay_errors_say_what_to_do(tmp_path, abilene):
    with pytest.raises(ConfigError, match=r"does not exist.*pass its path"):
        AbileneReplay(abilene, tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not an Abilene traffic file"):
        AbileneReplay(abilene, bad)
    shape = tmp_path / "shape.npz"
    write_matrix(shape, [[1.0, 2.0]], ["ATLAng_CHINng"])
    with pytest.raises(ConfigError, match="shape"):
        AbileneReplay(abilene, shape)
    names = tmp_path / "names.npz"
    write_matrix(names, [[1.0]], ["ATLAngCHINng"])
    with pytest.raises(ConfigError, match="SRC_DST"):
        AbileneReplay(abilene, names)
    good = tmp_path / "good.npz"
    write_matrix(good, [[1.0]], ["ATLAng_CHINng"])
    with pytest.raises(ConfigError, match="abilene topology"):
        AbileneReplay(build_topology("campus"), good)


@needs_abilene_file
def test_replay_of_the_real_abilene_matrices(abilene):
    replay = AbileneReplay(abilene, DEFAULT_ABILENE_FILE)
    assert len(replay.pairs) == 132 and replay.n_steps == 10_080
    twin = DigitalTwin(abilene)
    for t in (0.0, 450.0, 86_400.0, 4100 * 300.0):  # the last one falls in the data gap
        matrix = replay.matrix_at(t)
        assert len(matrix) == 132
        assert all(d.rate_mbps >= 0 and math.isfinite(d.rate_mbps) for d in matrix)
        report = twin.evaluate(matrix)
        assert report.delivered_mbps == pytest.approx(matrix.total_mbps)
        assert 0 < report.max_utilization < 1
    with np.load(DEFAULT_ABILENE_FILE) as data:
        row0 = data["X"][0].astype(np.float64)
        row1 = data["X"][1].astype(np.float64)
    both = np.isfinite(row0) & np.isfinite(row1)
    assert both.sum() > 100
    assert replay.rates_at(150.0)[both] == pytest.approx(((row0 + row1) / 2)[both])


# ------------------------------------------------------------------------------------------
# registry


def test_registry_builds_models_by_name(tmp_path, abilene):
    assert traffic_model_names() == ["abilene-replay", "diurnal"]
    model = traffic_model("diurnal", abilene, seed=4, peak_utilization=0.3)
    assert isinstance(model, DiurnalTraffic) and model.peak_utilization == 0.3
    path = tmp_path / "tm.npz"
    write_matrix(path, [[1.0]], ["ATLAng_CHINng"])
    replay = traffic_model("abilene-replay", abilene, path=path, scale=3.0)
    assert isinstance(replay, AbileneReplay) and replay.rates_at(0)[0] == 3.0
    with pytest.raises(ConfigError, match=r"unknown traffic model 'gravity'.*diurnal"):
        traffic_model("gravity", abilene)
    with pytest.raises(ConfigError, match=r"no option\(s\) \['peak'\]"):
        traffic_model("diurnal", abilene, peak=0.3)
    with pytest.raises(ConfigError, match="does not exist"):
        traffic_model("abilene-replay", abilene, path=tmp_path / "nope.npz")


@needs_abilene_file
def test_registry_defaults_to_the_shared_abilene_file(abilene):
    replay = traffic_model("abilene-replay", abilene)
    assert isinstance(replay, AbileneReplay) and replay.path == DEFAULT_ABILENE_FILE
