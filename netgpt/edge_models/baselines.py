"""Baseline forecasters behind the :class:`~netgpt.edge_models.base.Forecaster` protocol.

* ``last``: the last observed value, held flat.
* ``seasonal_day``: the value one season (a day) earlier, ``x[t + h - P]``.
* ``moving_average``: the mean of the last ``window`` values (12 = one hour of 5-minute steps).
* ``ridge``: per series, one ridge regression per horizon step on the last ``n_lags`` values
  (direct multi-step), fitted on a training history; series are matched by name.

Their quantiles: the point forecast plus the method's own errors on the newest ``spread_rows``
rows of the history it is given (each origin there forecast as at prediction time), centred so
that the median is the point forecast. Asking only for the median (``levels=(0.5,)``) skips that
backtest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from netgpt.edge_models.base import (
    DEFAULT_LEVELS,
    DEFAULT_STEP_S,
    Forecast,
    HistoryPolicy,
    as_history,
    prepare_history,
    series_names,
)
from netgpt.errors import ForecastError

__all__ = [
    "BASELINES",
    "LastValue",
    "MovingAverage",
    "RidgeLags",
    "SeasonalNaive",
    "make_baseline",
]


class _Baseline:
    """Point forecasts at many origins, plus the shared quantile and ``predict`` machinery."""

    name = "baseline"
    max_horizon: int | None = None

    def __init__(self, *, spread_rows: int = 288) -> None:
        self.spread_rows = spread_rows

    def needed_rows(self, step_s: float) -> int:
        """Rows of history one point forecast needs."""
        return 1

    def lookback(self, step_s: float = DEFAULT_STEP_S) -> int:
        """Rows read by ``predict``: what one point needs plus the error backtest."""
        return self.needed_rows(step_s) + self.spread_rows

    def fit(
        self,
        history: np.ndarray,
        *,
        step_s: float = DEFAULT_STEP_S,
        series: Sequence[str] | None = None,
    ) -> None:
        """No state to learn."""
        return None

    def points_at(
        self,
        x: np.ndarray,
        origins: np.ndarray,
        horizon: int,
        step_s: float,
        names: tuple[str, ...],
    ) -> np.ndarray:
        """Point forecasts ``(len(origins), n_series, horizon)`` made at rows ``origins``."""
        raise NotImplementedError

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
        """Point forecast as the median, spread from the method's recent errors."""
        if horizon < 1 or (self.max_horizon is not None and horizon > self.max_horizon):
            raise ForecastError(
                f"horizon {horizon} is outside 1..{self.max_horizon or 'inf'} for {self.name}"
            )
        raw = as_history(history)
        names = series_names(raw.shape[1], series)
        need = self.needed_rows(step_s)
        if raw.shape[0] < need:
            raise ForecastError(
                f"{self.name} needs at least {need} rows of history, got {raw.shape[0]}; pass a "
                f"longer history or use 'last'"
            )
        x = prepare_history(
            raw[-self.lookback(step_s) :],
            HistoryPolicy(min_length=min(need, 12)),
            series=names,
        )
        n_time = x.shape[0]
        point = self.points_at(x, np.array([n_time - 1]), horizon, step_s, names)[0]
        lv = np.asarray(levels, dtype=np.float64)
        quant = np.repeat(point[:, :, None], lv.size, axis=2)
        if not (lv.size == 1 and lv[0] == 0.5):
            quant = quant + self._centred_errors(x, horizon, step_s, names, lv)
        return Forecast(
            series=names,
            last_time=last_time,
            step_s=step_s,
            horizon=horizon,
            levels=tuple(float(v) for v in lv),
            quantiles=quant,
            method=self.name,
        )

    def _centred_errors(
        self,
        x: np.ndarray,
        horizon: int,
        step_s: float,
        names: tuple[str, ...],
        levels: np.ndarray,
    ) -> np.ndarray:
        """Error quantiles minus the error median, ``(n_series, horizon, n_levels)``."""
        n_time, n_series = x.shape
        first = max(self.needed_rows(step_s) - 1, n_time - 1 - self.spread_rows)
        origins = np.arange(first, n_time - 1)
        out = np.zeros((n_series, horizon, levels.size))
        if origins.size == 0:
            return out
        pts = self.points_at(x, origins, horizon, step_s, names)
        for h in range(1, horizon + 1):
            ok = origins + h <= n_time - 1
            if ok.sum() < 2:
                continue
            err = x[origins[ok] + h] - pts[ok, :, h - 1]
            qs = np.quantile(err, np.concatenate([levels, [0.5]]), axis=0)
            out[:, h - 1, :] = (qs[:-1] - qs[-1]).T
        return np.sort(out, axis=-1)


class LastValue(_Baseline):
    """The last observed value, held for the whole horizon."""

    name = "last"

    def points_at(
        self,
        x: np.ndarray,
        origins: np.ndarray,
        horizon: int,
        step_s: float,
        names: tuple[str, ...],
    ) -> np.ndarray:
        """``x[o]`` for every step."""
        return np.repeat(x[origins][:, :, None], horizon, axis=2)


class SeasonalNaive(_Baseline):
    """The value one season earlier (``season_s``, a day by default)."""

    name = "seasonal_day"

    def __init__(self, *, season_s: float = 86400.0, spread_rows: int = 288) -> None:
        super().__init__(spread_rows=spread_rows)
        self.season_s = season_s

    def period(self, step_s: float) -> int:
        """The season in steps."""
        return max(1, round(self.season_s / step_s))

    def needed_rows(self, step_s: float) -> int:
        """One full season."""
        return self.period(step_s)

    def points_at(
        self,
        x: np.ndarray,
        origins: np.ndarray,
        horizon: int,
        step_s: float,
        names: tuple[str, ...],
    ) -> np.ndarray:
        """``x[o + h - k P]`` with the smallest ``k`` that reaches back into the history."""
        p = self.period(step_s)
        h = np.arange(1, horizon + 1)
        back = p * np.ceil(h / p).astype(np.int64)
        rows = origins[:, None] + h[None, :] - back[None, :]
        return np.transpose(x[rows], (0, 2, 1))


class MovingAverage(_Baseline):
    """The mean of the last ``window`` values, held for the whole horizon."""

    name = "moving_average"

    def __init__(self, *, window: int = 12, spread_rows: int = 288) -> None:
        super().__init__(spread_rows=spread_rows)
        if window < 1:
            raise ForecastError(f"moving-average window {window} must be at least 1")
        self.window = window

    def needed_rows(self, step_s: float) -> int:
        """One window."""
        return self.window

    def points_at(
        self,
        x: np.ndarray,
        origins: np.ndarray,
        horizon: int,
        step_s: float,
        names: tuple[str, ...],
    ) -> np.ndarray:
        """Mean of ``x[o - window + 1 .. o]``."""
        csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
        lo = np.maximum(origins + 1 - self.window, 0)
        mean = (csum[origins + 1] - csum[lo]) / (origins + 1 - lo)[:, None]
        return np.repeat(mean[:, :, None], horizon, axis=2)


class RidgeLags(_Baseline):
    """Per series and horizon step, ridge regression on the last ``n_lags`` values."""

    name = "ridge"

    def __init__(
        self,
        *,
        n_lags: int = 12,
        alpha: float = 1.0,
        max_horizon: int = 12,
        spread_rows: int = 288,
    ) -> None:
        super().__init__(spread_rows=spread_rows)
        if n_lags < 1 or alpha < 0 or max_horizon < 1:
            raise ForecastError(
                f"ridge needs n_lags >= 1, alpha >= 0, max_horizon >= 1 (got {n_lags}, "
                f"{alpha}, {max_horizon})"
            )
        self.n_lags = n_lags
        self.alpha = alpha
        self.horizons = max_horizon
        self.max_horizon = max_horizon
        self.coef: dict[str, np.ndarray] = {}
        self.scale: dict[str, float] = {}

    def needed_rows(self, step_s: float) -> int:
        """One set of lags."""
        return self.n_lags

    def fit(
        self,
        history: np.ndarray,
        *,
        step_s: float = DEFAULT_STEP_S,
        series: Sequence[str] | None = None,
    ) -> None:
        """Fit ``max_horizon`` ridge models per column (rows with NaN are left out).

        Lags are divided by the series' mean absolute value, so ``alpha`` means the same for
        every series.
        """
        x = as_history(history)
        names = series_names(x.shape[1], series)
        n_time = x.shape[0]
        lags, hmax = self.n_lags, self.horizons
        if n_time < lags + hmax + 1:
            raise ForecastError(
                f"ridge needs at least {lags + hmax + 1} training rows, got {n_time}"
            )
        origins = np.arange(lags - 1, n_time - 1)
        for j, name in enumerate(names):
            col = x[:, j]
            scale = float(np.nanmean(np.abs(col))) if np.any(~np.isnan(col)) else 1.0
            scale = scale if scale > 0 else 1.0
            feats = self._features(col[:, None] / scale, origins)[:, 0, :]
            coef = np.zeros((hmax, lags + 1))
            for h in range(1, hmax + 1):
                ok_o = origins + h <= n_time - 1
                f_h = feats[ok_o]
                y_h = col[origins[ok_o] + h] / scale
                ok = ~np.isnan(f_h).any(axis=1) & ~np.isnan(y_h)
                if ok.sum() <= lags:
                    coef[h - 1, 0] = 1.0  # too little data: fall back to the last value
                    continue
                a = f_h[ok]
                gram = a.T @ a + self.alpha * np.diag(np.r_[np.ones(lags), 0.0])
                coef[h - 1] = np.linalg.solve(gram, a.T @ y_h[ok])
            self.coef[name] = coef
            self.scale[name] = scale

    def _features(self, x: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Lags ``x[o], x[o-1], ...`` plus a constant, ``(n_origins, n_series, n_lags + 1)``."""
        rows = origins[:, None] - np.arange(self.n_lags)[None, :]
        lagged = np.transpose(x[rows], (0, 2, 1))
        ones = np.ones((*lagged.shape[:2], 1))
        return np.concatenate([lagged, ones], axis=2)

    def points_at(
        self,
        x: np.ndarray,
        origins: np.ndarray,
        horizon: int,
        step_s: float,
        names: tuple[str, ...],
    ) -> np.ndarray:
        """Each series' fitted models applied at ``origins``."""
        missing = sorted({n for n in names if n not in self.coef})
        if missing:
            raise ForecastError(
                f"ridge was not fitted on series {', '.join(missing[:5])}; call fit() with "
                f"their training history first"
            )
        uniq = sorted(set(names))
        index = {n: i for i, n in enumerate(uniq)}
        coef = np.stack([self.coef[n][:horizon] for n in uniq])  # (U, H, lags+1)
        scale = np.array([self.scale[n] for n in uniq])
        which = np.array([index[n] for n in names])
        feats = self._features(x / scale[which][None, :], origins)  # (O, M, lags+1)
        pts = np.einsum("omf,mhf->omh", feats, coef[which])
        return np.asarray(pts * scale[which][None, :, None])


BASELINES: dict[str, type[_Baseline]] = {
    "last": LastValue,
    "seasonal_day": SeasonalNaive,
    "moving_average": MovingAverage,
    "ridge": RidgeLags,
}
"""Baselines by name, in the order the benchmark reports them."""


def make_baseline(name: str) -> _Baseline:
    """A baseline by name (``last``, ``seasonal_day``, ``moving_average``, ``ridge``)."""
    try:
        return BASELINES[name]()
    except KeyError:
        raise ForecastError(
            f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}"
        ) from None
