import json
from pathlib import Path

import numpy as np
import pytest

from netgpt.edge_models.baselines import make_baseline
from netgpt.edge_models.evaluation import load_series, save_series
from netgpt.edge_models.link_forecast import forecast_link, recorded_links, resolve_link
from netgpt.edge_models.plot import plot_forecast
from netgpt.errors import ForecastError, TelemetryError
from netgpt.inventory import LinkEntry
from netgpt.telemetry.base import RateSample
from netgpt.telemetry.store import SqliteTelemetryStore

pytestmark = pytest.mark.unit

LINKS = [LinkEntry(a="CHINng", a_interface="eth2", b="NYCMng", b_interface="eth1",
                   capacity_mbps=9953.0)]


def test_links_resolve_by_interface_or_direction() -> None:
    assert resolve_link("CHINng->NYCMng", LINKS) == ("CHINng->NYCMng", "CHINng", "eth2")
    assert resolve_link("NYCMng->CHINng", LINKS) == ("NYCMng->CHINng", "NYCMng", "eth1")
    assert resolve_link("NYCMng:eth1", []) == ("NYCMng:eth1", "NYCMng", "eth1")
    with pytest.raises(TelemetryError, match="'CHINng->LOSAng'"):
        resolve_link("CHINng->LOSAng", LINKS)
    with pytest.raises(TelemetryError, match="DEVICE:INTERFACE"):
        resolve_link("NYCMng", LINKS)


def test_a_stored_link_is_forecast_and_plotted(tmp_path: Path) -> None:
    store = SqliteTelemetryStore(":memory:")
    load = 400 + 100 * np.sin(np.arange(60) / 6)
    store.add_rates(
        RateSample("CHINng", "eth2", 1000.0 + t, 1.0, 0.0, float(load[t]), 1000.0, True)
        for t in range(60)
    )
    lf = forecast_link(store, "CHINng->NYCMng", "CHINng", "eth2", make_baseline("last"),
                       horizon=6)
    assert lf.forecast.series == ("CHINng->NYCMng",) and lf.forecast.horizon == 6
    assert lf.forecast.median[0] == pytest.approx(np.full(6, load[-1] / 1000.0))
    assert lf.forecast.times is not None and lf.forecast.times[0] > lf.times[-1] - 1e-6
    assert 0.0 <= lf.probability_above(0.45) <= 1.0
    png = plot_forecast(tmp_path / "f.png", lf.times, lf.history, lf.forecast,
                        title="CHINng->NYCMng", threshold=0.6)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(TelemetryError, match="NYCMng:eth9"):
        forecast_link(store, "x", "NYCMng", "eth9", make_baseline("last"), horizon=6)


def _recorded_store(path: Path | str = ":memory:", n: int = 400) -> SqliteTelemetryStore:
    store = SqliteTelemetryStore(path)
    t = np.arange(n)
    east = 300 + 100 * np.sin(t / 20)
    west = 500 + 50 * np.cos(t / 30)
    rows = []
    for i in range(n):
        if i != 7:  # one missed poll of CHINng
            rows.append(RateSample("CHINng", "eth2", 1000.0 + i, 1.0, 0.0, float(east[i]),
                                   1000.0, True))
        rows.append(RateSample("NYCMng", "eth1", 1000.0 + i, 1.0, 0.0, float(west[i]),
                               1000.0, True))
        rows.append(RateSample("NYCMng", "eth9", 1000.0 + i, 1.0, 0.0, 1.0, 1000.0, True))
    store.add_rates(rows)
    return store


def test_recorded_links_become_a_dataset_that_loads_back(tmp_path: Path) -> None:
    store = _recorded_store()
    data = recorded_links(store, LINKS)
    assert data.series == ("CHINng->NYCMng", "NYCMng->CHINng")  # eth9 is on no link
    assert data.step_s == pytest.approx(1.0)
    assert np.isnan(data.values[:, 0]).sum() == 1 and not np.isnan(data.values[:, 1]).any()
    assert np.nanmax(data.values[:, 0]) == pytest.approx(0.4, abs=1e-3)
    back = load_series(save_series(data, tmp_path / "net.npz"))
    assert back.series == data.series
    np.testing.assert_allclose(back.values, data.values)
    np.testing.assert_allclose(back.times, data.times)
    every = recorded_links(store)  # no inventory: every stored interface
    assert every.series == ("CHINng:eth2", "NYCMng:eth1", "NYCMng:eth9")


def test_exporting_nothing_or_to_a_bad_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TelemetryError, match="no rates yet"):
        recorded_links(SqliteTelemetryStore(":memory:"), LINKS)
    other = [LinkEntry(a="ATLAng", a_interface="eth0", b="HSTNng", b_interface="eth0",
                       capacity_mbps=10.0)]
    with pytest.raises(TelemetryError, match="no stored rates belong to an inventory link"):
        recorded_links(_recorded_store(n=20), other)
    data = recorded_links(_recorded_store(n=20), LINKS)
    with pytest.raises(ForecastError, match=r"ending in \.npz"):
        save_series(data, tmp_path / "net.csv")
    with pytest.raises(ForecastError, match="does not exist"):
        save_series(data, tmp_path / "missing" / "net.npz")


def test_telemetry_export_then_forecast_eval_scores_the_recording(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from netgpt.cli import app

    _recorded_store(tmp_path / "telemetry.sqlite", n=600).close()
    runner = CliRunner()
    out = tmp_path / "net.npz"
    got = runner.invoke(app, ["telemetry", "export", "--out", str(out), "--state-dir",
                              str(tmp_path)])
    assert got.exit_code == 0, got.output
    assert "3 series x 600 rows" in " ".join(got.output.split())
    scores = tmp_path / "scores.json"
    got = runner.invoke(app, ["forecast", "eval", "--data", str(out), "--json", str(scores),
                              "--stride", "10"])
    assert got.exit_code == 0, got.output
    scored = set(json.loads(scores.read_text())["net"]["h12"])
    assert scored >= {"forecaster", "forecaster_adapted", "last", "moving_average", "ridge"}
    # a day-ago baseline cannot run on ten minutes of 1-second polls: left out, and said why
    assert "seasonal_day" not in scored
    assert "seasonal_day: not scored on this file" in " ".join(got.output.split())
    bad = runner.invoke(app, ["telemetry", "export", "--out", str(out), "--state-dir",
                              str(tmp_path / "empty")])
    assert bad.exit_code == 2 and "no telemetry store" in bad.output
