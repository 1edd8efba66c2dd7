"""Shared pieces for tests against real SNMP agents on loopback.

``CounterBackend`` is a DeviceBackend whose interface counters, speeds and oper status the test
sets; ``start_agents`` builds devices from a topology and serves them from one SnmpAgentPool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import SecretStr

from netgpt.device_config import DeviceConfig
from netgpt.inventory import SnmpCredentials
from netgpt.sim_networks.device import Device
from netgpt.sim_networks.snmp_agent import SnmpAgentPool
from netgpt.sim_networks.topology import build_topology
from netgpt.yang_xml import InterfaceState

AUTH_KEY = "auth-key-0123"
PRIV_KEY = "priv-key-4567"
READ_COMMUNITY = "ro-community"
WRITE_COMMUNITY = "rw-community"


def credentials(**changes: object) -> SnmpCredentials:
    """v3 authPriv (SHA/AES) credentials with both v2c communities set; ``changes`` override."""
    base = SnmpCredentials(
        user="netgpt",
        auth_protocol="sha",
        auth_key=SecretStr(AUTH_KEY),
        priv_protocol="aes128",
        priv_key=SecretStr(PRIV_KEY),
        community=SecretStr(READ_COMMUNITY),
        write_community=SecretStr(WRITE_COMMUNITY),
    )
    return base.model_copy(update=changes)


@dataclass
class _Itf:
    in_octets: int = 0
    out_octets: int = 0
    in_pkts: int = 0
    out_pkts: int = 0
    speed_bps: int = 1_000_000_000
    link_up: bool = True


class CounterBackend:
    """Applies configs to nothing; reports counters the test controls (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configs: dict[str, DeviceConfig] = {}
        self._itfs: dict[tuple[str, str], _Itf] = {}

    def validate(self, device: str, config: DeviceConfig) -> None:
        return None

    def apply(self, device: str, config: DeviceConfig) -> None:
        with self._lock:
            self._configs[device] = config
            for itf in config.interfaces:
                self._itfs.setdefault((device, itf.name), _Itf())

    def interface_states(self, device: str) -> list[InterfaceState]:
        with self._lock:
            out = []
            for cfg in self._configs[device].interfaces:
                st = self._itfs[(device, cfg.name)]
                out.append(
                    InterfaceState(
                        name=cfg.name,
                        enabled=cfg.enabled,
                        oper_up=cfg.enabled and st.link_up,
                        speed_bps=st.speed_bps,
                        in_octets=st.in_octets,
                        out_octets=st.out_octets,
                        in_unicast_pkts=st.in_pkts,
                        out_unicast_pkts=st.out_pkts,
                        description=cfg.description,
                    )
                )
            return out

    # -- what tests change --------------------------------------------------------------------

    def add_traffic(
        self, device: str, interface: str, *, in_octets: int = 0, out_octets: int = 0
    ) -> None:
        with self._lock:
            st = self._itfs[(device, interface)]
            st.in_octets += in_octets
            st.out_octets += out_octets
            st.in_pkts += in_octets // 1000
            st.out_pkts += out_octets // 1000

    def set_counters(self, device: str, interface: str, *, in_octets: int, out_octets: int) -> None:
        with self._lock:
            st = self._itfs[(device, interface)]
            st.in_octets, st.out_octets = in_octets, out_octets

    def set_link(self, device: str, interface: str, *, up: bool) -> None:
        with self._lock:
            self._itfs[(device, interface)].link_up = up

    def set_speed(self, device: str, interface: str, *, speed_bps: int) -> None:
        with self._lock:
            self._itfs[(device, interface)].speed_bps = speed_bps


@dataclass
class AgentNetwork:
    """Devices served by one agent pool: ``ports[name]`` is each device's UDP port."""

    pool: SnmpAgentPool
    backend: CounterBackend
    devices: dict[str, Device]
    ports: dict[str, int]
    credentials: SnmpCredentials

    def close(self) -> None:
        self.pool.close()
        for dev in self.devices.values():
            dev.close()


def start_agents(
    topology: str = "linear,3",
    *,
    creds: SnmpCredentials | None = None,
    extra: Iterable[tuple[str, DeviceConfig]] = (),
) -> AgentNetwork:
    """Serve every device of ``topology`` (plus ``extra`` devices) on free loopback ports."""
    creds = creds or credentials()
    topo = build_topology(topology)
    backend = CounterBackend()
    pool = SnmpAgentPool()
    devices: dict[str, Device] = {}
    ports: dict[str, int] = {}
    try:
        configs = [(name, topo.initial_config(name)) for name in topo.devices]
        for name, config in [*configs, *extra]:
            devices[name] = Device(name, config, backend)
            ports[name] = pool.add(devices[name], port=0, credentials=creds)
        pool.start()
    except BaseException:
        pool.close()
        raise
    return AgentNetwork(pool, backend, devices, ports, creds)
