"""``Device``: one emulated or lab device's datastores, locks, confirmed commit and system group.

The NETCONF and SNMP fronts of a device agent share one :class:`Device`. It implements the
datastore semantics of RFC 6241 (``running`` + ``candidate``, ``lock``/``unlock``,
``discard-changes``, ``validate``, ``commit`` with ``confirmed`` / ``confirm-timeout`` /
``persist``,
``cancel-commit``); what makes a committed config real is the injected
:class:`~netgpt.sim_networks.base.DeviceBackend`. Thread-safe: NETCONF sessions run in threads and
the SNMP agent in an event loop thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from netgpt.device_config import DeviceConfig
from netgpt.errors import ConfigValidationError
from netgpt.sim_networks.base import DeviceBackend
from netgpt.yang_xml import EditOperation, InterfaceState, apply_edit

__all__ = ["Datastore", "Device", "DeviceOperationError", "SystemGroup"]

MAX_CONFIRM_TIMEOUT_S = 24 * 3600


class Datastore(StrEnum):
    """NETCONF configuration datastores a device has."""

    RUNNING = "running"
    CANDIDATE = "candidate"


class DeviceOperationError(ConfigValidationError):
    """A datastore operation refused for a protocol reason (lock held, nothing to confirm...).

    ``tag`` is the NETCONF error-tag (``lock-denied``, ``in-use``, ``operation-failed``,
    ``invalid-value``...); ``session`` the session id holding a lock, when relevant.
    """

    def __init__(
        self, message: str, *, tag: str, path: str = "", session: int | None = None
    ) -> None:
        super().__init__(message, path=path, tag=tag)
        self.session = session


@dataclass
class SystemGroup:
    """SNMPv2-MIB system group values; contact and location are writable."""

    descr: str
    contact: str = "noc@netgpt.example"
    location: str = ""
    object_id: str = "1.3.6.1.4.1.8072.3.2.10"  # net-snmp's linux sysObjectID, a plain router


@dataclass
class _PendingConfirm:
    rollback_to: DeviceConfig
    session: int
    persist: str | None
    deadline: float
    timer: threading.Timer


class Device:
    """Datastores and system state of one device, backed by a :class:`DeviceBackend`."""

    def __init__(
        self,
        name: str,
        initial: DeviceConfig,
        backend: DeviceBackend,
        *,
        system: SystemGroup | None = None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        backend.validate(name, initial)
        self.name = name
        self._backend = backend
        self._lock = threading.RLock()
        self._running = initial
        self._candidate = initial
        self._locks: dict[Datastore, int] = {}
        self._pending: _PendingConfirm | None = None
        self._on_event = on_event or (lambda device, message: None)
        self.system = system or SystemGroup(descr=f"NetGPT emulated router {name}")
        self.booted_at = time.monotonic()
        backend.apply(name, initial)

    # -- reads --------------------------------------------------------------------------

    def config(self, datastore: Datastore = Datastore.RUNNING) -> DeviceConfig:
        """The configuration held in ``datastore``."""
        with self._lock:
            return self._running if datastore is Datastore.RUNNING else self._candidate

    def interface_states(self) -> list[InterfaceState]:
        """Live interface state from the backend."""
        return self._backend.interface_states(self.name)

    def uptime_s(self) -> float:
        """Seconds since the device agent started."""
        return time.monotonic() - self.booted_at

    @property
    def confirm_pending(self) -> bool:
        """Whether a confirmed commit awaits its confirming commit."""
        with self._lock:
            return self._pending is not None

    def lock_owner(self, datastore: Datastore) -> int | None:
        """The session id holding ``datastore``'s lock, if any."""
        with self._lock:
            return self._locks.get(datastore)

    # -- locks --------------------------------------------------------------------------

    def _check_lock(self, datastore: Datastore, session: int) -> None:
        owner = self._locks.get(datastore)
        if owner is not None and owner != session:
            raise DeviceOperationError(
                f"the {datastore.value} datastore is locked by session {owner}",
                tag="in-use",
                session=owner,
            )

    def lock(self, datastore: Datastore, session: int) -> None:
        """Take ``datastore``'s lock for ``session`` (RFC 6241 7.5)."""
        with self._lock:
            owner = self._locks.get(datastore)
            if owner is not None:
                raise DeviceOperationError(
                    f"lock denied: the {datastore.value} datastore is already locked by session "
                    f"{owner}",
                    tag="lock-denied",
                    session=owner,
                )
            if datastore is Datastore.CANDIDATE and self._candidate != self._running:
                raise DeviceOperationError(
                    "lock denied: the candidate holds uncommitted changes; discard-changes first",
                    tag="lock-denied",
                    session=0,
                )
            self._locks[datastore] = session

    def unlock(self, datastore: Datastore, session: int) -> None:
        """Release ``session``'s lock on ``datastore``."""
        with self._lock:
            owner = self._locks.get(datastore)
            if owner != session:
                raise DeviceOperationError(
                    f"the {datastore.value} datastore is not locked by this session"
                    + (f" (held by session {owner})" if owner is not None else ""),
                    tag="operation-failed",
                )
            del self._locks[datastore]

    def session_closed(self, session: int) -> None:
        """Release a closed session's locks; roll back its unconfirmed, non-persist commit."""
        with self._lock:
            for ds in [d for d, s in self._locks.items() if s == session]:
                del self._locks[ds]
            pending = self._pending
            if pending is not None and pending.session == session and pending.persist is None:
                self._rollback_pending("the session that issued the confirmed commit closed")

    # -- edits --------------------------------------------------------------------------

    def edit_config(
        self,
        target: Datastore,
        config: etree._Element,
        session: int,
        *,
        default_operation: EditOperation = EditOperation.MERGE,
        test_only: bool = False,
    ) -> None:
        """Apply an ``edit-config`` to the candidate. All-or-nothing: an error changes nothing."""
        with self._lock:
            if target is not Datastore.CANDIDATE:
                raise DeviceOperationError(
                    "edit-config on running is not supported (no :writable-running); edit the "
                    "candidate and commit",
                    tag="operation-not-supported",
                )
            self._check_lock(target, session)
            new = apply_edit(self._candidate, config, default_operation=default_operation)
            self._backend.validate(self.name, new)
            if not test_only:
                self._candidate = new

    def copy_running_to_candidate(self, session: int) -> None:
        """``discard-changes``: the candidate becomes the running config again."""
        with self._lock:
            self._check_lock(Datastore.CANDIDATE, session)
            self._candidate = self._running

    def validate(self, datastore: Datastore) -> None:
        """Check ``datastore``'s content against the model and the backend."""
        with self._lock:
            self._backend.validate(self.name, self.config(datastore))

    def check(self, config: DeviceConfig) -> None:
        """Check a config that is in no datastore (``<validate>`` of an inline ``<config>``)."""
        self._backend.validate(self.name, config)

    def commit(
        self,
        session: int,
        *,
        confirmed: bool = False,
        confirm_timeout_s: int = 600,
        persist: str | None = None,
        persist_id: str | None = None,
    ) -> None:
        """Commit the candidate to running (RFC 6241 8.3/8.4).

        ``confirmed``: start (or extend) a confirmed commit that is rolled back after
        ``confirm_timeout_s`` unless a confirming commit arrives. A plain commit while a
        confirmed commit is pending confirms it (from the same session, or with ``persist_id``).
        """
        with self._lock:
            self._check_lock(Datastore.RUNNING, session)
            self._check_lock(Datastore.CANDIDATE, session)
            pending = self._pending
            if pending is not None:
                if pending.persist is not None:
                    if persist_id != pending.persist:
                        raise DeviceOperationError(
                            "a persistent confirmed commit is pending; give its persist-id to "
                            "confirm or cancel it",
                            tag="invalid-value",
                            path="/commit/persist-id",
                        )
                elif pending.session != session:
                    raise DeviceOperationError(
                        f"a confirmed commit of session {pending.session} is pending; only that "
                        "session can confirm it",
                        tag="in-use",
                        session=pending.session,
                    )
            elif persist_id is not None:
                raise DeviceOperationError(
                    f"no confirmed commit with persist-id {persist_id!r} is pending",
                    tag="invalid-value",
                    path="/commit/persist-id",
                )
            if confirmed and not 1 <= confirm_timeout_s <= MAX_CONFIRM_TIMEOUT_S:
                raise DeviceOperationError(
                    f"confirm-timeout {confirm_timeout_s} s is out of range "
                    f"1..{MAX_CONFIRM_TIMEOUT_S}",
                    tag="invalid-value",
                    path="/commit/confirm-timeout",
                )
            new = self._candidate
            self._backend.validate(self.name, new)
            rollback_to = pending.rollback_to if pending is not None else self._running
            if pending is not None:
                pending.timer.cancel()
                self._pending = None
            if new != self._running:
                self._backend.apply(self.name, new)
                self._running = new
            if confirmed:
                timer = threading.Timer(confirm_timeout_s, self._confirm_timeout_expired)
                timer.daemon = True
                self._pending = _PendingConfirm(
                    rollback_to=rollback_to,
                    session=session,
                    persist=persist,
                    deadline=time.monotonic() + confirm_timeout_s,
                    timer=timer,
                )
                timer.start()
                self._on_event(
                    self.name,
                    f"confirmed commit by session {session}, timeout {confirm_timeout_s} s",
                )
            else:
                self._on_event(self.name, f"commit by session {session}")

    def cancel_commit(self, session: int, *, persist_id: str | None = None) -> None:
        """Roll back a pending confirmed commit now (RFC 6241 8.4.9)."""
        with self._lock:
            pending = self._pending
            if pending is None:
                raise DeviceOperationError("no confirmed commit is pending", tag="operation-failed")
            if pending.persist is not None and persist_id != pending.persist:
                raise DeviceOperationError(
                    "the pending confirmed commit is persistent; give its persist-id",
                    tag="invalid-value",
                    path="/cancel-commit/persist-id",
                )
            if pending.persist is None and pending.session != session:
                raise DeviceOperationError(
                    f"the pending confirmed commit belongs to session {pending.session}",
                    tag="in-use",
                    session=pending.session,
                )
            self._rollback_pending(f"cancel-commit by session {session}")

    def _confirm_timeout_expired(self) -> None:
        with self._lock:
            pending = self._pending
            if pending is not None and time.monotonic() >= pending.deadline - 0.001:
                self._rollback_pending("confirm-timeout expired")

    def _rollback_pending(self, reason: str) -> None:
        pending = self._pending
        assert pending is not None
        pending.timer.cancel()
        self._pending = None
        self._backend.apply(self.name, pending.rollback_to)
        self._running = pending.rollback_to
        self._candidate = pending.rollback_to
        self._on_event(self.name, f"confirmed commit rolled back: {reason}")

    def close(self) -> None:
        """Stop timers (a pending confirmed commit is rolled back, as on a reboot)."""
        with self._lock:
            if self._pending is not None:
                self._rollback_pending("device agent stopped")

    # -- SNMP-writable system leaves ------------------------------------------------------

    def set_system(self, *, contact: str | None = None, location: str | None = None) -> None:
        """Set sysContact / sysLocation (SNMP SET)."""
        with self._lock:
            if contact is not None:
                self.system.contact = contact
            if location is not None:
                self.system.location = location
