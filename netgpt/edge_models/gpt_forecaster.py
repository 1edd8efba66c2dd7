"""A GPT-2 transformer over value tokens that forecasts traffic quantiles.

Design (the numbers behind each choice were measured on a validation split, 70-80% of each
shared file, never on the benchmark's test rows):

* **Tokens.** Each window is mean-scaled and binned by :class:`ValueTokenizer` (Chronos-style);
  the scaled value itself is also fed through a linear embedding (``value_input``), so input
  precision is not limited by the bin width.
* **Context.** Two short segments instead of a long context: the *day-ago* segment (the
  ``season_len`` values ending ``max_horizon`` steps after the same time one season earlier, so
  it holds "yesterday's future") and the *recent* segment (the newest ``recent_len`` values),
  joined by ``SEP``: 85 tokens per series with the shipped settings where a full day would need
  300. That is what keeps 30 links well under 100 ms on one CPU core.
* **Direct multi-horizon heads, one forward pass.** The GPT-2 body (``transformers.GPT2Model``,
  trained from scratch) reads the tokens causally; at each of the last ``loss_positions``
  positions a head predicts all ``max_horizon`` next values at once. Two heads exist:

  - ``output="quantiles"`` (shipped): the ``levels`` quantiles, non-decreasing by construction,
    as offsets from the value at that position (``residual``), trained with the pinball loss.
  - ``output="bins"``: the Chronos objective, a categorical distribution over the value bins
    (tied to the token embeddings) per step, trained with cross-entropy against
    Gaussian-smoothed targets; quantiles are read exactly from the bin probabilities.

  On validation, at equal steps, both reached similar 12-step errors but the bins head was
  clearly worse one step ahead on the smooth backbone link (NMAE 0.0197 vs 0.0145, worse than
  the last value, 0.0157): bin resolution limits precision where 5-minute changes are ~1%.
  Neither samples paths, so a 30-link forecast is one batched forward pass.
* **Loss weighted by traffic level** (``TrainingSettings.size_weight``). Windows are scaled, so
  an unweighted loss treats a 0.1 Mbit/s flow like a 175 Mbit/s trunk (Abilene's flow means span
  three orders of magnitude; the 20 largest of 132 carry half the traffic), while the pooled
  error and a link's utilization are dominated by the large ones. Weighting each window by its
  level (``size_weight=1``, with ``lr`` 2e-3) lowered the 12-step validation NMAE from 0.1765 /
  0.1772 (seeds 0/1, unweighted) to 0.1723 / 0.1753 / 0.1727 (seeds 0/1/2) on Abilene and from
  0.0464 / 0.0459 to 0.0438 / 0.0449 / 0.0451 on the backbone link, one step ahead unchanged.
  Tried on the same split and not kept (no gain beyond seed noise, or worse): a longer recent
  segment (96) or a shorter one (24), a longer day-ago segment (60), more loss positions (32),
  dropout 0.1, weight decay 0.1, more mixing, more season dropping, 6 layers or width 96
  (slightly better on one seed, but more training time and latency on this CPU, whose
  15-minute training budget is shared), and augmentations with synthetic level shifts or a
  rescaled day-ago segment (worse). These sweeps ran on an accelerator (validation = 70-80%
  of each file, trained on the first 70%).
* **Adapters.** :mod:`netgpt.edge_models.adapters` adds peft LoRA on ``c_attn``.
* **int8.** :meth:`GPTForecaster.quantized` turns GPT-2's ``Conv1D`` layers into ``nn.Linear``
  and applies ``torch.ao.quantization.quantize_dynamic``.

The model forecasts up to ``max_horizon`` steps; longer horizons are refused (retrain with a
larger ``max_horizon``) rather than extrapolated silently.
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import GPT2Config, GPT2Model
from transformers.pytorch_utils import Conv1D

from netgpt.edge_models.base import (
    DEFAULT_LEVELS,
    DEFAULT_STEP_S,
    Forecast,
    HistoryPolicy,
    as_history,
    prepare_history,
    series_names,
)
from netgpt.edge_models.tokenizer import SEP, ValueTokenizer
from netgpt.errors import ForecastError

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "GPTForecaster",
    "GPTForecasterConfig",
    "TrafficGPT",
    "TrainingLog",
    "TrainingPanel",
    "TrainingSettings",
    "gather_windows",
    "train_network",
]

CONFIG_FILE = "config.json"
_BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in mixed-adapter batches
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class GPTForecasterConfig:
    """Architecture, tokenizer and context layout of a :class:`GPTForecaster`.

    The defaults are the shipped model. ``n_*``: GPT-2 size; ``n_bins``/``low``/``high``: the
    tokenizer; ``recent_len``/``season_len``: the two context segments (``season_s`` long
    season); ``max_horizon``: steps forecast at once; ``loss_positions``: positions per window
    that carry a training loss; ``label_sigma``: target smoothing of the ``bins`` head (bins);
    ``min_length``: observed values a series needs; ``output``/``levels``/``value_input``/
    ``residual``: the head (module docstring).
    """

    n_layer: int = 4
    n_embd: int = 64
    n_head: int = 4
    n_bins: int = 2048
    low: float = -2.0
    high: float = 8.0
    recent_len: int = 48
    season_len: int = 36
    max_horizon: int = 12
    season_s: float = 86400.0
    loss_positions: int = 16
    label_sigma: float = 2.0
    dropout: float = 0.0
    min_length: int = 12
    output: str = "quantiles"
    levels: tuple[float, ...] = DEFAULT_LEVELS
    value_input: bool = True
    residual: bool = True

    def __post_init__(self) -> None:
        if self.output not in ("quantiles", "bins"):
            raise ForecastError(f"output={self.output!r} must be 'quantiles' or 'bins'")
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
        if 0.5 not in self.levels or list(self.levels) != sorted(set(self.levels)):
            raise ForecastError(
                f"levels {self.levels} must be strictly increasing and include 0.5"
            )
        if self.loss_positions < 1 or self.loss_positions > self.recent_len:
            raise ForecastError(
                f"loss_positions={self.loss_positions} must lie in 1..recent_len "
                f"({self.recent_len})"
            )
        if self.season_len < self.max_horizon:
            raise ForecastError(
                f"season_len={self.season_len} must be at least max_horizon={self.max_horizon}"
            )
        if self.n_embd % self.n_head:
            raise ForecastError(f"n_embd={self.n_embd} must be a multiple of n_head={self.n_head}")
        if self.min_length < 1 or self.min_length > self.recent_len:
            raise ForecastError(f"min_length={self.min_length} must lie in 1..recent_len")

    @property
    def tokenizer(self) -> ValueTokenizer:
        """The tokenizer this configuration implies."""
        return ValueTokenizer(n_bins=self.n_bins, low=self.low, high=self.high)

    @property
    def seq_len(self) -> int:
        """Tokens per window: day-ago segment, ``SEP``, recent segment."""
        return self.season_len + 1 + self.recent_len

    @property
    def scale_len(self) -> int:
        """Oldest recent values that set the scale (none after the first loss position)."""
        return self.recent_len - self.loss_positions + 1

    def period_steps(self, step_s: float) -> int | None:
        """Season length in steps for ``step_s`` sampling (``None``: no usable season)."""
        if step_s <= 0:
            raise ForecastError(f"step_s={step_s} must be positive")
        period = round(self.season_s / step_s)
        if period < self.max_horizon + self.loss_positions:
            return None
        return period

    def lookback(self, step_s: float) -> int:
        """Rows of history the model can use (older rows are ignored)."""
        period = self.period_steps(step_s)
        if period is None:
            return self.recent_len
        return max(self.recent_len, period + self.season_len - self.max_horizon)

    def gpt2_config(self) -> GPT2Config:
        """The ``transformers`` configuration of the GPT-2 body."""
        return GPT2Config(
            vocab_size=self.tokenizer.vocab_size,
            n_positions=self.seq_len,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_inner=4 * self.n_embd,
            # exact GELU: one fused op on the CPU; GPT-2's tanh form ("gelu_new") made a
            # training step ~20% slower here
            activation_function="gelu",
            resid_pdrop=self.dropout,
            embd_pdrop=self.dropout,
            attn_pdrop=self.dropout,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )


class TrafficGPT(nn.Module):
    """GPT-2 body over value tokens plus direct multi-horizon heads.

    Input: token ids and the same values as scaled floats (``value_input`` adds a linear
    embedding of them to the token embedding, so precision is not limited by the bin width).
    Output at each of the last ``positions`` tokens, for each of the ``max_horizon`` next steps:

    * ``output="quantiles"``: the ``levels`` quantiles (scaled units), non-decreasing by
      construction; with ``residual`` they are offsets from the value at that position.
    * ``output="bins"``: logits over the value bins (tied to the value-token embeddings).
    """

    def __init__(self, config: GPTForecasterConfig) -> None:
        super().__init__()
        self.config = config
        self.gpt = GPT2Model(config.gpt2_config())
        c, h = config.n_embd, config.max_horizon
        self.value_proj = nn.Linear(1, c) if config.value_input else None
        self._offset = config.tokenizer.offset
        self._median = config.levels.index(0.5)
        if config.output == "bins":
            self.head_weight = nn.Parameter(torch.randn(h, c, c) * 0.02)
            self.head_bias = nn.Parameter(torch.zeros(h, c))
            self.head_norm = nn.LayerNorm(c)
            self.out_bias = nn.Parameter(torch.zeros(config.n_bins))
        else:
            n_q = len(config.levels)
            self.head_hidden = nn.Linear(c, 2 * c)
            self.head_out = nn.Linear(2 * c, h * n_q)
            with torch.no_grad():
                self.head_out.weight.mul_(0.1)
                bias = torch.full((h, n_q), -3.0)  # quantile spreads start small
                bias[:, self._median] = 0.0
                self.head_out.bias.copy_(bias.reshape(-1))

    def forward(
        self, input_ids: torch.Tensor, values: torch.Tensor, positions: int = 1
    ) -> torch.Tensor:
        """``(batch, positions, max_horizon, n_levels or n_bins)`` at the last ``positions``."""
        emb = self.gpt.wte(input_ids)
        if self.value_proj is not None:
            emb = emb + self.value_proj(values.unsqueeze(-1))
        hidden = self.gpt(inputs_embeds=emb).last_hidden_state[:, -positions:, :]
        cfg = self.config
        if cfg.output == "bins":
            z = torch.einsum("bkc,hdc->bkhd", hidden, self.head_weight) + self.head_bias
            z = self.head_norm(nn.functional.gelu(z))
            table = self.gpt.wte.weight[self._offset :]
            return z @ table.T + self.out_bias
        raw = self.head_out(nn.functional.gelu(self.head_hidden(hidden)))
        raw = raw.view(*hidden.shape[:2], cfg.max_horizon, len(cfg.levels))
        m = self._median
        med = raw[..., m : m + 1]
        up = torch.cumsum(nn.functional.softplus(raw[..., m + 1 :]), dim=-1)
        down = torch.flip(
            torch.cumsum(nn.functional.softplus(torch.flip(raw[..., :m], [-1])), dim=-1), [-1]
        )
        q = torch.cat([med - down, med, med + up], dim=-1)
        if cfg.residual:
            q = q + values[:, -positions:, None, None]
        return q


@dataclass(frozen=True)
class TrainingPanel:
    """Series sampled on one time grid for training: ``values`` is ``(time, n_series)``.

    ``weight`` is the share of training windows drawn from this panel (relative to the
    others); ``mix`` allows windows that are random positive mixtures of its columns (link-like
    aggregates of flows).
    """

    name: str
    values: np.ndarray
    step_s: float = DEFAULT_STEP_S
    weight: float = 1.0
    mix: bool = True


@dataclass(frozen=True)
class TrainingSettings:
    """How a network is trained (global model or adapter); seeded, so runs repeat.

    ``size_weight`` (``a``) makes a training window count in proportion to ``scale ** a``, its
    traffic level: 0 weighs every window alike (a near-idle flow as much as a trunk); 1 matches
    the pooled error (sum|err| / sum|y|) and what a link's load is made of. Columns are drawn
    with probability ~ their mean level ``** a`` and each window's loss is weighted by its
    scale relative to that mean (clipped to 0.05..20), which keeps the gradient noise low.
    """

    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    mix_prob: float = 0.3
    mix_max: int = 8
    drop_season_prob: float = 0.1
    truncate_prob: float = 0.1
    time_budget_s: float | None = None
    log_every: int = 50
    size_weight: float = 0.0


@dataclass
class TrainingLog:
    """What a training run did: the loss curve (mean per ``log_every`` steps) and time."""

    steps: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    stopped_by_budget: bool = False
    trainable_parameters: int = 0

    @property
    def first_loss(self) -> float:
        """Mean loss of the first logged interval (NaN when nothing was logged)."""
        return self.losses[0] if self.losses else float("nan")

    @property
    def final_loss(self) -> float:
        """Mean loss of the last logged interval (NaN when nothing was logged)."""
        return self.losses[-1] if self.losses else float("nan")


def gather_windows(
    values: np.ndarray, cols: np.ndarray, start: np.ndarray, length: int
) -> np.ndarray:
    """``values[start + i, col]`` for i < length; NaN where the row is outside the array."""
    idx = start[:, None] + np.arange(length)[None, :]
    inside = (idx >= 0) & (idx < values.shape[0])
    safe = np.clip(idx, 0, values.shape[0] - 1)
    out = values[safe, cols[:, None]]
    return np.where(inside, out, np.nan)


def window_tokens(
    config: GPTForecasterConfig,
    series: np.ndarray,
    origins: np.ndarray,
    step_s: float,
    *,
    drop_season: np.ndarray | None = None,
    keep_recent: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids ``(M, seq_len)``, scaled values ``(M, seq_len)`` and scales ``(M,)``.

    ``series`` is ``(time, M)``: window ``m`` reads column ``m`` and ends at row
    ``origins[m]``. ``drop_season`` (bool per window) blanks the day-ago segment and
    ``keep_recent`` (count per window) blanks all but the newest values of the recent segment:
    both teach the model to work with short histories. Scaled values are clipped to the bin
    range; missing ones (``PAD``) are 0.
    """
    tok = config.tokenizer
    m = series.shape[1]
    cols = np.arange(m)
    recent = gather_windows(series, cols, origins - config.recent_len + 1, config.recent_len)
    period = config.period_steps(step_s)
    if period is None:
        season = np.full((m, config.season_len), np.nan)
    else:
        start = origins - period - (config.season_len - config.max_horizon) + 1
        season = gather_windows(series, cols, start, config.season_len)
    if drop_season is not None:
        season[drop_season] = np.nan
    if keep_recent is not None:
        blank = np.arange(config.recent_len)[None, :] < (config.recent_len - keep_recent)[:, None]
        recent = np.where(blank, np.nan, recent)
    scale = tok.scale_of(recent[:, : config.scale_len])
    raw = np.concatenate([season, np.full((m, 1), np.nan), recent], axis=1)
    ids = tok.encode(raw, scale)
    ids[:, config.season_len] = SEP
    scaled = np.clip(raw / scale[:, None], tok.low, tok.high)
    scaled = np.nan_to_num(scaled, nan=0.0).astype(np.float32)
    return ids, scaled, scale


def _targets(
    config: GPTForecasterConfig,
    series: np.ndarray,
    origins: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Training targets ``(M, loss_positions, max_horizon)``.

    ``bins``: bin indices of the future values (-1 unknown). ``quantiles``: scaled future
    values clipped to ``[low, high]`` (NaN unknown).
    """
    k, h = config.loss_positions, config.max_horizon
    m = series.shape[1]
    cols = np.arange(m)
    future = gather_windows(series, cols, origins - k + 2, k + h - 1)
    # position j (0..k-1) is row origin-k+1+j; its step s (1..h) is row origin-k+1+j+s
    idx = np.arange(k)[:, None] + np.arange(h)[None, :]
    vals = future[:, idx] / scale[:, None, None]
    if config.output == "bins":
        return config.tokenizer.bin_index(vals)
    # clipped like the inputs: a burst after a near-idle window would otherwise dominate a batch
    return np.clip(vals, config.low, config.high).astype(np.float32)


def _pinball(
    pred: torch.Tensor,
    target: torch.Tensor,
    levels: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean pinball loss of quantiles ``pred`` (B, ..., Q) against ``target`` (B, ...).

    NaN targets are ignored; ``weight`` (B,) weights each window (weighted mean).
    """
    valid = (~torch.isnan(target)).to(pred.dtype)
    if weight is not None:
        valid = valid * weight.view(-1, *([1] * (valid.ndim - 1)))
    diff = torch.nan_to_num(target, nan=0.0).unsqueeze(-1) - pred
    loss = torch.maximum(levels * diff, (levels - 1.0) * diff).mean(-1)
    return (loss * valid).sum() / valid.sum().clamp(min=1e-8)


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    """Cross-entropy against Gaussian-smoothed bin targets (``target`` -1 is ignored)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    valid = target >= 0
    tgt = target.clamp(min=0)
    if sigma <= 0:
        nll = -torch.gather(logp, -1, tgt.unsqueeze(-1)).squeeze(-1)
    else:
        radius = max(1, math.ceil(3 * sigma))
        offs = torch.arange(-radius, radius + 1, device=logits.device)
        w = torch.exp(-0.5 * (offs.float() / sigma) ** 2)
        w = w / w.sum()
        idx = (tgt.unsqueeze(-1) + offs).clamp(0, logits.shape[-1] - 1)
        nll = -(torch.gather(logp, -1, idx) * w).sum(-1)
    return (nll * valid).sum() / valid.sum().clamp(min=1)


class _WindowSampler:
    """Draws training windows (with mixing, season dropping and truncation) from panels."""

    def __init__(
        self,
        config: GPTForecasterConfig,
        panels: Sequence[TrainingPanel],
        settings: TrainingSettings,
        rng: np.random.Generator,
    ) -> None:
        usable = [p for p in panels if p.values.ndim == 2 and p.values.shape[0] > config.min_length]
        if not usable:
            raise ForecastError(
                f"no training panel has more than {config.min_length} rows; give longer series"
            )
        self.config = config
        self.panels = usable
        self.settings = settings
        self.rng = rng
        w = np.array([max(p.weight, 0.0) for p in usable], dtype=np.float64)
        if w.sum() <= 0:
            raise ForecastError("every training panel has weight 0; give one a positive weight")
        self.weights = w / w.sum()
        # size weighting: column c is drawn with probability ~ level_c ** a, a window's loss
        # weighs (scale / level_c) ** a, so a window counts ~ scale ** a overall
        a = settings.size_weight
        self.levels: list[np.ndarray] = []
        self.col_probs: list[np.ndarray | None] = []
        for p in usable:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                lvl = np.nanmean(np.abs(p.values), axis=0)
            lvl = np.where(np.isfinite(lvl) & (lvl > 0), lvl, np.nan)
            fill = np.nanmin(lvl) if np.isfinite(lvl).any() else 1.0
            lvl = np.nan_to_num(lvl, nan=fill)
            self.levels.append(lvl)
            self.col_probs.append(None if a == 0 else lvl**a / np.sum(lvl**a))

    def batch(
        self, size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids and scaled values ``(size, seq_len)``, targets ``(size, K, H)``, weights."""
        rng, cfg, st = self.rng, self.config, self.settings
        counts = rng.multinomial(size, self.weights)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for i, (panel, n) in enumerate(zip(self.panels, counts, strict=True)):
            if n == 0:
                continue
            values = panel.values
            t_len, n_cols = values.shape
            origins = rng.integers(cfg.min_length, t_len - 1, size=n)
            probs = self.col_probs[i]
            if probs is None:
                cols = rng.integers(0, n_cols, size=n)
            else:
                cols = rng.choice(n_cols, size=n, p=probs)
            series = values[:, cols]
            if panel.mix and n_cols > 1 and st.mix_prob > 0:
                mixed = rng.random(n) < st.mix_prob
                for j in np.flatnonzero(mixed):
                    k = int(rng.integers(2, min(st.mix_max, n_cols) + 1))
                    pick = rng.choice(n_cols, size=k, replace=False)
                    weights = rng.dirichlet(np.ones(k))
                    series[:, j] = values[:, pick] @ weights
            drop = rng.random(n) < st.drop_season_prob
            keep = np.where(
                rng.random(n) < st.truncate_prob,
                rng.integers(cfg.min_length, cfg.recent_len + 1, size=n),
                cfg.recent_len,
            )
            ids, scaled, scale = window_tokens(
                cfg, series, origins, panel.step_s, drop_season=drop, keep_recent=keep
            )
            tgt = _targets(cfg, series, origins, scale)
            # a loss position whose own value is blanked or missing has nothing to anchor on
            pos = cfg.seq_len - cfg.loss_positions + np.arange(cfg.loss_positions)
            blind = ids[:, pos] < self.config.tokenizer.offset
            if cfg.output == "bins":
                tgt[blind] = -1
            else:
                tgt[blind] = np.nan
            if st.size_weight:
                rel = scale / self.levels[i][cols]
                wts = np.clip(rel, 0.05, 20.0) ** st.size_weight
            else:
                wts = np.ones(n)
            parts.append((ids, scaled, tgt, wts.astype(np.float32)))
        ids_all = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        val_all = torch.from_numpy(np.concatenate([p[1] for p in parts]))
        tgt_all = torch.from_numpy(np.concatenate([p[2] for p in parts]))
        w_all = torch.from_numpy(np.concatenate([p[3] for p in parts]))
        return ids_all, val_all, tgt_all, w_all


def train_network(
    net: nn.Module,
    config: GPTForecasterConfig,
    panels: Sequence[TrainingPanel],
    settings: TrainingSettings,
    *,
    device: str = "cpu",
    progress: Callable[[int, float], None] | None = None,
) -> TrainingLog:
    """Train the parameters of ``net`` that require grad (all, or only LoRA's) on ``panels``.

    AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr``; seeded by
    ``settings.seed``. Stops after ``settings.steps`` or ``time_budget_s``, whichever is first.
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    sampler = _WindowSampler(config, panels, settings, rng)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ForecastError("the network has no trainable parameters")
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings.lr,
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < settings.warmup:
            return settings.lr * (step + 1) / settings.warmup
        frac = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
        cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))
        return settings.lr * (settings.min_lr_ratio + (1.0 - settings.min_lr_ratio) * cos)

    levels_t = torch.tensor(config.levels, dtype=torch.float32, device=device)
    log = TrainingLog(trainable_parameters=sum(p.numel() for p in params))
    net.train()
    t0 = time.perf_counter()
    window: list[float] = []
    for step in range(settings.steps):
        ids, vals, tgt, wts = sampler.batch(settings.batch_size)
        ids, vals, tgt = ids.to(device), vals.to(device), tgt.to(device)
        wts = wts.to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        out = net(ids, vals, positions=config.loss_positions)
        if config.output == "bins":
            loss = _soft_cross_entropy(out, tgt, config.label_sigma)
        else:
            loss = _pinball(out, tgt, levels_t, wts if settings.size_weight else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()
        window.append(float(loss.detach()))
        log.steps = step + 1
        if len(window) == settings.log_every or step == settings.steps - 1:
            log.losses.append(float(np.mean(window)))
            window = []
            if progress is not None:
                progress(log.steps, log.losses[-1])
        if settings.time_budget_s is not None and time.perf_counter() - t0 > settings.time_budget_s:
            log.stopped_by_budget = True
            if window:
                log.losses.append(float(np.mean(window)))
            break
    net.eval()
    log.seconds = time.perf_counter() - t0
    return log


def _interp_levels(q: torch.Tensor, have: np.ndarray, want: np.ndarray) -> torch.Tensor:
    """Quantiles at levels ``want`` from quantiles ``q`` (..., len(have)) at levels ``have``.

    Linear in the level between trained levels; outside them the outermost trained quantile.
    """
    if have.shape == want.shape and np.allclose(have, want):
        return q.double()
    idx = np.clip(np.searchsorted(have, want), 1, have.size - 1)
    lo, hi = have[idx - 1], have[idx]
    w = np.clip((want - lo) / (hi - lo), 0.0, 1.0)
    w_t = torch.as_tensor(w, dtype=torch.float64, device=q.device)
    hi_t = torch.as_tensor(idx, device=q.device)
    q64 = q.double()
    return (1.0 - w_t) * q64[..., hi_t - 1] + w_t * q64[..., hi_t]


def _linearize(module: nn.Module) -> None:
    """Replace GPT-2's ``Conv1D`` layers by equivalent ``nn.Linear`` ones, in place."""
    for name, child in list(module.named_children()):
        if isinstance(child, Conv1D):
            lin = nn.Linear(child.weight.shape[0], child.weight.shape[1])
            lin.weight.data = child.weight.data.T.contiguous()
            lin.bias.data = child.bias.data.clone()
            setattr(module, name, lin)
        else:
            _linearize(child)


class GPTForecaster:
    """The GPT-2 value-token forecaster behind the :class:`Forecaster` protocol.

    ``GPTForecaster(config, seed=...)`` makes an untrained model (its initial weights drawn from
    ``seed``, without touching torch's global random state); :meth:`fit` trains it on one
    history array, :func:`train_network` on several panels; :meth:`save` / :meth:`load` use a
    folder with ``config.json`` and ``model.safetensors``. Site adapters are added by
    :mod:`netgpt.edge_models.adapters`.
    """

    def __init__(
        self,
        config: GPTForecasterConfig | None = None,
        *,
        net: nn.Module | None = None,
        name: str = "forecaster",
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        self.config = config or GPTForecasterConfig()
        if net is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = TrafficGPT(self.config)
        self.net: nn.Module = net
        self.net.eval()
        self._name = name
        self.batch_size = batch_size
        self.int8 = False
        self.adapter: str | None = None
        self.policy = HistoryPolicy(min_length=self.config.min_length)

    @property
    def name(self) -> str:
        """Method name in reports."""
        return self._name

    @property
    def max_horizon(self) -> int:
        """The longest horizon the heads were trained for."""
        return self.config.max_horizon

    @property
    def tokenizer(self) -> ValueTokenizer:
        """The value tokenizer of this model."""
        return self.config.tokenizer

    def parameter_count(self) -> int:
        """Number of parameters of the network (LoRA included when loaded)."""
        return sum(p.numel() for p in self.net.parameters())

    def lookback(self, step_s: float = DEFAULT_STEP_S) -> int:
        """Rows of history ``predict`` reads (a season plus the day-ago segment)."""
        return self.config.lookback(step_s)

    def fit(
        self,
        history: np.ndarray,
        *,
        step_s: float = DEFAULT_STEP_S,
        series: Sequence[str] | None = None,
        settings: TrainingSettings | None = None,
    ) -> None:
        """Train from scratch on ``history`` (time x series; NaN = missing)."""
        values = as_history(history)
        self.train_on([TrainingPanel("history", values, step_s)], settings or TrainingSettings())

    def train_on(
        self,
        panels: Sequence[TrainingPanel],
        settings: TrainingSettings,
        *,
        progress: Callable[[int, float], None] | None = None,
    ) -> TrainingLog:
        """Train every parameter on ``panels`` (see :func:`train_network`)."""
        if self.int8:
            raise ForecastError("an int8 model cannot be trained; train the fp32 model first")
        return train_network(
            self.net, self.config, panels, settings, device=self.device, progress=progress
        )

    @property
    def device(self) -> str:
        """Where the network's weights live (``cpu`` unless moved with :meth:`to`)."""
        for p in self.net.parameters():
            return str(p.device)
        return "cpu"

    def to(self, device: str) -> GPTForecaster:
        """Move the network to ``device`` (e.g. ``cuda`` for exploration runs); returns self."""
        self.net.to(device)
        return self

    def predict(
        self,
        history: np.ndarray,
        horizon: int,
        *,
        step_s: float = DEFAULT_STEP_S,
        series: Sequence[str] | None = None,
        last_time: float | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
        adapters: Sequence[str | None] | None = None,
    ) -> Forecast:
        """Quantile forecast for each column of ``history`` (see :class:`Forecaster`).

        The history is cleaned by :func:`prepare_history` (at least ``min_length`` observed
        values per series); only the last :meth:`GPTForecasterConfig.lookback` rows are read.
        When the history is shorter than a season plus the day-ago segment, that segment is
        left blank (``PAD``), which the model was trained to handle. ``adapters`` (one loaded
        adapter name or ``None`` per column) forecasts columns of several sites in one batch;
        without it every column uses the active adapter (or the global model).
        """
        if not 1 <= horizon <= self.max_horizon:
            raise ForecastError(
                f"horizon {horizon} is outside 1..{self.max_horizon} for this model; ask for "
                f"at most {self.max_horizon} steps or retrain with a larger max_horizon"
            )
        names = series_names(as_history(history).shape[1], series)
        if adapters is not None and len(adapters) != len(names):
            raise ForecastError(f"{len(adapters)} adapter names for {len(names)} columns")
        lookback = self.config.lookback(step_s)
        raw = as_history(history)[-lookback:]
        clean = prepare_history(raw, self.policy, series=names)
        levels_arr = np.asarray(levels, dtype=np.float64)
        quant = self.quantiles_for(clean, step_s, levels_arr, adapters=adapters)
        return Forecast(
            series=names,
            last_time=last_time,
            step_s=step_s,
            horizon=horizon,
            levels=tuple(float(v) for v in levels_arr),
            quantiles=quant[:, :horizon, :],
            method=self.name,
        )

    def quantiles_for(
        self,
        clean: np.ndarray,
        step_s: float,
        levels: np.ndarray,
        *,
        adapters: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Quantiles ``(n_series, max_horizon, n_levels)`` for clean (NaN-free) columns."""
        n_time, n_series = clean.shape
        origins = np.full(n_series, n_time - 1)
        ids, scaled, scale = window_tokens(self.config, clean, origins, step_s)
        out = np.empty((n_series, self.max_horizon, levels.size))
        with torch.inference_mode():
            for lo in range(0, n_series, self.batch_size):
                sl = slice(lo, lo + self.batch_size)
                names = None if adapters is None else list(adapters[sl])
                q = self._quantiles_scaled(ids[sl], scaled[sl], levels, names)
                out[sl] = q.cpu().numpy()
        return out * scale[:, None, None]

    def _quantiles_scaled(
        self,
        ids: np.ndarray,
        scaled: np.ndarray,
        levels: np.ndarray,
        adapters: list[str | None] | None = None,
    ) -> torch.Tensor:
        """Scaled-unit quantiles ``(batch, max_horizon, n_levels)`` for one batch of windows."""
        dev = self.device
        ids_t, vals_t = torch.from_numpy(ids).to(dev), torch.from_numpy(scaled).to(dev)
        if adapters is not None:
            if not hasattr(self.net, "disable_adapter"):
                raise ForecastError("per-column adapters need adapters loaded on this model")
            routed = [_BASE_ADAPTER if a is None else a for a in adapters]
            out = self.net(ids_t, vals_t, positions=1, adapter_names=routed)[:, 0].float()
        else:
            disable = getattr(self.net, "disable_adapter", None)
            bypass = disable() if self.adapter is None and callable(disable) else nullcontext()
            with bypass:
                out = self.net(ids_t, vals_t, positions=1)[:, 0].float()
        if self.config.output == "bins":
            return self.tokenizer.quantiles_torch(torch.softmax(out, dim=-1), levels)
        return _interp_levels(out, np.asarray(self.config.levels), levels)

    def quantized(self) -> GPTForecaster:
        """An int8 copy (dynamic quantization of every linear layer; adapters merged first)."""
        net = copy.deepcopy(self.net)
        merge = getattr(net, "merge_and_unload", None)
        if callable(merge):
            net = merge()
        _linearize(net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notices
            qnet = torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)
        out = GPTForecaster(self.config, net=qnet, name=f"{self.name}_int8")
        out.int8 = True
        out.batch_size = self.batch_size
        return out

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (the global model) to ``directory``."""
        if self.int8:
            raise ForecastError("save the fp32 model; int8 is made at load time")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        save_file(self.global_state_dict(), str(out / WEIGHTS_FILE), metadata={"format": "pt"})
        (out / CONFIG_FILE).write_text(
            json.dumps({"model": "netgpt-traffic-gpt2", "config": asdict(self.config)}, indent=2)
            + "\n"
        )
        return out

    def global_state_dict(self) -> dict[str, torch.Tensor]:
        """The global model's weights, without any adapter (peft's wrapping undone)."""
        get_base = getattr(self.net, "get_base_model", None)
        base = get_base() if callable(get_base) else self.net
        state = {}
        for key, value in base.state_dict().items():
            if "lora_" in key:
                continue
            state[key.replace(".base_layer.", ".")] = value.detach().cpu().contiguous()
        return state

    @classmethod
    def load(cls, directory: str | Path, *, name: str = "forecaster") -> GPTForecaster:
        """Load a model written by :meth:`save`."""
        path = Path(directory)
        cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
        if not cfg_file.is_file() or not weights.is_file():
            raise ForecastError(
                f"no forecaster weights in {path} (need {CONFIG_FILE} and {WEIGHTS_FILE}); run "
                f"'netgpt forecast train --out {path}' first"
            )
        try:
            raw: dict[str, Any] = json.loads(cfg_file.read_text())
            config = GPTForecasterConfig(**raw["config"])
            net = TrafficGPT(config)
            net.load_state_dict(load_file(str(weights)))
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ForecastError(f"cannot read forecaster weights in {path}: {exc}") from exc
        return cls(config, net=net, name=name)
