"""A reference for the benchmark: the best linear reading of a forecaster's inputs, in hindsight.

:func:`hindsight_linear` fits, for each horizon ``h``, one linear map from a forecast window's
inputs to the value ``h`` steps ahead, **on the test origins themselves** (the answers known),
and scores it there with the evaluation's protocol (same origins, pooled errors of
:mod:`netgpt.edge_models.evaluation`). The inputs are what the GPT forecaster reads plus the
time of day:

* the newest ``recent_len`` values;
* the ``season_len`` values around the same time one day earlier (ending ``max(horizons)``
  steps after it, as the forecaster's day-ago segment does);
* the time of day (two harmonics).

Each window is divided by its level (mean of the recent values), and the fit minimises the
pooled absolute error in the data's own units, which is what NMAE counts. It is not a
forecaster (it has seen the test rows); it tells how much of a test period any linear reading
of those inputs can explain, so a goal below it asks for information the inputs do not carry
linearly. A flexible enough model fitted the same way would memorise the test and is no such
reference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from netgpt.edge_models.evaluation import HorizonScore, SeriesData
from netgpt.edge_models.gpt_forecaster import gather_windows
from netgpt.errors import ForecastError

__all__ = ["HindsightFit", "hindsight_features", "hindsight_linear"]

_DAY_S = 86400.0


@dataclass(frozen=True)
class HindsightFit:
    """One horizon's hindsight fit: its score on the rows it was fitted to, and their count."""

    horizon: int
    score: HorizonScore
    features: int
    left_out: int


def hindsight_features(
    data: SeriesData,
    origins: np.ndarray,
    *,
    recent_len: int = 48,
    season_len: int = 36,
    max_horizon: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled inputs ``(origins, series, features)`` and each window's level ``(origins, series)``.

    Missing inputs are 0 after scaling; a window without any recent value has level NaN.
    """
    values = data.values
    n_origins, n_series = origins.size, values.shape[1]
    cols = np.tile(np.arange(n_series), n_origins)  # window (o, s) reads column s from row o
    ends = np.repeat(origins, n_series)
    period = round(_DAY_S / data.step_s)

    def windows(first: np.ndarray, length: int) -> np.ndarray:
        return gather_windows(values, cols, first, length).reshape(n_origins, n_series, length)

    recent = windows(ends - recent_len + 1, recent_len)
    season = windows(ends - period - (season_len - max_horizon) + 1, season_len)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # windows without any recent value
        level = np.nanmean(np.abs(recent), axis=2)  # (O, N)
    level = np.where(level > 0, level, np.nan)
    angle = 2.0 * math.pi * ((data.times[origins] % _DAY_S) / _DAY_S)
    clock = np.stack([np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)], -1)
    parts = [
        recent / level[:, :, None],
        season / level[:, :, None],
        np.broadcast_to(clock[:, None, :], (n_origins, n_series, 4)),
    ]
    feats = np.nan_to_num(np.concatenate(parts, axis=-1), nan=0.0, posinf=0.0, neginf=0.0)
    return feats.astype(np.float32), level


def hindsight_linear(
    data: SeriesData,
    *,
    split: int,
    horizons: Sequence[int] = (1, 12),
    recent_len: int = 48,
    season_len: int = 36,
    steps: int = 3000,
    seed: int = 0,
) -> dict[int, HindsightFit]:
    """The hindsight fit per horizon on the test rows of ``data`` (first test row ``split``).

    Origins are the evaluation's (``split - 1`` to the second-last row, ``o + h`` inside).
    Seeded: the same data and seed give the same figures.
    """
    if not horizons or min(horizons) < 1:
        raise ForecastError(f"horizons {tuple(horizons)} must be positive")
    n_time = data.n_time
    if not 1 <= split < n_time - 1:
        raise ForecastError(f"split {split} leaves no test origin in {n_time} rows")
    out: dict[int, HindsightFit] = {}
    for h in horizons:
        origins = np.arange(split - 1, n_time - h)
        if origins.size == 0:
            raise ForecastError(f"no test origin has a value {h} steps ahead")
        feats, level = hindsight_features(
            data, origins, recent_len=recent_len, season_len=season_len,
            max_horizon=max(horizons),
        )
        target = data.values[origins + h]  # (O, N)
        ok = np.isfinite(target) & np.isfinite(level)
        x = feats[ok]
        y = (target[ok] / level[ok]).astype(np.float32)
        w = level[ok].astype(np.float32)
        pred = _fit_l1(x, y, w, newest=recent_len - 1, steps=steps, seed=seed) * level[ok]
        err = pred - target[ok]
        denom = float(np.abs(target[ok]).sum())
        score = HorizonScore(
            mae=float(np.abs(err).mean()),
            rmse=float(np.sqrt((err**2).mean())),
            nmae=float(np.abs(err).sum()) / denom if denom > 0 else float("nan"),
            n=int(ok.sum()),
        )
        out[h] = HindsightFit(h, score, features=x.shape[1], left_out=int((~ok).sum()))
    return out


def _fit_l1(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, *, newest: int, steps: int, seed: int
) -> np.ndarray:
    """In-sample predictions of the linear map minimising ``sum(w * |x @ beta + b - y|)``.

    Starts at the last-value forecast (input column ``newest``), then Adam on standardised
    inputs with a cosine-decayed step, seeded. The optimum is approached, not certified: the
    figure is the fit's, and a true optimum could be slightly lower.
    """
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    wt = torch.from_numpy(w / w.mean())
    mu, sd = xt.mean(0), xt.std(0).clamp(min=1e-6)
    xs = (xt - mu) / sd
    lin = torch.nn.Linear(x.shape[1], 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, newest] = sd[newest]
        lin.bias.fill_(float(mu[newest]))
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-4)
    n = xs.shape[0]
    batch = min(4096, n)
    for _ in range(steps):
        b = torch.randint(0, n, (batch,), generator=gen)
        loss = ((lin(xs[b]).squeeze(-1) - yt[b]).abs() * wt[b]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return lin(xs).squeeze(-1).double().numpy()
