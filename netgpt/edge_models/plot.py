"""A link's history, forecast and quantile band as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from netgpt.edge_models.base import Forecast
from netgpt.errors import ForecastError

__all__ = ["plot_forecast"]


def plot_forecast(
    path: Path,
    times: np.ndarray,
    history: np.ndarray,
    forecast: Forecast,
    *,
    title: str,
    unit: str = "utilization",
    threshold: float | None = None,
    band: tuple[float, float] = (0.1, 0.9),
) -> Path:
    """Plot one series' ``history`` (at epoch ``times``), its median forecast and quantile band.

    The band spans the ``band`` quantiles; a dashed line marks ``threshold`` (e.g. an intent's
    ceiling). Raises :class:`ForecastError` when the forecast has more than one series or no clock.
    """
    if forecast.n_series != 1:
        raise ForecastError(f"plot one series at a time; this forecast has {forecast.n_series}")
    future = forecast.times
    if future is None:
        raise ForecastError("the forecast has no last_time; give predict() the history's times")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def when(t: np.ndarray) -> np.ndarray:
        return np.asarray(mdates.date2num([datetime.fromtimestamp(float(x), UTC) for x in t]))

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(when(times), history, color="#1f77b4", label="measured")
    low, high = forecast.quantile(band[0])[0], forecast.quantile(band[1])[0]
    ax.fill_between(when(future), low, high, color="#ff7f0e", alpha=0.25,
                    label=f"q{band[0]:.0%}-q{band[1]:.0%}".replace("%", ""))
    ax.plot(when(future), forecast.median[0], color="#ff7f0e", label=f"median ({forecast.method})")
    if threshold is not None:
        ax.axhline(threshold, color="#d62728", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_title(title)
    ax.set_ylabel(unit)
    ax.legend(loc="upper left")
    ax.xaxis_date()
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
