"""Per-site personalization: peft LoRA adapters on the global forecaster.

A *site* is a group of series that share an adapter (on Abilene: the flows leaving one router;
on a single backbone link: that link). Adapters live beside the global weights::

    WEIGHTS/adapters/sites.json                 site -> series names (+ what the site is)
    WEIGHTS/adapters/<site>/adapter_config.json peft's own files
    WEIGHTS/adapters/<site>/adapter_model.safetensors

Life cycle on a :class:`GPTForecaster`: :func:`train_adapter` (adds and trains one, leaves it
active), :func:`save_adapter`, :func:`load_adapter` (adds one from disk), :func:`use_adapter`
(switch, or ``None`` for the global model), :func:`unload_adapters` (removes every LoRA layer:
predictions are the global model's again). :class:`SiteAdaptedForecaster` routes each series to
its site's adapter behind the ordinary :class:`~netgpt.edge_models.base.Forecaster` protocol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from netgpt.edge_models.base import (
    DEFAULT_LEVELS,
    DEFAULT_STEP_S,
    Forecast,
    as_history,
    series_names,
)
from netgpt.edge_models.gpt_forecaster import (
    GPTForecaster,
    TrainingLog,
    TrainingPanel,
    TrainingSettings,
    train_network,
)
from netgpt.errors import ForecastError

__all__ = [
    "ADAPTERS_DIR",
    "SITES_FILE",
    "AdapterSettings",
    "SiteAdaptedForecaster",
    "active_adapter",
    "list_adapters",
    "load_adapter",
    "loaded_adapters",
    "read_sites",
    "save_adapter",
    "train_adapter",
    "unload_adapters",
    "use_adapter",
    "write_sites",
]

ADAPTERS_DIR = "adapters"
SITES_FILE = "sites.json"
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class AdapterSettings:
    """LoRA shape and how one adapter is trained (seeded).

    ``size_weight``: loss weighting by traffic level, as in
    :class:`~netgpt.edge_models.gpt_forecaster.TrainingSettings` (the global model's default).
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("c_attn",)
    steps: int = 100
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0
    size_weight: float = 1.0

    def lora_config(self) -> LoraConfig:
        """The peft configuration (GPT-2's ``Conv1D`` stores weights as fan-in x fan-out)."""
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            fan_in_fan_out=True,
            bias="none",
        )

    def training(self) -> TrainingSettings:
        """The training-loop settings of one adapter run."""
        return TrainingSettings(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup=max(1, self.steps // 10),
            seed=self.seed,
            log_every=max(1, self.steps // 5),
            size_weight=self.size_weight,
        )


def _check_site(site: str) -> str:
    if not _SITE_NAME.match(site):
        raise ForecastError(
            f"site name {site!r} must be 1-64 letters, digits, '_', '-' or '.', starting with a "
            f"letter or digit"
        )
    return site


def _peft(forecaster: GPTForecaster) -> PeftModel | None:
    return forecaster.net if isinstance(forecaster.net, PeftModel) else None


def loaded_adapters(forecaster: GPTForecaster) -> list[str]:
    """Names of the adapters currently attached to ``forecaster``."""
    net = _peft(forecaster)
    return sorted(net.peft_config) if net is not None else []


def active_adapter(forecaster: GPTForecaster) -> str | None:
    """The adapter predictions use now (``None``: the global model)."""
    return getattr(forecaster, "adapter", None)


def _attach(forecaster: GPTForecaster, site: str, settings: AdapterSettings) -> PeftModel:
    """Add a fresh adapter ``site`` and make it the active, trainable one."""
    if forecaster.int8:
        raise ForecastError("adapters attach to the fp32 model; quantize after loading them")
    net = _peft(forecaster)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # LoRA's A matrices start random: seed them
        if net is None:
            peft_net = get_peft_model(forecaster.net, settings.lora_config(), adapter_name=site)
            forecaster.net = peft_net
            net = peft_net
        else:
            if site in net.peft_config:
                net.delete_adapter(site)
            net.add_adapter(site, settings.lora_config())
    net.set_adapter(site)
    forecaster.adapter = site
    return net


def train_adapter(
    forecaster: GPTForecaster,
    site: str,
    panels: Sequence[TrainingPanel],
    settings: AdapterSettings | None = None,
) -> TrainingLog:
    """Train a LoRA adapter for ``site`` on ``panels`` (that site's training history only).

    The global weights stay frozen; the adapter is left attached and active.
    """
    st = settings or AdapterSettings()
    net = _attach(forecaster, _check_site(site), st)
    for name, param in net.named_parameters():
        param.requires_grad = "lora_" in name and f".{site}." in name
    log = train_network(net, forecaster.config, panels, st.training(), device=forecaster.device)
    net.eval()
    return log


def save_adapter(forecaster: GPTForecaster, site: str, weights_dir: str | Path) -> Path:
    """Write adapter ``site`` to ``weights_dir/adapters/site``; returns that folder."""
    net = _peft(forecaster)
    if net is None or site not in net.peft_config:
        raise ForecastError(f"no adapter {site!r} is loaded; train or load it first")
    root = Path(weights_dir) / ADAPTERS_DIR
    root.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(str(root), selected_adapters=[site])
    card = root / "README.md"  # peft's generic model card; sites.json describes the sites
    if card.is_file():
        card.unlink()
    return root / site


def list_adapters(weights_dir: str | Path) -> list[str]:
    """Sites with an adapter saved under ``weights_dir/adapters``."""
    root = Path(weights_dir) / ADAPTERS_DIR
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and (p / "adapter_config.json").is_file()
    )


def load_adapter(forecaster: GPTForecaster, site: str, weights_dir: str | Path) -> None:
    """Attach the saved adapter ``site`` (from ``weights_dir/adapters/site``) and activate it."""
    path = Path(weights_dir) / ADAPTERS_DIR / _check_site(site)
    if not (path / "adapter_config.json").is_file():
        known = ", ".join(list_adapters(weights_dir)) or "none"
        raise ForecastError(
            f"no adapter for site {site!r} in {path.parent} (saved: {known}); train it with "
            f"'netgpt forecast train'"
        )
    if forecaster.int8:
        raise ForecastError("adapters attach to the fp32 model; quantize after loading them")
    net = _peft(forecaster)
    try:
        if net is None:
            forecaster.net = PeftModel.from_pretrained(forecaster.net, str(path), adapter_name=site)
            net = forecaster.net
        elif site not in net.peft_config:
            net.load_adapter(str(path), adapter_name=site)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ForecastError(f"cannot load adapter {site!r} from {path}: {exc}") from exc
    assert net is not None
    net.set_adapter(site)
    net.eval()
    forecaster.adapter = site


def use_adapter(forecaster: GPTForecaster, site: str | None) -> None:
    """Predict with loaded adapter ``site`` from now on; ``None`` means the global model."""
    if site is None:
        forecaster.adapter = None
        return
    net = _peft(forecaster)
    if net is None or site not in net.peft_config:
        loaded = ", ".join(loaded_adapters(forecaster)) or "none"
        raise ForecastError(f"adapter {site!r} is not loaded (loaded: {loaded})")
    net.set_adapter(site)
    forecaster.adapter = site


def unload_adapters(forecaster: GPTForecaster) -> None:
    """Remove every adapter; the network is the untouched global model again."""
    net = _peft(forecaster)
    if net is None:
        forecaster.adapter = None
        return
    base = net.unload()
    for param in base.parameters():
        param.requires_grad = True
    forecaster.net = base
    forecaster.net.eval()
    forecaster.adapter = None


def write_sites(weights_dir: str | Path, sites: dict[str, dict[str, Any]]) -> Path:
    """Write ``sites.json``: ``{site: {"series": [...], "description": "..."}}``."""
    root = Path(weights_dir) / ADAPTERS_DIR
    root.mkdir(parents=True, exist_ok=True)
    path = root / SITES_FILE
    path.write_text(json.dumps({"sites": sites}, indent=2, sort_keys=True) + "\n")
    return path


def read_sites(weights_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``sites.json`` of ``weights_dir`` (empty when there is none)."""
    path = Path(weights_dir) / ADAPTERS_DIR / SITES_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        sites: dict[str, dict[str, Any]] = raw["sites"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ForecastError(f"cannot read {path}: {exc}") from exc
    return sites


class SiteAdaptedForecaster:
    """The global model with each series routed to its site's adapter.

    ``site_of`` maps series names to sites; series without a site (or whose site has no
    adapter loaded) get the global model. Adapters must already be loaded on ``forecaster``.
    """

    def __init__(
        self,
        forecaster: GPTForecaster,
        site_of: dict[str, str],
        *,
        name: str = "forecaster_adapted",
    ) -> None:
        self.forecaster = forecaster
        self.site_of = dict(site_of)
        self._name = name

    @classmethod
    def from_weights(
        cls, forecaster: GPTForecaster, weights_dir: str | Path, *, name: str = "forecaster_adapted"
    ) -> SiteAdaptedForecaster:
        """Load every saved adapter of ``weights_dir`` and its ``sites.json`` routing."""
        sites = read_sites(weights_dir)
        for site in list_adapters(weights_dir):
            load_adapter(forecaster, site, weights_dir)
        use_adapter(forecaster, None)
        site_of = {
            series: site for site, info in sites.items() for series in info.get("series", [])
        }
        return cls(forecaster, site_of, name=name)

    @property
    def name(self) -> str:
        """Method name in reports."""
        return self._name

    @property
    def max_horizon(self) -> int:
        """As the global model."""
        return self.forecaster.max_horizon

    def lookback(self, step_s: float = DEFAULT_STEP_S) -> int:
        """As the global model."""
        return self.forecaster.lookback(step_s)

    def fit(
        self,
        history: np.ndarray,
        *,
        step_s: float = DEFAULT_STEP_S,
        series: Sequence[str] | None = None,
    ) -> None:
        """Adapters are trained with :func:`train_adapter`; nothing to do here."""
        return None

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
        """Forecast each column with its site's adapter (global model for the rest)."""
        arr = as_history(history)
        names = series_names(arr.shape[1], series)
        loaded = set(loaded_adapters(self.forecaster))
        routes = [self.site_of.get(n) for n in names]
        routes = [r if r in loaded else None for r in routes]
        if all(r is None for r in routes):
            previous = active_adapter(self.forecaster)
            use_adapter(self.forecaster, None)
            try:
                fc = self.forecaster.predict(
                    arr, horizon, step_s=step_s, series=names, last_time=last_time, levels=levels
                )
            finally:
                use_adapter(self.forecaster, previous)
            quant, out_levels = fc.quantiles, fc.levels
        else:
            fc = self.forecaster.predict(
                arr,
                horizon,
                step_s=step_s,
                series=names,
                last_time=last_time,
                levels=levels,
                adapters=routes,
            )
            quant, out_levels = fc.quantiles, fc.levels
        return Forecast(
            series=names,
            last_time=last_time,
            step_s=step_s,
            horizon=horizon,
            levels=out_levels,
            quantiles=quant,
            method=self.name,
        )
