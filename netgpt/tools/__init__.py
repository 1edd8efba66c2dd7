"""The only code that talks to devices: config drivers, the change applier, SNMP.

Public API (the modules themselves are implementation):

* :class:`ConfigDriver` (contract), :class:`NetconfDriver` (NETCONF on ncclient);
* :func:`apply_changes`: all-or-nothing multi-device change with confirmed commits;
* results: :class:`DeviceResult`, :class:`ApplyResult`; :func:`config_diff`.

``NetconfDriver`` and its helpers load ncclient on first use, so importing
``netgpt.tools.snmp`` does not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from netgpt.tools.applier import apply_changes
from netgpt.tools.base import (
    ApplyResult,
    ConfigDriver,
    DatastoreName,
    DeviceAddress,
    DeviceResult,
    LoadMode,
    Outcome,
    config_diff,
    render_config,
)

if TYPE_CHECKING:
    from netgpt.tools.netconf import NetconfDriver, measure_rpc_latency, netconf_drivers

__all__ = [
    "ApplyResult",
    "ConfigDriver",
    "DatastoreName",
    "DeviceAddress",
    "DeviceResult",
    "LoadMode",
    "NetconfDriver",
    "Outcome",
    "apply_changes",
    "config_diff",
    "measure_rpc_latency",
    "netconf_drivers",
    "render_config",
]

_LAZY = {"NetconfDriver", "measure_rpc_latency", "netconf_drivers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("netgpt.tools.netconf"), name)
    raise AttributeError(f"module 'netgpt.tools' has no attribute {name!r}")
