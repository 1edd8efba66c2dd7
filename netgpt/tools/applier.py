"""All-or-nothing configuration changes across devices, with confirmed commits.

:func:`apply_changes` takes one candidate :class:`~netgpt.device_config.DeviceConfig` per device
and a way to get a :class:`~netgpt.tools.base.ConfigDriver` for each, then:

1. **prepare** (every device, concurrently): open, lock running and candidate, read running,
   load the candidate, diff, validate (when there is a diff);
2. a failure anywhere -> discard every candidate, unlock, close: outcome ``failed``;
   a dry run -> the same with outcome ``dry_run`` (the diffs are the answer);
   no diff anywhere -> outcome ``no_change``;
3. **commit** every device with a diff as a *confirmed* commit (``confirm_timeout_s``);
4. **verify**: the optional ``verify`` callback (live checks: reads, telemetry) says yes or no;
5. **confirm** every committed device.

A failure in 3-5 rolls every committed device back (``cancel-commit``; a device already confirmed
gets its previous running config committed again) and the outcome is ``rolled_back``. Three
nets catch a roll-back that cannot be sent: the session close and the confirm timeout each roll
an unconfirmed commit back on the device itself. Device failures are recorded in the result,
never raised; only programming errors (bad arguments, bugs) raise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

from netgpt.device_config import DeviceConfig
from netgpt.errors import ConfigError, NetGPTError
from netgpt.tools.base import ApplyResult, ConfigDriver, DatastoreName, DeviceResult, Outcome

__all__ = ["DriverSource", "apply_changes"]

log = logging.getLogger(__name__)

DriverSource = Mapping[str, ConfigDriver] | Callable[[str], ConfigDriver]
"""Unopened drivers by device name, or a factory making one for a device name."""


@dataclass
class _Run:
    """The progress of one device through the change (mutated by one thread at a time)."""

    name: str
    config: DeviceConfig
    driver: ConfigDriver | None = None
    opened: bool = False
    locks: list[DatastoreName] = field(default_factory=list)
    previous: DeviceConfig | None = None
    loaded: bool = False
    diff: str = ""
    committed: bool = False
    confirmed: bool = False
    reverted: bool = False
    error: str | None = None

    def fail(self, step: str, problem: BaseException | str) -> None:
        """Record a failure of this device (later ones are appended to the first)."""
        detail = str(problem).removeprefix(f"{self.name}: ")  # the row names the device
        text = f"{step}: {detail}"
        self.error = text if self.error is None else f"{self.error}; then {text}"

    def result(self) -> DeviceResult:
        """Build the device's row of the result."""
        return DeviceResult(
            device=self.name,
            changed=self.confirmed and not self.reverted,
            diff=self.diff,
            failed=self.error is not None,
            error=self.error,
        )


def apply_changes(
    changes: Mapping[str, DeviceConfig],
    drivers: DriverSource,
    *,
    dry_run: bool = True,
    confirm_timeout_s: int = 60,
    mode: Literal["replace", "merge"] = "replace",
    verify: Callable[[], bool | str] | None = None,
    max_workers: int = 16,
) -> ApplyResult:
    """Apply ``changes`` (device name -> candidate config) on every device, or on none.

    ``drivers`` gives an *unopened* driver per device (a mapping, or a factory such as
    :func:`netgpt.tools.netconf.netconf_drivers`); the applier opens and closes them.
    ``mode="replace"`` makes each config the device's whole candidate, ``"merge"`` merges it.
    ``verify`` runs after every commit and before any confirm: ``True`` keeps the change,
    ``False`` or a message (why not) rolls it back; an exception from it rolls back too.
    Devices are worked on concurrently (at most ``max_workers`` at once). Returns an
    :class:`ApplyResult`; see the module docstring for the steps and outcomes.
    """
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run must be a bool, got {dry_run!r}")
    if mode not in ("replace", "merge"):
        raise ConfigError(f"mode must be 'replace' or 'merge', got {mode!r}")
    if not 1 <= confirm_timeout_s <= 24 * 3600:
        raise ConfigError(
            f"confirm_timeout_s must be 1..86400 s, got {confirm_timeout_s}; it bounds how long a "
            "change lives unconfirmed"
        )
    if max_workers < 1:
        raise ConfigError(f"max_workers must be >= 1, got {max_workers}")
    for name, config in changes.items():
        if not isinstance(config, DeviceConfig):
            raise TypeError(
                f"changes[{name!r}] must be a DeviceConfig, got {type(config).__name__}"
            )
    runs = [_Run(name, config) for name, config in changes.items()]
    if not runs:
        return ApplyResult(results=(), outcome="no_change")
    with ThreadPoolExecutor(
        max_workers=min(max_workers, len(runs)), thread_name_prefix="apply"
    ) as pool:
        change = _Change(runs, drivers, pool, mode=mode, confirm_timeout_s=confirm_timeout_s)
        try:
            outcome, error = change.run(dry_run=dry_run, verify=verify)
        finally:
            change.finish()
    result = ApplyResult(results=tuple(r.result() for r in runs), outcome=outcome, error=error)
    log.info("change on %d device(s): %s", len(runs), result.summary().splitlines()[0])
    return result


class _Change:
    """The steps of one change; each step runs on every device concurrently."""

    def __init__(
        self,
        runs: list[_Run],
        drivers: DriverSource,
        pool: ThreadPoolExecutor,
        *,
        mode: Literal["replace", "merge"],
        confirm_timeout_s: int,
    ) -> None:
        self.runs = runs
        self.drivers = drivers
        self.pool = pool
        self.mode: Literal["replace", "merge"] = mode
        self.confirm_timeout_s = confirm_timeout_s

    def _each(self, runs: list[_Run], step: Callable[[_Run], None]) -> None:
        futures = [self.pool.submit(step, run) for run in runs]
        wait(futures)  # every device finishes the step before anything else happens
        for future in futures:
            future.result()  # device failures are recorded by the steps; bugs propagate

    def _first_error(self) -> str | None:
        for run in self.runs:
            if run.error is not None:
                return f"{run.name}: {run.error}"
        return None

    # -- the flow ----------------------------------------------------------------------------

    def run(
        self, *, dry_run: bool, verify: Callable[[], bool | str] | None
    ) -> tuple[Outcome, str | None]:
        """Do the change; return the outcome and why it did not apply (if it did not)."""
        self._each(self.runs, self._prepare)
        if any(r.error for r in self.runs):
            return "failed", self._first_error()
        if dry_run:
            return "dry_run", None
        to_commit = [r for r in self.runs if r.diff]
        if not to_commit:
            return "no_change", None
        self._each(to_commit, self._commit)
        if any(r.error for r in to_commit):
            return self._roll_back(self._first_error())
        if verify is not None:
            try:
                verdict = verify()
            except Exception as exc:  # the caller's check failed: the change must not stay
                verdict = f"verification raised {type(exc).__name__}: {exc}"
            if verdict is not True:
                why = verdict if isinstance(verdict, str) and verdict else "verification failed"
                return self._roll_back(why)
        self._each(to_commit, self._confirm)
        if any(r.error for r in to_commit):
            return self._roll_back(self._first_error())
        return "applied", None

    def _roll_back(self, why: str | None) -> tuple[Outcome, str | None]:
        committed = [r for r in self.runs if r.committed]
        self._each(committed, self._revert)
        return ("rolled_back" if committed else "failed"), why

    def finish(self) -> None:
        """Discard, unlock and close every device that was opened (also after a bug)."""
        self._each([r for r in self.runs if r.opened], self._release)

    # -- per-device steps --------------------------------------------------------------------

    def _driver(self, run: _Run) -> ConfigDriver:
        if callable(self.drivers):
            return self.drivers(run.name)
        try:
            return self.drivers[run.name]
        except KeyError:
            raise ConfigError(
                f"no driver for device {run.name!r}; drivers are given for "
                f"{sorted(self.drivers)[:12]}"
            ) from None

    def _prepare(self, run: _Run) -> None:
        step = "connect"
        try:
            driver = run.driver = self._driver(run)
            driver.open()
            run.opened = True
            for ds in ("running", "candidate"):
                step = f"lock {ds}"
                datastore: DatastoreName = "running" if ds == "running" else "candidate"
                driver.lock(datastore)
                run.locks.append(datastore)
            step = "read running"
            run.previous = driver.get_config("running")
            step = "load candidate"
            driver.load_candidate(run.config, mode=self.mode)
            run.loaded = True
            step = "diff"
            run.diff = driver.diff()
            if run.diff:
                step = "validate"
                driver.validate()
        except NetGPTError as exc:
            run.fail(step, exc)

    def _commit(self, run: _Run) -> None:
        assert run.driver is not None
        try:
            run.driver.commit(confirm_timeout_s=self.confirm_timeout_s)
            run.committed = True
        except NetGPTError as exc:
            run.fail("commit", exc)

    def _confirm(self, run: _Run) -> None:
        assert run.driver is not None
        try:
            run.driver.confirm()
            run.confirmed = True
        except NetGPTError as exc:
            run.fail("confirm", exc)

    def _revert(self, run: _Run) -> None:
        """Undo a committed device: cancel-commit, or re-commit the previous running config."""
        driver = run.driver
        assert driver is not None
        try:
            if run.confirmed:
                assert run.previous is not None
                driver.load_candidate(run.previous, mode="replace")
                driver.commit()
            else:
                driver.cancel_commit()
            run.reverted = True
        except NetGPTError as exc:
            if run.confirmed:
                run.fail("roll back", f"restoring the previous config failed ({exc}); the "
                         "change is still in effect on this device")
            else:
                run.fail("roll back", f"cancel-commit failed ({exc}); the device rolls the "
                         "commit back itself when the session closes or the confirm timeout ends")

    def _release(self, run: _Run) -> None:
        driver = run.driver
        assert driver is not None
        try:
            if run.loaded and not (run.confirmed and not run.reverted):
                driver.discard()
            for ds in reversed(run.locks):
                driver.unlock(ds)
            run.locks.clear()
        except NetGPTError as exc:
            # closing the session below releases the locks and drops the candidate anyway
            log.warning("%s: release after change: %s (closing the session instead)", run.name, exc)
        finally:
            driver.close()
