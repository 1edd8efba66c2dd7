"""Scoring forecasters on recorded series: loading, chronological split, rolling origins, metrics.

File layout (``.npz``): ``X`` (time x series) or ``x`` (one series), ``t`` epoch seconds (one
per row; optional, 5-minute steps from 0 assumed without it), optional names in ``od``,
``names`` or ``series``. Rows are put on a regular grid of the median step (missing rows become
NaN).

Evaluation protocol (the same for every method):

1. Outages (runs of rows where every series is NaN) longer than ``max_outage`` rows split the
   file into segments; the longest segment is scored (the others are reported as skipped).
2. The segment's first ``1 - test_fraction`` is the training portion (``fit`` sees only it); the
   rest is the test portion.
3. Rolling origins: from the last training row to the end, each row ``o`` is a forecast origin;
   a method sees the history up to ``o`` (its own ``lookback``) and forecasts ``max(horizons)``
   steps. For horizon ``h`` the origins ``o`` with ``o + h`` inside the segment are scored.
4. Metrics pooled over series and origins on the median forecast, leaving NaN targets out:
   MAE, RMSE and NMAE = sum|error| / sum|y|. Columns a method cannot use at an origin (history
   policy of :mod:`netgpt.edge_models.base`) are left out and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netgpt.edge_models.base import DEFAULT_STEP_S, Forecaster, HistoryPolicy, usable_columns
from netgpt.errors import ForecastError

__all__ = [
    "HorizonScore",
    "MethodScore",
    "SeriesData",
    "chronological_split",
    "evaluate",
    "load_series",
    "longest_segment",
    "save_series",
]

_NAME_KEYS = ("od", "names", "series")


@dataclass(frozen=True, eq=False)
class SeriesData:
    """Series on one regular time grid: ``values`` ``(time, n_series)``, NaN = missing."""

    name: str
    values: np.ndarray
    times: np.ndarray
    series: tuple[str, ...]
    step_s: float

    @property
    def n_time(self) -> int:
        """Rows."""
        return int(self.values.shape[0])

    def rows(self, start: int, stop: int) -> SeriesData:
        """Rows ``start:stop`` as a new :class:`SeriesData`."""
        return SeriesData(
            self.name, self.values[start:stop], self.times[start:stop], self.series, self.step_s
        )

    def columns(self, names: Sequence[str]) -> SeriesData:
        """Only the named series."""
        idx = [self.series.index(n) for n in names]
        return SeriesData(
            self.name, self.values[:, idx], self.times, tuple(names), self.step_s
        )


def load_series(path: str | Path, *, name: str | None = None) -> SeriesData:
    """Read an ``.npz`` of the layout in the module docstring onto a regular grid."""
    p = Path(path)
    if not p.is_file():
        raise ForecastError(f"no such data file: {p}")
    try:
        with np.load(p, allow_pickle=False) as npz:
            files = set(npz.files)
            if "X" in files:
                values = np.asarray(npz["X"], dtype=np.float64)
            elif "x" in files:
                values = np.asarray(npz["x"], dtype=np.float64)[:, None]
            else:
                raise ForecastError(
                    f"{p} has neither 'X' (time x series) nor 'x' (one series); arrays: "
                    f"{', '.join(sorted(files))}"
                )
            raw_times = np.asarray(npz["t"], dtype=np.float64) if "t" in files else None
            names_key = next((k for k in _NAME_KEYS if k in files), None)
            names = (
                tuple(str(n) for n in npz[names_key])
                if names_key
                else tuple(f"s{i}" for i in range(values.shape[1]))
            )
    except (OSError, ValueError) as exc:
        raise ForecastError(f"cannot read {p} as .npz: {exc}") from exc
    if values.ndim != 2 or values.shape[0] < 2:
        raise ForecastError(f"{p}: values must be (time x series) with >= 2 rows, got "
                            f"{values.shape}")
    if len(names) != values.shape[1]:
        names = tuple(f"s{i}" for i in range(values.shape[1]))
    values = np.where(np.isinf(values), np.nan, values)
    times: np.ndarray
    if raw_times is None:
        step = DEFAULT_STEP_S
        times = np.arange(values.shape[0]) * step
    else:
        times = raw_times
        if times.shape != (values.shape[0],):
            raise ForecastError(f"{p}: 't' has {times.shape[0]} rows, values {values.shape[0]}")
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        diffs = np.diff(times)
        diffs = diffs[diffs > 0]
        if diffs.size == 0:
            raise ForecastError(f"{p}: 't' does not increase; give epoch seconds per row")
        step = float(np.median(diffs))
        slots = np.round((times - times[0]) / step).astype(np.int64)
        grid = np.full((int(slots[-1]) + 1, values.shape[1]), np.nan)
        grid[slots] = values  # later duplicates win
        values = grid
        times = times[0] + step * np.arange(grid.shape[0])
    return SeriesData(name or p.stem, values, times, names, step)


def save_series(data: SeriesData, path: str | Path) -> Path:
    """Write ``data`` in the layout :func:`load_series` reads (``X``, ``t``, ``names``).

    ``path`` must end in ``.npz`` (numpy would add the suffix silently otherwise).
    """
    p = Path(path)
    if p.suffix != ".npz":
        raise ForecastError(f"{p}: give a file name ending in .npz")
    if not p.parent.is_dir():
        raise ForecastError(f"{p}: folder {p.parent} does not exist")
    np.savez(p, X=data.values, t=data.times, names=np.array(data.series, dtype=str))
    return p


def longest_segment(data: SeriesData, *, max_outage: int = 12) -> tuple[SeriesData, int]:
    """The longest stretch without an all-NaN run longer than ``max_outage``; also its start."""
    outage = np.isnan(data.values).all(axis=1)
    best = (0, 0)
    start, run = None, 0
    edges: list[tuple[int, int]] = []
    for i, out in enumerate(outage):
        if out:
            run += 1
            if run > max_outage and start is not None:
                edges.append((start, i - run + 1))
                start = None
        else:
            if start is None:
                start = i
            run = 0
    if start is not None:
        end = len(outage)
        while end > start and outage[end - 1]:
            end -= 1
        edges.append((start, end))
    for seg in edges:
        if seg[1] - seg[0] > best[1] - best[0]:
            best = seg
    if best[1] - best[0] < 2:
        raise ForecastError(f"{data.name}: no stretch of observed rows to evaluate")
    return data.rows(*best), best[0]


def chronological_split(n_time: int, test_fraction: float = 0.2) -> int:
    """Index of the first test row (the last ``test_fraction`` of rows are the test)."""
    if not 0.0 < test_fraction < 1.0:
        raise ForecastError(f"test_fraction={test_fraction} must lie in (0, 1)")
    split = int(n_time * (1.0 - test_fraction))
    if split < 1 or split >= n_time:
        raise ForecastError(f"{n_time} rows are too few to split at {test_fraction:.0%}")
    return split


@dataclass(frozen=True)
class HorizonScore:
    """Pooled errors at one horizon: ``n`` scored (origin, series) pairs."""

    mae: float
    rmse: float
    nmae: float
    n: int


@dataclass
class MethodScore:
    """One method on one dataset: scores per horizon, time per forecast call, skips."""

    method: str
    scores: dict[int, HorizonScore] = field(default_factory=dict)
    seconds: float = 0.0
    calls: int = 0
    forecasts: int = 0
    skipped: int = 0

    @property
    def ms_per_series_forecast(self) -> float:
        """Wall time per series forecast (batched, as the evaluation runs it)."""
        return 1000.0 * self.seconds / max(1, self.forecasts)


class _Accumulator:
    def __init__(self) -> None:
        self.abs_err = 0.0
        self.sq_err = 0.0
        self.abs_y = 0.0
        self.n = 0

    def add(self, pred: np.ndarray, y: np.ndarray) -> None:
        ok = ~np.isnan(y) & ~np.isnan(pred)
        err = pred[ok] - y[ok]
        self.abs_err += float(np.abs(err).sum())
        self.sq_err += float((err**2).sum())
        self.abs_y += float(np.abs(y[ok]).sum())
        self.n += int(ok.sum())

    def score(self) -> HorizonScore:
        if self.n == 0:
            nan = float("nan")
            return HorizonScore(nan, nan, nan, 0)
        return HorizonScore(
            mae=self.abs_err / self.n,
            rmse=float(np.sqrt(self.sq_err / self.n)),
            nmae=self.abs_err / self.abs_y if self.abs_y > 0 else float("nan"),
            n=self.n,
        )


def evaluate(
    method: Forecaster,
    data: SeriesData,
    *,
    horizons: Sequence[int] = (1, 12),
    split: int,
    stride: int = 1,
    columns_per_call: int = 2048,
    fit: bool = True,
    policy: HistoryPolicy | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MethodScore:
    """Rolling-origin score of ``method`` on ``data`` (module docstring, steps 3 and 4).

    ``split`` is the first test row; ``fit`` trains the method on rows before it first.
    Windows of several origins are stacked as columns so that each ``predict`` call covers
    about ``columns_per_call`` series windows. ``stride`` > 1 scores every stride-th origin.
    """
    if not horizons or min(horizons) < 1:
        raise ForecastError(f"horizons {tuple(horizons)} must be positive")
    hmax = max(horizons)
    values = data.values
    n_time, n_series = values.shape
    if fit:
        method.fit(values[:split], step_s=data.step_s, series=data.series)
    origins = np.arange(split - 1, n_time - 1, max(1, stride))
    lookback = method.lookback(data.step_s)
    acc = {h: _Accumulator() for h in horizons}
    result = MethodScore(method=method.name)
    per_call = max(1, columns_per_call // n_series)
    pol = policy or HistoryPolicy()
    done = 0
    for lo in range(0, origins.size, per_call):
        chunk = origins[lo : lo + per_call]
        rows = chunk[:, None] - np.arange(lookback - 1, -1, -1)[None, :]  # (O, L)
        inside = rows >= 0
        win = np.where(inside[:, :, None], values[np.clip(rows, 0, None)], np.nan)  # (O,L,N)
        stacked = np.transpose(win, (1, 0, 2)).reshape(lookback, -1)  # (L, O*N)
        # leading rows before the data start are NaN: trim what no origin in the chunk has
        first = int(np.argmax(inside.any(axis=0)))
        stacked = stacked[first:]
        names = list(data.series) * chunk.size
        ok = usable_columns(stacked, pol)
        result.skipped += int((~ok).sum())
        if not ok.any():
            continue
        t0 = time.perf_counter()
        fc = method.predict(
            stacked[:, ok],
            min(hmax, method.max_horizon or hmax),
            step_s=data.step_s,
            series=[n for n, keep in zip(names, ok, strict=True) if keep],
            levels=(0.5,),
        )
        result.seconds += time.perf_counter() - t0
        result.calls += 1
        result.forecasts += int(ok.sum())
        med = np.full((chunk.size * n_series, hmax), np.nan)
        med[ok, : fc.horizon] = fc.median
        med = med.reshape(chunk.size, n_series, hmax)
        for h in horizons:
            scored = chunk + h <= n_time - 1
            if not scored.any():
                continue
            y = values[chunk[scored] + h]
            acc[h].add(med[scored, :, h - 1], y)
        done += chunk.size
        if progress is not None:
            progress(done, origins.size)
    result.scores = {h: acc[h].score() for h in horizons}
    return result
