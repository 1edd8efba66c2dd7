"""Typed telemetry rows that cross module borders, and the store contract."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

__all__ = [
    "CounterSample", "RateSample", "ServiceMetricsSource", "ServiceSample", "TelemetryStore",
]


@dataclass(frozen=True)
class CounterSample:
    """Raw interface counters read from a device at ``timestamp`` (epoch seconds).

    ``counter_bits`` is 64 for ifHC* counters, 32 for ifIn/OutOctets. ``sys_uptime_s`` lets the
    rate computation notice agent restarts (counters reset). ``requested_at`` is when the request
    was sent, if known: the counters were read between it and ``timestamp`` (the reception).
    """

    device: str
    interface: str
    if_index: int
    timestamp: float
    in_octets: int
    out_octets: int
    speed_mbps: float
    oper_up: bool
    admin_up: bool
    sys_uptime_s: float
    counter_bits: int = 64
    requested_at: float | None = None


@dataclass(frozen=True)
class RateSample:
    """Interface rates over the interval ending at ``timestamp``.

    Utilizations are fractions of ``speed_mbps`` (0.0 when the speed is unknown). ``note`` says
    why a sample is special: ``"wrap"`` (a counter wrapped), ``"gap"`` (samples were missed; the
    rate is the average over the whole gap).
    """

    device: str
    interface: str
    timestamp: float
    interval_s: float
    in_mbps: float
    out_mbps: float
    speed_mbps: float
    oper_up: bool
    note: str = ""

    @property
    def in_utilization(self) -> float:
        """Inbound load as a fraction of the interface speed."""
        return self.in_mbps / self.speed_mbps if self.speed_mbps > 0 else 0.0

    @property
    def out_utilization(self) -> float:
        """Outbound load as a fraction of the interface speed."""
        return self.out_mbps / self.speed_mbps if self.speed_mbps > 0 else 0.0


@dataclass(frozen=True)
class ServiceSample:
    """One request through a managed workload (the generative service): where its time went.

    Times are milliseconds, ``timestamp`` epoch seconds at completion. ``mode`` is
    ``edge+cloud`` or ``cloud-only``; ``edge_device`` / ``cloud_device`` are where the
    instances that served it run; ``wan_bytes_up`` / ``wan_bytes_down`` count application bytes
    between them (headers included), and between the user's device and the edge instance when
    that runs elsewhere. ``ok`` is False for a failed request (``error`` says why);
    ``services`` names the local context the answer was given.
    """

    request_id: str
    timestamp: float
    workload: str
    site: str
    mode: str
    edge_device: str
    cloud_device: str
    edge_ms: float
    network_ms: float
    cloud_ms: float
    total_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wan_bytes_up: int = 0
    wan_bytes_down: int = 0
    ok: bool = True
    error: str = ""
    services: str = ""


class TelemetryStore(Protocol):
    """Where samples go and how models and the UI read them back."""

    def add_counters(self, samples: Iterable[CounterSample]) -> None:
        """Store raw counter samples."""
        ...

    def add_rates(self, samples: Iterable[RateSample]) -> None:
        """Store computed rates."""
        ...

    def rates_frame(
        self,
        *,
        device: str | None = None,
        interface: str | None = None,
        since: float | None = None,
    ) -> pd.DataFrame:
        """Rates as a DataFrame (columns: time, device, interface, in_mbps, out_mbps, ...)."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


class ServiceMetricsSource(Protocol):
    """Where a managed workload's requests are read back (a store's ``service_frame``)."""

    def service_frame(
        self,
        *,
        workload: str | None = None,
        site: str | None = None,
        since: float | None = None,
    ) -> pd.DataFrame:
        """Requests (columns of :class:`ServiceSample`, ``time`` for ``timestamp``), by time."""
        ...
