import pandas as pd
import pytest

from netgpt.errors import TelemetryError
from netgpt.telemetry.base import RateSample
from netgpt.telemetry.store import SqliteTelemetryStore
from netgpt.telemetry.views import utilization_series

pytestmark = pytest.mark.unit


def sample(t: float, mbps: float, device: str = "r1", interface: str = "eth1") -> RateSample:
    return RateSample(device=device, interface=interface, timestamp=t, interval_s=1.0,
                      in_mbps=0.0, out_mbps=mbps, speed_mbps=1000.0, oper_up=True)


def test_rates_are_resampled_onto_a_regular_grid_with_gaps_as_nan() -> None:
    store = SqliteTelemetryStore(":memory:")
    store.add_rates([sample(100.0 + t, 10.0 * t) for t in (0, 1, 2, 5, 6)])
    store.add_rates([sample(100.0 + t, 500.0, interface="eth2") for t in range(7)])
    frame = store.rates_frame()
    series = utilization_series(frame, [("r1", "eth1"), ("r1", "eth2")])
    assert series.step_s == 1.0 and series.values.shape == (7, 2)
    col = series.values[:, 0]
    assert col[0] == pytest.approx(0.0) and col[2] == pytest.approx(0.02)
    assert pd.isna(col[3]) and pd.isna(col[4]) and col[6] == pytest.approx(0.06)
    assert (series.values[:, 1] == pytest.approx(0.5))
    with pytest.raises(TelemetryError, match="r9:eth1"):
        utilization_series(frame, [("r9", "eth1")])
    with pytest.raises(TelemetryError, match="no rates yet"):
        utilization_series(SqliteTelemetryStore(":memory:").rates_frame(), [("r1", "eth1")])
