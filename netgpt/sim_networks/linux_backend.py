"""``LinuxBackend``: a lab router's committed configuration made real in its network namespace.

The lab's NETCONF agent for a router runs inside that router's namespace and holds one
:class:`LinuxBackend`. On every commit or rollback :meth:`LinuxBackend.apply` moves the namespace
from the configuration it last applied to the new one:

- interfaces up/down and addresses with ``ip``;
- IGP costs and static routes in FRR with ``vtysh -N <pathspace>``;
- ACLs as one nftables table, replaced atomically;
- link shaping, rate limits and class policers with ``tc`` (HTB egress, police ingress).

What to run comes from the pure renderers in :mod:`netgpt.sim_networks.linux_render`. A step that
fails makes ``apply`` put back the previous configuration (every step, not a diff) and raise
:class:`~netgpt.errors.ConfigValidationError`, so the device is left as it was.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from netgpt.device_config import DeviceConfig
from netgpt.errors import ConfigValidationError
from netgpt.sim_networks.lab_plan import RouterPlan
from netgpt.sim_networks.linux_render import (
    frr_config_commands,
    ip_link_commands,
    next_time_range_change,
    parse_ip_link_json,
    render_nftables,
    render_tc,
)
from netgpt.sim_networks.topology import ACCESS_INTERFACE
from netgpt.yang_xml import InterfaceState

__all__ = ["CommandFailed", "LinuxBackend", "run_command"]

log = logging.getLogger(__name__)

NFT_TABLE = "netgpt"
_ACCESS_SPEED_BPS = 1_000_000_000


@dataclass(frozen=True)
class CommandFailed:
    """One command that did not succeed: what ran and what it said."""

    argv: tuple[str, ...]
    returncode: int
    stderr: str

    def __str__(self) -> str:
        return f"'{' '.join(self.argv)}' exited {self.returncode}: {self.stderr.strip()[:300]}"


Runner = Callable[[Sequence[str], str | None], "CommandFailed | str"]


def run_command(argv: Sequence[str], stdin: str | None = None) -> CommandFailed | str:
    """Run ``argv`` (no shell); its stdout, or a :class:`CommandFailed`."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandFailed(tuple(argv), -1, str(exc))
    if done.returncode != 0:
        return CommandFailed(tuple(argv), done.returncode, done.stderr or done.stdout)
    return done.stdout


class LinuxBackend:
    """Applies one router's :class:`DeviceConfig` to the namespace this process runs in."""

    def __init__(
        self,
        router: RouterPlan,
        *,
        runner: Runner = run_command,
        vtysh: str = "vtysh",
    ) -> None:
        self.router = router
        self._run = runner
        self._vtysh = vtysh
        self._applied: DeviceConfig | None = None
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._known = frozenset({ACCESS_INTERFACE, *router.link_addresses})

    # -- DeviceBackend -------------------------------------------------------------------

    def validate(self, device: str, config: DeviceConfig) -> None:
        """Refuse interfaces the router lacks and anything the renderers cannot express."""
        self._check_device(device)
        for itf in config.interfaces:
            if itf.name not in self._known:
                raise ConfigValidationError(
                    f"{device} has no interface {itf.name!r}; its interfaces are "
                    f"{sorted(self._known)}",
                    path=f"/interfaces/interface[name='{itf.name}']",
                )
        render_nftables(config, table=NFT_TABLE)
        for itf in config.interfaces:
            self._tc(itf.name, config)
        frr_config_commands(None, config, ospf_interfaces=self.router.ospf_interfaces)

    def apply(self, device: str, config: DeviceConfig) -> None:
        """Make ``config`` real; on any failure restore the previous one and raise."""
        self._check_device(device)
        with self._lock:
            old = self._applied
            failure = self._apply_steps(old, config)
            if failure is None:
                self._applied = config
                self._schedule_time_ranges(config)
                return
            log.error("%s: applying the new configuration failed: %s", device, failure)
            if old is not None:
                # undo what the new config added (a diff back), else re-apply the old one whole
                undo = self._apply_steps(config, old)
                if undo is not None:
                    undo = self._apply_steps(None, old)
                if undo is not None:
                    log.error("%s: restoring the previous configuration failed: %s", device, undo)
                    raise ConfigValidationError(
                        f"{device}: {failure}; restoring the previous configuration also failed "
                        f"({undo}); check the router's namespace",
                        tag="operation-failed",
                    )
            raise ConfigValidationError(
                f"{device}: {failure}; the previous configuration is in force",
                tag="operation-failed",
            )

    def interface_states(self, device: str) -> list[InterfaceState]:
        """Counters and state of eth0... from ``ip -j -s link`` in this namespace."""
        self._check_device(device)
        out = self._run(["ip", "-j", "-s", "link", "show"], None)
        if isinstance(out, CommandFailed):
            raise ConfigValidationError(f"{device}: reading interfaces failed: {out}",
                                        tag="operation-failed")
        speeds = {
            itf: int(mbps * 1_000_000) for itf, mbps in self.router.capacities_mbps.items()
        }
        speeds.setdefault(ACCESS_INTERFACE, _ACCESS_SPEED_BPS)
        with self._lock:
            applied = self._applied
        descriptions = (
            {i.name: i.description for i in applied.interfaces} if applied is not None else {}
        )
        return parse_ip_link_json(out, speeds, descriptions)

    def close(self) -> None:
        """Stop the time-range timer (the namespace keeps its last rules)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    # -- time-ranged ACL rules -----------------------------------------------------------

    def _schedule_time_ranges(self, config: DeviceConfig) -> None:
        """Reload the nftables table when a time-ranged rule next switches on or off.

        nftables rules carry no time window here (see :mod:`linux_render`): the table holds the
        rules in force now, and this timer renders it again at each window edge.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        edge = next_time_range_change(config)
        if edge is None:
            return
        delay = max(0.0, (edge - datetime.now(UTC)).total_seconds()) + 0.05
        self._timer = threading.Timer(delay, self._reload_rules, args=(config,))
        self._timer.daemon = True
        self._timer.start()

    def _reload_rules(self, config: DeviceConfig) -> None:
        with self._lock:
            if self._applied is not config:
                return  # a newer commit replaced it (and scheduled its own reload)
            out = self._run(["nft", "-f", "-"], render_nftables(config, table=NFT_TABLE))
            if isinstance(out, CommandFailed):
                log.error("%s: reloading time-ranged ACL rules failed: %s", self.router.name, out)
            self._schedule_time_ranges(config)

    # -- steps ---------------------------------------------------------------------------

    def _await_static_routes(self, old: DeviceConfig | None, new: DeviceConfig) -> None:
        """Wait (at most 2 s) until the kernel shows the static routes FRR was just given.

        staticd hands routes to zebra, which installs them a few milliseconds after vtysh
        returns; the commit's reply should describe the forwarding in force. A route whose next
        hop is unreachable never installs: that is FRR's behaviour, not a failure.
        """
        wanted = _static_prefixes(new)
        gone = _static_prefixes(old) - wanted
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            # FRR installs static routes as protocol 196 (its rt_protos.d says "static")
            out = self._run(["ip", "-j", "route", "show", "proto", "196"], None)
            if isinstance(out, CommandFailed):
                return
            have = {_route_prefix(r) for r in json.loads(out or "[]")}
            if wanted <= have and not gone & have:
                return
            time.sleep(0.02)
        log.warning("%s: static routes not all in the kernel after 2 s", self.router.name)

    def _check_device(self, device: str) -> None:
        if device != self.router.name:
            raise ConfigValidationError(
                f"this agent runs router {self.router.name!r}, not {device!r}"
            )

    def _tc(self, interface: str, config: DeviceConfig) -> list[tuple[tuple[str, ...], bool]]:
        itf = next((i for i in config.interfaces if i.name == interface), None)
        commands = render_tc(
            interface,
            capacity_mbps=self.router.capacities_mbps.get(interface),
            rate_limit=itf.rate_limit if itf is not None else None,
            class_policers=itf.class_policers if itf is not None else (),
        )
        return [(tuple(c.argv), c.ignore_errors) for c in commands]

    def _apply_steps(self, old: DeviceConfig | None, new: DeviceConfig) -> CommandFailed | None:
        """Run what moves the namespace from ``old`` (``None``: unknown) to ``new``."""
        for argv in ip_link_commands(old, new):
            failed = self._run(argv, None)
            if isinstance(failed, CommandFailed):
                return failed
        lines = frr_config_commands(old, new, ospf_interfaces=self.router.ospf_interfaces)
        if lines:
            argv = [self._vtysh, "-N", self.router.pathspace, "-c", "configure terminal"]
            for line in lines:
                argv += ["-c", line]
            out = self._run(argv, None)
            if isinstance(out, CommandFailed):
                return out
            if _vtysh_complaint(out):
                return CommandFailed(tuple(argv), 1, out)
            if old is None or old.static_routes != new.static_routes:
                self._await_static_routes(old, new)
        if old is None or _acl_view(old) != _acl_view(new) or _timed(new):
            out = self._run(["nft", "-f", "-"], render_nftables(new, table=NFT_TABLE))
            if isinstance(out, CommandFailed):
                return out
        names = sorted({*self.router.link_addresses, *(i.name for i in new.interfaces)})
        for name in names:
            commands = self._tc(name, new)
            if old is not None and commands == self._tc(name, old):
                continue
            for argv_t, ignore in commands:
                out = self._run(argv_t, None)
                if isinstance(out, CommandFailed) and not ignore:
                    return out
        return None


def _route_prefix(entry: dict[str, object]) -> str:
    dst = str(entry.get("dst", ""))
    if dst == "default":
        return "0.0.0.0/0"
    return dst if "/" in dst else f"{dst}/32"


def _static_prefixes(config: DeviceConfig | None) -> set[str]:
    return {r.prefix for r in config.static_routes} if config is not None else set()


def _acl_view(config: DeviceConfig) -> tuple[object, ...]:
    """What the nftables table depends on: ACLs and their attachments."""
    return (
        config.acls,
        tuple((i.name, i.acl_ingress, i.acl_egress) for i in config.interfaces),
    )


def _timed(config: DeviceConfig) -> bool:
    """Whether any ACL rule has a time range (its table depends on the clock)."""
    return any(rule.time_range is not None for acl in config.acls for rule in acl.rules)


def _vtysh_complaint(output: str) -> bool:
    """Whether vtysh refused a line (some versions say so on stdout with exit 0)."""
    return any(
        line.startswith("%") and "Can't open configuration file" not in line
        for line in output.splitlines()
    )


def namespace_interfaces(runner: Runner = run_command) -> list[str]:
    """Names of the interfaces in this namespace (for checks and tests)."""
    out = runner(["ip", "-j", "link", "show"], None)
    if isinstance(out, CommandFailed):
        return []
    return [str(entry.get("ifname", "")) for entry in json.loads(out or "[]")]
