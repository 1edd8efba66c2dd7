"""The forecasting entry points other rooms use: load a forecaster, score a file, time it.

``load_forecaster()`` gives the shipped GPT-2 forecaster (optionally one site's adapter, and/or
int8); ``forecaster.predict(history, horizon)`` returns a
:class:`~netgpt.edge_models.base.Forecast`. ``score_file(path)`` scores the forecaster, its
site-adapted variant and every baseline on any ``.npz`` of the shared layout (see
:mod:`netgpt.edge_models.evaluation`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netgpt.edge_models.adapters import (
    SiteAdaptedForecaster,
    list_adapters,
    load_adapter,
    read_sites,
)
from netgpt.edge_models.base import Forecast, Forecaster
from netgpt.edge_models.baselines import BASELINES, make_baseline
from netgpt.edge_models.evaluation import (
    MethodScore,
    SeriesData,
    chronological_split,
    evaluate,
    load_series,
    longest_segment,
)
from netgpt.edge_models.gpt_forecaster import CONFIG_FILE, GPTForecaster
from netgpt.edge_models.training import default_weights_dir
from netgpt.errors import ForecastError

__all__ = [
    "METHODS",
    "DatasetScores",
    "Forecast",
    "Forecaster",
    "load_forecaster",
    "measure_latency",
    "score_data",
    "score_file",
]

METHODS = ("forecaster", "forecaster_adapted", *BASELINES)
"""Methods a score covers, in report order."""


def load_forecaster(
    weights_dir: str | Path | None = None,
    site: str | None = None,
    int8: bool = False,
) -> GPTForecaster:
    """The trained GPT-2 forecaster from ``weights_dir`` (default: the package's weights).

    ``site`` attaches that site's LoRA adapter (``list_adapters(weights_dir)`` names them);
    ``int8`` returns a dynamically quantized copy (adapter merged first).
    """
    root = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if not (root / CONFIG_FILE).is_file():
        raise ForecastError(
            f"no trained forecaster in {root}; run 'netgpt forecast train --out {root}'"
        )
    forecaster = GPTForecaster.load(root)
    if site is not None:
        load_adapter(forecaster, site, root)
    return forecaster.quantized() if int8 else forecaster


@dataclass
class DatasetScores:
    """Every method's scores on one dataset (plus what was left out and why)."""

    dataset: str
    rows: int
    series: int
    split: int
    step_s: float
    horizons: tuple[int, ...]
    methods: dict[str, MethodScore] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{"h1": {method: {"mae", "rmse", "nmae"}}, ...}`` (the benchmark's JSON layout)."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for h in self.horizons:
            out[f"h{h}"] = {
                name: {
                    "mae": score.scores[h].mae,
                    "rmse": score.scores[h].rmse,
                    "nmae": score.scores[h].nmae,
                }
                for name, score in self.methods.items()
                if h in score.scores
            }
        return out


def score_data(
    data: SeriesData,
    *,
    horizons: Sequence[int] = (1, 12),
    weights_dir: str | Path | None = None,
    methods: Sequence[str] = METHODS,
    test_fraction: float = 0.2,
    stride: int = 1,
    int8: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DatasetScores:
    """Score ``methods`` on ``data`` with the protocol of :mod:`netgpt.edge_models.evaluation`.

    A method that cannot run on this data (its :class:`ForecastError`, e.g. a seasonal baseline
    on less than a season of rows) is left out with a note saying why; when none can, the
    error names every reason.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ForecastError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    say = progress or (lambda _m: None)
    segment, start = longest_segment(data)
    split = chronological_split(segment.n_time, test_fraction)
    out = DatasetScores(
        dataset=data.name,
        rows=segment.n_time,
        series=len(segment.series),
        split=split,
        step_s=segment.step_s,
        horizons=tuple(horizons),
    )
    if segment.n_time < data.n_time:
        out.notes.append(
            f"scored rows {start}..{start + segment.n_time - 1} (longest stretch without a long "
            f"outage) of {data.n_time}"
        )
    root = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    for name in methods:
        method: Forecaster
        if name == "forecaster":
            method = load_forecaster(root, int8=int8)
        elif name == "forecaster_adapted":
            if int8:
                out.notes.append("forecaster_adapted: not scored in int8 (adapters are fp32)")
                continue
            sites = read_sites(root)
            known = {s for info in sites.values() for s in info.get("series", [])}
            if not list_adapters(root) or not known & set(segment.series):
                out.notes.append(
                    "forecaster_adapted: no adapter was trained for these series; it equals the "
                    "global model here"
                )
            method = SiteAdaptedForecaster.from_weights(GPTForecaster.load(root), root)
        else:
            method = make_baseline(name)
        say(f"{data.name}: scoring {name}")
        fit = name not in ("forecaster", "forecaster_adapted")
        try:
            out.methods[name] = evaluate(
                method, segment, horizons=horizons, split=split, stride=stride, fit=fit
            )
        except ForecastError as exc:  # e.g. a day-ago baseline on less than a day of rows
            out.notes.append(f"{name}: not scored on this file: {exc}")
    if not out.methods:
        raise ForecastError(f"no method could be scored on {data.name}: " + "; ".join(out.notes))
    return out


def score_file(
    path: str | Path,
    *,
    horizons: Sequence[int] = (1, 12),
    weights_dir: str | Path | None = None,
    methods: Sequence[str] = METHODS,
    test_fraction: float = 0.2,
    stride: int = 1,
    int8: bool = False,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> DatasetScores:
    """Load ``path`` (``X`` time x series or ``x`` one series; ``t`` epoch seconds) and score it.

    New real data is scored with no code change: ``netgpt forecast eval --data FILE.npz``.
    """
    data = load_series(path, name=name)
    return score_data(
        data,
        horizons=horizons,
        weights_dir=weights_dir,
        methods=methods,
        test_fraction=test_fraction,
        stride=stride,
        int8=int8,
        progress=progress,
    )


def measure_latency(
    forecaster: Forecaster,
    history: np.ndarray,
    horizon: int,
    *,
    series: Sequence[str] | None = None,
    repeats: int = 30,
    warmup: int = 3,
    step_s: float = 300.0,
) -> dict[str, float]:
    """Wall time of ``forecaster.predict(history, horizon)`` for all columns at once (ms).

    Returns median, p90 and min over ``repeats`` calls after ``warmup`` calls.
    """
    for _ in range(warmup):
        forecaster.predict(history, horizon, step_s=step_s, series=series)
    times: list[float] = []
    fc: Forecast | None = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        fc = forecaster.predict(history, horizon, step_s=step_s, series=series)
        times.append(1000.0 * (time.perf_counter() - t0))
    assert fc is not None
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
        "min_ms": times[0],
        "series": float(fc.n_series),
    }
