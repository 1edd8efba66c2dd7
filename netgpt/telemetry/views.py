"""Views over telemetry: link utilization from interface rates, and a traffic-matrix estimate.

Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from netgpt.errors import TelemetryError
from netgpt.inventory import Inventory
from netgpt.sim_networks.topology import ACCESS_INTERFACE
from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix
from netgpt.telemetry.base import RateSample

__all__ = [
    "LinkUtilization",
    "ServiceLevel",
    "UtilizationSeries",
    "estimate_traffic_matrix",
    "latest_by_interface",
    "link_utilizations",
    "nearest_rank",
    "service_level",
    "tomogravity_traffic_matrix",
    "utilization_series",
]


@dataclass(frozen=True)
class LinkUtilization:
    """Measured load of one link in both directions (a -> b is what a sends on its interface)."""

    a: str
    a_interface: str
    b: str
    b_interface: str
    capacity_mbps: float
    a_to_b_mbps: float
    b_to_a_mbps: float
    up: bool

    @property
    def utilization(self) -> float:
        """The busier direction's load as a fraction of capacity."""
        return max(self.a_to_b_mbps, self.b_to_a_mbps) / self.capacity_mbps

    @property
    def name(self) -> str:
        """``a:ethX - b:ethY``."""
        return f"{self.a}:{self.a_interface} - {self.b}:{self.b_interface}"


def latest_by_interface(rates: Iterable[RateSample]) -> dict[tuple[str, str], RateSample]:
    """The newest rate of each (device, interface)."""
    out: dict[tuple[str, str], RateSample] = {}
    for r in rates:
        key = (r.device, r.interface)
        if key not in out or out[key].timestamp <= r.timestamp:
            out[key] = r
    return out


def link_utilizations(
    inventory: Inventory, latest: Mapping[tuple[str, str], RateSample]
) -> list[LinkUtilization]:
    """Utilization of every inventory link with rates at both ends, busiest first."""
    out = []
    for lk in inventory.links:
        a = latest.get((lk.a, lk.a_interface))
        b = latest.get((lk.b, lk.b_interface))
        if a is None or b is None:
            continue
        out.append(
            LinkUtilization(
                a=lk.a,
                a_interface=lk.a_interface,
                b=lk.b,
                b_interface=lk.b_interface,
                capacity_mbps=lk.capacity_mbps,
                a_to_b_mbps=a.out_mbps,
                b_to_a_mbps=b.out_mbps,
                up=a.oper_up and b.oper_up,
            )
        )
    return sorted(out, key=lambda u: -u.utilization)


def estimate_traffic_matrix(
    latest: Mapping[tuple[str, str], RateSample], *, access_interface: str = ACCESS_INTERFACE
) -> TrafficMatrix:
    """A gravity-model traffic matrix from each device's access-interface counters.

    What a device's access interface receives is traffic it originates; what it sends is
    traffic delivered to it. Demand i -> j = originated(i) * delivered(j) / sum of delivered
    over j != i (the classic gravity estimate, made exact on the per-device totals' shares).
    """
    originated = {d: r.in_mbps for (d, itf), r in latest.items() if itf == access_interface}
    delivered = {d: r.out_mbps for (d, itf), r in latest.items() if itf == access_interface}
    demands = []
    for src, out_mbps in sorted(originated.items()):
        weights = {dst: v for dst, v in delivered.items() if dst != src and v > 0}
        total = sum(weights.values())
        if out_mbps <= 0 or total <= 0:
            continue
        for dst, w in sorted(weights.items()):
            rate = out_mbps * w / total
            if rate > 0:
                demands.append(Demand(src, dst, rate))
    return TrafficMatrix(tuple(demands))


def tomogravity_traffic_matrix(
    latest: Mapping[tuple[str, str], RateSample],
    twin: DigitalTwin,
    *,
    prior_weight: float = 0.1,
    access_interface: str = ACCESS_INTERFACE,
) -> TrafficMatrix:
    """A traffic matrix that explains the measured link loads, starting from the gravity model.

    Tomogravity (Zhang et al., SIGCOMM 2003): the twin gives each origin-destination pair's share
    of every link direction (the routing matrix ``A``); the demands ``x >= 0`` minimise
    ``|A x - y|^2 + w^2 |x - g|^2`` where ``y`` are the measured egress rates of every interface
    (links and access) and ``g`` the gravity estimate, scaled by ``w = prior_weight``. One twin
    evaluation per pair: meant for networks of tens of devices.
    """
    gravity = estimate_traffic_matrix(latest, access_interface=access_interface)
    pairs = [(d.src, d.dst) for d in gravity]
    if not pairs:
        return gravity
    rows = sorted(k for k in latest if k[0] in twin.topology.graph)
    index = {k: i for i, k in enumerate(rows)}
    a = np.zeros((len(rows), len(pairs)))
    for j, (src, dst) in enumerate(pairs):
        report = twin.evaluate(TrafficMatrix((Demand(src, dst, 1.0),)))
        for key, load in report.interfaces.items():
            i = index.get(key)
            if i is not None:
                a[i, j] = load.egress_mbps
    y = np.array([latest[k].out_mbps for k in rows])
    g = np.array([d.rate_mbps for d in gravity])
    w = prior_weight
    x, _ = nnls(np.vstack([a, w * np.eye(len(pairs))]), np.concatenate([y, w * g]))
    return TrafficMatrix(
        tuple(Demand(s, d, float(r)) for (s, d), r in zip(pairs, x, strict=True) if r > 1e-6)
    )


@dataclass(frozen=True)
class UtilizationSeries:
    """Egress utilization of interfaces on a regular time grid (what forecasters read).

    ``values[t, i]`` is the mean utilization of ``keys[i]`` over the step ending ``times[t]``
    (epoch seconds); NaN where no rate was measured in that step.
    """

    keys: tuple[tuple[str, str], ...]
    times: np.ndarray
    values: np.ndarray
    step_s: float


def utilization_series(
    frame: pd.DataFrame, keys: Iterable[tuple[str, str]], *, step_s: float | None = None
) -> UtilizationSeries:
    """Resample stored rate rows (``SqliteTelemetryStore.rates_frame``) onto a regular grid.

    ``step_s`` defaults to the median polling interval. Raises :class:`TelemetryError` when a
    key has no rows at all, naming it and the interfaces that do.
    """
    wanted = tuple(keys)
    if frame.empty:
        raise TelemetryError("the telemetry store holds no rates yet; run 'netgpt telemetry poll'")
    present = set(zip(frame["device"], frame["interface"], strict=True))
    for key in wanted:
        if key not in present:
            known = ", ".join(f"{d}:{i}" for d, i in sorted(present)[:8])
            raise TelemetryError(
                f"no stored rates for {key[0]}:{key[1]}; the store has {known}...")
    if step_s is None:
        step_s = float(np.median(frame["interval_s"])) if "interval_s" in frame else 1.0
    if not step_s > 0:
        raise TelemetryError(f"step_s={step_s} must be positive")
    start = float(frame["time"].min())
    end = float(frame["time"].max())
    n = int(np.floor((end - start) / step_s)) + 1
    times = start + step_s * np.arange(1, n + 1)
    values = np.full((n, len(wanted)), np.nan)
    for i, (device, interface) in enumerate(wanted):
        rows = frame[(frame["device"] == device) & (frame["interface"] == interface)]
        slot = np.minimum(((rows["time"].to_numpy() - start) // step_s).astype(int), n - 1)
        sums = np.bincount(slot, weights=rows["out_utilization"].to_numpy(), minlength=n)
        counts = np.bincount(slot, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[:, i] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return UtilizationSeries(wanted, times, values, float(step_s))


SERVICE_METRICS = ("latency_p95_ms", "latency_p50_ms", "availability", "throughput_mbps")


@dataclass(frozen=True)
class ServiceLevel:
    """One service-level metric measured over a workload's recent requests."""

    metric: str
    value: float
    requests: int
    failed: int
    window_s: float

    def __str__(self) -> str:
        unit = {"availability": "", "throughput_mbps": " Mbit/s"}.get(self.metric, " ms")
        return (f"{self.metric} {self.value:.4g}{unit} over {self.requests} requests "
                f"({self.failed} failed) in {self.window_s:.0f} s")


def nearest_rank(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0-100) of ``values``.

    The smallest value with at least ``q``% of them at or below it; TelemetryError for none.
    """
    ordered = np.sort(np.fromiter(values, dtype=float))
    if ordered.size == 0:
        raise TelemetryError(f"no values to take the {q:g}th percentile of")
    return float(ordered[max(0, int(np.ceil(q / 100 * ordered.size)) - 1)])


def service_level(frame: pd.DataFrame, metric: str, *, window_s: float) -> ServiceLevel:
    """``metric`` over the requests in ``frame`` (a store's ``service_frame``).

    Latency percentiles are over the requests that succeeded (:func:`nearest_rank` of ``total_ms``),
    availability is the share that succeeded, throughput the bytes both ways over ``window_s``.
    Raises :class:`TelemetryError` for an unknown metric or when there is no request to judge.
    """
    if metric not in SERVICE_METRICS:
        raise TelemetryError(f"unknown service metric {metric!r}; choose one of "
                             f"{list(SERVICE_METRICS)}")
    if frame.empty:
        raise TelemetryError(f"no request of the workload in the last {window_s:.0f} s to "
                             f"measure {metric}; send traffic or widen the window")
    ok = frame[frame["ok"]]
    failed = int(len(frame) - len(ok))
    if metric == "availability":
        value = float(len(ok) / len(frame))
    elif metric == "throughput_mbps":
        value = float((frame["wan_bytes_up"].sum() + frame["wan_bytes_down"].sum()) * 8
                      / max(window_s, 1e-9) / 1e6)
    else:
        if ok.empty:
            raise TelemetryError(f"every one of {len(frame)} requests failed, so {metric} "
                                 "has no value; see the requests' errors")
        q = 95 if metric == "latency_p95_ms" else 50
        value = nearest_rank(ok["total_ms"].to_numpy(dtype=float), q)
    return ServiceLevel(metric, value, len(frame), failed, window_s)
