"""Values to tokens and back: mean scaling and uniform bins, as Chronos does.

A context window is divided by its scale (the mean absolute value of its observed values, 1.0
when that is zero or undefined), then each scaled value is mapped to one of ``n_bins`` uniform
bins of width ``bin_width`` whose centres include 0 exactly (idle links decode to 0). Values
beyond the range are clipped to the outermost bin. NaN becomes the ``PAD`` token (missing).

Token ids: ``PAD`` (0), ``SEP`` (1), then the value bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from netgpt.errors import ForecastError

__all__ = ["PAD", "SEP", "ValueTokenizer"]

PAD = 0
"""A missing value (NaN, or history too short to fill a slot)."""
SEP = 1
"""Separates the day-ago segment from the recent segment."""
_N_SPECIAL = 2


@dataclass(frozen=True)
class ValueTokenizer:
    """Mean scaling plus ``n_bins`` uniform bins over ``[low, high]`` (in units of the scale)."""

    n_bins: int = 2048
    low: float = -2.0
    high: float = 8.0

    def __post_init__(self) -> None:
        if self.n_bins < 2:
            raise ForecastError(f"n_bins={self.n_bins} must be at least 2")
        if not self.low < 0.0 < self.high:
            raise ForecastError(f"the bin range [{self.low}, {self.high}] must contain 0")

    @property
    def offset(self) -> int:
        """Token id of the first value bin."""
        return _N_SPECIAL

    @property
    def vocab_size(self) -> int:
        """Special tokens plus value bins."""
        return _N_SPECIAL + self.n_bins

    @property
    def bin_width(self) -> float:
        """Width of one bin, in units of the scale."""
        return (self.high - self.low) / self.n_bins

    @property
    def zero_bin(self) -> int:
        """Index of the bin whose centre is exactly 0."""
        return round(-self.low / self.bin_width)

    @property
    def centers(self) -> np.ndarray:
        """Bin centres in scaled units, shape ``(n_bins,)``."""
        return (np.arange(self.n_bins) - self.zero_bin) * self.bin_width

    @property
    def edges(self) -> np.ndarray:
        """Bin edges in scaled units, shape ``(n_bins + 1,)``."""
        return (np.arange(self.n_bins + 1) - self.zero_bin - 0.5) * self.bin_width

    @staticmethod
    def scale_of(context: np.ndarray) -> np.ndarray:
        """Mean absolute observed value along the last axis (1.0 where that is 0 or all NaN)."""
        arr = np.asarray(context, dtype=np.float64)
        absval = np.abs(arr)
        count = np.sum(~np.isnan(absval), axis=-1)
        total = np.nansum(absval, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        return np.where((scale > 0) & np.isfinite(scale), scale, 1.0)

    def bin_index(self, scaled: np.ndarray) -> np.ndarray:
        """Bin index (0..n_bins-1) of scaled values (NaN gives -1)."""
        arr = np.asarray(scaled, dtype=np.float64)
        idx = np.floor(arr / self.bin_width + 0.5) + self.zero_bin
        idx = np.clip(np.nan_to_num(idx, nan=-1.0), -1, self.n_bins - 1)
        idx = np.where(np.isnan(arr), -1, np.maximum(idx, 0))
        return idx.astype(np.int64)

    def encode(self, values: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
        """Token ids of ``values / scale`` (``scale`` broadcasts over the last axis)."""
        arr = np.asarray(values, dtype=np.float64)
        sc = np.asarray(scale, dtype=np.float64)
        if sc.ndim > 0:
            sc = sc[..., None]
        idx = self.bin_index(arr / sc)
        return np.where(idx < 0, PAD, idx + self.offset).astype(np.int64)

    def decode(self, tokens: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
        """Values of token ids (bin centres times ``scale``); special tokens decode to NaN."""
        tok = np.asarray(tokens, dtype=np.int64)
        sc = np.asarray(scale, dtype=np.float64)
        if sc.ndim > 0:
            sc = sc[..., None]
        idx = tok - self.offset
        valid = (idx >= 0) & (idx < self.n_bins)
        vals = np.where(valid, self.centers[np.clip(idx, 0, self.n_bins - 1)], np.nan)
        return vals * sc

    def quantiles(self, probs: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Quantiles (scaled units) of bin distributions ``probs`` (..., n_bins) at ``levels``.

        Each bin's probability is spread uniformly over the bin, so the CDF is piecewise linear
        through the edges and is inverted exactly; results are non-decreasing in the level.
        """
        p = torch.as_tensor(np.asarray(probs), dtype=torch.float64)
        return self.quantiles_torch(p, levels).numpy()

    def quantiles_torch(self, probs: torch.Tensor, levels: np.ndarray) -> torch.Tensor:
        """:meth:`quantiles` on a tensor, on the tensor's device."""
        p = probs.double()
        p = p / p.sum(dim=-1, keepdim=True)
        lead = p.shape[:-1]
        flat = p.reshape(-1, self.n_bins)
        zeros = torch.zeros(flat.shape[0], 1, dtype=flat.dtype, device=flat.device)
        cdf = torch.cat([zeros, flat.cumsum(-1)], -1)
        cdf[:, -1] = 1.0
        lv = torch.as_tensor(np.asarray(levels, dtype=np.float64), device=flat.device)
        targets = lv.expand(flat.shape[0], lv.numel()).contiguous()
        k = torch.searchsorted(cdf, targets, side="left").clamp(1, self.n_bins)
        lo = torch.gather(cdf, 1, k - 1)
        hi = torch.gather(cdf, 1, k)
        gap = hi - lo
        frac = torch.where(gap > 0, (targets - lo) / torch.where(gap > 0, gap, 1.0), 0.5)
        edges = torch.as_tensor(self.edges, device=flat.device)
        out = edges[k - 1] + frac.clamp(0.0, 1.0) * self.bin_width
        out = torch.cummax(out, dim=-1).values
        return out.reshape(*lead, lv.numel())
