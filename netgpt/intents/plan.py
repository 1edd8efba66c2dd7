"""What crosses borders between compiler, twin, policies and agent: change sets and verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from netgpt.device_config import DeviceConfig

__all__ = ["ChangeSet", "DeviceChange", "Verdict", "VerdictSource", "preferred_plan"]


@dataclass(frozen=True)
class DeviceChange:
    """One device's part of a change: its whole candidate config and why it changes."""

    device: str
    candidate: DeviceConfig
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeSet:
    """Per-device candidate configs for one intent (empty when nothing needs to change).

    ``notes`` explain the plan in words (which paths, which devices, why), for the operator.
    ``steered``: the link directions (device, neighbour) whose use the plan chose: the paths it
    pins or balances over, the links whose IGP cost it raised.
    """

    intent_id: str
    changes: tuple[DeviceChange, ...] = ()
    notes: tuple[str, ...] = ()
    steered: tuple[tuple[str, str], ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        """Devices the change set touches, in order."""
        return tuple(c.device for c in self.changes)

    def candidates(self) -> dict[str, DeviceConfig]:
        """Candidate config per device, as the applier takes it."""
        return {c.device: c.candidate for c in self.changes}

    def applied_to(self, configs: Mapping[str, DeviceConfig]) -> dict[str, DeviceConfig]:
        """``configs`` with this change set's candidates in place (for the twin's what-if)."""
        return {**configs, **self.candidates()}

    def summary(self) -> str:
        """One short line for whoever chooses between plans: what changes, how much it steers.

        The notes (paths, costs, why) stay in the plan; this line is what a chooser compares.
        """
        devices = ", ".join(self.devices) or "none"
        return f"{len(self.devices)} devices changed ({devices}), {len(self.steered)} links steered"


def preferred_plan(plans: Sequence[ChangeSet]) -> tuple[int, str]:
    """The planner's preference among ``plans`` (all assumed to pass): index and why.

    Fewest devices changed (a smaller change is easier to review and to roll back), then fewest
    link directions steered (shorter paths, less traffic moved), then the earlier plan.
    """
    if not plans:
        raise ValueError("no plan to prefer")
    keyed = sorted(range(len(plans)), key=lambda i: (len(plans[i].devices),
                                                     len(plans[i].steered), i))
    best = keyed[0]
    b = plans[best]
    others = [plans[i] for i in keyed[1:]]
    if not others:
        return best, f"Option {best} is the only option."
    if len(b.devices) < min(len(p.devices) for p in others):
        return best, f"Option {best} changes the fewest devices ({len(b.devices)})."
    if len(b.steered) < min(len(p.steered) for p in others if len(p.devices) == len(b.devices)):
        return best, (f"Option {best} changes as few devices and steers the fewest links "
                      f"({len(b.steered)}).")
    return best, f"Option {best} comes first among equal options."


class VerdictSource(StrEnum):
    """Who judged."""

    PARSER = "parser"
    POLICY = "policy"
    CONFLICT = "conflict"
    TWIN = "twin"
    LIVE = "live"
    APPROVAL = "approval"


@dataclass(frozen=True)
class Verdict:
    """Pass or fail, with the rule or expectation that decided and the evidence.

    ``rule`` names what decided (a policy rule id, an expectation, a conflicting intent pair);
    ``evidence`` says what was seen, in words an operator can check.
    """

    passed: bool
    source: VerdictSource
    rule: str
    evidence: str
    details: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        head = "PASS" if self.passed else "FAIL"
        return f"{head} [{self.source.value}] {self.rule}: {self.evidence}"
