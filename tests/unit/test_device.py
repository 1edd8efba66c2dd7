"""Datastore semantics of the shared device model (RFC 6241), through a recording backend."""

import time

import pytest
from lxml import etree

from netgpt.device_config import DeviceConfig
from netgpt.errors import ConfigValidationError
from netgpt.sim_networks.device import Datastore, Device, DeviceOperationError
from netgpt.sim_networks.topology import build_topology
from netgpt.yang_xml import InterfaceState

pytestmark = pytest.mark.unit

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"


class RecordingBackend:
    """Applies nothing real: records what a device made effective, refuses interface eth9."""

    def __init__(self) -> None:
        self.applied: list[DeviceConfig] = []

    def validate(self, device: str, config: DeviceConfig) -> None:
        for itf in config.interfaces:
            if itf.name == "eth9":
                raise ConfigValidationError("no eth9 here", path="/interfaces", tag="invalid-value")

    def apply(self, device: str, config: DeviceConfig) -> None:
        self.applied.append(config)

    def interface_states(self, device: str) -> list[InterfaceState]:
        return []


def disable(name: str = "eth1") -> etree._Element:
    return etree.fromstring(
        f'<config xmlns="{NC}"><interfaces xmlns="{IF}"><interface><name>{name}</name>'
        "<enabled>false</enabled></interface></interfaces></config>"
    )


@pytest.fixture
def device():
    backend = RecordingBackend()
    dev = Device("r2", build_topology("linear,3").initial_config("r2"), backend)
    yield dev, backend
    dev.close()


def enabled(dev: Device, ds: Datastore = Datastore.RUNNING) -> bool:
    return dev.config(ds).interface("eth1").enabled


def test_edit_goes_to_candidate_and_commit_applies(device):
    dev, backend = device
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    assert not enabled(dev, Datastore.CANDIDATE) and enabled(dev)
    dev.commit(1)
    assert not enabled(dev)
    assert not backend.applied[-1].interface("eth1").enabled


def test_running_is_not_writable(device):
    dev, _ = device
    with pytest.raises(DeviceOperationError) as err:
        dev.edit_config(Datastore.RUNNING, disable(), session=1)
    assert err.value.tag == "operation-not-supported"


def test_backend_refusal_changes_nothing(device):
    dev, _ = device
    before = dev.config(Datastore.CANDIDATE)
    with pytest.raises(ConfigValidationError):
        dev.edit_config(Datastore.CANDIDATE, disable("eth9"), session=1)
    assert dev.config(Datastore.CANDIDATE) == before


def test_discard_changes(device):
    dev, _ = device
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    dev.copy_running_to_candidate(1)
    assert enabled(dev, Datastore.CANDIDATE)


def test_lock_contention_and_release_on_close(device):
    dev, _ = device
    dev.lock(Datastore.CANDIDATE, 1)
    with pytest.raises(DeviceOperationError) as err:
        dev.lock(Datastore.CANDIDATE, 2)
    assert err.value.tag == "lock-denied" and err.value.session == 1
    with pytest.raises(DeviceOperationError) as err2:
        dev.edit_config(Datastore.CANDIDATE, disable(), session=2)
    assert err2.value.tag == "in-use"
    dev.session_closed(1)
    dev.lock(Datastore.CANDIDATE, 2)
    assert dev.lock_owner(Datastore.CANDIDATE) == 2


def test_lock_denied_when_candidate_dirty(device):
    dev, _ = device
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    with pytest.raises(DeviceOperationError, match="uncommitted"):
        dev.lock(Datastore.CANDIDATE, 2)


def test_confirmed_commit_rolls_back_on_timeout(device):
    dev, backend = device
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    dev.commit(1, confirmed=True, confirm_timeout_s=1)
    assert not enabled(dev) and dev.confirm_pending
    deadline = time.monotonic() + 3
    while dev.confirm_pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert enabled(dev) and enabled(dev, Datastore.CANDIDATE)
    assert backend.applied[-1].interface("eth1").enabled


def test_confirming_commit_keeps_change(device):
    dev, _ = device
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    dev.commit(1, confirmed=True, confirm_timeout_s=1)
    dev.commit(1)
    time.sleep(1.2)
    assert not enabled(dev) and not dev.confirm_pending


def test_only_issuing_session_confirms_unless_persist(device):
    dev, _ = device
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    dev.commit(1, confirmed=True, confirm_timeout_s=30)
    with pytest.raises(DeviceOperationError) as err:
        dev.commit(2)
    assert err.value.tag == "in-use"
    dev.cancel_commit(1)
    assert enabled(dev)
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    dev.commit(1, confirmed=True, confirm_timeout_s=30, persist="p1")
    dev.session_closed(1)
    assert not enabled(dev)  # persistent: survives the session
    with pytest.raises(DeviceOperationError):
        dev.commit(2, persist_id="wrong")
    dev.commit(2, persist_id="p1")
    assert not dev.confirm_pending and not enabled(dev)


def test_session_close_rolls_back_unconfirmed_commit(device):
    dev, _ = device
    dev.edit_config(Datastore.CANDIDATE, disable(), session=1)
    dev.commit(1, confirmed=True, confirm_timeout_s=30)
    dev.session_closed(1)
    assert enabled(dev) and not dev.confirm_pending


def test_bad_confirm_timeout_and_cancel_without_pending(device):
    dev, _ = device
    with pytest.raises(DeviceOperationError, match="confirm-timeout"):
        dev.commit(1, confirmed=True, confirm_timeout_s=0)
    with pytest.raises(DeviceOperationError, match="no confirmed commit"):
        dev.cancel_commit(1)


def test_system_group_is_writable(device):
    dev, _ = device
    dev.set_system(location="rack 4", contact="ops@example.net")
    assert (dev.system.location, dev.system.contact) == ("rack 4", "ops@example.net")
