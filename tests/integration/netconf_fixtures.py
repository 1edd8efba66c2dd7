"""Real NETCONF agents on loopback for the integration tests, and helpers to talk to them.

Import the fixtures (``lab``, ``host_key``) into a test module to use them.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ncclient import manager
from pydantic import SecretStr

from netgpt.device_config import DeviceConfig
from netgpt.errors import ConfigValidationError
from netgpt.inventory import DeviceEntry, NetconfCredentials
from netgpt.sim_networks.device import Datastore, Device
from netgpt.sim_networks.netconf_agent import NetconfAgent
from netgpt.sim_networks.topology import Topology, build_topology
from netgpt.tools.netconf import NetconfDriver, tune_ncclient
from netgpt.yang_xml import InterfaceState

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NG = "urn:netgpt:yang:netgpt-device"
USER = "netgpt"
PASSWORD = "s3cret-pw"
FAIL_ON_APPLY = "fail-on-apply"


class RecordingBackend:
    """A :class:`~netgpt.sim_networks.base.DeviceBackend` for tests.

    The real backends live in the runtime: the digital twin's live state for the embedded
    network (:mod:`netgpt.sim_networks.live`) and Linux namespaces in the lab. This one knows
    each device's interfaces from the topology and refuses configs naming others (as a real
    device refuses ports it does not have), records every config it is asked to make
    effective, refuses to apply a config holding an interface described ``fail-on-apply``
    (a failure that only shows at commit time), and reports interface state derived from the
    effective config (up when enabled, 1 Gbit/s, counters growing with each read).
    """

    def __init__(self, topology: Topology) -> None:
        self.ports = {d: {itf for itf, _ in topology.interfaces(d)} for d in topology.devices}
        self.applied: dict[str, list[DeviceConfig]] = {d: [] for d in topology.devices}
        self._reads = 0
        self._lock = threading.Lock()
        self.state_delay_s = 0.0  # make <get> slow, to provoke client timeouts
        self.state_broken = False  # make <get> hit a bug in the backend

    def validate(self, device: str, config: DeviceConfig) -> None:
        for itf in config.interfaces:
            if itf.name not in self.ports[device]:
                raise ConfigValidationError(
                    f"{device} has no port {itf.name!r}; it has {sorted(self.ports[device])}",
                    path=f"/interfaces/interface[name='{itf.name}']",
                    tag="invalid-value",
                )

    def apply(self, device: str, config: DeviceConfig) -> None:
        if any(itf.description == FAIL_ON_APPLY for itf in config.interfaces):
            raise ConfigValidationError(
                f"{device}: the forwarding plane refused the config", tag="operation-failed"
            )
        with self._lock:
            self.applied[device].append(config)

    def effective(self, device: str) -> DeviceConfig:
        """The config last made effective on ``device``."""
        return self.applied[device][-1]

    def interface_states(self, device: str) -> list[InterfaceState]:
        if self.state_delay_s:
            time.sleep(self.state_delay_s)
        if self.state_broken:
            raise RuntimeError("counter source exploded")
        with self._lock:
            self._reads += 1
            reads = self._reads
        return [
            InterfaceState(
                name=itf.name,
                enabled=itf.enabled,
                oper_up=itf.enabled,
                speed_bps=1_000_000_000,
                in_octets=1000 * reads + i,
                out_octets=2000 * reads + i,
                in_unicast_pkts=10 * reads,
                out_unicast_pkts=20 * reads,
                description=itf.description,
            )
            for i, itf in enumerate(self.effective(device).interfaces)
        ]


def ed25519_key() -> paramiko.Ed25519Key:
    """A fresh ed25519 private key as a paramiko key."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


def write_key(key: paramiko.PKey, path: Path) -> Path:
    """Write ``key`` (private, OpenSSH/PEM) and its ``.pub``; return the private key's path."""
    if isinstance(key, paramiko.Ed25519Key):
        # paramiko cannot write ed25519 private keys; regenerate the file with cryptography
        raise TypeError("use write_ed25519 for ed25519 keys")
    key.write_private_key_file(str(path))
    Path(f"{path}.pub").write_text(f"{key.get_name()} {key.get_base64()} test\n")
    return path


def write_ed25519(path: Path) -> Path:
    """Create an ed25519 key pair at ``path`` / ``path.pub``; return the private key's path."""
    private = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    Path(f"{path}.pub").write_bytes(public + b" test\n")
    return path


@dataclass
class Lab:
    """Devices of a topology, each behind a real NETCONF agent on 127.0.0.1."""

    topology: Topology
    backend: RecordingBackend
    devices: dict[str, Device]
    agents: dict[str, NetconfAgent]
    credentials: NetconfCredentials
    known_hosts: Path

    def initial(self, name: str) -> DeviceConfig:
        return self.topology.initial_config(name)

    def entry(self, name: str) -> DeviceEntry:
        return DeviceEntry(
            name=name, host="127.0.0.1", netconf_port=self.agents[name].port, snmp_port=161
        )

    def driver(self, name: str, **kwargs: Any) -> NetconfDriver:
        creds = kwargs.pop("credentials", self.credentials)
        return NetconfDriver(self.entry(name), creds, **kwargs)

    def running(self, name: str) -> DeviceConfig:
        return self.devices[name].config(Datastore.RUNNING)

    def candidate(self, name: str) -> DeviceConfig:
        return self.devices[name].config(Datastore.CANDIDATE)

    def assert_pristine(self, name: str) -> None:
        """Running and candidate as on day 0, no lock, no pending confirmed commit."""
        dev = self.devices[name]
        assert self.running(name) == self.initial(name)
        assert self.candidate(name) == self.initial(name)
        assert self.backend.effective(name) == self.initial(name)
        assert dev.lock_owner(Datastore.RUNNING) is None
        assert dev.lock_owner(Datastore.CANDIDATE) is None
        assert not dev.confirm_pending


@contextlib.contextmanager
def start_lab(
    tmp_path: Path, host_key: paramiko.PKey, spec: str = "linear,3"
) -> Iterator[Lab]:
    """Start one agent per device of ``spec`` on free loopback ports; stop them all after."""
    topology = build_topology(spec)
    backend = RecordingBackend(topology)
    credentials = NetconfCredentials(
        username=USER, password=SecretStr(PASSWORD), known_hosts=tmp_path / "known_hosts"
    )
    devices: dict[str, Device] = {}
    agents: dict[str, NetconfAgent] = {}
    try:
        for name in topology.devices:
            devices[name] = Device(name, topology.initial_config(name), backend)
            agent = NetconfAgent(devices[name], port=0, host_key=host_key, credentials=credentials)
            agent.start()
            agents[name] = agent
        lines = [
            f"[127.0.0.1]:{a.port} {host_key.get_name()} {host_key.get_base64()}"
            for a in agents.values()
        ]
        credentials.known_hosts.write_text("\n".join(lines) + "\n")  # type: ignore[union-attr]
        yield Lab(topology, backend, devices, agents, credentials, tmp_path / "known_hosts")
    finally:
        for agent in agents.values():
            agent.close()
        for dev in devices.values():
            dev.close()


@pytest.fixture(scope="session")
def host_key() -> paramiko.PKey:
    """The agents' SSH host key (ed25519; generating one is instant)."""
    return ed25519_key()


@pytest.fixture
def lab(tmp_path: Path, host_key: paramiko.PKey) -> Iterator[Lab]:
    """Three devices in a line (``linear,3``) behind fresh agents, torn down after the test."""
    with start_lab(tmp_path, host_key) as running_lab:
        yield running_lab


@contextlib.contextmanager
def raw_session(lab: Lab, name: str) -> Iterator[Any]:
    """A bare ncclient manager, for RPCs the driver does not expose (malformed on purpose)."""
    tune_ncclient()
    m = manager.connect(
        host="127.0.0.1",
        port=lab.agents[name].port,
        username=USER,
        password=PASSWORD,
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=5,
        manager_params={"timeout": 5},
    )
    try:
        yield m
    finally:
        with contextlib.suppress(Exception):
            m.close_session()
