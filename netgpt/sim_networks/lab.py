"""The Mininet lab: a topology on a real Linux data plane, with FRR, snmpd and a NETCONF agent.

:class:`MininetLab` builds a :class:`~netgpt.sim_networks.lab_plan.LabPlan` in Mininet (needs
root): one namespace per router with its links (veth pairs, HTB-shaped to the lab capacity by the
router's own agent), an end host behind every router with local prefixes, and a management bridge
joining every router's ``mgmt0`` to the root namespace. Per router it starts ``zebra``,
``staticd`` and ``ospfd`` (FRR, pathspace ``-N``), ``snmpd`` (the namespace's real IF-MIB
counters) and the lab NETCONF agent (:mod:`netgpt.sim_networks.lab_agent`). It writes the same
inventory and credentials files as the embedded network, so the agent graph, tools and
telemetry work unchanged; only the inventory's addresses differ.

Everything started is recorded in ``lab.json`` (PIDs, the bridge, FRR folders) before it is
started, so :func:`teardown_recorded` removes exactly that, even after the lab's own process was
killed. Nothing here runs ``mn -c``, ``killall`` or ``pkill``: processes end by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from netgpt.errors import ConfigError, NetworkRuntimeError
from netgpt.inventory import (
    Credentials,
    DeviceEntry,
    Inventory,
    LinkEntry,
    generate_credentials,
    save_credentials,
)
from netgpt.sim_networks.lab_plan import (
    MGMT_INTERFACE,
    NET_SNMP_AUTH,
    NET_SNMP_PRIV,
    NETCONF_PORT,
    SNMP_PORT,
    HostPlan,
    LabPlan,
    LabSettings,
    RouterPlan,
    plan_lab,
    render_ospfd_conf,
    render_snmpd_conf,
    render_staticd_conf,
    render_zebra_conf,
)
from netgpt.sim_networks.runtime import StateFiles, pid_alive
from netgpt.sim_networks.topology import ACCESS_INTERFACE, Topology
from netgpt.sim_networks.twin import TrafficMatrix

__all__ = [
    "LabFiles",
    "LabFlow",
    "MininetLab",
    "lab_requirements",
    "socket_in_namespace",
    "teardown_recorded",
]

log = logging.getLogger(__name__)

FRR_DIR = Path("/usr/lib/frr")
FRR_RUN = Path("/var/run/frr")
_FRR_DAEMONS = ("zebra", "staticd", "ospfd")
# NET-SNMP-AGENT-MIB::nsCacheTimeout.<ifTable> (IMPLIED index: the table's OID)
_IF_TABLE_CACHE_TIMEOUT = "1.3.6.1.4.1.8072.1.5.3.1.2.1.3.6.1.2.1.2.2"
_NO_OFFLOAD = "tx off gso off tso off gro off"
_APT = (
    "apt-get install mininet openvswitch-switch bridge-utils iputils-ping iperf3 nftables snmpd "
    "snmp frr"
)


@dataclass(frozen=True)
class LabFiles(StateFiles):
    """Where a lab's files live inside its state directory (``lab.pid``, ``lab.log``...)."""

    process: ClassVar[str] = "lab"

    @property
    def record(self) -> Path:
        """``lab.json``: everything the lab created, for teardown."""
        return self.state_dir / "lab.json"

    def router_dir(self, router: str) -> Path:
        """A router's configs, logs and agent files."""
        return self.state_dir / "routers" / router


def lab_requirements() -> list[str]:
    """What this machine lacks to run a lab (empty when it can): root and the tools."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (run as root: the lab creates namespaces, links and a bridge)")
    for tool in ("mnexec", "vtysh", "snmpd", "snmpset", "nft", "tc", "ip", "iperf3", "brctl"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            missing.append(f"{tool} ({_APT})")
    for daemon in _FRR_DAEMONS:
        if not (FRR_DIR / daemon).is_file():
            missing.append(f"{FRR_DIR / daemon} ({_APT})")
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        missing.append("the mininet Python package (pip install mininet==2.3.0.dev6)")
    return missing


@dataclass
class LabFlow:
    """One iperf3 flow between two lab hosts, started and ended by PID."""

    source: str
    destination: str
    port: int
    rate_mbps: float | None
    udp: bool
    server: subprocess.Popen[str]
    client: subprocess.Popen[str]
    result: dict[str, Any] | None = None

    def wait(self, timeout_s: float) -> dict[str, Any]:
        """Wait for a timed flow to end; iperf3's JSON report."""
        out, _ = self.client.communicate(timeout=timeout_s)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.server.wait(timeout=2)
        _end(self.server)
        try:
            self.result = json.loads(out)
        except json.JSONDecodeError:
            raise NetworkRuntimeError(
                f"iperf3 {self.source}->{self.destination} wrote no report: {out[-300:]!r}"
            ) from None
        if self.result and "error" in self.result:
            raise NetworkRuntimeError(
                f"iperf3 {self.source}->{self.destination}: {self.result['error']}"
            )
        return self.result

    def received_mbps(self) -> float:
        """Receiver throughput over the flow, omitted seconds excluded (after :meth:`wait`)."""
        if self.result is None:
            raise NetworkRuntimeError("the flow has not ended; call wait() first")
        end = self.result["end"]
        summary = end.get("sum_received") or end.get("sum")
        return float(summary["bits_per_second"]) / 1e6

    def interval_report(self) -> list[tuple[float, int | None]]:
        """Per-second Mbit/s and TCP retransmissions (None for UDP) after the omitted seconds.

        The sender's view (iperf3's client report): for TCP the receiver's within a window, for
        UDP the offered rate. What a failed throughput check should show: a stall, a burst or a
        steady shortfall.
        """
        if self.result is None:
            raise NetworkRuntimeError("the flow has not ended; call wait() first")
        report: list[tuple[float, int | None]] = []
        for interval in self.result.get("intervals", []):
            summary = interval["sum"]
            if summary.get("omitted"):
                continue
            report.append((round(float(summary["bits_per_second"]) / 1e6, 2),
                           summary.get("retransmits")))
        return report

    def stop(self) -> None:
        """End both processes (SIGTERM, then SIGKILL)."""
        for proc in (self.client, self.server):
            _end(proc)


_CLONE_NEWNET = 0x40000000


def socket_in_namespace(pid: int) -> socket.socket:
    """A TCP socket created in the network namespace of process ``pid`` (needs root).

    A socket belongs to the namespace it was made in for its whole life, so a short-lived
    thread enters the namespace (setns switches only the calling thread), makes the socket
    and ends; the rest of the process stays where it was.
    """
    made: list[socket.socket] = []
    failed: list[str] = []

    def make() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        except OSError as exc:
            failed.append(f"cannot open the namespace of pid {pid}: {exc}")
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                failed.append(f"setns into pid {pid}'s network namespace: {os.strerror(err)}")
                return
            made.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        finally:
            os.close(fd)

    worker = threading.Thread(target=make, name=f"netns-{pid}")
    worker.start()
    worker.join()
    if failed:
        raise NetworkRuntimeError(failed[0] + " (the lab runs as root; is the lab still up?)")
    return made[0]


def _end(proc: subprocess.Popen[Any], timeout_s: float = 3.0) -> None:
    try:
        _terminate(proc, timeout_s)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def _terminate(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)


@dataclass
class _Record:
    """What the lab created (saved as ``lab.json``)."""

    bridge: str = ""
    pids: list[int] = field(default_factory=list)
    node_pids: list[int] = field(default_factory=list)
    frr_dirs: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    gr_json_existed: bool = True


class MininetLab:
    """A topology running in Mininet with FRR, snmpd and NETCONF agents (needs root)."""

    def __init__(
        self,
        topology: Topology,
        state_dir: Path,
        *,
        settings: LabSettings | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.topology = topology
        self.plan: LabPlan = plan_lab(topology, settings)
        self.files = LabFiles(state_dir)
        self.credentials = credentials
        self.inventory: Inventory | None = None
        self._net: Any = None
        self._nodes: dict[str, Any] = {}
        self._procs: list[subprocess.Popen[Any]] = []
        self._agents: dict[str, subprocess.Popen[Any]] = {}
        self._flows: list[LabFlow] = []
        self._next_port = 5201
        self._record = _Record(bridge=self.plan.settings.bridge)
        self.timings: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------

    def up(self, *, converge_timeout_s: float = 60.0) -> Inventory:
        """Build and start the lab; wait until every agent listens and OSPF has converged.

        Raises :class:`ConfigError` when the machine lacks what a lab needs and
        :class:`NetworkRuntimeError` when a part fails to start; either way what was started is
        removed again.
        """
        missing = lab_requirements()
        if missing:
            raise ConfigError("cannot start a lab here; missing: " + "; ".join(missing))
        self._check_free()
        started = time.perf_counter()
        self.files.state_dir.mkdir(parents=True, exist_ok=True)
        self._record.gr_json_existed = (FRR_RUN / "ospfd-gr.json").exists()
        self._save_record()
        try:
            self._build()
            self.timings["build_s"] = time.perf_counter() - started
            self._start_daemons()
            self.timings["daemons_s"] = time.perf_counter() - started
            # OSPF from the daemons' start; the agents then apply the same costs (no change)
            self.timings["converge_s"] = self.wait_converged(converge_timeout_s)
            self.inventory = self._write_inventory()
            self._live_counters()
            self._start_agents()
            self.timings["agents_s"] = time.perf_counter() - started
        except BaseException:
            self.down()
            raise
        self.timings["up_s"] = time.perf_counter() - started
        return self.inventory

    def down(self) -> None:
        """Stop flows, agents and daemons, remove links, bridge and folders. Idempotent."""
        for flow in self._flows:
            flow.stop()
        self._flows.clear()
        for proc in self._agents.values():
            _end(proc)
        self._agents.clear()
        for proc in reversed(self._procs):
            _end(proc, timeout_s=5.0)
        self._procs.clear()
        if self._net is not None:
            with contextlib.suppress(Exception):
                self._net.stop()
            self._net = None
        self._nodes.clear()
        teardown_recorded(self.files.state_dir)

    def __enter__(self) -> MininetLab:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- access --------------------------------------------------------------------------

    def node_pid(self, name: str) -> int:
        """PID of the shell holding a router's or host's namespace."""
        try:
            return int(self._nodes[name].pid)
        except KeyError:
            raise ConfigError(
                f"no lab node {name!r}; routers: {sorted(self.plan.routers)}, hosts: "
                f"{sorted(self.plan.hosts)}"
            ) from None

    def run_in(
        self, node: str, argv: Sequence[str], *, timeout_s: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``node``'s namespace and wait for it."""
        done = subprocess.run(
            ["mnexec", "-a", str(self.node_pid(node)), *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and done.returncode != 0:
            raise NetworkRuntimeError(
                f"{' '.join(argv)} in {node} exited {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[:300]}"
            )
        return done

    def vtysh(self, router: str, *commands: str) -> str:
        """Output of vtysh commands on ``router`` (from the root namespace)."""
        argv = ["vtysh", "-N", self.plan.routers[router].pathspace]
        for c in commands:
            argv += ["-c", c]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise NetworkRuntimeError(f"vtysh on {router} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def host(self, device: str) -> HostPlan:
        """The end host behind ``device``."""
        return self.plan.host_of(device)

    def has_host(self, device: str) -> bool:
        """Whether an end host sits behind ``device``."""
        return device in self.plan.by_device_host

    def host_address(self, device: str) -> str:
        """The primary address of the host behind ``device``."""
        return self.host(device).ip

    def host_socket(self, device: str) -> socket.socket:
        """A TCP socket in the network namespace of the host behind ``device`` (unbound).

        This process's own sockets, but their traffic leaves from that host: through its
        router and the lab's FRR data plane, like any of the host's own connections.
        """
        return socket_in_namespace(self.node_pid(self.host(device).name))

    def host_listener(self, device: str, port: int) -> socket.socket:
        """A TCP socket listening on ``port`` (0: any free one) of the host behind ``device``."""
        sock = self.host_socket(device)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host_address(device), port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise NetworkRuntimeError(
                f"cannot listen on {self.host_address(device)}:{port} in the host behind "
                f"{device}: {exc}; choose another port"
            ) from None
        return sock

    def ping(self, source_device: str, destination_device: str, *, count: int = 2) -> bool:
        """Whether the host behind ``source_device`` gets answers from the one behind the other."""
        src = self.host(source_device)
        dst = self.host(destination_device)
        done = self.run_in(
            src.name,
            ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", dst.ip],
            check=False,
        )
        return done.returncode == 0

    def tcp_connects(self, source_device: str, destination_device: str, port: int = 5999) -> bool:
        """Whether a TCP connection from one host to the other's ``port`` completes."""
        src = self.host(source_device)
        dst = self.host(destination_device)
        server = self._popen_in(
            dst.name, ["iperf3", "-s", "-1", "-p", str(port), "--bind", dst.ip]
        )
        try:
            time.sleep(0.3)
            done = self.run_in(
                src.name,
                ["iperf3", "-c", dst.ip, "-p", str(port), "-n", "64K",
                 "--connect-timeout", "1500"],
                check=False,
                timeout_s=15,
            )
            return done.returncode == 0
        finally:
            _end(server)

    def start_flow(
        self,
        source_device: str,
        destination_device: str,
        *,
        rate_mbps: float | None = None,
        seconds: float = 0,
        udp: bool = False,
        omit_seconds: int = 0,
    ) -> LabFlow:
        """Start an iperf3 flow from the host behind one device to the host behind the other.

        ``seconds=0`` runs until :meth:`LabFlow.stop` (or :meth:`down`). UDP flows need a rate.
        ``omit_seconds`` leaves the first seconds (TCP's slow start, a shaper's initial burst)
        out of the report, on top of ``seconds``.
        """
        if udp and rate_mbps is None:
            raise ConfigError("a UDP flow needs rate_mbps; iperf3 would send 1 Mbit/s")
        if omit_seconds < 0:
            raise ConfigError(f"omit_seconds must be 0 or more, got {omit_seconds}")
        src = self.host(source_device)
        dst = self.host(destination_device)
        port = self._next_port
        self._next_port += 1
        server = self._popen_in(dst.name, ["iperf3", "-s", "-1", "-p", str(port)])
        time.sleep(0.2)
        argv = ["iperf3", "-c", dst.ip, "-p", str(port), "-J", "-t", str(seconds)]
        if omit_seconds:
            argv += ["-O", str(omit_seconds)]
        if udp:
            argv.append("-u")
        if rate_mbps is not None:
            argv += ["-b", f"{rate_mbps:.3f}M"]
        client = self._popen_in(src.name, argv, capture=True)
        flow = LabFlow(source_device, destination_device, port, rate_mbps, udp, server, client)
        self._flows.append(flow)
        return flow

    def start_matrix(self, matrix: TrafficMatrix, *, max_flows: int = 12) -> list[LabFlow]:
        """UDP flows shaped like ``matrix`` (scaled to lab capacities), largest demands first."""
        scale = self.plan.settings.capacity_scale
        totals: dict[tuple[str, str], float] = {}
        for d in matrix:
            if d.src in self.plan.by_device_host and d.dst in self.plan.by_device_host:
                totals[(d.src, d.dst)] = totals.get((d.src, d.dst), 0.0) + d.rate_mbps * scale
        biggest = sorted(totals.items(), key=lambda kv: -kv[1])[:max_flows]
        return [
            self.start_flow(s, t, rate_mbps=max(rate, 0.01), udp=True)
            for (s, t), rate in biggest
        ]

    def set_snmp_loss(self, router: str, percent: int) -> None:
        """Drop ``percent`` % of the SNMP requests reaching ``router`` (0 removes the fault).

        An nftables table of its own (``netgpt_fault``) in the router's namespace, with a
        ``numgen random`` match: this kernel has no netem, and the device's ACL table
        (``netgpt``) is left alone.
        """
        if not 0 <= percent <= 100:
            raise ConfigError(f"SNMP loss must be 0..100 %, got {percent}")
        script = "add table inet netgpt_fault\ndelete table inet netgpt_fault\n"
        match = "" if percent == 100 else f"numgen random mod 100 < {percent} "
        if percent:
            script += (
                "table inet netgpt_fault {\n chain input {\n"
                "  type filter hook input priority -10; policy accept;\n"
                f"  udp dport {SNMP_PORT} {match}counter drop\n"
                " }\n}\n"
            )
        done = subprocess.run(
            ["mnexec", "-a", str(self.node_pid(router)), "nft", "-f", "-"],
            input=script, capture_output=True, text=True, check=False, timeout=10,
        )
        if done.returncode != 0:
            raise NetworkRuntimeError(f"setting SNMP loss on {router} failed: {done.stderr}")

    def wait_converged(self, timeout_s: float = 60.0) -> float:
        """Seconds until every router has an OSPF route to every other router's prefixes."""
        started = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        wanted = {
            name: {
                str(ipaddress.IPv4Interface(a).network)
                for other, r in self.plan.routers.items()
                if other != name
                for a in r.access_addresses
            }
            for name in self.plan.routers
        }
        pending = dict(wanted)
        while pending:
            for name in list(pending):
                out = self.run_in(name, ["ip", "-j", "route", "show"], check=False).stdout
                have = {str(r.get("dst")) for r in json.loads(out or "[]")}
                if pending[name] <= have:
                    del pending[name]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise NetworkRuntimeError(
                    f"OSPF did not converge within {timeout_s:.0f} s; routers still missing "
                    f"routes: {sorted(pending)[:6]}; see their ospfd.log under "
                    f"{self.files.state_dir / 'routers'}"
                )
            time.sleep(0.2)
        return time.perf_counter() - started

    # -- building ------------------------------------------------------------------------

    def _check_free(self) -> None:
        bridge = self.plan.settings.bridge
        if Path(f"/sys/class/net/{bridge}").exists():
            raise NetworkRuntimeError(
                f"interface {bridge!r} already exists: another lab is running (or one was "
                "killed); run 'netgpt lab down' with its --state-dir, or choose another bridge"
            )
        for r in self.plan.routers.values():
            if (FRR_RUN / r.pathspace).exists():
                raise NetworkRuntimeError(
                    f"{FRR_RUN / r.pathspace} exists: FRR instance {r.pathspace!r} may be "
                    "running from an earlier lab; run 'netgpt lab down' for it first"
                )
        if self.files.record.exists():
            raise NetworkRuntimeError(
                f"{self.files.record} records a lab that was not taken down; run "
                f"'netgpt lab down --state-dir {self.files.state_dir}' first"
            )

    def _save_record(self) -> None:
        self.files.record.write_text(json.dumps(dataclasses.asdict(self._record), indent=1))

    def _build(self) -> None:
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.node import Host
        from mininet.nodelib import LinuxBridge

        setLogLevel("error")
        plan = self.plan
        net = Mininet(
            topo=None, controller=None, build=False, autoSetMacs=False, cleanup=False,
            waitConnected=False,
        )
        self._net = net
        for name in plan.routers:
            self._nodes[name] = net.addHost(name, cls=Host, ip=None)
        for hname in plan.hosts:
            self._nodes[hname] = net.addHost(hname, cls=Host, ip=None)
        bridge = net.addSwitch(plan.settings.bridge, cls=LinuxBridge, dpid="1")
        for lk in plan.links:
            net.addLink(self._nodes[lk.a], self._nodes[lk.b],
                        intfName1=lk.a_interface, intfName2=lk.b_interface)
        for host in plan.hosts.values():
            net.addLink(self._nodes[host.router], self._nodes[host.name],
                        intfName1=ACCESS_INTERFACE, intfName2="eth0")
        for r in plan.routers.values():
            port = f"{plan.settings.bridge}p{r.index}"
            self._record.root_links.append(port)
            net.addLink(self._nodes[r.name], bridge, intfName1=MGMT_INTERFACE, intfName2=port)
        self._save_record()
        net.build()
        self._record.node_pids = [int(n.pid) for n in self._nodes.values()]
        self._save_record()
        bridge.start([])
        self._ip_root(["addr", "add", plan.nms_address, "dev", plan.settings.bridge])
        for r in plan.routers.values():
            self._configure_router(r)
        for h in plan.hosts.values():
            self._configure_host(h)

    def _ip_root(self, args: list[str]) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NetworkRuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")

    def _configure_router(self, r: RouterPlan) -> None:
        script = ["set -e", "ip link set lo up"]
        for itf, addr in sorted(r.link_addresses.items()):
            script += [f"ip addr flush dev {itf}", f"ip addr add {addr} dev {itf}"]
        if r.name in self.plan.by_device_host:
            script.append(f"ip addr flush dev {ACCESS_INTERFACE}")
            script += [f"ip addr add {a} dev {ACCESS_INTERFACE}" for a in r.access_addresses]
        else:  # an eth0 with nothing behind it (a veth to itself: this kernel has no dummy)
            script += [
                f"ip link add {ACCESS_INTERFACE} type veth peer name {ACCESS_INTERFACE}x",
                f"ip link set {ACCESS_INTERFACE}x up",
            ]
        script += [
            f"ip link set {ACCESS_INTERFACE} up",
            f"ip addr flush dev {MGMT_INTERFACE}",
            f"ip addr add {r.mgmt_address} dev {MGMT_INTERFACE}",
            "sysctl -q -w net.ipv4.ip_forward=1",
            "sysctl -q -w net.ipv4.conf.all.rp_filter=0",
            "sysctl -q -w net.ipv4.conf.default.rp_filter=0",
            "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1",
        ]
        for itf in sorted(r.link_addresses):  # TCP over veth: no offloads to emulate
            script.append(f"ethtool -K {itf} {_NO_OFFLOAD} >/dev/null 2>&1 || true")
        self.run_in(r.name, ["sh", "-c", "\n".join(script)])

    def _configure_host(self, h: HostPlan) -> None:
        script = ["set -e", "ip link set lo up", "ip addr flush dev eth0"]
        script += [f"ip addr add {a} dev eth0" for a in h.addresses]
        script += [
            "ip link set eth0 up",
            f"ip route replace default via {h.gateway}",
            "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1",
            f"ethtool -K eth0 {_NO_OFFLOAD} >/dev/null 2>&1 || true",
        ]
        self.run_in(h.name, ["sh", "-c", "\n".join(script)])

    def _popen_in(
        self, node: str, argv: Sequence[str], *, capture: bool = False,
        log_to: Path | None = None, env: dict[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        out: Any = subprocess.PIPE if capture else subprocess.DEVNULL
        if log_to is not None:
            out = open(log_to, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            proc: subprocess.Popen[str] = subprocess.Popen(
                ["mnexec", "-a", str(self.node_pid(node)), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                env=env,
            )
        finally:
            if log_to is not None:
                out.close()
        self._record.pids.append(proc.pid)
        self._save_record()
        return proc

    def _start_daemons(self) -> None:
        creds = self._credentials()
        for r in self.plan.routers.values():
            rdir = self.files.router_dir(r.name)
            rdir.mkdir(parents=True, exist_ok=True)
            run = FRR_RUN / r.pathspace
            self._record.frr_dirs.append(str(run))
            self._save_record()
            run.mkdir(parents=True, exist_ok=False)
            shutil.chown(run, "frr", "frr")
            # the daemons read their configs after dropping to user frr, who may not traverse
            # the state directory (pytest's is 0700): keep them in the run folder frr owns
            frr_conf = run
            confs = {
                "zebra": render_zebra_conf(r),
                "staticd": render_staticd_conf(r),
                "ospfd": render_ospfd_conf(r, self.plan.settings),
            }
            for daemon in _FRR_DAEMONS:
                path = frr_conf / f"{daemon}.conf"
                path.write_text(confs[daemon])
                shutil.chown(path, "frr", "frr")
                argv = [
                    str(FRR_DIR / daemon), "-N", r.pathspace, "-f", str(path),
                    "-i", str(run / f"{daemon}.pid"), "--log", f"file:{rdir / daemon}.log",
                ]
                self._procs.append(self._popen_in(r.name, argv, log_to=rdir / "frr.out"))
                if daemon == "zebra":
                    _wait_for(run / "zserv.api", 10.0, f"zebra of {r.name}")
            snmp_dir = rdir / "snmp"
            snmp_dir.mkdir(exist_ok=True)
            conf = rdir / "snmpd.conf"
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(render_snmpd_conf(r, creds.snmp))
            env = {**os.environ, "SNMP_PERSISTENT_DIR": str(snmp_dir), "MIBS": ""}
            argv = [
                "snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(rdir / "snmpd.log"),
                "-p", str(rdir / "snmpd.pid"),
            ]
            self._procs.append(self._popen_in(r.name, argv, log_to=rdir / "snmpd.out", env=env))

    def _live_counters(self, timeout_s: float = 15.0) -> None:
        """Turn off snmpd's 3 s interface-table cache on every router.

        net-snmp serves ifTable/ifXTable from a cache it reloads when older than 3 s, so two
        polls a second apart can see the same counters. Rates from counters need the values of
        the moment the agent answers (sysUpTime is read live): NET-SNMP-AGENT-MIB's
        nsCacheTimeout for ifTable is set to 0, over SNMPv3 with the lab's own credentials.
        """
        assert self.credentials is not None
        snmp = self.credentials.snmp
        if snmp.auth_key is None or snmp.priv_key is None:
            return  # v2c-only labs keep the cache: their write community may be off
        auth = NET_SNMP_AUTH[snmp.auth_protocol]
        priv = NET_SNMP_PRIV[snmp.priv_protocol]
        deadline = time.monotonic() + timeout_s
        for r in self.plan.routers.values():
            argv = [
                "snmpset", "-v3", "-l", "authPriv", "-u", snmp.user, "-a", auth,
                "-A", snmp.auth_key.get_secret_value(), "-x", priv,
                "-X", snmp.priv_key.get_secret_value(), "-t", "1", "-r", "1", r.mgmt_ip,
                _IF_TABLE_CACHE_TIMEOUT, "i", "0",
            ]
            while True:
                done = subprocess.run(argv, capture_output=True, text=True, check=False,
                                      env={**os.environ, "MIBS": ""})
                if done.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise NetworkRuntimeError(
                        f"snmpd of {r.name} did not accept the counter-cache setting: "
                        f"{done.stderr.strip()[:200]}; see {self.files.router_dir(r.name)}"
                    )
                time.sleep(0.2)

    def _credentials(self) -> Credentials:
        if self.credentials is None:
            self.credentials = generate_credentials(known_hosts=self.files.known_hosts)
        save_credentials(self.files.credentials, {"default": self.credentials})
        return self.credentials

    def _start_agents(self, timeout_s: float = 90.0) -> None:
        key = self.files.load_host_key()
        self.files.write_known_hosts(
            key, ((r.mgmt_ip, NETCONF_PORT) for r in self.plan.routers.values())
        )
        for r in self.plan.routers.values():
            rdir = self.files.router_dir(r.name)
            (rdir / "router.json").write_text(json.dumps(dataclasses.asdict(r)))
            (rdir / "initial_config.json").write_text(
                self.topology.initial_config(r.name).model_dump_json()
            )
            (rdir / "agent.ready").unlink(missing_ok=True)
            argv = [
                sys.executable, "-m", "netgpt.sim_networks.lab_agent",
                "--router-dir", str(rdir), "--credentials", str(self.files.credentials),
                "--host-key", str(self.files.host_key),
            ]
            self._agents[r.name] = self._popen_in(r.name, argv, log_to=rdir / "agent.log")
        deadline = time.monotonic() + timeout_s
        waiting = set(self._agents)
        while waiting:
            for name in list(waiting):
                if (self.files.router_dir(name) / "agent.ready").exists():
                    waiting.discard(name)
                elif self._agents[name].poll() is not None:
                    text = (self.files.router_dir(name) / "agent.log").read_text()
                    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
                    raise NetworkRuntimeError(
                        f"the NETCONF agent of {name} failed to start: "
                        f"{errors[-1] if errors else text[-400:]}"
                    )
            if waiting and time.monotonic() > deadline:
                raise NetworkRuntimeError(
                    f"NETCONF agents of {sorted(waiting)} not ready within {timeout_s:.0f} s"
                )
            time.sleep(0.1)

    def _write_inventory(self) -> Inventory:
        plan = self.plan
        inventory = Inventory(
            network=f"lab-{plan.topology}",
            backend="lab",
            topology=plan.topology,
            credentials_file=self.files.credentials,
            runtime_pid=os.getpid(),
            devices=[
                DeviceEntry(
                    name=r.name,
                    host=r.mgmt_ip,
                    netconf_port=NETCONF_PORT,
                    snmp_port=SNMP_PORT,
                    credentials="default",
                    role=r.role,
                    site=r.site,
                )
                for r in plan.routers.values()
            ],
            links=[
                LinkEntry(
                    a=lk.a, a_interface=lk.a_interface, b=lk.b, b_interface=lk.b_interface,
                    capacity_mbps=lk.capacity_mbps,
                )
                for lk in plan.links
            ],
        )
        inventory.save(self.files.inventory)
        return inventory

    def flows(self) -> Iterator[LabFlow]:
        """Flows started and not yet ended."""
        return iter([f for f in self._flows if f.client.poll() is None])


def _wait_for(path: Path, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise NetworkRuntimeError(f"{what} did not start within {timeout_s:.0f} s ({path})")
        time.sleep(0.02)


def teardown_recorded(state_dir: Path) -> list[str]:
    """Remove what ``lab.json`` in ``state_dir`` records; what was removed, in words.

    Ends recorded processes by PID (SIGTERM, then SIGKILL), deletes the recorded root-namespace
    links and bridge if they still exist, and the recorded FRR folders. Removes the runtime files
    (record, inventory, credentials, keys) but keeps logs.
    """
    files = LabFiles(state_dir)
    try:
        record = _Record(**json.loads(files.record.read_text()))
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, TypeError) as exc:
        raise NetworkRuntimeError(
            f"{files.record} is unreadable ({exc}); remove the lab's processes and "
            "interfaces by hand"
        ) from None
    removed: list[str] = []
    pids = [p for p in (*record.pids, *record.node_pids) if pid_alive(p)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if pids:
        removed.append(f"{len(pids)} processes")
    for link in (*record.root_links, record.bridge):
        if link and Path(f"/sys/class/net/{link}").exists():
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
            removed.append(f"interface {link}")
    for d in record.frr_dirs:
        if Path(d).exists():
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    gr = FRR_RUN / "ospfd-gr.json"
    if not record.gr_json_existed and gr.exists():
        gr.unlink(missing_ok=True)
    for path in (files.inventory, files.credentials, files.known_hosts, files.host_key):
        path.unlink(missing_ok=True)
    files.record.unlink(missing_ok=True)
    return removed
