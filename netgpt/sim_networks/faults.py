"""Faults the embedded network can be told to have, for reliability tests and benchmarks.

A :class:`FaultPlan` says, per device, what goes wrong: the candidate refused at validation, the
commit refused or stalled, the NETCONF agent cut off (every session dropped and the agent
restarted, as a crashed and respawned process would be) just before or just after a commit; and
network-wide, the fraction of SNMP requests the agents drop. :class:`FaultyBackend` wraps the
network's real :class:`~netgpt.sim_networks.base.DeviceBackend` and consults the plan on every
call, so a fault takes effect on the next operation and clears the moment it is removed.

Nothing here is used unless a network is built with a plan: the default path has no hooks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netgpt.device_config import DeviceConfig
from netgpt.errors import ConfigValidationError
from netgpt.sim_networks.base import DeviceBackend
from netgpt.yang_xml import InterfaceState

__all__ = ["DeviceFault", "FaultPlan", "FaultyBackend"]


@dataclass
class DeviceFault:
    """What one device does wrong, once (every field off by default).

    A fault fires on the first validation (``refuse_validate``) or the first commit (the others)
    and is then gone, so the roll-back that follows goes through normally.

    ``refuse_validate``/``refuse_commit``: the message of the error the device answers with.
    ``stall_commit_s``: the commit hangs this long before it goes ahead (a client with a shorter
    timeout gives up). ``cut_before_reply``: the agent is cut off (sessions dropped, restarted)
    while the commit is being applied, so the client never sees a reply; ``cut_after_commit``:
    the commit is applied and answered, then the agent is cut off before any confirm arrives.
    """

    refuse_validate: str | None = None
    refuse_commit: str | None = None
    stall_commit_s: float = 0.0
    cut_before_reply: bool = False
    cut_after_commit: bool = False


@dataclass
class FaultPlan:
    """The faults in force now; change it at any time (reads are per operation)."""

    devices: dict[str, DeviceFault] = field(default_factory=dict)
    snmp_drop: float = 0.0  # fraction of SNMP requests every agent drops, 0..1
    cuts: list[tuple[str, float]] = field(default_factory=list)  # (device, monotonic time)

    def clear(self) -> None:
        """No faults any more."""
        self.devices.clear()
        self.snmp_drop = 0.0

    def fault(self, device: str) -> DeviceFault | None:
        """The fault armed on ``device``, if any."""
        return self.devices.get(device)

    def trigger(self, device: str) -> DeviceFault | None:
        """Take the fault armed on ``device`` (one-shot: a rollback then works normally)."""
        return self.devices.pop(device, None)


class FaultyBackend:
    """A :class:`DeviceBackend` that does what ``plan`` says before handing on to ``inner``.

    ``cut_agent(device)`` drops every NETCONF session of a device and restarts its agent; it is
    called from a thread of its own, never from the RPC being handled.
    """

    def __init__(
        self, inner: DeviceBackend, plan: FaultPlan, cut_agent: Callable[[str], None]
    ) -> None:
        self.inner = inner
        self.plan = plan
        self._cut_agent = cut_agent

    def validate(self, device: str, config: DeviceConfig) -> None:
        """Refuse when the plan says so, else validate for real."""
        fault = self.plan.fault(device)
        if fault is not None and fault.refuse_validate:
            self.plan.trigger(device)
            raise ConfigValidationError(f"{device}: {fault.refuse_validate}", tag="invalid-value")
        self.inner.validate(device, config)

    def apply(self, device: str, config: DeviceConfig) -> None:
        """Stall, refuse or cut the agent off around the real apply, as the plan says."""
        fault = self.plan.fault(device)
        if fault is None or fault.refuse_validate:
            self.inner.apply(device, config)
            return
        self.plan.trigger(device)  # one-shot: the rollback that follows must work
        if fault.stall_commit_s > 0:
            time.sleep(fault.stall_commit_s)
        if fault.refuse_commit:
            raise ConfigValidationError(f"{device}: {fault.refuse_commit}", tag="operation-failed")
        if fault.cut_before_reply:
            self._cut(device)
            time.sleep(0.5)  # the sessions go before this RPC can answer
            raise ConfigValidationError(f"{device}: agent restarted", tag="operation-failed")
        self.inner.apply(device, config)
        if fault.cut_after_commit:
            self._cut(device)  # as soon as the commit is in: before any confirm can come

    def interface_states(self, device: str) -> list[InterfaceState]:
        """Live state from the real backend."""
        return self.inner.interface_states(device)

    def _cut(self, device: str, *, delay_s: float = 0.0) -> None:
        self.plan.cuts.append((device, time.monotonic()))

        def run() -> None:
            time.sleep(delay_s)
            self._cut_agent(device)

        threading.Thread(target=run, name=f"fault-cut-{device}", daemon=True).start()
