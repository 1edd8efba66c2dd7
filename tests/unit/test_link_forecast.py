from pathlib import Path

import numpy as np
import pytest

from netgpt.edge_models.baselines import make_baseline
from netgpt.edge_models.link_forecast import forecast_link, resolve_link
from netgpt.edge_models.plot import plot_forecast
from netgpt.errors import TelemetryError
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
