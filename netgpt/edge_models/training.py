"""The project's reproducible training command: global model plus per-site adapters.

:func:`train_default_model` reads the shared traffic files, keeps only the training portion of
each (the first ``1 - test_fraction`` of its longest outage-free stretch, so the benchmark's test
rows stay unseen), trains the global GPT-2 forecaster on all series, then one LoRA adapter per
site, and writes everything to ``out_dir``::

    out_dir/config.json, model.safetensors      the global model
    out_dir/adapters/<site>/...                  one peft adapter per site
    out_dir/adapters/sites.json                  site -> series
    out_dir/training.json                        the report (losses, timings, data, settings)

Sites: series named ``SRC_DST`` (origin-destination flows) are grouped by their source router
(the traffic one router's customers send), e.g. ``abilene-ATLAng``; any other file is one site
(e.g. ``uk_backbone``: one backbone link). Everything is seeded: the same seed, data and thread
count give the same weights.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from netgpt.edge_models.adapters import (
    ADAPTERS_DIR,
    AdapterSettings,
    read_sites,
    save_adapter,
    train_adapter,
    unload_adapters,
    write_sites,
)
from netgpt.edge_models.evaluation import (
    SeriesData,
    chronological_split,
    load_series,
    longest_segment,
)
from netgpt.edge_models.gpt_forecaster import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    GPTForecaster,
    GPTForecasterConfig,
    TrainingLog,
    TrainingPanel,
    TrainingSettings,
)
from netgpt.errors import ForecastError

__all__ = [
    "ADAPT_SETTINGS",
    "DEFAULT_ADAPTER_SETTINGS",
    "DEFAULT_CONFIG",
    "DEFAULT_SETTINGS",
    "SHARED_FILES",
    "AdapterReport",
    "TrainingReport",
    "adapt_to_data",
    "default_data_dir",
    "default_weights_dir",
    "load_training_data",
    "site_groups",
    "train_default_model",
]

SHARED_FILES: dict[str, str] = {
    "abilene": "traffic/abilene_tm_5min.npz",
    "uk_backbone": "traffic/uk_backbone_link_5min.npz",
}
"""Dataset key -> file under the shared data folder."""

DEFAULT_CONFIG = GPTForecasterConfig()
"""The shipped architecture (chosen on a validation split, 70-80% of each file)."""

DEFAULT_SETTINGS = TrainingSettings(
    steps=4000, batch_size=32, lr=2e-3, warmup=100, size_weight=1.0
)
"""Global-model training: about 128 k windows, each weighted by its traffic level."""

DEFAULT_ADAPTER_SETTINGS = AdapterSettings()
"""One LoRA adapter per site."""

ADAPT_SETTINGS = AdapterSettings(steps=300)
"""``netgpt forecast adapt``: one site's adapter on its own recording. Measured on 6 minutes of
1-second polls of the embedded Abilene network (30 link directions, 287 training rows): the
global model's h=12 NMAE 0.0447 (last value 0.0056) became 0.0085 after 100 steps and 0.0055
after 300 (14 s and 31 s of training in two runs, one thread)."""


def default_data_dir() -> Path:
    """``$NETGPT_DATA_DIR``, else ``../shared/data`` beside the project root."""
    env = os.environ.get("NETGPT_DATA_DIR")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[2]
    return (root.parent / "shared" / "data").resolve()


def default_weights_dir() -> Path:
    """The weights shipped inside the package."""
    return Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class AdapterReport:
    """One site's adapter: its series, training losses and time, file size."""

    site: str
    series: tuple[str, ...]
    steps: int
    seconds: float
    first_loss: float
    final_loss: float
    trainable_parameters: int
    size_bytes: int

    @classmethod
    def of(cls, site: str, series: Sequence[str], log: TrainingLog, path: Path) -> AdapterReport:
        """The report of adapter ``site`` trained as ``log`` says and saved in ``path``."""
        return cls(
            site=site,
            series=tuple(series),
            steps=log.steps,
            seconds=round(log.seconds, 2),
            first_loss=round(log.first_loss, 5),
            final_loss=round(log.final_loss, 5),
            trainable_parameters=log.trainable_parameters,
            size_bytes=_dir_size(path),
        )


@dataclass
class TrainingReport:
    """What :func:`train_default_model` did."""

    out_dir: str
    seed: int
    threads: int
    datasets: dict[str, dict[str, object]]
    global_steps: int
    global_seconds: float
    global_losses: list[float]
    global_parameters: int
    global_size_bytes: int
    adapters: list[AdapterReport] = field(default_factory=list)
    total_seconds: float = 0.0

    @property
    def adapters_seconds(self) -> float:
        """Time spent on all adapters."""
        return sum(a.seconds for a in self.adapters)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def site_groups(dataset: str, series: Sequence[str]) -> dict[str, list[int]]:
    """Site name -> column indices (rule in the module docstring)."""
    parts = [s.split("_") for s in series]
    if len(series) > 1 and all(len(p) == 2 and p[0] and p[1] for p in parts):
        groups: dict[str, list[int]] = {}
        for j, p in enumerate(parts):
            groups.setdefault(f"{dataset}-{p[0]}", []).append(j)
        return groups
    return {dataset: list(range(len(series)))}


def load_training_data(
    data_dir: str | Path, *, test_fraction: float = 0.2
) -> dict[str, tuple[SeriesData, int]]:
    """Each shared dataset's evaluation stretch and its first test row."""
    root = Path(data_dir)
    out: dict[str, tuple[SeriesData, int]] = {}
    for key, rel in SHARED_FILES.items():
        path = root / rel
        if not path.is_file():
            raise ForecastError(
                f"shared data file {path} is missing; pass --data-dir pointing at shared/data"
            )
        segment, _ = longest_segment(load_series(path, name=key))
        out[key] = (segment, chronological_split(segment.n_time, test_fraction))
    return out


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def train_default_model(
    data_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    *,
    config: GPTForecasterConfig = DEFAULT_CONFIG,
    settings: TrainingSettings = DEFAULT_SETTINGS,
    adapter_settings: AdapterSettings | None = DEFAULT_ADAPTER_SETTINGS,
    threads: int = 1,
    test_fraction: float = 0.2,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> TrainingReport:
    """Train the global model and the site adapters on the shared data; write them to ``out_dir``.

    ``adapter_settings=None`` skips the adapters. ``threads`` sets torch's CPU threads (1 by
    default: on a busy 2-core machine a second thread made steps up to 5x slower). ``device`` is
    for exploration on an accelerator; the shipped weights are trained on the CPU. Returns the
    report, also written as ``training.json``.
    """
    t_start = time.perf_counter()
    say = progress or (lambda _msg: None)
    data = load_training_data(data_dir or default_data_dir(), test_fraction=test_fraction)
    out = Path(out_dir) if out_dir is not None else default_weights_dir()
    torch.set_num_threads(max(1, threads))
    panels = []
    described: dict[str, dict[str, object]] = {}
    for key, (seg, split) in data.items():
        panels.append(TrainingPanel(key, seg.values[:split], seg.step_s, 1.0))
        described[key] = {
            "rows": seg.n_time,
            "series": len(seg.series),
            "train_rows": split,
            "step_s": seg.step_s,
            "first_time": float(seg.times[0]),
        }
    run_settings = TrainingSettings(**{**asdict(settings), "seed": seed})
    forecaster = GPTForecaster(config, seed=seed).to(device)
    say(f"global model: {forecaster.parameter_count():,} parameters, {run_settings.steps} steps")

    def tick(step: int, loss: float) -> None:
        say(f"  step {step}/{run_settings.steps} loss {loss:.4f}")

    log = forecaster.train_on(panels, run_settings, progress=tick)
    out.mkdir(parents=True, exist_ok=True)
    forecaster.save(out)
    report = TrainingReport(
        out_dir=str(out),
        seed=seed,
        threads=torch.get_num_threads(),
        datasets=described,
        global_steps=log.steps,
        global_seconds=round(log.seconds, 2),
        global_losses=[round(v, 5) for v in log.losses],
        global_parameters=forecaster.parameter_count(),
        global_size_bytes=(out / "model.safetensors").stat().st_size,
    )
    if adapter_settings is not None:
        sites: dict[str, dict[str, object]] = {}
        for key, (seg, split) in data.items():
            for site, cols in site_groups(key, seg.series).items():
                names = [seg.series[j] for j in cols]
                panel = TrainingPanel(site, seg.values[:split, cols], seg.step_s, 1.0)
                st = AdapterSettings(**{**asdict(adapter_settings), "seed": seed})
                alog = train_adapter(forecaster, site, [panel], st)
                path = save_adapter(forecaster, site, out)
                sites[site] = {"series": names, "dataset": key}
                report.adapters.append(AdapterReport.of(site, names, alog, path))
                say(f"adapter {site}: {alog.seconds:.1f} s, loss {alog.final_loss:.4f}")
        write_sites(out, sites)
        unload_adapters(forecaster)
    report.total_seconds = round(time.perf_counter() - t_start, 2)
    meta = {
        **report.to_dict(),
        "config": asdict(config),
        "settings": asdict(run_settings),
        "adapter_settings": asdict(adapter_settings) if adapter_settings else None,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    return report


def adapt_to_data(
    data: SeriesData,
    site: str,
    out_dir: str | Path,
    *,
    weights_dir: str | Path | None = None,
    settings: AdapterSettings = ADAPT_SETTINGS,
    test_fraction: float = 0.2,
    threads: int = 1,
) -> tuple[Path, AdapterReport]:
    """Train ``site``'s LoRA adapter on ``data`` and write a complete weights folder.

    The adapter learns from the training portion of ``data``'s longest outage-free stretch (the
    evaluation's split, so ``netgpt forecast eval`` on the same file scores it on unseen rows).
    ``out_dir`` receives the global model of ``weights_dir`` (default: the package's), the
    adapters already there, and this one; ``sites.json`` routes ``data``'s series to ``site``
    (taking them from any other site). ``out_dir`` may not be the package's own weights.
    """
    source = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    out = Path(out_dir)
    if out.resolve() == default_weights_dir().resolve():
        raise ForecastError(
            f"{out} holds the shipped weights; write the adapted weights to a folder of your own "
            "(--out DIR) and pass it as --weights"
        )
    forecaster = GPTForecaster.load(source)
    segment, _ = longest_segment(data)
    split = chronological_split(segment.n_time, test_fraction)
    torch.set_num_threads(max(1, threads))
    panel = TrainingPanel(site, segment.values[:split], segment.step_s, 1.0)
    log = train_adapter(forecaster, site, [panel], settings)
    if out.resolve() != source.resolve():
        out.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            shutil.copy2(source / name, out / name)
        if (source / ADAPTERS_DIR).is_dir():
            shutil.copytree(source / ADAPTERS_DIR, out / ADAPTERS_DIR, dirs_exist_ok=True)
    path = save_adapter(forecaster, site, out)
    unload_adapters(forecaster)
    series = list(segment.series)
    sites = {
        name: {**info, "series": [x for x in info.get("series", []) if x not in series]}
        for name, info in read_sites(out).items()
        if name != site
    }
    sites[site] = {"series": series, "dataset": data.name}
    write_sites(out, sites)
    return out, AdapterReport.of(site, series, log, path)
