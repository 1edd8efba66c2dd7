"""The all-or-nothing change applier against real NETCONF agents on loopback."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from netgpt.device_config import DeviceConfig, InterfaceConfig
from netgpt.errors import CommitError, ConfigError
from netgpt.inventory import (
    Credentials,
    DeviceEntry,
    Inventory,
    NetconfCredentials,
    SnmpCredentials,
    save_credentials,
)
from netgpt.sim_networks.device import Datastore
from netgpt.tools import ApplyResult, ConfigDriver, apply_changes
from netgpt.tools.netconf import NetconfDriver, netconf_drivers
from tests.integration.netconf_fixtures import (
    FAIL_ON_APPLY,
    PASSWORD,
    USER,
    Lab,
    host_key,
    lab,
)

__all__ = ["host_key", "lab"]  # fixtures

pytestmark = pytest.mark.integration


def described(config: DeviceConfig, interface: str, text: str) -> DeviceConfig:
    return config.with_interface(
        config.interface(interface).model_copy(update={"description": text})
    )


def drivers(lab: Lab) -> Callable[[str], ConfigDriver]:
    return lambda name: lab.driver(name)


def disable_link_changes(lab: Lab) -> dict[str, DeviceConfig]:
    """Disable the r1-r2 link at both ends (a typical two-device change)."""
    r1, r2 = lab.initial("r1"), lab.initial("r2")
    return {
        "r1": r1.with_interface(r1.interface("eth1").model_copy(update={"enabled": False})),
        "r2": r2.with_interface(r2.interface("eth1").model_copy(update={"enabled": False})),
    }


def test_success_commits_every_device_with_a_diff(lab: Lab) -> None:
    changes = disable_link_changes(lab)
    changes["r3"] = lab.initial("r3")  # no diff: not committed
    seen_during_verify: list[bool] = []

    def verify() -> bool:
        with lab.driver("r1") as d:  # the change is live while unconfirmed
            seen_during_verify.append(not d.get_config().interface("eth1").enabled)
        return all(lab.devices[n].confirm_pending for n in ("r1", "r2"))

    result = apply_changes(changes, drivers(lab), dry_run=False, verify=verify)
    assert result.outcome == "applied", result.summary()
    assert result.ok and result.error is None
    assert seen_during_verify == [True]
    assert result.changed_devices == ["r1", "r2"]
    assert result["r3"].diff == "" and not result["r3"].changed
    assert "<enabled>false</enabled>" in result["r1"].diff
    for name in ("r1", "r2"):
        assert lab.running(name) == changes[name]
        assert lab.backend.effective(name) == changes[name]
        assert lab.backend.applied[name] == [lab.initial(name), changes[name]]  # once
    assert lab.backend.applied["r3"] == [lab.initial("r3")]
    for dev in lab.devices.values():
        assert dev.lock_owner(Datastore.RUNNING) is None
        assert dev.lock_owner(Datastore.CANDIDATE) is None
        assert not dev.confirm_pending
        assert dev.config(Datastore.CANDIDATE) == dev.config(Datastore.RUNNING)
    assert "applied: 3 device(s), changed r1, r2" in result.summary()


def test_dry_run_changes_nothing_and_returns_the_diffs(lab: Lab) -> None:
    changes = disable_link_changes(lab)
    result = apply_changes(changes, drivers(lab))  # dry_run is the default
    assert result.outcome == "dry_run" and result.ok
    assert not result.changed_devices and not result.failed_devices
    for name in ("r1", "r2"):
        assert "-      <enabled>true</enabled>" in result[name].diff
        assert "+      <enabled>false</enabled>" in result[name].diff
    for name in lab.devices:
        lab.assert_pristine(name)


def test_no_change_when_configs_already_match(lab: Lab) -> None:
    changes = {n: lab.initial(n) for n in lab.devices}
    result = apply_changes(changes, drivers(lab), dry_run=False)
    assert result.outcome == "no_change" and result.ok
    assert all(r.diff == "" for r in result.results)
    for name in lab.devices:
        lab.assert_pristine(name)
    assert apply_changes({}, drivers(lab), dry_run=False).outcome == "no_change"


def test_one_device_refusing_its_part_leaves_every_device_unchanged(lab: Lab) -> None:
    changes = disable_link_changes(lab)
    r3 = lab.initial("r3")
    changes["r3"] = r3.with_interface(InterfaceConfig(name="eth7", description="no such port"))
    result = apply_changes(changes, drivers(lab), dry_run=False)
    assert result.outcome == "failed" and not result.ok
    assert result.failed_devices == ["r3"]
    assert "load candidate" in (result["r3"].error or "")
    assert "eth7" in (result["r3"].error or "")
    assert result.error is not None and result.error.startswith("r3: load candidate: r3 has no")
    assert result["r1"].diff and not result["r1"].failed and not result["r1"].changed
    for name in lab.devices:
        lab.assert_pristine(name)
        assert lab.backend.applied[name] == [lab.initial(name)]  # nothing was ever applied


def test_a_commit_failure_rolls_back_devices_already_committed(lab: Lab) -> None:
    changes = disable_link_changes(lab)
    changes["r3"] = described(lab.initial("r3"), "eth1", FAIL_ON_APPLY)
    result = apply_changes(changes, drivers(lab), dry_run=False)
    assert result.outcome == "rolled_back", result.summary()
    assert result.failed_devices == ["r3"]
    assert "commit" in (result["r3"].error or "")
    assert not result.changed_devices
    for name in lab.devices:
        lab.assert_pristine(name)
    for name in ("r1", "r2"):  # applied, then rolled back
        assert lab.backend.applied[name][1] == changes[name]
        assert lab.backend.applied[name][-1] == lab.initial(name)


@pytest.mark.parametrize("verdict", [False, "latency to r3 rose to 80 ms", "raise"])
def test_failed_verification_rolls_everything_back(lab: Lab, verdict: bool | str) -> None:
    def verify() -> bool | str:
        if verdict == "raise":
            raise RuntimeError("probe crashed")
        return verdict

    result = apply_changes(disable_link_changes(lab), drivers(lab), dry_run=False, verify=verify)
    assert result.outcome == "rolled_back"
    assert not result.failed_devices and not result.changed_devices
    expected = {False: "verification failed", "raise": "verification raised RuntimeError: probe "
                "crashed"}.get(verdict, verdict)
    assert result.error == expected
    for name in lab.devices:
        lab.assert_pristine(name)


class ConfirmRefused:
    """A real driver whose confirm is refused (a device failing between commit and confirm)."""

    def __init__(self, inner: NetconfDriver) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def confirm(self) -> None:
        raise CommitError("confirm refused by test", device=self.inner.name, tag="operation-failed")


def test_a_confirm_failure_restores_devices_already_confirmed(lab: Lab) -> None:
    def make(name: str) -> ConfigDriver:
        driver = lab.driver(name)
        return ConfirmRefused(driver) if name == "r2" else driver  # type: ignore[return-value]

    result = apply_changes(disable_link_changes(lab), make, dry_run=False)
    assert result.outcome == "rolled_back", result.summary()
    assert result.failed_devices == ["r2"]
    assert "confirm refused by test" in (result["r2"].error or "")
    assert not result.changed_devices
    for name in lab.devices:
        lab.assert_pristine(name)


def test_unreachable_device_fails_the_change_before_any_commit(lab: Lab) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    def make(name: str) -> ConfigDriver:
        if name == "r2":
            entry = DeviceEntry(name="r2", netconf_port=closed_port, snmp_port=161)
            return NetconfDriver(entry, lab.credentials)
        return lab.driver(name)

    result = apply_changes(disable_link_changes(lab), make, dry_run=False)
    assert result.outcome == "failed"
    assert result.failed_devices == ["r2"]
    assert "connect" in (result["r2"].error or "")
    for name in lab.devices:
        lab.assert_pristine(name)


def test_a_lock_held_elsewhere_fails_the_change(lab: Lab) -> None:
    with lab.driver("r1") as other:
        other.lock("candidate")
        result = apply_changes(disable_link_changes(lab), drivers(lab), dry_run=False)
        assert result.outcome == "failed"
        assert result.failed_devices == ["r1"]
        assert f"session {other.session_id}" in (result["r1"].error or "")
        assert lab.devices["r1"].lock_owner(Datastore.CANDIDATE) == other.session_id
    for name in lab.devices:
        lab.assert_pristine(name)


def test_merge_mode_and_a_driver_mapping(lab: Lab) -> None:
    r1 = lab.initial("r1")
    only_eth1 = DeviceConfig(
        hostname="r1", interfaces=(r1.interface("eth1").model_copy(update={"igp_cost": 50}),)
    )
    result = apply_changes(
        {"r1": only_eth1}, {"r1": lab.driver("r1")}, dry_run=False, mode="merge"
    )
    assert result.outcome == "applied"
    assert lab.running("r1").interface("eth1").igp_cost == 50
    assert lab.running("r1").interface("eth0") == r1.interface("eth0")  # merge kept eth0
    missing = apply_changes({"r2": lab.initial("r2")}, {"r1": lab.driver("r1")}, dry_run=False)
    assert missing.outcome == "failed" and "no driver for device 'r2'" in (missing.error or "")


def test_drivers_from_an_inventory(lab: Lab, tmp_path: Path) -> None:
    creds_file = tmp_path / "credentials.yaml"
    save_credentials(
        creds_file,
        {"default": Credentials(
            netconf=NetconfCredentials(username=USER, password=SecretStr(PASSWORD),
                                       known_hosts=lab.known_hosts),
            snmp=SnmpCredentials(),
        )},
    )
    inventory = Inventory(
        network="test", credentials_file=creds_file,
        devices=[lab.entry(n) for n in lab.devices],
    )
    result = apply_changes(disable_link_changes(lab), netconf_drivers(inventory), dry_run=False)
    assert result.outcome == "applied"
    unknown = apply_changes({"r9": lab.initial("r1")}, netconf_drivers(inventory), dry_run=False)
    assert unknown.outcome == "failed" and "r9" in (unknown.error or "")


def test_bad_arguments_raise(lab: Lab) -> None:
    with pytest.raises(ConfigError):
        apply_changes({}, drivers(lab), confirm_timeout_s=0)
    with pytest.raises(ConfigError):
        apply_changes({}, drivers(lab), mode="overwrite")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apply_changes({"r1": "hostname r1"}, drivers(lab))  # type: ignore[dict-item]


def test_result_helpers() -> None:
    from netgpt.tools import DeviceResult

    result = ApplyResult(
        results=(
            DeviceResult("a", changed=True, diff="--- running\n+++ candidate\n-x\n+y\n"),
            DeviceResult("b", failed=True, error="commit: refused"),
        ),
        outcome="rolled_back",
        error="b: commit: refused",
    )
    assert result.failed_devices == ["b"] and result.changed_devices == ["a"]
    assert not result.ok
    assert result.summary().splitlines() == [
        "rolled_back: 2 device(s), changed a, failed b (b: commit: refused)",
        "  a: changed, 2 diff line(s)",
        "  b: failed, 0 diff line(s) (commit: refused)",
    ]
    with pytest.raises(KeyError, match="have \\['a', 'b'\\]"):
        result["c"]
