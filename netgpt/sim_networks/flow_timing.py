"""How long an application exchange takes over the embedded network: the emulated data plane.

The embedded network has no packets, only the twin's loads, so an exchange's network time is
computed from them (pure; the caller passes the twin and its load report):

* **Path**: the flow's ECMP path is chosen by hashing ``flow_id`` over the delivered paths,
  weighted by their shares (a router hashes a flow's header the same way). ACLs count: a flow
  that is dropped raises :class:`FlowDroppedError` naming the cause.
* **Propagation**: the path's link delays, each way.
* **Queueing** per link direction of load ``L`` over capacity ``C`` (``rho = L / C``): an
  M/M/1 queue of ``mtu_bytes`` packets, ``s * rho / (1 - rho)`` with ``s`` the packet's
  serialization time, capped at the buffer (``buffer_ms`` at line rate). At ``rho >= 1`` the
  buffer is full (``buffer_ms``) and the excess is dropped: each packet is lost with
  probability ``1 - 1 / rho``.
* **Serialization** of the bytes at the capacity the other traffic leaves (at least
  ``min_share`` of the link, TCP's fair share of a congested link).
* **Loss**: each packet of the exchange is lost with the path's loss probability (sampled with
  a generator seeded by ``flow_id``, so the same exchange on the same network takes the same
  time); a loss costs one retransmission timeout, ``max(rto_min_ms, 2 * RTT)`` (Linux's
  minimum RTO is 200 ms).

The request goes ``src`` -> ``dst`` and the answer comes back ``dst`` -> ``src`` on its own
(reverse) path. A connection is assumed open (the edge keeps one to the cloud).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from netgpt.device_config import IPProtocol
from netgpt.errors import ConfigError, NetGPTError
from netgpt.sim_networks.twin import DigitalTwin, LoadReport, PathTrace

__all__ = ["FlowDroppedError", "FlowTiming", "LinkTiming", "QueueModel", "exchange_timing"]


class FlowDroppedError(NetGPTError):
    """The network drops the flow (ACL, no route, interface down): the exchange cannot happen."""


@dataclass(frozen=True)
class QueueModel:
    """The emulated data plane's constants (see the module docstring)."""

    mtu_bytes: int = 1500
    buffer_ms: float = 50.0
    rto_min_ms: float = 200.0
    min_share: float = 0.05

    def __post_init__(self) -> None:
        if self.mtu_bytes < 64:
            raise ConfigError(f"mtu_bytes {self.mtu_bytes} must be at least 64")
        if not self.buffer_ms > 0 or not self.rto_min_ms > 0:
            raise ConfigError("buffer_ms and rto_min_ms must be positive")
        if not 0 < self.min_share <= 1:
            raise ConfigError(f"min_share {self.min_share} must be in (0, 1]")


@dataclass(frozen=True)
class LinkTiming:
    """One link direction the exchange crossed, with what it cost."""

    device: str
    neighbour: str
    utilization: float
    delay_ms: float
    queue_ms: float
    loss: float


@dataclass(frozen=True)
class FlowTiming:
    """Where an exchange's network time went (milliseconds)."""

    network_ms: float
    up_ms: float
    down_ms: float
    rtt_ms: float
    path: tuple[str, ...]
    links: tuple[LinkTiming, ...]
    loss: float
    retransmissions: int

    @property
    def bottleneck(self) -> LinkTiming | None:
        """The most utilized link direction crossed, if any."""
        return max(self.links, key=lambda lk: lk.utilization, default=None)


def _pick(paths: tuple[PathTrace, ...], flow_id: str, salt: str) -> PathTrace:
    delivered = [p for p in paths if p.delivered and p.fraction > 0]
    digest = hashlib.sha256(f"{salt}:{flow_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(p.fraction for p in delivered)
    acc = 0.0
    for p in delivered:
        acc += p.fraction / total
        if u < acc:
            return p
    return delivered[-1]


def _leg(twin: DigitalTwin, report: LoadReport, src: str, dst: str, address: str,
         protocol: IPProtocol, port: int | None, flow_id: str, n_bytes: int,
         q: QueueModel) -> tuple[float, float, PathTrace, list[LinkTiming], float]:
    """One direction: (one-way ms without loss, propagation ms, path, links, loss prob)."""
    reach = twin.reachability(src, address, protocol, port)
    if not reach.reachable:
        causes = "; ".join(str(c) for c in reach.drops) or "no path"
        raise FlowDroppedError(f"{protocol.value}/{port} from {src} to {dst} ({address}) "
                               f"is dropped: {causes}")
    path = _pick(reach.paths, flow_id, f"{src}>{dst}")
    links: list[LinkTiming] = []
    queue = serial = 0.0
    keep = 1.0
    for a, b in zip(path.devices, path.devices[1:], strict=False):
        lk = report.link(a, b)
        cap_bps = lk.capacity_mbps * 1e6
        rho = lk.utilization
        cls = twin.egress_class(a, b, src, address, protocol=protocol, dst_port=port)
        if cls is not None and cls.assured_mbps > 0:
            # a reserved class has its own queue: the exchange waits only behind its own class,
            # whose few packets are far below the reservation
            rho = 0.0
            cap_bps = max(cls.assured_mbps, lk.capacity_mbps * (1 - lk.utilization)) * 1e6
        service_ms = q.mtu_bytes * 8 / cap_bps * 1e3
        if rho < 1:
            wait = min(q.buffer_ms, service_ms * rho / (1 - rho))
            loss = 0.0
        else:
            wait, loss = q.buffer_ms, 1 - 1 / rho
        share = max(q.min_share, 1 - min(rho, 1.0))
        serial = max(serial, n_bytes * 8 / (cap_bps * share) * 1e3)
        delay = float(twin.topology.graph.edges[a, b]["delay_ms"])
        links.append(LinkTiming(a, b, lk.utilization, delay, wait, loss))
        queue += wait
        keep *= 1 - loss
    return path.delay_ms + queue + serial, path.delay_ms, path, links, 1 - keep


def exchange_timing(
    twin: DigitalTwin,
    report: LoadReport,
    src: str,
    dst: str,
    *,
    flow_id: str,
    bytes_up: int,
    bytes_down: int,
    protocol: IPProtocol | str = IPProtocol.TCP,
    port: int | None = None,
    src_address: str | None = None,
    dst_address: str | None = None,
    queue: QueueModel | None = None,
) -> FlowTiming:
    """Time a request of ``bytes_up`` from ``src`` to ``dst`` and its answer of ``bytes_down``.

    ``report`` is the twin's load report for the traffic of the moment. Addresses default to the
    devices' default addresses. Raises :class:`FlowDroppedError` when either direction is
    dropped, :class:`ConfigError` for unknown devices or negative byte counts.
    """
    q = queue or QueueModel()
    if bytes_up < 0 or bytes_down < 0:
        raise ConfigError(f"byte counts must be >= 0, got up={bytes_up} down={bytes_down}")
    proto = IPProtocol(protocol)
    if src == dst:
        return FlowTiming(0.0, 0.0, 0.0, 0.0, (src,), (), 0.0, 0)
    to_dst = dst_address or twin.default_address(dst)
    to_src = src_address or twin.default_address(src)
    up, prop_up, path_up, links_up, loss_up = _leg(
        twin, report, src, dst, to_dst, proto, port, flow_id, bytes_up, q)
    down, prop_down, _, links_down, loss_down = _leg(
        twin, report, dst, src, to_src, proto, None, flow_id, bytes_down, q)
    rtt = prop_up + prop_down
    rto = max(q.rto_min_ms, 2 * rtt)
    packets_up = max(1, math.ceil(bytes_up / (q.mtu_bytes - 40)))
    packets_down = max(1, math.ceil(bytes_down / (q.mtu_bytes - 40)))
    digest = hashlib.sha256(f"loss:{flow_id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    retrans = 0
    for packets, loss in ((packets_up, loss_up), (packets_down, loss_down)):
        if loss > 0:
            retrans += int(np.sum(rng.random(packets) < loss))
    total = up + down + retrans * rto
    return FlowTiming(
        network_ms=total,
        up_ms=up,
        down_ms=down,
        rtt_ms=rtt,
        path=path_up.devices,
        links=(*links_up, *links_down),
        loss=1 - (1 - loss_up) * (1 - loss_down),
        retransmissions=retrans,
    )
