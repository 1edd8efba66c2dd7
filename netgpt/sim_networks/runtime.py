"""The embedded emulated network: one NETCONF server and one SNMP agent per device on 127.0.0.1.

:class:`EmbeddedNetwork` runs in-process (tests, ``netgpt demo``); :func:`start_background`
runs it as a detached process for ``netgpt net up`` and :func:`stop_background` ends exactly
that process (by PID) for ``netgpt net down``. The network writes an inventory and a
credentials file (mode 0600) into its state directory; every other command reads them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import paramiko

from netgpt.errors import NetworkRuntimeError, PortInUseError
from netgpt.inventory import (
    Credentials,
    DeviceEntry,
    Inventory,
    LinkEntry,
    NetconfCredentials,
    generate_credentials,
    save_credentials,
)
from netgpt.sim_networks.base import DeviceBackend
from netgpt.sim_networks.device import Device, SystemGroup
from netgpt.sim_networks.faults import FaultPlan, FaultyBackend
from netgpt.sim_networks.live import LiveNetwork
from netgpt.sim_networks.netconf_agent import NetconfAgent
from netgpt.sim_networks.snmp_agent import SnmpAgentPool
from netgpt.sim_networks.topology import Topology
from netgpt.sim_networks.traffic import TrafficModel

__all__ = [
    "EmbeddedNetwork",
    "NetworkFiles",
    "StateFiles",
    "end_pid_file",
    "free_port_base",
    "network_status",
    "pid_alive",
    "run_detached",
    "start_background",
    "start_daemon",
    "stop_background",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateFiles:
    """Files every running network (embedded or lab) keeps in its state directory."""

    state_dir: Path

    @property
    def inventory(self) -> Path:
        """The inventory every command reads."""
        return self.state_dir / "inventory.yaml"

    @property
    def credentials(self) -> Path:
        """Secrets (mode 0600)."""
        return self.state_dir / "credentials.yaml"

    @property
    def host_key(self) -> Path:
        """The devices' SSH host key."""
        return self.state_dir / "ssh_host_key"

    @property
    def known_hosts(self) -> Path:
        """known_hosts lines for every device's NETCONF address."""
        return self.state_dir / "known_hosts"

    # the background process's files: <process>.pid, <process>.ready, <process>.log
    process: ClassVar[str] = "network"

    @property
    def pid(self) -> Path:
        """PID of the background process (``net up`` / ``lab up``)."""
        return self.state_dir / f"{self.process}.pid"

    @property
    def ready(self) -> Path:
        """Written (JSON) once the background process has everything up."""
        return self.state_dir / f"{self.process}.ready"

    @property
    def log(self) -> Path:
        """The background process's log."""
        return self.state_dir / f"{self.process}.log"

    def load_host_key(self) -> paramiko.PKey:
        """The devices' SSH host key: read from :attr:`host_key`, or made (mode 0600) there."""
        path = self.host_key
        if path.is_file():
            return paramiko.RSAKey.from_private_key_file(str(path))
        key = paramiko.RSAKey.generate(2048)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            key.write_private_key(fh)
        return key

    def write_known_hosts(self, key: paramiko.PKey, endpoints: Iterable[tuple[str, int]]) -> None:
        """One known_hosts line for ``key`` at every (address, NETCONF port)."""
        lines = [f"[{host}]:{port} {key.get_name()} {key.get_base64()}"
                 for host, port in endpoints]
        self.known_hosts.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class NetworkFiles(StateFiles):
    """Where an embedded network's state lives inside its state directory."""

    @property
    def telemetry(self) -> Path:
        """Default telemetry store."""
        return self.state_dir / "telemetry.sqlite"


def _check_port_free(port: int, kind: int, what: str) -> None:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUseError(
                f"{what} port {port} on 127.0.0.1 is already in use; stop what holds it "
                "('netgpt net down' if it is an earlier network) or choose other ports with "
                "--netconf-port-base / --snmp-port-base"
            ) from None


def free_port_base(count: int, *, start: int = 20000, kind: int = socket.SOCK_STREAM) -> int:
    """The first base port >= ``start`` with ``count`` consecutive free ports (TCP or UDP)."""
    base = start
    while base + count < 65000:
        try:
            for p in range(base, base + count):
                _check_port_free(p, kind, "probe")
            return base
        except PortInUseError:
            base += count + 7
    raise NetworkRuntimeError(f"no {count} consecutive free ports found above {start}")


class EmbeddedNetwork:
    """An emulated network on loopback: devices backed by the twin, agents on real sockets."""

    def __init__(
        self,
        topology: Topology,
        state_dir: Path,
        *,
        traffic: TrafficModel | None,
        netconf_port_base: int = 8300,
        snmp_port_base: int = 16100,
        tick_s: float = 1.0,
        credentials: Credentials | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.topology = topology
        self.faults = faults
        self.files = NetworkFiles(state_dir)
        self.netconf_port_base = netconf_port_base
        self.snmp_port_base = snmp_port_base
        self.tick_s = tick_s
        self.settle_s = 0.02
        self.live = LiveNetwork(topology, traffic)
        self.credentials = credentials
        self.devices: dict[str, Device] = {}
        self._netconf: dict[str, NetconfAgent] = {}
        self._host_key_obj: paramiko.PKey | None = None
        self._snmp: SnmpAgentPool | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.inventory: Inventory | None = None

    @classmethod
    def on_free_ports(
        cls,
        topology: Topology,
        state_dir: Path,
        *,
        traffic: TrafficModel | None,
        netconf_start: int = 24000,
        snmp_start: int = 26000,
        tick_s: float = 1.0,
    ) -> EmbeddedNetwork:
        """A network, not started yet, on the first free port runs from the given starts.

        NETCONF (TCP) ports from ``netconf_start``, SNMP (UDP) ports from ``snmp_start``.
        """
        n = len(topology.devices)
        return cls(
            topology,
            state_dir,
            traffic=traffic,
            netconf_port_base=free_port_base(n, start=netconf_start),
            snmp_port_base=free_port_base(n, start=snmp_start, kind=socket.SOCK_DGRAM),
            tick_s=tick_s,
        )

    def ports(self) -> dict[str, tuple[int, int]]:
        """(NETCONF port, SNMP port) for each device."""
        return {
            d: (self.netconf_port_base + i, self.snmp_port_base + i)
            for i, d in enumerate(self.topology.devices)
        }

    def start(self) -> Inventory:
        """Start every agent, write inventory and credentials; return the inventory.

        Fails before starting anything if a port is taken; on any later failure stops what it
        started.
        """
        ports = self.ports()
        for nc, sn in ports.values():
            _check_port_free(nc, socket.SOCK_STREAM, "NETCONF")
            _check_port_free(sn, socket.SOCK_DGRAM, "SNMP")
        self.files.state_dir.mkdir(parents=True, exist_ok=True)
        host_key = self.files.load_host_key()
        self._host_key_obj = host_key
        if self.credentials is None:
            self.credentials = generate_credentials(known_hosts=self.files.known_hosts)
        creds = self.credentials
        save_credentials(self.files.credentials, {"default": creds})
        try:
            faults = self.faults
            self._snmp = SnmpAgentPool(
                drop=(lambda: faults.snmp_drop) if faults is not None else None
            )
            backend: DeviceBackend = (
                FaultyBackend(self.live, faults, self.cut_agent) if faults is not None
                else self.live
            )
            for name in self.topology.devices:
                node = self.topology.graph.nodes[name]
                device = Device(
                    name,
                    self.live.configs()[name],
                    backend,
                    system=SystemGroup(
                        descr=f"NetGPT emulated router {name} ({self.topology.name})",
                        location=str(node.get("site", "")),
                    ),
                    on_event=lambda dev, msg: log.info("%s: %s", dev, msg),
                )
                self.devices[name] = device
                nc_port, snmp_port = ports[name]
                agent = NetconfAgent(
                    device, port=nc_port, host_key=host_key, credentials=creds.netconf
                )
                agent.start()
                self._netconf[name] = agent
                self._snmp.add(device, port=snmp_port, credentials=creds.snmp)
            self._snmp.start()
        except BaseException:
            self.stop()
            raise
        self.files.write_known_hosts(
            host_key, (("127.0.0.1", nc) for nc, _ in self.ports().values())
        )
        self.inventory = Inventory(
            network=self.topology.name,
            backend="embedded",
            topology=self.topology.name,
            credentials_file=self.files.credentials,
            runtime_pid=os.getpid(),
            devices=[
                DeviceEntry(
                    name=d,
                    host="127.0.0.1",
                    netconf_port=ports[d][0],
                    snmp_port=ports[d][1],
                    credentials="default",
                    role=str(self.topology.graph.nodes[d].get("role", "router")),
                    site=str(self.topology.graph.nodes[d].get("site", d)),
                )
                for d in self.topology.devices
            ],
            links=[
                LinkEntry(
                    a=lk.a,
                    a_interface=lk.a_interface,
                    b=lk.b,
                    b_interface=lk.b_interface,
                    capacity_mbps=lk.capacity_mbps,
                )
                for lk in self.topology.links()
            ],
        )
        self.inventory.save(self.files.inventory)
        self._ticker = threading.Thread(target=self._tick, name="traffic-ticker", daemon=True)
        self._ticker.start()
        return self.inventory

    def cut_agent(self, name: str, *, credentials: NetconfCredentials | None = None) -> None:
        """Drop every NETCONF session of ``name`` and start its agent again on the same port.

        What a crashed and respawned management process looks like from outside: connections
        reset, their locks released and their unconfirmed commits rolled back; the device's
        datastores stay. ``credentials`` (fault injection) makes the new agent expect others.
        """
        old = self._netconf.get(name)
        if old is None or self._host_key_obj is None or self.credentials is None:
            raise NetworkRuntimeError(f"no running NETCONF agent for {name!r}")
        old.close()
        agent = NetconfAgent(
            self.devices[name],
            port=self.ports()[name][0],
            host_key=self._host_key_obj,
            credentials=credentials or self.credentials.netconf,
        )
        agent.start()
        self._netconf[name] = agent

    def _tick(self) -> None:
        """Recompute loads every ``tick_s`` (traffic moves on) and ``settle_s`` after a commit.

        Reads never see stale loads: :class:`LiveNetwork` recomputes before answering when a
        config changed since the last recompute.
        """
        next_tick = time.monotonic() + self.tick_s
        while not self._stop.is_set():
            changed = self.live.changed.wait(max(0.0, next_tick - time.monotonic()))
            self.live.changed.clear()
            if self._stop.is_set():
                break
            if changed and not self._stop.wait(self.settle_s):
                self.live.changed.clear()  # a burst of commits: recompute once, after it
            due = time.monotonic() >= next_tick
            if due:
                next_tick = time.monotonic() + self.tick_s
            try:
                self.live.recompute(new_traffic=due or not changed)
            except Exception:  # keep the network alive; the log says what went wrong
                log.exception("traffic tick failed")

    def stop(self) -> None:
        """Stop every agent and the ticker; free every port. Idempotent."""
        self._stop.set()
        self.live.changed.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        for agent in self._netconf.values():
            with contextlib.suppress(Exception):
                agent.close()
        self._netconf.clear()
        if self._snmp is not None:
            with contextlib.suppress(Exception):
                self._snmp.close()
            self._snmp = None
        for device in self.devices.values():
            device.close()

    def __enter__(self) -> EmbeddedNetwork:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------
# background process management


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as gone: ours is reaped here; one whose parent (init in a container
    # without a reaper) never collects it shows state Z in /proc
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _read_pid(files: NetworkFiles) -> int | None:
    return _read_pid_file(files.pid)


def _read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def start_background(
    topology_spec: str,
    state_dir: Path,
    *,
    netconf_port_base: int,
    snmp_port_base: int,
    traffic: str = "diurnal",
    time_scale: float = 1.0,
    peak_utilization: float = 0.5,
    timeout_s: float = 20.0,
    service_port: int = 0,
    service_llm: str = "",
) -> Inventory:
    """Start the network as a detached process and wait until every agent listens.

    ``service_port``: also run the generative service there (0: none), its cloud model from
    backend ``service_llm`` (empty: grounded answers); loading its models gets 90 s more to
    become ready.
    """
    files = NetworkFiles(state_dir)
    cmd = [
        sys.executable,
        "-m",
        "netgpt.sim_networks.serve",
        "--topo",
        topology_spec,
        "--state-dir",
        str(state_dir),
        "--netconf-port-base",
        str(netconf_port_base),
        "--snmp-port-base",
        str(snmp_port_base),
        "--traffic",
        traffic,
        "--time-scale",
        str(time_scale),
        "--peak-utilization",
        str(peak_utilization),
        "--service-port",
        str(service_port),
        "--service-llm",
        service_llm,
    ]
    run_detached(
        cmd, pid_file=files.pid, ready_file=files.ready, log_file=files.log,
        timeout_s=timeout_s + (90.0 if service_port else 0.0), what="network",
        down_command="netgpt net down",
    )
    return Inventory.load(files.inventory)


def start_daemon(pid_file: Path, *, detach: bool) -> threading.Event:
    """Begin a background process's life: the event that SIGTERM or SIGINT sets.

    With ``detach`` it double-forks first: the starter's child exits at once, this process runs
    on in a session of its own, and ``pid_file`` names it, so the matching 'down' command ends
    exactly this process. Logging goes to stderr (the log file the starter opened).
    """
    if detach:
        child = os.fork()
        if child > 0:
            pid_file.write_text(f"{child}\n")
            os._exit(0)
        os.setsid()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def run_detached(
    cmd: list[str],
    *,
    pid_file: Path,
    ready_file: Path,
    log_file: Path,
    timeout_s: float,
    what: str,
    down_command: str,
) -> int:
    """Start ``cmd --detach`` (which forks, writes ``pid_file`` and later ``ready_file``).

    Waits until ``ready_file`` exists and returns the PID; if the process dies or is not ready
    within ``timeout_s``, ends it and raises :class:`NetworkRuntimeError` quoting its log's
    ``error:`` line.
    """
    pid = _read_pid_file(pid_file)
    if pid is not None and pid_alive(pid):
        raise NetworkRuntimeError(
            f"a {what} is already running from {pid_file.parent} (pid {pid}); run "
            f"'{down_command}' first or use another --state-dir"
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    for stale in (ready_file, pid_file):
        stale.unlink(missing_ok=True)
    with open(log_file, "wb") as logf:
        starter = subprocess.run(
            [*cmd, "--detach"],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            check=False,
            timeout=timeout_s,
        )
    pid = _read_pid_file(pid_file)
    if starter.returncode != 0 or pid is None:
        pid_file.unlink(missing_ok=True)
        raise NetworkRuntimeError(_failure_text(log_file, what, starter.returncode))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready_file.is_file():
            return pid
        if not pid_alive(pid):
            pid_file.unlink(missing_ok=True)
            raise NetworkRuntimeError(_failure_text(log_file, what, None))
        time.sleep(0.05)
    end_pid_file(pid_file)
    raise NetworkRuntimeError(
        f"the {what} did not become ready within {timeout_s:.0f} s; see {log_file}"
    )


def _failure_text(log_file: Path, what: str, code: int | None) -> str:
    try:
        lines = [ln for ln in log_file.read_text().splitlines() if ln.strip()]
    except FileNotFoundError:
        lines = []
    errors = [ln for ln in lines if ln.startswith("error:")]
    detail = errors[-1].removeprefix("error:").strip() if errors else "\n".join(lines[-5:])
    how = f" (exit {code})" if code is not None else ""
    return f"the {what} failed to start{how}: {detail}"


def end_pid_file(pid_file: Path, *, timeout_s: float = 10.0) -> int | None:
    """End the process ``pid_file`` names (SIGTERM, then SIGKILL); its PID, or ``None``.

    Removes the PID file. Raises :class:`NetworkRuntimeError` if the process survives SIGKILL.
    """
    pid = _read_pid_file(pid_file)
    if pid is None:
        return None
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                raise NetworkRuntimeError(
                    f"process {pid} survived SIGKILL; its files are left in {pid_file.parent}"
                )
    pid_file.unlink(missing_ok=True)
    return pid


def stop_background(state_dir: Path, *, timeout_s: float = 10.0) -> int | None:
    """End the network started from ``state_dir`` (by its PID only); return that PID.

    Returns ``None`` when no network was running there. Removes the runtime files it wrote
    (PID, ready marker, inventory, credentials, keys) but keeps the telemetry store and log.
    """
    files = NetworkFiles(state_dir)
    pid = end_pid_file(files.pid, timeout_s=timeout_s)
    if pid is None:
        return None
    for path in (
        files.pid,
        files.ready,
        files.inventory,
        files.credentials,
        files.known_hosts,
        files.host_key,
    ):
        path.unlink(missing_ok=True)
    return pid


def network_status(state_dir: Path) -> dict[str, object]:
    """Whether a network runs from ``state_dir``, its PID, and which agent ports listen."""
    files = NetworkFiles(state_dir)
    pid = _read_pid(files)
    running = pid is not None and pid_alive(pid)
    out: dict[str, object] = {"state_dir": str(state_dir), "pid": pid, "running": running}
    if running and files.ready.is_file():
        out.update(json.loads(files.ready.read_text()))
    return out
