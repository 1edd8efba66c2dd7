"""Where to move an edge instance when the network's paths cannot keep a workload's objective.

Pure logic over the twin (no I/O). A violated objective whose edge-cloud paths already have
headroom, or that no routing plan can repair, may still be kept by running a site's edge
instance on another device: one whose way to the cloud the network carries (an ACL on the
service's port from the old edge's prefixes, a cut-off device) or carries faster.

:func:`choose_edge_move` predicts, with :mod:`netgpt.sim_networks.flow_timing` on the twin and
the measured traffic, the network time of one request for each candidate device: the users'
leg to the edge (users stay where they attach) and the edge's exchange with the cloud. Among the
candidates that the objective allows (a latency target bounds the network's share), it takes
the one whose move costs least: the copy of the edge's files timed from the old device (or,
when that is cut off, from the cloud instance's), then the fastest request, then the name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from netgpt.intents.model import ServiceLevelExpectation, WorkloadPlacement
from netgpt.sim_networks.flow_timing import FlowDroppedError, QueueModel, exchange_timing
from netgpt.sim_networks.twin import DigitalTwin, LoadReport

__all__ = [
    "EdgeMoveChoice",
    "EdgeMover",
    "PlacementMove",
    "choose_edge_move",
    "latency_bound_ms",
    "predicted_request_ms",
]

# Representative sizes of one request: the user's words (and headers) and the answer there; the
# completed prompt and the cloud's answer between edge and cloud (measured: 681 B and 744 B).
_USER_UP, _USER_DOWN = 400, 900
_EDGE_UP, _EDGE_DOWN = 700, 800


@dataclass(frozen=True)
class PlacementMove:
    """A site's edge instance moved to another device, and what the move cost.

    ``bytes_moved`` is the edge model and the site's adapter copied to the new device;
    ``transfer_ms`` the time that copy takes over the network as it is now.
    """

    site: str
    old_device: str
    new_device: str
    bytes_moved: int
    transfer_ms: float


class EdgeMover(Protocol):
    """Moves a running workload's edge instance (the service itself, or its HTTP control)."""

    def move_edge(self, site: str, device: str) -> PlacementMove:
        """Run ``site``'s edge instance on ``device`` from now on; what the move cost.

        Raises :class:`~netgpt.errors.ConfigError` for an unknown site or device and
        :class:`~netgpt.sim_networks.flow_timing.FlowDroppedError` when the copy cannot reach
        the device (then nothing moves).
        """
        ...


@dataclass(frozen=True)
class EdgeMoveChoice:
    """Move ``site``'s edge instance from ``old_device`` to ``new_device``, and why.

    ``before_ms`` is the predicted network time of a request with the edge where it is
    (``None``: the network drops it), ``after_ms`` on the new device; the move copies
    ``bytes_moved`` from ``copy_from`` in ``transfer_ms`` (predicted).
    """

    site: str
    old_device: str
    new_device: str
    before_ms: float | None
    after_ms: float
    copy_from: str
    bytes_moved: int
    transfer_ms: float

    def __str__(self) -> str:
        before = "dropped" if self.before_ms is None else f"{self.before_ms:.1f} ms"
        return (f"move {self.site}'s edge instance from {self.old_device} to {self.new_device}: "
                f"predicted network time per request {before} -> {self.after_ms:.1f} ms; the "
                f"move copies {self.bytes_moved / 1e6:.1f} MB from {self.copy_from} in about "
                f"{self.transfer_ms:.0f} ms")


def latency_bound_ms(e: ServiceLevelExpectation) -> float | None:
    """The bound an objective puts on a request's network time (``None``: none, only reach)."""
    return e.target if e.metric.startswith("latency") else None


def predicted_request_ms(twin: DigitalTwin, report: LoadReport, placement: WorkloadPlacement,
                         site: str, edge_device: str, *, queue: QueueModel | None = None
                         ) -> float | None:
    """Network time of one request from ``site``'s users through an edge on ``edge_device``.

    ``None`` when the network drops either leg.
    """
    q = queue or QueueModel()
    user = placement.user_device(site)
    total = 0.0
    try:
        if user != edge_device:
            total += exchange_timing(twin, report, user, edge_device, flow_id=f"place:{site}:u",
                                     bytes_up=_USER_UP, bytes_down=_USER_DOWN,
                                     port=placement.port, queue=q).network_ms
        if edge_device != placement.cloud_device:
            total += exchange_timing(twin, report, edge_device, placement.cloud_device,
                                     flow_id=f"place:{site}:e", bytes_up=_EDGE_UP,
                                     bytes_down=_EDGE_DOWN, port=placement.port,
                                     queue=q).network_ms
    except FlowDroppedError:
        return None
    return total


def _copy(twin: DigitalTwin, report: LoadReport, placement: WorkloadPlacement, old: str,
          new: str, n_bytes: int, q: QueueModel) -> tuple[str, float] | None:
    for source in dict.fromkeys((old, placement.cloud_device)):
        if source == new:
            return source, 0.0
        try:
            t = exchange_timing(twin, report, source, new, flow_id=f"copy:{source}:{new}",
                                bytes_up=max(n_bytes, 1), bytes_down=0, port=placement.port,
                                queue=q)
        except FlowDroppedError:
            continue
        return source, t.network_ms
    return None


def choose_edge_move(
    e: ServiceLevelExpectation,
    placement: WorkloadPlacement,
    site: str,
    twin: DigitalTwin,
    report: LoadReport,
    candidates: Iterable[str],
    *,
    edge_bytes: int,
    queue: QueueModel | None = None,
) -> EdgeMoveChoice | None:
    """The move that keeps ``e``'s network share for ``site``, or ``None`` (see the module).

    ``None`` too when the edge where it is already meets the bound (the cause is elsewhere) or
    no candidate does. ``candidates`` are the devices that can host an instance.
    """
    q = queue or QueueModel()
    old = placement.edge_of(site)
    bound = latency_bound_ms(e)
    before = predicted_request_ms(twin, report, placement, site, old, queue=q)
    if before is not None and (bound is None or before <= bound):
        return None
    best: tuple[tuple[float, float, str], EdgeMoveChoice] | None = None
    for device in candidates:
        if device == old:
            continue
        after = predicted_request_ms(twin, report, placement, site, device, queue=q)
        if after is None or (bound is not None and after > bound):
            continue
        if before is not None and after >= before:
            continue
        copy = _copy(twin, report, placement, old, device, edge_bytes, q)
        if copy is None:
            continue
        choice = EdgeMoveChoice(site, old, device, before, after, copy[0], edge_bytes, copy[1])
        key = (copy[1], after, device)
        if best is None or key < best[0]:
            best = (key, choice)
    return best[1] if best is not None else None
