"""Contracts of the device side of the wire.

A device agent (NETCONF + SNMP front) keeps datastores in a
:class:`~netgpt.sim_networks.device.Device`;
what makes committed configuration real, and what reports live interface state, is a
:class:`DeviceBackend`: the digital twin's live state in the embedded network, a Linux network
namespace in the lab. Nothing above ``tools`` imports this module.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from netgpt.device_config import DeviceConfig
from netgpt.yang_xml import InterfaceState

__all__ = ["DeviceBackend"]


@runtime_checkable
class DeviceBackend(Protocol):
    """Makes one network's device configs real and reports their interfaces' live state."""

    def validate(self, device: str, config: DeviceConfig) -> None:
        """Raise :class:`~netgpt.errors.ConfigValidationError` if ``config`` cannot be applied.

        Checks what the model alone cannot: e.g. that every configured interface exists on the
        device. Must not change anything.
        """
        ...

    def apply(self, device: str, config: DeviceConfig) -> None:
        """Make ``config`` the device's effective configuration (called after commit/rollback).

        ``config`` has passed :meth:`validate`. Must be all-or-nothing for the device.
        """
        ...

    def interface_states(self, device: str) -> list[InterfaceState]:
        """Live state of every interface of ``device``, in ifIndex order (eth0 first)."""
        ...
