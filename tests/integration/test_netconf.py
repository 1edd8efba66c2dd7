"""The NETCONF agent and the NetconfDriver against each other, on real loopback SSH."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest
from lxml import etree
from ncclient import operations as ncops
from pydantic import SecretStr

from netgpt.device_config import InterfaceConfig
from netgpt.errors import (
    AuthenticationError,
    CapabilityError,
    CommitError,
    DeviceConnectionError,
    DeviceTimeoutError,
    LockError,
    MergeConfigError,
    PortInUseError,
    RpcError,
)
from netgpt.inventory import DeviceEntry, NetconfCredentials
from netgpt.sim_networks.device import Datastore
from netgpt.sim_networks.netconf_agent import CAPABILITIES, NetconfAgent
from netgpt.tools.base import ConfigDriver
from netgpt.tools.netconf import NetconfDriver, measure_rpc_latency
from tests.integration.netconf_fixtures import (
    IF,
    NC,
    NG,
    PASSWORD,
    USER,
    Lab,
    ed25519_key,
    host_key,
    lab,
    raw_session,
    write_ed25519,
    write_key,
)

__all__ = ["host_key", "lab"]  # fixtures

pytestmark = pytest.mark.integration


def itf_edit(name: str, body: str, *, op: str | None = None) -> str:
    attr = f' xmlns:nc="{NC}" nc:operation="{op}"' if op else ""
    return (
        f'<config xmlns="{NC}"><interfaces xmlns="{IF}"><interface{attr}><name>{name}</name>'
        f"{body}</interface></interfaces></config>"
    )


def describe(name: str, text: str) -> str:
    return itf_edit(name, f"<description>{text}</description>")


# --------------------------------------------------------------------------------------------
# session, capabilities, reads


def test_hello_advertises_exactly_what_the_agent_has(lab: Lab) -> None:
    with lab.driver("r1") as d:
        caps = d.capabilities
        assert isinstance(d, ConfigDriver)
    assert "urn:ietf:params:netconf:base:1.0" in caps
    assert "urn:ietf:params:netconf:base:1.1" in caps
    assert set(CAPABILITIES) <= caps
    for module in (
        "ietf-interfaces", "ietf-ip", "ietf-access-control-list", "ietf-routing",
        "ietf-ipv4-unicast-routing", "ietf-system", "netgpt-device",
    ):
        assert any(c.endswith(f"?module={module}") for c in caps), module
    for absent in ("writable-running", ":url:", "startup", "notification"):
        assert not any(absent in c for c in caps), absent
    assert len(caps) == 2 + len(CAPABILITIES)


def test_get_reports_interface_state(lab: Lab) -> None:
    with lab.driver("r2") as d:
        states = d.get_interfaces()
    assert [s.name for s in states] == ["eth0", "eth1", "eth2"]
    assert all(s.oper_up and s.enabled and s.speed_bps == 10**9 for s in states)
    assert states[1].in_octets > 0 and states[1].description == "to r1 eth1"


def test_get_config_running_candidate_and_subtree_filter(lab: Lab) -> None:
    with lab.driver("r2") as d:
        assert d.get_config("running") == lab.initial("r2")
        d.load_candidate(etree.fromstring(describe("eth1", "candidate only")))
        assert d.get_config("candidate").interface("eth1").description == "candidate only"
        assert d.get_config("running") == lab.initial("r2")
        eth1 = d.get_interface_config("eth1")
        assert eth1 == lab.initial("r2").interface("eth1")
        cand = d.get_interface_config("eth1", source="candidate")
        assert cand is not None and cand.description == "candidate only"
        assert d.get_interface_config("eth7") is None


def test_subtree_filter_shapes_and_xpath_filter(lab: Lab) -> None:
    with raw_session(lab, "r2") as m:
        # content match + selection: only eth2's name and igp-cost
        flt = (
            f'<interfaces xmlns="{IF}"><interface><name>eth2</name>'
            f'<igp-cost xmlns="{NG}"/></interface></interfaces>'
        )
        data = m.get_config(source="running", filter=("subtree", flt)).data_ele
        itfs = data.findall(f"{{{IF}}}interfaces/{{{IF}}}interface")
        assert len(itfs) == 1
        assert [etree.QName(c).localname for c in itfs[0]] == ["name", "igp-cost"]
        # selection of a leaf deep in a list: the list keys come along
        flt = f'<interfaces xmlns="{IF}"><interface><enabled/></interface></interfaces>'
        data = m.get_config(source="running", filter=("subtree", flt)).data_ele
        assert [[etree.QName(c).localname for c in i] for i in data.iter(f"{{{IF}}}interface")] == [
            ["name", "enabled"]
        ] * 3
        # no match: empty data; empty filter selects nothing
        flt = f'<interfaces xmlns="{IF}"><interface><name>eth9</name></interface></interfaces>'
        assert len(m.get_config(source="running", filter=("subtree", flt)).data_ele) == 0
        # xpath 1.0 with prefixes declared on the filter
        data = m.get(filter=("xpath", ({"if": IF}, "/if:interfaces/if:interface[if:name='eth1']"
                                       "/if:oper-status"))).data_ele
        leaves = [etree.QName(c).localname for c in data.iter(f"{{{IF}}}interface").__next__()]
        assert leaves == ["name", "oper-status"]
        with pytest.raises(ncops.RPCError) as err:
            m.get(filter=("xpath", ({"if": IF}, "/if:interfaces[")))
        assert err.value.tag == "invalid-value"


# --------------------------------------------------------------------------------------------
# edit-config


def test_edit_config_merge_touches_only_the_candidate(lab: Lab) -> None:
    with lab.driver("r1") as d:
        d.load_candidate(describe("eth1", "merged"))
        assert lab.candidate("r1").interface("eth1").description == "merged"
        assert lab.candidate("r1").interface("eth1").igp_cost == 10  # merge keeps siblings
        assert lab.running("r1") == lab.initial("r1")
        diff = d.diff()
    assert "-      <description>to r2 eth1</description>" in diff
    assert "+      <description>merged</description>" in diff
    assert diff.startswith("--- running\n+++ candidate\n")


def test_edit_config_replace_with_a_device_config(lab: Lab) -> None:
    initial = lab.initial("r1")
    smaller = initial.model_copy(update={"interfaces": initial.interfaces[:1]})
    with lab.driver("r1") as d:
        d.load_candidate(smaller, mode="replace")
        assert d.get_config("candidate") == smaller
        d.load_candidate(initial, mode="replace")
        assert d.diff() == ""


def test_edit_config_create_delete_remove_and_default_none(lab: Lab) -> None:
    with lab.driver("r2") as d:
        with pytest.raises(MergeConfigError) as err:
            d.load_candidate(itf_edit("eth1", "", op="create"))
        assert err.value.tag == "data-exists"
        assert err.value.path == "/interfaces/interface[name='eth1']"
        # delete a leaf that exists, with default-operation none
        d.load_candidate(
            itf_edit("eth1", f'<igp-cost xmlns="{NG}" xmlns:nc="{NC}" nc:operation="delete"/>'),
            mode="none",
        )
        assert lab.candidate("r2").interface("eth1").igp_cost is None
        assert lab.candidate("r2").interface("eth1").description == "to r1 eth1"
        with pytest.raises(MergeConfigError) as err:
            d.load_candidate(
                itf_edit("eth1", f'<igp-cost xmlns="{NG}" xmlns:nc="{NC}" nc:operation="delete"/>'),
                mode="none",
            )
        assert err.value.tag == "data-missing"
        d.load_candidate(  # remove of missing data is fine
            itf_edit("eth1", f'<igp-cost xmlns="{NG}" xmlns:nc="{NC}" nc:operation="remove"/>'),
            mode="none",
        )
        d.load_candidate(itf_edit("eth2", "", op="remove"), mode="none")
        assert [i.name for i in lab.candidate("r2").interfaces] == ["eth0", "eth1"]
        d.discard()
        d.load_candidate(itf_edit("eth2", "", op="delete"), mode="none")
        d.load_candidate(itf_edit("eth2", "<description>back</description>", op="create"),
                         mode="none")
        assert lab.candidate("r2").interface("eth2") == InterfaceConfig(
            name="eth2", description="back"
        )


def test_test_only_edit_checks_without_keeping(lab: Lab) -> None:
    with lab.driver("r1") as d:
        d.load_candidate(describe("eth1", "just testing"), test_only=True)
        assert lab.candidate("r1") == lab.initial("r1")
        with pytest.raises(MergeConfigError) as err:
            d.load_candidate(itf_edit("eth7", ""), test_only=True)
        assert err.value.tag == "invalid-value"
        assert err.value.path == "/interfaces/interface[name='eth7']"


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("body", "tag", "path"),
    [
        ("<mtu>1500</mtu>", "unknown-element", "/interfaces/interface[name='eth1']/mtu"),
        ("<enabled>maybe</enabled>", "invalid-value", "/interfaces/interface[name='eth1']/enabled"),
        (f'<igp-cost xmlns="{NG}">zero</igp-cost>', "invalid-value",
         "/interfaces/interface[name='eth1']/igp-cost"),
        (f'<igp-cost xmlns="{NG}">70000</igp-cost>', "invalid-value",
         "/interfaces/interface[name='eth1']/igp-cost"),
        ('<description xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="merj"/>',
         "bad-attribute", "/interfaces/interface/description"),
    ],
)
def test_bad_edit_is_refused_with_tag_and_path_and_changes_nothing(
    lab: Lab, body: str, tag: str, path: str
) -> None:
    with lab.driver("r1") as d:
        d.load_candidate(describe("eth1", "before"))
        before = lab.candidate("r1")
        with pytest.raises(MergeConfigError) as err:
            d.load_candidate(itf_edit("eth1", body))
        assert (err.value.tag, err.value.path) == (tag, path)
        assert err.value.device == "r1" and err.value.error_message
        assert lab.candidate("r1") == before
        assert lab.running("r1") == lab.initial("r1")
        d.get_config()  # the session still works


def test_malformed_xml_is_refused_before_sending(lab: Lab) -> None:
    with lab.driver("r1") as d:
        with pytest.raises(MergeConfigError) as err:
            d.load_candidate("<config><interfaces>")
        assert err.value.tag == "malformed-message"
        assert d.get_config() == lab.initial("r1")


def _read_until(chan: paramiko.Channel, marker: bytes, timeout: float = 5.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < deadline:
        chan.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = chan.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def _chunk(msg: str) -> bytes:
    data = msg.encode()
    return b"\n#%d\n%s\n##\n" % (len(data), data)


def test_agent_survives_malformed_and_hostile_messages(lab: Lab) -> None:
    sock = socket.create_connection(("127.0.0.1", lab.agents["r1"].port))
    transport = paramiko.Transport(sock)
    try:
        transport.connect(username=USER, password=PASSWORD)
        chan = transport.open_session()
        chan.invoke_subsystem("netconf")
        hello = _read_until(chan, b"]]>]]>")
        assert b"<session-id>" in hello
        chan.sendall(
            f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.1'
            "</capability></capabilities></hello>]]>]]>".encode()
        )
        cases = [
            ("<rpc message-id='1' xmlns='" + NC + "'><get>", b"malformed-message"),
            ('<!DOCTYPE x [<!ENTITY e "boom">]><rpc message-id="2" xmlns="' + NC
             + '"><get/></rpc>', b"malformed-message"),
            (f'<rpc xmlns="{NC}"><get/></rpc>', b"missing-attribute"),
            (f'<rpc message-id="3" xmlns="{NC}"><reboot-now/></rpc>', b"operation-not-supported"),
            (f'<rpc message-id="4" xmlns="{NC}"><get><bogus/></get></rpc>', b"unknown-element"),
            (f'<rpc message-id="5" xmlns="{NC}"><commit><confirmed/><confirm-timeout>soon'
             "</confirm-timeout></commit></rpc>", b"/rpc/commit/confirm-timeout"),
            (f'<rpc message-id="6" xmlns="{NC}"><edit-config><target><running/></target>'
             f"<config/></edit-config></rpc>", b"operation-not-supported"),
            (f'<rpc message-id="7" xmlns="{NC}"><get-config><source><startup/></source>'
             "</get-config></rpc>", b"invalid-value"),
            (f'<rpc message-id="8" xmlns="{NC}"><lock><target/></lock></rpc>',
             b"missing-element"),
        ]
        for msg, expected in cases:
            chan.sendall(_chunk(msg))
            reply = _read_until(chan, b"\n##\n")
            assert b"rpc-error>" in reply and expected in reply, (msg, reply)
            assert b"Traceback" not in reply
        chan.sendall(_chunk(f'<rpc message-id="9" xmlns="{NC}"><get-config><source><running/>'
                            "</source></get-config></rpc>"))
        reply = _read_until(chan, b"\n##\n")
        assert b"<hostname>r1</hostname>" in reply and b'message-id="9"' in reply
    finally:
        transport.close()
        sock.close()
    with lab.driver("r1") as d:  # and everyone else is fine
        assert d.get_config() == lab.initial("r1")


def test_unknown_rpc_and_inline_validate_through_ncclient(lab: Lab) -> None:
    with raw_session(lab, "r1") as m:
        with pytest.raises(ncops.RPCError) as err:
            m.dispatch(etree.fromstring("<make-coffee xmlns='urn:example:coffee'/>"))
        assert err.value.tag == "operation-not-supported"
        bad = etree.fromstring(
            f'<config xmlns="{NC}"><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system">'
            f'<hostname>r1</hostname></system><interfaces xmlns="{IF}"><interface><name>eth5'
            "</name></interface></interfaces></config>"
        )
        with pytest.raises(ncops.RPCError) as err:
            m.validate(source=bad)
        assert err.value.tag == "invalid-value" and "eth5" in err.value.message
        m.validate(source="running")


# --------------------------------------------------------------------------------------------
# validate, commit, confirmed commit


def test_validate_and_plain_commit(lab: Lab) -> None:
    with lab.driver("r1") as d:
        d.load_candidate(describe("eth1", "committed"))
        d.validate()
        d.commit()
        assert lab.running("r1").interface("eth1").description == "committed"
        assert lab.backend.effective("r1") == lab.running("r1")
        assert d.diff() == ""


def test_confirmed_commit_then_confirm(lab: Lab) -> None:
    with lab.driver("r1") as d:
        d.load_candidate(describe("eth1", "confirmed"))
        d.commit(confirm_timeout_s=30)
        assert lab.devices["r1"].confirm_pending
        assert lab.running("r1").interface("eth1").description == "confirmed"
        d.confirm()
        assert not lab.devices["r1"].confirm_pending
    assert lab.running("r1").interface("eth1").description == "confirmed"  # survives the close


def test_confirmed_commit_rolls_back_when_the_timeout_expires(lab: Lab) -> None:
    with lab.driver("r1") as d:
        d.load_candidate(describe("eth1", "short-lived"))
        d.commit(confirm_timeout_s=1)
        assert lab.backend.effective("r1").interface("eth1").description == "short-lived"
        deadline = time.monotonic() + 5
        while lab.devices["r1"].confirm_pending and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.get_config("running") == lab.initial("r1")
        assert lab.backend.effective("r1") == lab.initial("r1")
        assert d.get_config("candidate") == lab.initial("r1")  # the edit is gone as well
        with pytest.raises(CommitError) as err:
            d.cancel_commit()
        assert err.value.tag == "operation-failed"  # nothing is pending any more


def test_cancel_commit_restores_running(lab: Lab) -> None:
    with lab.driver("r3") as d:
        d.load_candidate(describe("eth1", "cancel me"))
        d.commit(confirm_timeout_s=30)
        d.rollback()
        assert d.get_config("running") == lab.initial("r3")
        assert d.get_config("candidate") == lab.initial("r3")
    lab.assert_pristine("r3")


def test_persistent_confirmed_commit_survives_the_session(lab: Lab) -> None:
    with lab.driver("r2") as d:
        d.load_candidate(describe("eth2", "persisted"))
        d.commit(confirm_timeout_s=30, persist="token-1")
    assert lab.devices["r2"].confirm_pending
    assert lab.running("r2").interface("eth2").description == "persisted"
    with lab.driver("r2") as other:
        with pytest.raises(CommitError) as err:
            other.confirm(persist_id="wrong")
        assert err.value.tag == "invalid-value"
        assert err.value.path == "/commit/persist-id"
        other.cancel_commit(persist_id="token-1")
    lab.assert_pristine("r2")
    with lab.driver("r2") as d:
        d.load_candidate(describe("eth2", "kept"))
        d.commit(confirm_timeout_s=30, persist="token-2")
    with lab.driver("r2") as other:
        other.confirm(persist_id="token-2")
    assert not lab.devices["r2"].confirm_pending
    assert lab.running("r2").interface("eth2").description == "kept"


def test_discard_changes(lab: Lab) -> None:
    with lab.driver("r1") as d:
        d.load_candidate(describe("eth1", "never"))
        assert d.diff()
        d.discard()
        assert d.diff() == ""
    lab.assert_pristine("r1")


# --------------------------------------------------------------------------------------------
# locks and sessions


def test_lock_contention_names_the_holder(lab: Lab) -> None:
    with lab.driver("r1") as first, lab.driver("r1") as second:
        first.lock("running")
        first.lock("candidate")
        assert first.locked == ("running", "candidate")
        for ds in ("running", "candidate"):
            with pytest.raises(LockError) as err:
                second.lock(ds)
            assert f"session {first.session_id}" in str(err.value)
            assert "lock-denied" in str(err.value)
        with pytest.raises(LockError) as err:
            second.load_candidate(describe("eth1", "not mine"))
        assert "in-use" in str(err.value)
        with pytest.raises(RpcError) as rerr:
            second.unlock("candidate")
        assert rerr.value.tag == "operation-failed"
        first.unlock("candidate")
        first.unlock("running")
        second.lock("candidate")
        second.unlock("candidate")
    lab.assert_pristine("r1")


def test_dirty_candidate_cannot_be_locked(lab: Lab) -> None:
    with lab.driver("r1") as first, lab.driver("r1") as second:
        first.load_candidate(describe("eth1", "dirty"))
        with pytest.raises(LockError) as err:
            second.lock("candidate")
        assert "uncommitted" in str(err.value)


def test_closing_a_session_releases_locks_and_rolls_back(lab: Lab) -> None:
    d = lab.driver("r2")
    d.open()
    d.lock("running")
    d.lock("candidate")
    d.load_candidate(describe("eth1", "unconfirmed"))
    d.commit(confirm_timeout_s=60)
    assert lab.running("r2").interface("eth1").description == "unconfirmed"
    d.close()
    d.close()  # idempotent
    deadline = time.monotonic() + 3
    while lab.devices["r2"].lock_owner(Datastore.RUNNING) is not None and (
        time.monotonic() < deadline
    ):
        time.sleep(0.01)
    lab.assert_pristine("r2")
    with lab.driver("r2") as other:
        other.lock("candidate")


def test_dropped_connection_also_releases_the_candidate(lab: Lab) -> None:
    d = lab.driver("r3")
    d.open()
    d.lock("candidate")
    d.load_candidate(describe("eth1", "abandoned"))
    d._m._session.close()  # the TCP connection dies without close-session
    deadline = time.monotonic() + 3
    while lab.devices["r3"].lock_owner(Datastore.CANDIDATE) is not None and (
        time.monotonic() < deadline
    ):
        time.sleep(0.01)
    lab.assert_pristine("r3")
    with pytest.raises(DeviceConnectionError):
        d.get_config()
    d.close()


def test_kill_session(lab: Lab) -> None:
    with lab.driver("r1") as victim, raw_session(lab, "r1") as m:
        victim.lock("candidate")
        victim.load_candidate(describe("eth1", "killed"))
        m.kill_session(str(victim.session_id))
        with pytest.raises(ncops.RPCError) as err:
            m.kill_session("999")
        assert err.value.tag == "invalid-value"
        lab.assert_pristine("r1")


def test_a_slow_reply_times_out_and_ends_the_session(lab: Lab) -> None:
    d = lab.driver("r1", timeout_s=0.2)
    d.open()
    d.lock("candidate")
    lab.backend.state_delay_s = 0.5
    with pytest.raises(DeviceTimeoutError, match=r"within 0\.2 s"):
        d.get_interfaces()
    assert d.session_id is None and d.locked == ()
    lab.backend.state_delay_s = 0.0
    deadline = time.monotonic() + 3
    while lab.devices["r1"].lock_owner(Datastore.CANDIDATE) is not None and (
        time.monotonic() < deadline
    ):
        time.sleep(0.01)
    with d:  # opens again
        d.lock("candidate")
        assert [s.name for s in d.get_interfaces()] == ["eth0", "eth1"]


def test_a_backend_bug_becomes_operation_failed_without_a_traceback(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    with lab.driver("r1") as d:
        lab.backend.state_broken = True
        with pytest.raises(RpcError) as err:
            d.get_interfaces()
        assert err.value.tag == "operation-failed"
        assert "exploded" not in str(err.value) and "Traceback" not in str(err.value)
        assert "counter source exploded" in caplog.text  # the agent's log has it
        lab.backend.state_broken = False
        assert len(d.get_interfaces()) == 2  # same session, still fine


def test_lock_denied_reports_the_holder_in_error_info(lab: Lab) -> None:
    with raw_session(lab, "r2") as first, raw_session(lab, "r2") as second:
        first.lock("running")
        with pytest.raises(ncops.RPCError) as err:
            second.lock("running")
        assert err.value.tag == "lock-denied" and err.value.type == "protocol"
        assert f"<nc:session-id>{first.session_id}</nc:session-id>" in err.value.info


def test_methods_need_an_open_session(lab: Lab) -> None:
    d = lab.driver("r1")
    with pytest.raises(DeviceConnectionError, match="open"):
        d.get_config()


def test_missing_capability_is_reported(lab: Lab) -> None:
    with lab.driver("r1") as d:
        d._caps = frozenset(c for c in d.capabilities if "confirmed-commit" not in c)
        with pytest.raises(CapabilityError, match="confirmed-commit"):
            d.commit(confirm_timeout_s=10)


# --------------------------------------------------------------------------------------------
# connecting: credentials, host keys, ports


def test_wrong_password_is_refused(lab: Lab) -> None:
    bad = lab.credentials.model_copy(update={"password": SecretStr("nope")})
    with pytest.raises(AuthenticationError, match="refused user"):
        lab.driver("r1", credentials=bad).open()
    wrong_user = lab.credentials.model_copy(update={"username": "mallory"})
    with pytest.raises(AuthenticationError):
        lab.driver("r1", credentials=wrong_user).open()


def test_closed_port_fails_fast_with_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = DeviceEntry(name="ghost", netconf_port=port, snmp_port=161)
    creds = NetconfCredentials(username=USER, password=SecretStr(PASSWORD))
    start = time.monotonic()
    with pytest.raises(DeviceConnectionError, match="cannot reach") as err:
        NetconfDriver(entry, creds, connect_timeout_s=2).open()
    assert time.monotonic() - start < 1.0
    assert err.value.device == "ghost"


def test_host_key_is_checked_against_known_hosts(lab: Lab, tmp_path: Path) -> None:
    with lab.driver("r1") as d:  # the fixture's known_hosts holds the real key
        assert d.session_id is not None
    forged = tmp_path / "forged_known_hosts"
    other = ed25519_key()
    forged.write_text(f"[127.0.0.1]:{lab.agents['r1'].port} {other.get_name()} "
                      f"{other.get_base64()}\n")
    creds = lab.credentials.model_copy(update={"known_hosts": forged})
    with pytest.raises(AuthenticationError, match="host key"):
        lab.driver("r1", credentials=creds).open()
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    creds = lab.credentials.model_copy(update={"known_hosts": empty})
    with pytest.raises(AuthenticationError, match="no host key"):
        lab.driver("r1", credentials=creds).open()


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_public_key_authentication(lab: Lab, tmp_path: Path, host_key: paramiko.PKey,
                                   kind: str) -> None:
    key_file = (
        write_ed25519(tmp_path / "id_ed25519") if kind == "ed25519"
        else write_key(paramiko.RSAKey.generate(2048), tmp_path / "id_rsa")
    )
    creds = NetconfCredentials(username=USER, key_file=key_file)
    with NetconfAgent(lab.devices["r1"], port=0, host_key=host_key, credentials=creds) as agent:
        entry = DeviceEntry(name="r1", netconf_port=agent.port, snmp_port=161)
        with NetconfDriver(entry, creds) as d:
            assert d.get_config() == lab.initial("r1")
        stranger = write_ed25519(tmp_path / "id_stranger")
        with pytest.raises(AuthenticationError):
            NetconfDriver(entry, NetconfCredentials(username=USER, key_file=stranger)).open()
        no_password = NetconfCredentials(username=USER, password=SecretStr(PASSWORD))
        with pytest.raises(AuthenticationError):  # this agent accepts keys only
            NetconfDriver(entry, no_password).open()


def test_port_in_use_is_refused_at_once(lab: Lab, host_key: paramiko.PKey) -> None:
    taken = lab.agents["r1"].port
    agent = NetconfAgent(lab.devices["r2"], port=taken, host_key=host_key,
                         credentials=lab.credentials)
    with pytest.raises(PortInUseError, match=str(taken)):
        agent.start()
    assert not agent.running
    agent.close()


def test_agent_binds_loopback_only_and_close_frees_everything(
    lab: Lab, host_key: paramiko.PKey
) -> None:
    before = threading.active_count()
    agent = NetconfAgent(lab.devices["r3"], port=0, host_key=host_key,
                         credentials=lab.credentials)
    agent.start()
    port = agent.port
    with socket.socket(socket.AF_INET6) as s6:  # '::' would have taken the IPv6 side too
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::1", port))
    entry = DeviceEntry(name="r3", netconf_port=port, snmp_port=161)
    d = NetconfDriver(entry, lab.credentials.model_copy(update={"known_hosts": None}))
    d.open()
    d.lock("candidate")
    agent.close()
    agent.close()  # idempotent
    assert lab.devices["r3"].lock_owner(Datastore.CANDIDATE) is None
    with NetconfAgent(lab.devices["r3"], port=port, host_key=host_key,
                      credentials=lab.credentials):
        pass  # the port is free again (a restart binds it at once)
    d.close()
    deadline = time.monotonic() + 3
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before


def test_many_concurrent_sessions(lab: Lab) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with lab.driver("r2") as d:
                for _ in range(5):
                    assert d.get_config().hostname == "r2"
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors


def test_measure_rpc_latency(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    import ncclient.transport.session

    monkeypatch.setattr(ncclient.transport.session, "TICK", 0.1)  # ncclient's default
    with lab.driver("r1") as d:
        stats = measure_rpc_latency(d, 10)
        assert set(stats) == {
            "get_config_ms", "get_config_p95_ms", "edit_config_ms", "edit_config_p95_ms",
            "commit_ms", "commit_p95_ms",
        }
        assert all(0 < v < 1000 for v in stats.values())
        assert stats["get_config_ms"] < 50  # ~100 ms would mean sends wait for ncclient's tick
    assert lab.running("r1") == lab.initial("r1")
