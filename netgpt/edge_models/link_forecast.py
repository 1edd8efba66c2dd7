"""Forecast one link's egress utilization from the telemetry store (``netgpt forecast --link``).

Reads the stored rates of the link's sending interface, puts them on a regular grid
(:func:`~netgpt.telemetry.views.utilization_series`) and asks a forecaster for ``horizon`` steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from netgpt.edge_models.base import Forecast, Forecaster
from netgpt.edge_models.evaluation import SeriesData
from netgpt.errors import TelemetryError
from netgpt.inventory import LinkEntry
from netgpt.telemetry.store import SqliteTelemetryStore
from netgpt.telemetry.views import utilization_series

__all__ = ["LinkForecast", "forecast_link", "recorded_links", "resolve_link"]


def _directions(links: Sequence[LinkEntry]) -> Iterator[tuple[str, str, str]]:
    """``("A->B", A, A's interface towards B)`` for both directions of every link."""
    for lk in links:
        yield f"{lk.a}->{lk.b}", lk.a, lk.a_interface
        yield f"{lk.b}->{lk.a}", lk.b, lk.b_interface


def resolve_link(spec: str, links: Sequence[LinkEntry]) -> tuple[str, str, str]:
    """``DEVICE:INTERFACE`` or ``A->B`` (the direction A sends) to (label, device, interface).

    Raises :class:`TelemetryError` naming the spec and the accepted forms.
    """
    if "->" in spec:
        a, _, b = (part.strip() for part in spec.partition("->"))
        for found in _directions(links):
            if found[0] == f"{a}->{b}":
                return found
        known = ", ".join(f"{lk.a}->{lk.b}" for lk in links[:6])
        raise TelemetryError(f"no link {spec!r} in the inventory; links look like {known}, ...")
    device, sep, interface = spec.partition(":")
    if not sep or not device or not interface:
        raise TelemetryError(
            f"link {spec!r} is neither DEVICE:INTERFACE (e.g. NYCMng:eth1) nor A->B "
            "(e.g. CHINng->NYCMng)"
        )
    return spec, device, interface


@dataclass(frozen=True)
class LinkForecast:
    """A link's measured history (regular grid) and its forecast."""

    label: str
    times: np.ndarray
    history: np.ndarray
    forecast: Forecast

    def probability_above(self, threshold: float) -> float:
        """P(utilization exceeds ``threshold`` within the horizon)."""
        return float(self.forecast.probability_above(threshold)[0])


def forecast_link(
    store: SqliteTelemetryStore,
    label: str,
    device: str,
    interface: str,
    forecaster: Forecaster,
    *,
    horizon: int,
    step_s: float | None = None,
) -> LinkForecast:
    """Forecast ``device``'s egress utilization on ``interface`` from the stored rates."""
    frame = store.rates_frame(device=device, interface=interface)
    if frame.empty:
        raise TelemetryError(
            f"no stored rates for {device}:{interface}; run 'netgpt telemetry poll' first "
            "(or check the device and interface names)"
        )
    series = utilization_series(frame, [(device, interface)], step_s=step_s)
    forecast = forecaster.predict(series.values, horizon, step_s=series.step_s,
                                  series=[label], last_time=float(series.times[-1]))
    return LinkForecast(label, series.times, series.values[:, 0], forecast)


def recorded_links(
    store: SqliteTelemetryStore,
    links: Sequence[LinkEntry] = (),
    *,
    step_s: float | None = None,
    name: str = "telemetry",
) -> SeriesData:
    """Every recorded link direction's egress utilization as one :class:`SeriesData`.

    With ``links`` (the inventory's), each direction that has stored rates is a series named
    ``A->B``; without, each stored interface is one, named ``DEVICE:INTERFACE``. Rows are the
    regular grid of :func:`~netgpt.telemetry.views.utilization_series` (NaN where a poll is
    missing), so :func:`~netgpt.edge_models.evaluation.save_series` and ``netgpt forecast eval``
    score forecasters on the network's own traffic.
    """
    frame = store.rates_frame()
    if frame.empty:
        raise TelemetryError("the telemetry store holds no rates yet; run 'netgpt telemetry poll'")
    present = set(zip(frame["device"], frame["interface"], strict=True))
    wanted: list[tuple[str, tuple[str, str]]]
    if links:
        wanted = [(label, (d, i)) for label, d, i in _directions(links) if (d, i) in present]
        if not wanted:
            raise TelemetryError(
                "no stored rates belong to an inventory link; poll this network first "
                f"(the store has {', '.join(f'{d}:{i}' for d, i in sorted(present)[:6])}...)")
    else:
        wanted = [(f"{d}:{i}", (d, i)) for d, i in sorted(present)]
    series = utilization_series(frame, [key for _, key in wanted], step_s=step_s)
    return SeriesData(name, series.values, series.times, tuple(label for label, _ in wanted),
                      series.step_s)
