"""SNMP agents (pysnmp, one loop for many devices) and the SNMP client tool, against each other
and against net-snmp's command-line tools, on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from netgpt.device_config import DeviceConfig, InterfaceConfig
from netgpt.errors import (
    AuthenticationError,
    ConfigError,
    DeviceTimeoutError,
    PortInUseError,
    SnmpError,
)
from netgpt.sim_networks.device import Device
from netgpt.sim_networks.snmp_agent import SnmpAgentPool
from netgpt.sim_networks.topology import build_topology
from netgpt.tools.snmp import (
    IF_MIB,
    SYSTEM_MIB,
    InterfaceCounters,
    SnmpClient,
    SnmpManager,
    poll_interface_counters,
    run_snmp,
)

from .snmp_fixtures import (
    AUTH_KEY,
    PRIV_KEY,
    READ_COMMUNITY,
    WRITE_COMMUNITY,
    AgentNetwork,
    CounterBackend,
    credentials,
    start_agents,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")
HOST = "127.0.0.1"
SYS_NAME = f"{SYSTEM_MIB.SYS_NAME}.0"
SYS_LOCATION = f"{SYSTEM_MIB.SYS_LOCATION}.0"
BIG = "big"  # an extra device with many interfaces, some administratively down
BIG_INTERFACES = 50


def _big_config() -> DeviceConfig:
    return DeviceConfig(
        hostname=BIG,
        interfaces=tuple(
            InterfaceConfig(name=f"eth{i}", description=f"port {i}", enabled=i % 10 != 9)
            for i in range(BIG_INTERFACES)
        ),
    )


class Loop:
    """One event loop and one SNMP manager for the whole module (engines are costly)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.manager = SnmpManager()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def client(self, net: AgentNetwork, device: str, **kwargs: Any) -> SnmpClient:
        return self.manager.client(
            HOST, net.ports[device], net.credentials, device_name=device, **kwargs
        )

    def close(self) -> None:
        self.run(self.manager.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def net() -> Iterator[AgentNetwork]:
    network = start_agents("linear,3", extra=[(BIG, _big_config())])
    yield network
    network.close()


@pytest.fixture(scope="module")
def aio() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


def by_name(counters: list[InterfaceCounters]) -> dict[str, InterfaceCounters]:
    return {c.name: c for c in counters}


def if_index(net: AgentNetwork, device: str, interface: str) -> int:
    names = [st.name for st in net.devices[device].interface_states()]
    return names.index(interface) + 1


# -- net-snmp command-line tools ------------------------------------------------------------------

needs_cli = pytest.mark.skipif(
    shutil.which("snmpget") is None, reason="net-snmp tools (Debian package snmp) not installed"
)
V3 = [
    "-v3",
    "-l",
    "authPriv",
    "-u",
    "netgpt",
    "-a",
    "SHA",
    "-A",
    AUTH_KEY,
    "-x",
    "AES",
    "-X",
    PRIV_KEY,
]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("netsnmp")
    return {**os.environ, "MIBS": "", "SNMPCONFPATH": str(home), "SNMP_PERSISTENT_DIR": str(home)}


def cli(env: dict[str, str], tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "-On", "-Oq", "-r", "0", "-t", "2", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
        check=False,
    )


def parse(output: str) -> dict[str, str]:
    """``-On -Oq`` lines (``.1.3.6... value``) as ``{oid: value}``."""
    out = {}
    for line in output.splitlines():
        oid, _, value = line.partition(" ")
        out[oid.lstrip(".")] = value.strip().strip('"')
    return out


# -- the pysnmp client through SNMPv3 authPriv ----------------------------------------------------


def test_system_group_of_every_device(net: AgentNetwork, aio: Loop) -> None:
    for name in net.devices:
        info = aio.run(aio.client(net, name).system())
        assert info.name == name
        assert info.device == name
        assert info.descr == net.devices[name].system.descr
        assert info.object_id == net.devices[name].system.object_id
        assert 0 < info.uptime_s < 600


def test_get_several_oids_and_missing_ones(net: AgentNetwork, aio: Loop) -> None:
    values = aio.run(
        aio.client(net, "r1").get(
            SYS_NAME, "." + IF_MIB.IF_NUMBER + ".0", "1.3.6.1.2.1.1.99.0", "1.3.6.1.2.1.1.5.1"
        )
    )
    assert values == {
        SYS_NAME: "r1",
        IF_MIB.IF_NUMBER + ".0": len(net.devices["r1"].interface_states()),
        "1.3.6.1.2.1.1.99.0": None,  # noSuchObject
        "1.3.6.1.2.1.1.5.1": None,  # noSuchInstance
    }


def test_bulk_walk_crosses_columns_and_stops_at_the_end_of_the_table(
    net: AgentNetwork, aio: Loop
) -> None:
    client = aio.client(net, "r2")
    rows = len(net.devices["r2"].interface_states())
    ifx = aio.run(client.bulk_walk(IF_MIB.IFX_TABLE))
    assert len(ifx) == 19 * rows
    columns = [int(oid.split(".")[-2]) for oid, _ in ifx]
    assert columns == sorted(columns) and set(columns) == set(range(1, 20))
    assert [v for oid, v in ifx if oid.startswith(IF_MIB.IF_NAME + ".")] == ["eth0", "eth1", "eth2"]
    if_table = aio.run(client.bulk_walk(IF_MIB.IF_TABLE, max_repetitions=7))
    assert len(if_table) == 22 * rows
    # the last object of the MIB: the walk ends on endOfMibView
    last = aio.run(client.bulk_walk("1.3.6.1.2.1.31.1.1.1.19"))
    assert len(last) == rows
    assert aio.run(client.bulk_walk("1.3.6.1.4")) == []
    system = dict(aio.run(client.bulk_walk(SYSTEM_MIB.SYS_DESCR[:-2])))
    assert system[SYS_NAME] == "r2" and len(system) == 7


def test_set_sys_location_and_contact_reach_the_device(net: AgentNetwork, aio: Loop) -> None:
    client = aio.client(net, "r3")
    aio.run(client.set(SYS_LOCATION, "rack 7, Zürich"))
    aio.run(client.set(f"{SYSTEM_MIB.SYS_CONTACT}.0", "ops@example.net"))
    assert net.devices["r3"].system.location == "rack 7, Zürich"
    assert net.devices["r3"].system.contact == "ops@example.net"
    info = aio.run(client.system())
    assert (info.location, info.contact) == ("rack 7, Zürich", "ops@example.net")


def test_set_of_a_read_only_object_is_not_writable(net: AgentNetwork, aio: Loop) -> None:
    client = aio.client(net, "r3")
    with pytest.raises(SnmpError, match=r"1\.3\.6\.1\.2\.1\.1\.5\.0.*notWritable") as err:
        aio.run(client.set(SYS_NAME, "evil"))
    assert err.value.device == "r3"
    with pytest.raises(SnmpError, match="notWritable"):
        aio.run(client.set(f"{IF_MIB.IF_ALIAS}.1", "x"))
    with pytest.raises(SnmpError, match="wrongType"):
        aio.run(client.set(SYS_LOCATION, 5))
    assert aio.run(client.get(SYS_NAME)) == {SYS_NAME: "r3"}


def test_interface_counters_advance_with_the_backend(net: AgentNetwork, aio: Loop) -> None:
    client = aio.client(net, "r2")
    before = by_name(aio.run(client.interface_counters()))
    assert set(before) == {"eth0", "eth1", "eth2"}
    net.backend.add_traffic("r2", "eth1", in_octets=123_456_789, out_octets=4_321)
    time.sleep(0.02)
    after = by_name(aio.run(client.interface_counters()))
    assert after["eth1"].in_octets - before["eth1"].in_octets == 123_456_789
    assert after["eth1"].out_octets - before["eth1"].out_octets == 4_321
    assert after["eth2"].in_octets == before["eth2"].in_octets
    assert after["eth1"].timestamp > before["eth1"].timestamp
    assert after["eth1"].sys_uptime_s >= before["eth1"].sys_uptime_s
    eth1 = after["eth1"]
    assert (eth1.device, eth1.if_index, eth1.speed_mbps) == ("r2", 2, 1000)
    assert eth1.admin_up and eth1.oper_up
    assert all(isinstance(v, int) for v in (eth1.in_octets, eth1.out_octets, eth1.if_index))


def test_counter32_wraps_while_hc_counters_do_not(net: AgentNetwork, aio: Loop) -> None:
    client = aio.client(net, "r3")
    idx = if_index(net, "r3", "eth1")
    net.backend.set_counters("r3", "eth1", in_octets=2**32 - 10, out_octets=2**33 + 7)
    oids = [
        f"{IF_MIB.IF_IN_OCTETS}.{idx}",
        f"{IF_MIB.IF_OUT_OCTETS}.{idx}",
        f"{IF_MIB.IF_HC_IN_OCTETS}.{idx}",
        f"{IF_MIB.IF_HC_OUT_OCTETS}.{idx}",
    ]
    assert list(aio.run(client.get(*oids)).values()) == [2**32 - 10, 7, 2**32 - 10, 2**33 + 7]
    net.backend.add_traffic("r3", "eth1", in_octets=20)
    assert list(aio.run(client.get(*oids)).values()) == [10, 7, 2**32 + 10, 2**33 + 7]


def test_oper_status_follows_the_backend(net: AgentNetwork, aio: Loop) -> None:
    client = aio.client(net, "r1")
    idx = if_index(net, "r1", "eth1")
    oper, admin, change = (
        f"{IF_MIB.IF_OPER_STATUS}.{idx}",
        f"{IF_MIB.IF_ADMIN_STATUS}.{idx}",
        f"1.3.6.1.2.1.2.2.1.9.{idx}",
    )
    assert aio.run(client.get(oper, admin)) == {oper: 1, admin: 1}
    time.sleep(0.02)
    net.backend.set_link("r1", "eth1", up=False)
    try:
        values = aio.run(client.get(oper, admin, change))
        assert (values[oper], values[admin]) == (2, 1)
        last_change = values[change]
        assert isinstance(last_change, int) and last_change > 0
        eth1 = by_name(aio.run(client.interface_counters()))["eth1"]
        assert eth1.admin_up and not eth1.oper_up
    finally:
        net.backend.set_link("r1", "eth1", up=True)
    assert aio.run(client.get(oper)) == {oper: 1}


def test_if_speed_caps_and_high_speed(net: AgentNetwork, aio: Loop) -> None:
    client = aio.client(net, "r1")
    idx = if_index(net, "r1", "eth0")
    net.backend.set_speed("r1", "eth0", speed_bps=100_000_000_000)
    try:
        values = aio.run(client.get(f"1.3.6.1.2.1.2.2.1.5.{idx}", f"{IF_MIB.IF_HIGH_SPEED}.{idx}"))
        assert list(values.values()) == [4_294_967_295, 100_000]
    finally:
        net.backend.set_speed("r1", "eth0", speed_bps=1_000_000_000)


def test_interface_counters_of_a_device_with_many_interfaces(net: AgentNetwork, aio: Loop) -> None:
    client = aio.client(net, BIG)
    for _ in range(2):  # the first poll guesses the table size, the second knows it
        counters = aio.run(client.interface_counters())
        assert [c.if_index for c in counters] == list(range(1, BIG_INTERFACES + 1))
        assert [c.name for c in counters] == [f"eth{i}" for i in range(BIG_INTERFACES)]
        down = [c.name for c in counters if not c.admin_up]
        assert down == [f"eth{i}" for i in range(9, BIG_INTERFACES, 10)]
        assert all(not c.oper_up for c in counters if not c.admin_up)
    aliases = aio.run(client.bulk_walk(IF_MIB.IF_ALIAS))
    assert aliases[3] == (f"{IF_MIB.IF_ALIAS}.4", "port 3")


def test_poll_many_devices_reports_failures_per_device(net: AgentNetwork, aio: Loop) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind((HOST, 0))  # bound but never answers
    try:
        clients = [aio.client(net, name) for name in ("r1", "r2", "r3")]
        clients.append(
            aio.manager.client(
                HOST,
                dead.getsockname()[1],
                net.credentials,
                device_name="ghost",
                timeout_s=0.2,
                retries=0,
            )
        )
        results = aio.run(poll_interface_counters(clients))
    finally:
        dead.close()
    assert isinstance(results["ghost"], DeviceTimeoutError)
    assert "check the host and port" in str(results["ghost"])
    for name in ("r1", "r2", "r3"):
        counters = results[name]
        assert isinstance(counters, list) and {c.device for c in counters} == {name}
    with pytest.raises(ConfigError, match="unique device_name"):
        aio.run(poll_interface_counters([aio.client(net, "r1"), aio.client(net, "r1")]))


def test_sync_wrapper(net: AgentNetwork) -> None:
    info = run_snmp(lambda c: c.system(), HOST, net.ports["r2"], net.credentials, device_name="r2")
    assert info.name == "r2"


# -- refused credentials ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"auth_key": SecretStr("wrong-auth-key")}, "auth_key"),
        ({"priv_key": SecretStr("wrong-priv-key")}, "priv_key"),
        ({"user": "mallory"}, "does not know SNMPv3 user 'mallory'"),
    ],
)
def test_wrong_v3_credentials_are_refused(
    net: AgentNetwork, aio: Loop, changes: dict[str, Any], message: str
) -> None:
    async def attempt() -> None:
        async with SnmpClient(
            HOST,
            net.ports["r1"],
            credentials(**changes),
            device_name="r1",
            timeout_s=0.5,
            retries=0,
        ) as client:
            await client.get(SYS_NAME)

    with pytest.raises((AuthenticationError, DeviceTimeoutError)) as err:
        aio.run(attempt())
    assert err.value.device == "r1"
    assert message in str(err.value) or "credentials" in str(err.value)
    assert isinstance(err.value, AuthenticationError)  # pysnmp's agent sends a report for each


def test_manager_refuses_one_user_with_two_keys(net: AgentNetwork, aio: Loop) -> None:
    aio.run(aio.client(net, "r1").get(SYS_NAME))
    other = aio.manager.client(HOST, net.ports["r1"], credentials(auth_key=SecretStr("x" * 12)))
    with pytest.raises(ConfigError, match="separate SnmpManager"):
        aio.run(other.get(SYS_NAME))


def test_v2c_read_community_reads_but_cannot_set(net: AgentNetwork, aio: Loop) -> None:
    ro = aio.manager.client(
        HOST, net.ports["r2"], credentials(version="2c", write_community=None), device_name="r2"
    )
    assert aio.run(ro.get(SYS_NAME)) == {SYS_NAME: "r2"}
    assert len(aio.run(ro.interface_counters())) == 3
    location = net.devices["r2"].system.location
    with pytest.raises(SnmpError, match="noAccess"):
        aio.run(ro.set(SYS_LOCATION, "written by a reader"))
    assert net.devices["r2"].system.location == location
    rw = aio.manager.client(HOST, net.ports["r2"], credentials(version="2c"), device_name="r2")
    aio.run(rw.set(SYS_LOCATION, "written by a writer"))
    assert net.devices["r2"].system.location == "written by a writer"
    nobody = aio.manager.client(
        HOST,
        net.ports["r2"],
        credentials(version="2c", community=SecretStr("guess")),
        timeout_s=0.2,
        retries=0,
    )
    with pytest.raises(DeviceTimeoutError, match="credentials"):
        aio.run(nobody.get(SYS_NAME))


# -- net-snmp's tools against the agents -----------------------------------------------------------


@needs_cli
def test_net_snmp_reads_every_device(net: AgentNetwork, cli_env: dict[str, str]) -> None:
    for name, port in net.ports.items():
        target = f"udp:{HOST}:{port}"
        got = cli(cli_env, "snmpget", *V3, target, SYS_NAME)
        assert got.returncode == 0, got.stderr
        assert parse(got.stdout) == {SYS_NAME: name}
        walk = cli(cli_env, "snmpbulkwalk", *V3, target, IF_MIB.IF_HC_IN_OCTETS)
        assert walk.returncode == 0, walk.stderr
        values = parse(walk.stdout)
        states = net.devices[name].interface_states()
        assert values == {
            f"{IF_MIB.IF_HC_IN_OCTETS}.{i + 1}": str(st.in_octets) for i, st in enumerate(states)
        }
    # plain GETNEXT walk of the whole ifXTable of one device
    walk = cli(cli_env, "snmpwalk", *V3, f"udp:{HOST}:{net.ports['r2']}", IF_MIB.IFX_TABLE)
    assert walk.returncode == 0, walk.stderr
    assert len(parse(walk.stdout)) == 19 * 3


@needs_cli
def test_net_snmp_set_sys_location(net: AgentNetwork, cli_env: dict[str, str]) -> None:
    target = f"udp:{HOST}:{net.ports['r1']}"
    done = cli(cli_env, "snmpset", *V3, target, SYS_LOCATION, "s", "cage 3")
    assert done.returncode == 0, done.stderr
    assert net.devices["r1"].system.location == "cage 3"
    refused = cli(cli_env, "snmpset", *V3, target, SYS_NAME, "s", "renamed")
    assert refused.returncode != 0 and "notWritable" in refused.stderr + refused.stdout
    ro = cli(cli_env, "snmpset", "-v2c", "-c", READ_COMMUNITY, target, SYS_LOCATION, "s", "x")
    assert ro.returncode != 0 and net.devices["r1"].system.location == "cage 3"
    rw = cli(cli_env, "snmpset", "-v2c", "-c", WRITE_COMMUNITY, target, SYS_LOCATION, "s", "cage 4")
    assert rw.returncode == 0 and net.devices["r1"].system.location == "cage 4"
    got = cli(cli_env, "snmpget", "-v2c", "-c", READ_COMMUNITY, target, SYS_LOCATION)
    assert parse(got.stdout) == {SYS_LOCATION: "cage 4"}


@needs_cli
@pytest.mark.parametrize(
    "args",
    [
        [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            "netgpt",
            "-a",
            "SHA",
            "-A",
            "not-the-key",
            "-x",
            "AES",
            "-X",
            PRIV_KEY,
        ],
        [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            "netgpt",
            "-a",
            "SHA",
            "-A",
            AUTH_KEY,
            "-x",
            "AES",
            "-X",
            "not-the-key",
        ],
        [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            "eve",
            "-a",
            "SHA",
            "-A",
            AUTH_KEY,
            "-x",
            "AES",
            "-X",
            PRIV_KEY,
        ],
        ["-v3", "-l", "authNoPriv", "-u", "netgpt", "-a", "SHA", "-A", AUTH_KEY],
        ["-v2c", "-c", "not-a-community"],
        ["-v1", "-c", READ_COMMUNITY],
    ],
    ids=["wrong-auth-key", "wrong-priv-key", "unknown-user", "authNoPriv", "bad-community", "v1"],
)
def test_net_snmp_with_refused_credentials_fails(
    net: AgentNetwork, cli_env: dict[str, str], args: list[str]
) -> None:
    got = cli(cli_env, "snmpget", "-t", "0.5", *args, f"udp:{HOST}:{net.ports['r1']}", SYS_NAME)
    assert got.returncode != 0
    assert "r1" not in got.stdout


# -- the pool's lifecycle ----------------------------------------------------------------------


def _device(name: str = "r1") -> Device:
    return Device(name, build_topology("linear,3").initial_config(name), CounterBackend())


def test_a_port_in_use_is_refused_at_once() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind((HOST, 0))
    port = taken.getsockname()[1]
    try:
        with SnmpAgentPool() as pool:
            started = time.monotonic()
            with pytest.raises(PortInUseError, match=rf"\b{port}\b"):
                pool.add(_device(), port=port, credentials=credentials())
            assert time.monotonic() - started < 1.0
            assert pool.ports == []
    finally:
        taken.close()


def test_close_frees_every_port_and_add_after_start_serves() -> None:
    pool = SnmpAgentPool()
    first = pool.add(_device("r1"), port=0, credentials=credentials())
    pool.start()
    second = pool.add(_device("r2"), port=0, credentials=credentials())
    assert pool.ports == [first, second]
    assert pool.endpoints() == {"r1": (HOST, first), "r2": (HOST, second)}
    info = run_snmp(lambda c: c.system(), HOST, second, credentials())
    assert info.name == "r2"
    pool.close()
    pool.close()  # idempotent
    assert not pool.running
    for port in (first, second):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, port))  # would raise if the agent still held it
        probe.close()
    with SnmpAgentPool() as again:
        again.add(_device("r1"), port=first, credentials=credentials())
        again.start()
        assert run_snmp(lambda c: c.get(SYS_NAME), HOST, first, credentials()) == {SYS_NAME: "r1"}


def test_bad_v3_keys_are_a_config_error() -> None:
    with SnmpAgentPool() as pool, pytest.raises(ConfigError, match="at least 8 characters"):
        pool.add(_device(), port=0, credentials=credentials(auth_key=SecretStr("short")))


# -- measurements (printed; run with -s to see them) ---------------------------------------------


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def test_measure_bulk_walk_and_concurrent_polls(aio: Loop, tmp_path: Path) -> None:
    twelve = start_agents("linear,12")
    try:
        clients = [aio.client(twelve, name) for name in twelve.devices]
        aio.run(poll_interface_counters(clients))  # warm up: engine IDs, table sizes
        walks = []
        for _ in range(20):
            started = time.perf_counter()
            aio.run(clients[1].bulk_walk(IF_MIB.IFX_TABLE))
            walks.append(time.perf_counter() - started)
        polls = []
        for _ in range(15):
            started = time.perf_counter()
            results = aio.run(poll_interface_counters(clients))
            polls.append(time.perf_counter() - started)
        assert all(isinstance(r, list) and r for r in results.values())
        print(
            f"\nSNMP: bulk-walk of one device's ifXTable (3 interfaces, 57 varbinds, v3 authPriv) "
            f"median {_median_ms(walks):.1f} ms; interface_counters of 12 agents concurrently "
            f"median {_median_ms(polls):.1f} ms"
        )
    finally:
        twelve.close()
