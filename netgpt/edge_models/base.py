"""The forecasting contract: :class:`Forecast`, the :class:`Forecaster` protocol, input policy.

History layout everywhere: a float array of shape ``(time, n_series)`` (oldest row first, one
column per link or flow) or ``(time,)`` for one series, sampled every ``step_s`` seconds.

History policy (:func:`prepare_history`), applied per series before any forecaster sees it:

* values must be finite or NaN; ``inf`` is refused (it is a bug upstream, not a missing value);
* leading NaNs are back-filled with the first observed value;
* interior NaN runs are interpolated linearly between their neighbours;
* trailing NaNs (the newest values missing) are forward-filled when there are at most
  ``max_stale`` of them; more would make the forecast stale, so that is refused;
* a series with fewer than ``min_length`` observed values, or with more than
  ``max_missing_fraction`` of its values missing, is refused;
* a constant series is valid and is forecast as that constant by every forecaster here.

Every refusal is a :class:`~netgpt.errors.ForecastError` that names the series, the bad value
and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from netgpt.errors import ForecastError

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_STEP_S",
    "Forecast",
    "Forecaster",
    "HistoryPolicy",
    "as_history",
    "prepare_history",
    "series_names",
    "usable_columns",
]

DEFAULT_STEP_S = 300.0
"""Five-minute samples, the step of the shared traffic data and of the telemetry poller."""

DEFAULT_LEVELS: tuple[float, ...] = (
    0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98,
)  # fmt: skip
"""Quantile levels a forecast carries unless asked otherwise (the median is always included)."""


@dataclass(frozen=True, eq=False)
class Forecast:
    """Quantile forecasts for several series over one horizon.

    ``quantiles[i, h, k]`` is the level-``levels[k]`` quantile of series ``series[i]`` at
    ``h + 1`` steps after ``last_time`` (epoch seconds of the newest observation; ``None`` when
    the caller gave no clock). Quantiles are non-decreasing along the last axis and ``levels``
    is strictly increasing inside ``(0, 1)``; construction checks both.
    """

    series: tuple[str, ...]
    last_time: float | None
    step_s: float
    horizon: int
    levels: tuple[float, ...]
    quantiles: np.ndarray
    method: str = ""
    _levels_arr: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        q = np.asarray(self.quantiles, dtype=np.float64)
        levels = np.asarray(self.levels, dtype=np.float64)
        expected = (len(self.series), self.horizon, len(self.levels))
        if q.shape != expected:
            raise ForecastError(
                f"quantiles have shape {q.shape}, expected (n_series, horizon, n_levels) = "
                f"{expected}"
            )
        if levels.size == 0 or np.any(levels <= 0) or np.any(levels >= 1):
            raise ForecastError(f"quantile levels {self.levels} must lie strictly inside (0, 1)")
        if np.any(np.diff(levels) <= 0):
            raise ForecastError(f"quantile levels {self.levels} must be strictly increasing")
        if not np.all(np.isfinite(q)):
            raise ForecastError("a forecast holds non-finite quantiles; the forecaster is broken")
        if np.any(np.diff(q, axis=-1) < -1e-9 * (1.0 + np.abs(q[..., 1:]))):
            raise ForecastError("quantiles decrease with the level; the forecaster is broken")
        if self.step_s <= 0:
            raise ForecastError(f"step_s={self.step_s} must be positive")
        object.__setattr__(self, "quantiles", q)
        object.__setattr__(self, "_levels_arr", levels)

    @property
    def n_series(self) -> int:
        """How many series the forecast covers."""
        return len(self.series)

    @property
    def times(self) -> np.ndarray | None:
        """Epoch seconds of the ``horizon`` forecast steps (``None`` without ``last_time``)."""
        if self.last_time is None:
            return None
        return self.last_time + self.step_s * np.arange(1, self.horizon + 1, dtype=np.float64)

    def quantile(self, level: float) -> np.ndarray:
        """The level-``level`` quantile, shape ``(n_series, horizon)``.

        Levels between the stored ones are interpolated linearly; outside them the outermost
        stored quantile is returned (the forecast says nothing finer about its tails).
        """
        if not 0.0 < level < 1.0:
            raise ForecastError(f"quantile level {level} must lie strictly inside (0, 1)")
        lv = self._levels_arr
        k = int(np.searchsorted(lv, level))
        if k < len(lv) and lv[k] == level:
            return self.quantiles[..., k].copy()
        if k == 0:
            return self.quantiles[..., 0].copy()
        if k == len(lv):
            return self.quantiles[..., -1].copy()
        w = (level - lv[k - 1]) / (lv[k] - lv[k - 1])
        return (1.0 - w) * self.quantiles[..., k - 1] + w * self.quantiles[..., k]

    @property
    def median(self) -> np.ndarray:
        """The point forecast the benchmarks score (the 0.5 quantile), ``(n_series, horizon)``."""
        return self.quantile(0.5)

    @property
    def mean(self) -> np.ndarray:
        """Mean estimated from the quantiles, ``(n_series, horizon)``.

        The quantile function is integrated over ``(0, 1)`` with the trapezoid rule, held flat
        beyond the outermost levels; with few levels this is an approximation.
        """
        lv = np.concatenate([[0.0], self._levels_arr, [1.0]])
        q = np.concatenate(
            [self.quantiles[..., :1], self.quantiles, self.quantiles[..., -1:]], axis=-1
        )
        widths = np.diff(lv)
        return np.sum(0.5 * (q[..., 1:] + q[..., :-1]) * widths, axis=-1)

    def exceedance_by_step(self, threshold: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """P(value > threshold) at each step, shape ``(n_series, horizon)``.

        ``threshold`` is one number or one per series. The CDF is interpolated linearly between
        the stored quantiles; beyond the outermost ones it continues with the slope of the
        outermost segment until it reaches 0 or 1 (a flat forecast is a step function).
        """
        thr = self._thresholds(threshold)
        n, h, _ = self.quantiles.shape
        out = np.empty((n, h))
        lv = self._levels_arr
        for i in range(n):
            for j in range(h):
                out[i, j] = 1.0 - _cdf_from_quantiles(self.quantiles[i, j], lv, thr[i])
        return out

    def probability_above(self, threshold: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """P(the series exceeds ``threshold`` at some step within the horizon), per series.

        The per-step marginals come from :meth:`exceedance_by_step`. The forecasters here give
        marginals, not joint paths, so this returns the largest per-step probability: a lower
        bound on the true probability that is exact when the steps move together (traffic
        errors are strongly correlated from one 5-minute step to the next). Shape
        ``(n_series,)``.
        """
        return np.asarray(self.exceedance_by_step(threshold).max(axis=1))

    def for_series(self, name: str) -> Forecast:
        """The forecast of one series, by name."""
        if name not in self.series:
            raise ForecastError(
                f"series {name!r} is not in this forecast; known: {', '.join(self.series)}"
            )
        i = self.series.index(name)
        return Forecast(
            series=(name,),
            last_time=self.last_time,
            step_s=self.step_s,
            horizon=self.horizon,
            levels=self.levels,
            quantiles=self.quantiles[i : i + 1],
            method=self.method,
        )

    def _thresholds(self, threshold: float | Sequence[float] | np.ndarray) -> np.ndarray:
        thr = np.asarray(threshold, dtype=np.float64)
        if thr.ndim == 0:
            thr = np.full(self.n_series, float(thr))
        if thr.shape != (self.n_series,):
            raise ForecastError(
                f"threshold has shape {thr.shape}; give one number or one per series "
                f"({self.n_series})"
            )
        if not np.all(np.isfinite(thr)):
            raise ForecastError(f"thresholds must be finite, got {thr.tolist()}")
        return thr


def _cdf_from_quantiles(q: np.ndarray, levels: np.ndarray, x: float) -> float:
    """F(x) from quantiles ``q`` at ``levels`` (piecewise linear, linear tails clipped to [0,1])."""
    if x < q[0]:
        slope = _tail_slope(q[0], q[1], levels[0], levels[1]) if len(q) > 1 else None
        if slope is None:
            return 0.0
        return max(0.0, levels[0] - slope * (q[0] - x))
    if x >= q[-1]:
        slope = _tail_slope(q[-2], q[-1], levels[-2], levels[-1]) if len(q) > 1 else None
        if slope is None:
            return 1.0
        return min(1.0, levels[-1] + slope * (x - q[-1]))
    k = int(np.searchsorted(q, x, side="right"))  # q[k-1] <= x < q[k]
    lo, hi = q[k - 1], q[k]
    if _tail_slope(lo, hi, levels[k - 1], levels[k]) is None:
        return float(levels[k])
    return float(levels[k - 1] + (levels[k] - levels[k - 1]) * (x - lo) / (hi - lo))


def _tail_slope(q0: float, q1: float, l0: float, l1: float) -> float | None:
    """dF/dx of the segment between two quantiles, ``None`` when they coincide (a step)."""
    gap = q1 - q0
    if gap <= 1e-12 * max(abs(q0), abs(q1)) or gap < 1e-200:  # equal up to rounding
        return None
    return float((l1 - l0) / (q1 - q0))


class Forecaster(Protocol):
    """What every forecaster offers (the GPT model, its adapted variant and the baselines).

    ``history`` is ``(time, n_series)`` or ``(time,)``, oldest row first, cleaned by
    :func:`prepare_history` inside the forecaster. A column's forecast depends only on that
    column's values and its name (``series``), never on the other columns, so callers may stack
    windows of many series or many times side by side in one call. ``predict`` does no I/O.
    """

    @property
    def name(self) -> str:
        """Short method name used in reports (``forecaster``, ``last``, ``ridge``...)."""
        ...

    @property
    def max_horizon(self) -> int | None:
        """The longest horizon ``predict`` accepts (``None``: any)."""
        ...

    def lookback(self, step_s: float = DEFAULT_STEP_S) -> int:
        """How many of the newest rows ``predict`` reads; older rows are ignored."""
        ...

    def fit(
        self,
        history: np.ndarray,
        *,
        step_s: float = DEFAULT_STEP_S,
        series: Sequence[str] | None = None,
    ) -> None:
        """Learn from ``history`` (a training portion); a no-op for methods without state."""
        ...

    def predict(
        self,
        history: np.ndarray,
        horizon: int,
        *,
        step_s: float = DEFAULT_STEP_S,
        series: Sequence[str] | None = None,
        last_time: float | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
    ) -> Forecast:
        """Forecast ``horizon`` steps after the last row of ``history`` for every column."""
        ...


@dataclass(frozen=True)
class HistoryPolicy:
    """Limits of :func:`prepare_history` (see the module docstring for the whole policy)."""

    min_length: int = 12
    max_stale: int = 12
    max_missing_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.min_length < 1:
            raise ForecastError(f"min_length={self.min_length} must be at least 1")
        if self.max_stale < 0:
            raise ForecastError(f"max_stale={self.max_stale} must be >= 0")
        if not 0.0 <= self.max_missing_fraction < 1.0:
            raise ForecastError(
                f"max_missing_fraction={self.max_missing_fraction} must lie in [0, 1)"
            )


def as_history(history: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
    """``history`` as a float64 ``(time, n_series)`` array; 1-D input becomes one column."""
    try:
        arr = np.asarray(history, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ForecastError(
            f"history must be numeric (time x series), got {type(history).__name__}: {exc}"
        ) from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ForecastError(
            f"history must be 1-D (one series) or 2-D (time x series), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ForecastError(f"history is empty (shape {arr.shape}); pass at least one value")
    return arr


def series_names(n_series: int, series: Sequence[str] | None) -> tuple[str, ...]:
    """The given names checked against ``n_series``, or ``s0, s1, ...``."""
    if series is None:
        return tuple(f"s{i}" for i in range(n_series))
    names = tuple(str(s) for s in series)
    if len(names) != n_series:
        raise ForecastError(
            f"{len(names)} series names for {n_series} history columns; give one name per column"
        )
    return names


def _column_problems(arr: np.ndarray, policy: HistoryPolicy) -> list[str | None]:
    """Why each column breaks the policy (``None`` for usable columns); names filled later."""
    n_time = arr.shape[0]
    observed = ~np.isnan(arr)
    n_obs = observed.sum(axis=0)
    last_obs = np.where(observed.any(axis=0), n_time - 1 - np.argmax(observed[::-1], axis=0), -1)
    stale = n_time - 1 - last_obs
    problems: list[str | None] = []
    for j in range(arr.shape[1]):
        if n_obs[j] < policy.min_length:
            problems.append(
                f"has {int(n_obs[j])} observed values, fewer than the {policy.min_length} "
                f"needed; pass a longer history"
            )
        elif 1.0 - n_obs[j] / n_time > policy.max_missing_fraction:
            problems.append(
                f"is {1.0 - n_obs[j] / n_time:.0%} missing (limit "
                f"{policy.max_missing_fraction:.0%}); pass a window with fewer gaps"
            )
        elif stale[j] > policy.max_stale:
            problems.append(
                f"is missing its newest {int(stale[j])} values (limit {policy.max_stale}); "
                f"the forecast would be stale: wait for fresh samples"
            )
        else:
            problems.append(None)
    return problems


def usable_columns(history: np.ndarray, policy: HistoryPolicy | None = None) -> np.ndarray:
    """Boolean mask of the columns of a ``(time, n_series)`` array that the policy accepts."""
    arr = as_history(history)
    ok = np.array([p is None for p in _column_problems(arr, policy or HistoryPolicy())])
    return ok & ~np.isinf(arr).any(axis=0)


def prepare_history(
    history: np.ndarray | Sequence[float] | Sequence[Sequence[float]],
    policy: HistoryPolicy | None = None,
    *,
    series: Sequence[str] | None = None,
) -> np.ndarray:
    """Apply the history policy (module docstring): a NaN-free float64 ``(time, n_series)`` copy.

    Raises :class:`~netgpt.errors.ForecastError` naming the series and the bad value when the
    history cannot be used.
    """
    pol = policy or HistoryPolicy()
    arr = as_history(history).copy()
    names = series_names(arr.shape[1], series)
    n_time = arr.shape[0]
    if np.isinf(arr).any():
        col = int(np.argwhere(np.isinf(arr))[0, 1])
        row = int(np.argwhere(np.isinf(arr[:, col]))[0, 0])
        raise ForecastError(
            f"series {names[col]!r} holds {arr[row, col]} at row {row}; mark missing values as "
            f"NaN, never inf"
        )
    nan_cols = np.flatnonzero(np.isnan(arr).any(axis=0))
    if nan_cols.size == 0 and n_time >= pol.min_length:
        return arr
    problems = _column_problems(arr, pol)
    for j, problem in enumerate(problems):
        if problem is not None:
            raise ForecastError(f"series {names[j]!r} {problem}")
    steps = np.arange(n_time)
    for c in nan_cols:
        column = arr[:, c]
        idx = np.flatnonzero(~np.isnan(column))
        # interior runs: linear; leading: back-fill; trailing: forward-fill (np.interp holds
        # the end values flat outside the observed range).
        arr[:, c] = np.interp(steps, idx, column[idx])
    return arr
