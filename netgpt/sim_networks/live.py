"""``LiveNetwork``: the embedded network's backend — the twin's live state behind every device.

Committed configs change the twin; the traffic model moves on with time; interface counters are
the exact integral of the twin's per-interface rates, so what SNMP and NETCONF report agrees with
the loads the twin computes (what u sends on a link is what its peer receives).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from netgpt.device_config import DeviceConfig
from netgpt.errors import ConfigValidationError
from netgpt.sim_networks.topology import Topology
from netgpt.sim_networks.traffic import TrafficModel
from netgpt.sim_networks.twin import Demand, DigitalTwin, LoadReport, TrafficMatrix
from netgpt.yang_xml import InterfaceState

__all__ = ["LiveNetwork"]

MEAN_PACKET_BYTES = 800.0


@dataclass
class _Counter:
    in_octets: float = 0.0
    out_octets: float = 0.0
    in_mbps: float = 0.0
    out_mbps: float = 0.0


class LiveNetwork:
    """Implements :class:`~netgpt.sim_networks.base.DeviceBackend` over the digital twin.

    ``clock`` returns wall-clock seconds (injectable for tests); the traffic model is asked for
    the matrix at ``clock() - start`` (it applies its own time scale). ACL rules with a time
    range follow the same clock: the periodic recompute notices a window edge and re-forwards.
    """

    def __init__(
        self,
        topology: Topology,
        traffic: TrafficModel | None,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[str, DeviceConfig], None] | None = None,
    ) -> None:
        self.topology = topology
        self.traffic = traffic
        self._clock = clock
        self._start = clock()
        self._lock = threading.RLock()
        self._configs: dict[str, DeviceConfig] = {
            d: topology.initial_config(d) for d in topology.devices
        }
        self._physical = {d: {name for name, _ in topology.interfaces(d)} for d in topology.devices}
        self._counters: dict[tuple[str, str], _Counter] = {
            (d, name): _Counter() for d in topology.devices for name, _ in topology.interfaces(d)
        }
        self._last_advance = self._start
        self._report: LoadReport | None = None
        self._on_change = on_change
        self._dirty = False
        self._twin: DigitalTwin | None = None
        self._injected: tuple[Demand, ...] = ()
        self._matrix: TrafficMatrix | None = None
        self.changed = threading.Event()  # set when a config changed and loads are stale
        self.recompute()

    # -- DeviceBackend --------------------------------------------------------------------

    def validate(self, device: str, config: DeviceConfig) -> None:
        """Refuse configs naming interfaces the device does not have."""
        physical = self._physical.get(device)
        if physical is None:
            raise ConfigValidationError(f"no device {device!r} in this network", path="/")
        for itf in config.interfaces:
            if itf.name not in physical:
                raise ConfigValidationError(
                    f"interface {itf.name!r} does not exist on {device}; it has "
                    f"{sorted(physical, key=lambda n: int(n[3:]) if n[3:].isdigit() else 0)}",
                    path=f"/interfaces/interface[name='{itf.name}']",
                    tag="invalid-value",
                )

    def apply(self, device: str, config: DeviceConfig) -> None:
        """Make ``config`` effective from this instant.

        Counters are integrated up to now at the old rates; the loads under the new config are
        computed by the runtime's ticker shortly after (``changed`` is set), or by the next read,
        whichever comes first, and count from this instant. A commit does not wait for the twin,
        as a router's commit does not wait for its FIB.
        """
        with self._lock:
            self.advance()
            self._configs[device] = config
            self._dirty = True
        self.changed.set()
        if self._on_change is not None:
            self._on_change(device, config)

    def interface_states(self, device: str) -> list[InterfaceState]:
        """Live interface states with counters advanced to now."""
        with self._lock:
            if self._dirty:
                self.recompute(new_traffic=False)
            self.advance()
            cfg = self._configs[device]
            configured = {i.name: i for i in cfg.interfaces}
            out = []
            for name, peer in self.topology.interfaces(device):
                # an interface missing from the config is not configured: down (as in the twin)
                enabled = configured[name].enabled if name in configured else False
                oper = enabled and (peer is None or self._peer_enabled(device, peer))
                c = self._counters[(device, name)]
                out.append(
                    InterfaceState(
                        name=name,
                        enabled=enabled,
                        oper_up=oper,
                        speed_bps=int(self.topology.interface_speed_mbps(device, name) * 1e6),
                        in_octets=int(c.in_octets),
                        out_octets=int(c.out_octets),
                        in_unicast_pkts=int(c.in_octets / MEAN_PACKET_BYTES),
                        out_unicast_pkts=int(c.out_octets / MEAN_PACKET_BYTES),
                        description=configured[name].description if name in configured else "",
                    )
                )
            return out

    # -- live state -----------------------------------------------------------------------

    def _peer_enabled(self, device: str, peer: str) -> bool:
        peer_itf = self.topology.interface_to(peer, device)
        for itf in self._configs[peer].interfaces:
            if itf.name == peer_itf:
                return itf.enabled
        return False

    def configs(self) -> Mapping[str, DeviceConfig]:
        """The effective config of every device."""
        with self._lock:
            return dict(self._configs)

    def twin(self) -> DigitalTwin:
        """A twin of the network as it is configured now."""
        with self._lock:
            if self._twin is None or self._dirty:
                return DigitalTwin(self.topology, self._configs, at=self._moment())
            if self._twin.has_time_ranges:
                return self._twin.at_time(self._moment())
            return self._twin

    @property
    def report(self) -> LoadReport:
        """The twin's load report driving the counters (recomputed first if configs changed)."""
        with self._lock:
            if self._dirty:
                self.recompute(new_traffic=False)
            assert self._report is not None
            return self._report

    def inject(self, demands: tuple[Demand, ...]) -> None:
        """Add ``demands`` on top of the traffic model from now on (``()`` removes them).

        The emulated world's knob for tests and demos (a flash crowd, a backup job); the platform
        only sees its effect, in the counters.
        """
        with self._lock:
            self.advance()
            self._injected = tuple(demands)
            self.recompute(new_traffic=True)

    def _moment(self) -> datetime:
        """Now on the devices' clock, for time-ranged ACL rules."""
        return datetime.fromtimestamp(self._clock(), UTC)

    def sim_time(self) -> float:
        """Seconds since the network started (before the traffic model's time scale)."""
        return self._clock() - self._start

    def advance(self) -> None:
        """Integrate every counter up to now at the current rates."""
        with self._lock:
            now = self._clock()
            dt = now - self._last_advance
            if dt <= 0:
                return
            for c in self._counters.values():
                c.in_octets += c.in_mbps * 1e6 / 8 * dt
                c.out_octets += c.out_mbps * 1e6 / 8 * dt
            self._last_advance = now

    def recompute(self, *, new_traffic: bool = True) -> None:
        """Recompute loads for the current configs.

        ``new_traffic``: take the traffic matrix of this instant (the periodic tick); otherwise
        keep the last one (a config change: only the routing moved). The twin is rebuilt only
        when a config changed. Counters stay exact: :meth:`apply` integrated them up to the
        change at the old rates, so after a change the new rates count from that instant.
        """
        with self._lock:
            config_changed = self._dirty
            if not config_changed:
                self.advance()
            moment = self._moment()
            if self._twin is None or config_changed:
                self._twin = DigitalTwin(self.topology, self._configs, at=moment)
            elif self._twin.has_time_ranges and (
                self._twin.active_time_ranges(moment) != self._twin.active_time_ranges()
            ):
                # a time-ranged ACL rule came into or went out of force (a window edge)
                self._twin = self._twin.at_time(moment)
            if new_traffic or self._matrix is None:
                base = (
                    TrafficMatrix(())
                    if self.traffic is None
                    else self.traffic.matrix_at(self.sim_time())
                )
                self._matrix = TrafficMatrix((*base.demands, *self._injected))
            report = self._twin.evaluate(self._matrix)
            self._report = report
            self._dirty = False
            for key, c in self._counters.items():
                load = report.interface(*key)
                c.in_mbps, c.out_mbps = load.ingress_mbps, load.egress_mbps
            self.advance()
