"""Contracts of the device tools: the :class:`ConfigDriver` protocol and the results of a change.

A config driver speaks to one device in NAPALM's manner: open, lock, load a candidate, diff,
validate, commit (confirmed, with a timeout), confirm or roll back, discard, unlock, close. The
change applier (:mod:`netgpt.tools.applier`) drives any number of them all-or-nothing and rolls the
outcome up into an :class:`ApplyResult` of per-device :class:`DeviceResult` rows (Nornir's
``Result``/``AggregatedResult``). Drivers raise only :mod:`netgpt.errors` exceptions.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from lxml import etree

from netgpt.device_config import DeviceConfig
from netgpt.yang_xml import InterfaceState, config_to_xml

__all__ = [
    "ApplyResult",
    "ConfigDriver",
    "DatastoreName",
    "DeviceAddress",
    "DeviceResult",
    "LoadMode",
    "Outcome",
    "config_diff",
    "render_config",
]

DatastoreName = Literal["running", "candidate"]
"""The configuration datastores a driver reads, locks and edits."""

LoadMode = Literal["merge", "replace", "none"]
"""How a loaded config meets the candidate: ``merge`` into it, ``replace`` it whole, or ``none``
(only the explicit ``nc:operation`` attributes of an XML edit act)."""

Outcome = Literal["applied", "rolled_back", "failed", "dry_run", "no_change"]
"""What a multi-device change came to (see :class:`ApplyResult`)."""


class DeviceAddress(Protocol):
    """Where a device's NETCONF agent listens (an inventory ``DeviceEntry`` is one)."""

    @property
    def name(self) -> str:
        """The device's inventory name."""
        ...

    @property
    def host(self) -> str:
        """Address of the device's management interface."""
        ...

    @property
    def netconf_port(self) -> int:
        """TCP port of its NETCONF/SSH server."""
        ...


@runtime_checkable
class ConfigDriver(Protocol):
    """One device's configuration lifecycle. Every method raises only ``netgpt.errors`` types.

    A driver is created closed; :meth:`open` (or ``with``) connects. Methods other than
    :meth:`open` and :meth:`close` raise :class:`~netgpt.errors.DeviceConnectionError` on a
    closed driver. A driver is used by one thread at a time.
    """

    @property
    def name(self) -> str:
        """The device this driver talks to."""
        ...

    @property
    def capabilities(self) -> frozenset[str]:
        """Capability URIs the device advertised (empty before :meth:`open`)."""
        ...

    def open(self) -> None:
        """Connect and authenticate; a no-op when already open.

        Raises :class:`~netgpt.errors.DeviceConnectionError` (refused, unreachable),
        :class:`~netgpt.errors.AuthenticationError` (credentials or host key refused) or
        :class:`~netgpt.errors.DeviceTimeoutError`.
        """
        ...

    def close(self) -> None:
        """End the session (the device releases its locks and rolls back an unconfirmed commit).

        Idempotent; never raises for a connection that is already gone.
        """
        ...

    def __enter__(self) -> Self:
        """Open and return the driver."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the driver."""
        ...

    def get_config(self, source: DatastoreName = "running") -> DeviceConfig:
        """Return the whole configuration held in ``source``."""
        ...

    def get_interfaces(self) -> list[InterfaceState]:
        """Return the operational state of every interface (status, speed, counters)."""
        ...

    def load_candidate(
        self, config: DeviceConfig | etree._Element, *, mode: LoadMode = "merge"
    ) -> None:
        """Load ``config`` into the candidate; nothing is running yet.

        A :class:`DeviceConfig` is sent whole; ``mode="replace"`` makes it the entire candidate.
        An XML ``<config>`` element is sent as an ``edit-config`` (its ``nc:operation``
        attributes act). All-or-nothing: on :class:`~netgpt.errors.MergeConfigError` the
        candidate is unchanged.
        """
        ...

    def diff(self) -> str:
        """Return the unified diff running -> candidate (:func:`config_diff`); ``""`` if equal."""
        ...

    def validate(self) -> None:
        """Have the device check the candidate; :class:`~netgpt.errors.CommitError` if refused."""
        ...

    def commit(self, *, confirm_timeout_s: int | None = None) -> None:
        """Make the candidate running.

        With ``confirm_timeout_s`` the commit is *confirmed*: the device rolls it back by itself
        after that many seconds, or when this session ends, unless :meth:`confirm` comes first.
        Raises :class:`~netgpt.errors.CommitError` (nothing changed) or
        :class:`~netgpt.errors.CapabilityError` when the device lacks ``:confirmed-commit``.
        """
        ...

    def confirm(self) -> None:
        """Confirm the pending confirmed commit (it stays)."""
        ...

    def cancel_commit(self) -> None:
        """Roll the pending confirmed commit back now (running and candidate as before it)."""
        ...

    def rollback(self) -> None:
        """Do what :meth:`cancel_commit` does (NAPALM's name for it)."""
        ...

    def discard(self) -> None:
        """Throw the candidate's uncommitted changes away (candidate := running)."""
        ...

    def lock(self, datastore: DatastoreName = "candidate") -> None:
        """Lock ``datastore``; :class:`~netgpt.errors.LockError` names the holder."""
        ...

    def unlock(self, datastore: DatastoreName = "candidate") -> None:
        """Release this session's lock on ``datastore``."""
        ...


# --------------------------------------------------------------------------------------------
# diffs


def render_config(config: DeviceConfig) -> str:
    """Render the config as the device's XML (``config_to_xml``), pretty-printed.

    Stable: the same config always renders to the same text, so diffs show only real changes.
    """
    text: str = etree.tostring(config_to_xml(config), encoding="unicode", pretty_print=True)
    return text


def config_diff(
    old: DeviceConfig,
    new: DeviceConfig,
    *,
    old_label: str = "running",
    new_label: str = "candidate",
) -> str:
    """Return a unified diff of the two configs' XML renderings; ``""`` when they are equal."""
    if old == new:
        return ""
    lines = difflib.unified_diff(
        render_config(old).splitlines(keepends=True),
        render_config(new).splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class DeviceResult:
    """What a change did on one device.

    ``changed``: the change is in effect on the device now (committed and confirmed).
    ``diff``: the proposed change, running to candidate, even when it was not applied.
    ``failed``/``error``: this device failed (or could not be restored); ``error`` says how.
    """

    device: str
    changed: bool = False
    diff: str = ""
    failed: bool = False
    error: str | None = None


@dataclass(frozen=True)
class ApplyResult:
    """The per-device results of one multi-device change and what it came to.

    ``outcome``:

    * ``applied``: every device with a diff committed and confirmed.
    * ``no_change``: no device had a diff; nothing was committed.
    * ``dry_run``: diffs were computed and every candidate discarded.
    * ``failed``: a step before any commit failed; nothing was committed anywhere.
    * ``rolled_back``: commits happened, then a commit, the verification or a confirm failed, and
      every committed device was rolled back (a device whose roll-back failed is marked failed;
      its confirmed commit still expires by itself).

    ``error`` says why a change did not apply (the first device error, or the verification's
    verdict).
    """

    results: tuple[DeviceResult, ...]
    outcome: Outcome
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the change went as asked (applied, no change needed, or a clean dry run)."""
        return self.outcome in ("applied", "no_change", "dry_run") and not self.failed_devices

    @property
    def failed_devices(self) -> list[str]:
        """Devices that failed, in result order."""
        return [r.device for r in self.results if r.failed]

    @property
    def changed_devices(self) -> list[str]:
        """Devices whose configuration changed and stayed changed."""
        return [r.device for r in self.results if r.changed]

    def __getitem__(self, device: str) -> DeviceResult:
        """Return the result of ``device``; ``KeyError`` names the devices that have one."""
        for r in self.results:
            if r.device == device:
                return r
        raise KeyError(f"no result for device {device!r}; have {[r.device for r in self.results]}")

    def summary(self) -> str:
        """One line for the outcome, then one per device."""
        head = f"{self.outcome}: {len(self.results)} device(s)"
        if self.changed_devices:
            head += f", changed {', '.join(self.changed_devices)}"
        if self.failed_devices:
            head += f", failed {', '.join(self.failed_devices)}"
        if self.error:
            head += f" ({self.error})"
        lines = [head]
        for r in self.results:
            state = "failed" if r.failed else ("changed" if r.changed else "unchanged")
            diff_lines = sum(
                1
                for line in r.diff.splitlines()
                if line[:1] in "+-" and not line.startswith(("+++", "---"))
            )
            detail = f" ({r.error})" if r.error else ""
            lines.append(f"  {r.device}: {state}, {diff_lines} diff line(s){detail}")
        return "\n".join(lines)
