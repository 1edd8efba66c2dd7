"""Traffic that evolves over time: models that give the :class:`TrafficMatrix` at any moment.

Two models, chosen by name through :func:`traffic_model`:

- ``diurnal`` (:class:`DiurnalTraffic`): a synthetic gravity-model matrix with a day/night curve,
  noise and short bursts; calibrated on the twin so the busiest link peaks at a chosen utilization.
- ``abilene-replay`` (:class:`AbileneReplay`): the real Abilene matrices (5-minute steps),
  interpolated between rows.

Every model is a pure function of time: the same options and ``t`` give the same matrix in any
process (randomness is counter-based, seeded by ``(seed, stream, step)``). Reading the Abilene
``.npz`` file is the only I/O.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from netgpt.errors import ConfigError
from netgpt.sim_networks.topology import Topology
from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix

__all__ = [
    "DEFAULT_ABILENE_FILE",
    "AbileneReplay",
    "Burst",
    "DiurnalTraffic",
    "TrafficModel",
    "traffic_model",
    "traffic_model_names",
]

FloatArray = npt.NDArray[np.float64]

# Where a source checkout finds the shared data (``../shared`` beside the project root).
DEFAULT_ABILENE_FILE = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "traffic" / "abilene_tm_5min.npz"
)

_ROLE_WEIGHT = {"core": 2.0, "distribution": 1.5, "access": 1.0, "router": 1.0}
_KIND_WEIGHT = {"servers": 4.0}
_NOISE_STREAM, _BURST_STREAM, _MASS_STREAM, _PAIR_STREAM = 1, 2, 3, 4
_BURST_WINDOW_S = 3600.0
_BURST_MIN_S, _BURST_MAX_S = 120.0, 600.0


class TrafficModel(ABC):
    """A source of traffic matrices over time. Implementations are pure and deterministic."""

    @abstractmethod
    def matrix_at(self, t_seconds: float) -> TrafficMatrix:
        """Return the demands offered at time ``t_seconds`` (model time before ``time_scale``).

        The same model and ``t_seconds`` always give the same matrix, in any process.
        """


def _counter(k: int) -> int:
    """Map a step index (possibly negative) to a non-negative seed word."""
    return 2 * k if k >= 0 else -2 * k - 1


def _rng(seed: int, stream: int, k: int) -> np.random.Generator:
    return np.random.default_rng((seed, stream, _counter(k)))


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Burst:
    """Extra traffic on one pair for a few minutes (model time, seconds)."""

    src: str
    dst: str
    start_s: float
    duration_s: float
    extra_mbps: float

    def active_at(self, t: float) -> bool:
        """Whether the burst runs at model time ``t``."""
        return self.start_s <= t < self.start_s + self.duration_s


class DiurnalTraffic(TrafficModel):
    """A gravity-model matrix that follows the day, with noise and bursts.

    Endpoints are the devices with local prefixes; a device's mass grows with its prefix count,
    its role (core > distribution > access) and server groups, times a seeded log-normal spread.
    The base matrix is scaled on a :class:`DigitalTwin` with day-0 configs so that, at the daily
    peak (mid-afternoon, 15:00 of each period) and without noise or bursts, the busiest link runs
    at ``peak_utilization`` of its capacity. At time t (model time = ``t * time_scale``):

    ``rate = base * diurnal(t) * noise(t) + bursts(t)``

    - ``diurnal`` goes from ``night_level`` at 03:00 to 1 at 15:00 (a raised cosine);
    - ``noise`` is log-normal with mean 1 and spread ``noise``, drawn per pair every
      ``noise_step_s`` seconds and interpolated linearly between draws;
    - bursts arrive at ``burst_rate_per_hour`` (Poisson), last 2-10 minutes, and add 5-20 % of the
      smaller access capacity of the pair (the fastest link at either end).

    With more than ``max_pairs`` endpoint pairs, each source keeps a seeded random subset of
    destinations. Raises :class:`ConfigError` for bad options or fewer than two endpoints.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        peak_utilization: float = 0.5,
        seed: int = 0,
        period_s: float = 86_400.0,
        noise: float = 0.05,
        burst_rate_per_hour: float = 0.5,
        time_scale: float = 1.0,
        night_level: float = 0.25,
        noise_step_s: float = 60.0,
        max_pairs: int = 20_000,
    ) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        if not isinstance(max_pairs, int) or max_pairs < 1:
            raise ConfigError(f"max_pairs must be an integer >= 1, got {max_pairs!r}")
        if not 0 <= night_level <= 1:
            raise ConfigError(f"night_level must be within 0..1, got {night_level!r}")
        self.topology = topology
        self.peak_utilization = _positive("peak_utilization", peak_utilization)
        self.seed = seed
        self.period_s = _positive("period_s", period_s)
        self.noise = _positive("noise", noise, allow_zero=True)
        self.burst_rate_per_hour = _positive(
            "burst_rate_per_hour", burst_rate_per_hour, allow_zero=True
        )
        self.time_scale = _positive("time_scale", time_scale)
        self.night_level = float(night_level)
        self.noise_step_s = _positive("noise_step_s", noise_step_s)

        endpoints = [d for d in topology.devices if topology.local_prefixes(d)]
        if len(endpoints) < 2:
            raise ConfigError(
                f"diurnal traffic needs at least two devices with local prefixes; topology "
                f"{topology.name!r} has {len(endpoints)}"
            )
        mass = self._masses(topology, endpoints)
        src, dst = self._pairs(len(endpoints), max_pairs)
        self._src = [endpoints[i] for i in src.tolist()]
        self._dst = [endpoints[j] for j in dst.tolist()]
        self._pair_index = {p: i for i, p in enumerate(zip(self._src, self._dst, strict=True))}
        gravity = mass[src] * mass[dst] / mass.sum()
        speed = np.array([topology.interface_speed_mbps(d, "eth0") for d in endpoints])
        self._burst_room = np.minimum(speed[src], speed[dst])
        probe = TrafficMatrix(tuple(
            Demand(a, b, float(r)) for a, b, r in zip(self._src, self._dst, gravity, strict=True)
        ))
        busiest = DigitalTwin(topology).evaluate(probe).max_utilization
        if busiest <= 0:
            raise ConfigError(
                f"diurnal traffic cannot be calibrated on topology {topology.name!r}: no demand "
                "crosses a link"
            )
        self._base: FloatArray = gravity * (self.peak_utilization / busiest)

    def _masses(self, topology: Topology, endpoints: list[str]) -> FloatArray:
        kind_of = {p: g.kind for g in topology.groups.values() for p in g.prefixes}
        spread = _rng(self.seed, _MASS_STREAM, 0).lognormal(0.0, 0.5, len(endpoints))
        mass = np.empty(len(endpoints))
        for i, d in enumerate(endpoints):
            role = str(topology.graph.nodes[d].get("role", "router"))
            prefixes = topology.local_prefixes(d)
            weight = sum(_KIND_WEIGHT.get(kind_of.get(p, ""), 1.0) for p in prefixes)
            mass[i] = weight * _ROLE_WEIGHT.get(role, 1.0) * spread[i]
        return mass

    def _pairs(self, n: int, max_pairs: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        src, dst = np.nonzero(~np.eye(n, dtype=np.bool_))
        if len(src) > max_pairs:
            per_source = max(1, max_pairs // n)
            rng = _rng(self.seed, _PAIR_STREAM, 0)
            keep = []
            for i in range(n):
                others = np.flatnonzero(src == i)
                keep.extend(sorted(rng.choice(others, size=per_source, replace=False).tolist()))
            src, dst = src[keep], dst[keep]
        return src.astype(np.int64), dst.astype(np.int64)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The (src, dst) pairs of every matrix, in matrix order."""
        return list(zip(self._src, self._dst, strict=True))

    def diurnal_factor(self, t_seconds: float) -> float:
        """Return the day curve at ``t_seconds``: ``night_level`` at 03:00, 1 at 15:00."""
        phase = ((t_seconds * self.time_scale) % self.period_s) / self.period_s
        wave = (1.0 + math.cos(2.0 * math.pi * (phase - 15.0 / 24.0))) / 2.0
        return self.night_level + (1.0 - self.night_level) * wave

    def _noise(self, t: float) -> FloatArray:
        if self.noise == 0:
            return np.ones(len(self._base))
        pos = t / self.noise_step_s
        k = math.floor(pos)
        frac = pos - k
        sigma = self.noise

        def draw(step: int) -> FloatArray:
            z = _rng(self.seed, _NOISE_STREAM, step).standard_normal(len(self._base))
            return np.exp(sigma * z - sigma * sigma / 2.0)

        return (1.0 - frac) * draw(k) + frac * draw(k + 1)

    def bursts_at(self, t_seconds: float) -> tuple[Burst, ...]:
        """Return the bursts running at ``t_seconds`` (times in the burst are model time)."""
        t = t_seconds * self.time_scale
        if self.burst_rate_per_hour == 0:
            return ()
        w = math.floor(t / _BURST_WINDOW_S)
        active = []
        for window in (w - 1, w):  # a burst lasts at most 10 minutes: two windows suffice
            rng = _rng(self.seed, _BURST_STREAM, window)
            for _ in range(int(rng.poisson(self.burst_rate_per_hour))):
                start = window * _BURST_WINDOW_S + float(rng.uniform(0.0, _BURST_WINDOW_S))
                duration = float(rng.uniform(_BURST_MIN_S, _BURST_MAX_S))
                pair = int(rng.integers(len(self._base)))
                extra = float(rng.uniform(0.05, 0.2)) * float(self._burst_room[pair])
                burst = Burst(self._src[pair], self._dst[pair], start, duration, extra)
                if burst.active_at(t):
                    active.append(burst)
        return tuple(active)

    def rates_at(self, t_seconds: float) -> FloatArray:
        """Return the rate of every pair (Mbit/s, in :attr:`pairs` order) at ``t_seconds``."""
        t = t_seconds * self.time_scale
        rates = self._base * self.diurnal_factor(t_seconds) * self._noise(t)
        for b in self.bursts_at(t_seconds):
            rates[self._pair_index[(b.src, b.dst)]] += b.extra_mbps
        return rates

    def matrix_at(self, t_seconds: float) -> TrafficMatrix:
        """Return the matrix at ``t_seconds``: one demand per pair (protocol any)."""
        rates = self.rates_at(t_seconds)
        return TrafficMatrix(tuple(
            Demand(a, b, float(r))
            for a, b, r in zip(self._src, self._dst, rates.tolist(), strict=True)
        ))


class AbileneReplay(TrafficModel):
    """Replays the measured Abilene traffic matrices on the ``abilene`` topology.

    Reads ``path`` (``abilene_tm_5min.npz``: ``X`` Mbit/s with NaN gaps, ``t``, ``od`` pair names
    ``SRC_DST``). Gaps take the last measured value of that pair (0 before the first one). Row
    ``start_index`` plays at t=0 and each row lasts ``step_s`` seconds of model time
    (``t * time_scale``); rates are interpolated linearly between rows, multiplied by ``scale``,
    and the replay wraps around at the end. Raises :class:`ConfigError` when the file is missing
    or malformed, or the topology lacks the Abilene routers.
    """

    def __init__(
        self,
        topology: Topology,
        path: Path,
        *,
        scale: float = 1.0,
        start_index: int = 0,
        step_s: float = 300.0,
        time_scale: float = 1.0,
    ) -> None:
        self.scale = _positive("scale", scale, allow_zero=True)
        self.step_s = _positive("step_s", step_s)
        self.time_scale = _positive("time_scale", time_scale)
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"Abilene traffic file {str(path)!r} does not exist; it ships as "
                "shared/data/traffic/abilene_tm_5min.npz beside the project (see "
                "shared/data/README.md): pass its path"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                x = np.asarray(data["X"], dtype=np.float64)
                od = [str(s) for s in data["od"]]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"{path}: not an Abilene traffic file with arrays X and od ({exc})"
            ) from exc
        if x.ndim != 2 or x.shape[1] != len(od) or x.shape[0] < 1:
            raise ConfigError(
                f"{path}: X has shape {x.shape} but od names {len(od)} pairs; expected "
                "(steps, pairs)"
            )
        pairs = []
        for name in od:
            src, sep, dst = name.partition("_")
            if not sep:
                raise ConfigError(f"{path}: pair name {name!r} is not SRC_DST")
            pairs.append((src, dst))
        devices = set(topology.devices)
        missing = sorted({d for p in pairs for d in p} - devices)
        if missing:
            raise ConfigError(
                f"topology {topology.name!r} lacks the Abilene routers {missing[:5]}; replay the "
                "Abilene matrices on the abilene topology (build_topology('abilene')) or use "
                "the diurnal model"
            )
        if not isinstance(start_index, int) or not 0 <= start_index < x.shape[0]:
            raise ConfigError(
                f"start_index must be an integer within 0..{x.shape[0] - 1}, got {start_index!r}"
            )
        self.start_index = start_index
        self.path = path
        self.pairs: list[tuple[str, str]] = pairs
        self._rows = _fill_gaps(x)

    @property
    def n_steps(self) -> int:
        """Number of 5-minute rows in the file."""
        return int(self._rows.shape[0])

    def rates_at(self, t_seconds: float) -> FloatArray:
        """Return the rate of every pair (Mbit/s, in :attr:`pairs` order) at ``t_seconds``."""
        pos = self.start_index + t_seconds * self.time_scale / self.step_s
        k = math.floor(pos)
        frac = pos - k
        n = self.n_steps
        a, b = self._rows[k % n], self._rows[(k + 1) % n]
        return ((1.0 - frac) * a + frac * b) * self.scale

    def matrix_at(self, t_seconds: float) -> TrafficMatrix:
        """Return the matrix at ``t_seconds``: one demand per Abilene pair."""
        rates = self.rates_at(t_seconds)
        return TrafficMatrix(tuple(
            Demand(s, d, r) for (s, d), r in zip(self.pairs, rates.tolist(), strict=True)
        ))


def _fill_gaps(x: FloatArray) -> FloatArray:
    """Replace NaN (and negative) entries by the last valid value of the column, 0 before any."""
    valid = np.isfinite(x) & (x >= 0)
    rows = np.arange(x.shape[0])[:, None]
    last = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)
    filled = np.take_along_axis(np.where(valid, x, 0.0), np.maximum(last, 0), axis=0)
    return np.where(last >= 0, filled, 0.0)


def _abilene_replay(
    topology: Topology,
    *,
    path: Path | str | None = None,
    scale: float = 1.0,
    start_index: int = 0,
    step_s: float = 300.0,
    time_scale: float = 1.0,
) -> AbileneReplay:
    return AbileneReplay(
        topology,
        Path(path) if path is not None else DEFAULT_ABILENE_FILE,
        scale=scale,
        start_index=start_index,
        step_s=step_s,
        time_scale=time_scale,
    )


_MODELS: dict[str, Callable[..., TrafficModel]] = {
    "diurnal": DiurnalTraffic,
    "abilene-replay": _abilene_replay,
}


def traffic_model_names() -> list[str]:
    """Return the registered model names."""
    return sorted(_MODELS)


def traffic_model(name: str, topology: Topology, **options: Any) -> TrafficModel:
    """Build the traffic model registered as ``name`` for ``topology``.

    ``diurnal`` takes :class:`DiurnalTraffic`'s options; ``abilene-replay`` takes
    :class:`AbileneReplay`'s, with ``path`` defaulting to :data:`DEFAULT_ABILENE_FILE`. Unknown
    names or options raise :class:`ConfigError` listing the valid ones.
    """
    factory = _MODELS.get(name)
    if factory is None:
        raise ConfigError(
            f"unknown traffic model {name!r}; choose one of {', '.join(traffic_model_names())}"
        )
    accepted = [
        p.name for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"traffic model {name!r} has no option(s) {unknown}; valid: {', '.join(accepted)}"
        )
    return factory(topology, **options)
