"""Policy models and the :class:`PolicyEngine` contract.

A :class:`PolicySet` is the operator's guardrails, read from a YAML file (see
``default_policy.yaml`` for the annotated shape): protected devices and interfaces, forbidden
actions, a size limit per change, change windows and approval rules. Every rule carries an ``id``
that verdicts name. Policies are data: nothing an intent or a model says can switch a rule off,
and the API has no override flag; only the operator's policy file decides.

Also here: :class:`ConfigAction` (one thing a change does to a device, derived from the config
diff) and :class:`IntentConflict` (two expectations that cannot both hold).

Glob patterns follow :mod:`fnmatch` (``*``, ``?``, ``[abc]``, ``[!abc]``), case-sensitive.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal, Protocol, Self, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from netgpt.device_config import DeviceConfig
from netgpt.intents.model import TimeWindow
from netgpt.intents.plan import ChangeSet, Verdict, VerdictSource

if TYPE_CHECKING:
    from netgpt.intents.model import Intent

__all__ = [
    "ActionKind",
    "ApprovalRule",
    "ChangeSizeRule",
    "ChangeWindowRule",
    "ConfigAction",
    "ControllerSettings",
    "ForbiddenAction",
    "ForbiddenActionKind",
    "IntentConflict",
    "PolicyEngine",
    "PolicySet",
    "ProtectedDevice",
    "ProtectedInterface",
    "matches_any",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_GLOB_CHARS = re.compile(r"^[A-Za-z0-9_./:*?\[\]!-]+$")


def _glob(value: str) -> str:
    if not _GLOB_CHARS.match(value):
        raise ValueError(
            f"pattern {value!r} has characters outside letters, digits, _ . / : - and the glob "
            "characters * ? [ ] !"
        )
    if value.count("[") != value.count("]"):
        raise ValueError(f"pattern {value!r} has an unbalanced '[' ... ']' set")
    try:
        re.compile(fnmatch.translate(value))
    except re.error as exc:
        raise ValueError(f"pattern {value!r} is not a valid glob ({exc})") from exc
    return value


Glob = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_glob)]
RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``name`` matches one of the glob ``patterns`` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _prefix(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=False))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 prefix such as 127.0.0.0/8") from exc


Prefix = Annotated[str, AfterValidator(_prefix)]


# ------------------------------------------------------------------------------------------
# rules


class ProtectedDevice(BaseModel):
    """Devices (glob patterns) no change may touch at all."""

    model_config = _STRICT
    id: RuleId
    devices: tuple[Glob, ...] = Field(min_length=1)
    description: str = ""


class ProtectedInterface(BaseModel):
    """Interfaces no change may disable or remove: ``interface`` on every ``device`` match."""

    model_config = _STRICT
    id: RuleId
    device: Glob = "*"
    interface: Glob
    description: str = ""


class ForbiddenActionKind(StrEnum):
    """Actions refused whatever the intent.

    - ``drop_controller_traffic``: an ACL rule that drops or rejects traffic between the
      controller prefixes and the management prefixes (either direction) becomes active (new,
      changed or newly attached). Checked rule by rule, ignoring earlier accept rules, so it errs
      on the side of refusing.
    - ``remove_all_static_routes``: a device that had static routes is left with none.
    - ``blackhole_default_or_controller``: a discard (null) route for ``0.0.0.0/0`` or one that
      overlaps a controller or management prefix.
    - ``remove_interface``: an interface disappears from a device's config.
    - ``isolate_device``: a device that had an enabled addressed (link) interface is left with
      none.
    """

    DROP_CONTROLLER_TRAFFIC = "drop_controller_traffic"
    REMOVE_ALL_STATIC_ROUTES = "remove_all_static_routes"
    BLACKHOLE_DEFAULT_OR_CONTROLLER = "blackhole_default_or_controller"
    REMOVE_INTERFACE = "remove_interface"
    ISOLATE_DEVICE = "isolate_device"


class ForbiddenAction(BaseModel):
    """One forbidden action, by kind, optionally only on some devices."""

    model_config = _STRICT
    id: RuleId
    action: ForbiddenActionKind
    devices: tuple[Glob, ...] = ("*",)
    description: str = ""


class ChangeSizeRule(BaseModel):
    """At most ``max_devices`` devices per change."""

    model_config = _STRICT
    id: RuleId = "max-devices-per-change"
    max_devices: int = Field(ge=1, le=100_000)


class ChangeWindowRule(BaseModel):
    """When changes may be made. No windows: any time.

    Outside every window a change is refused (``outside: refuse``) or held for a person's
    approval (``outside: approve``).
    """

    model_config = _STRICT
    id: RuleId = "change-window"
    windows: tuple[TimeWindow, ...] = ()
    outside: Literal["refuse", "approve"] = "refuse"

    @field_validator("windows")
    @classmethod
    def _zones(cls, windows: tuple[TimeWindow, ...]) -> tuple[TimeWindow, ...]:
        for w in windows:
            try:
                ZoneInfo(w.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"timezone {w.timezone!r} is unknown; use an IANA name such as "
                    "'Europe/London' or 'UTC'"
                ) from exc
        return windows

    def open_at(self, now: datetime) -> bool:
        """Whether ``now`` (timezone-aware) lies in a window (always, when there are none)."""
        if not self.windows:
            return True
        return any(w.contains(now.astimezone(ZoneInfo(w.timezone))) for w in self.windows)


class ApprovalRule(BaseModel):
    """A change needs a person's approval when every condition given here holds.

    ``intent_kinds``: the intent has an expectation of one of these kinds; ``min_devices``: the
    change touches at least this many devices; ``devices``: it touches a device matching one of
    these patterns. At least one condition is required.
    """

    model_config = _STRICT
    id: RuleId
    intent_kinds: tuple[
        Literal[
            "reachability",
            "access",
            "waypoint",
            "load_balancing",
            "bandwidth",
            "utilization_ceiling",
            "latency",
            "slo",
        ],
        ...,
    ] = ()
    min_devices: int | None = Field(default=None, ge=1)
    devices: tuple[Glob, ...] = ()
    description: str = ""

    @model_validator(mode="after")
    def _some_condition(self) -> Self:
        if not (self.intent_kinds or self.min_devices is not None or self.devices):
            raise ValueError(
                f"approval rule {self.id!r} has no condition; give intent_kinds, min_devices "
                "or devices"
            )
        return self


class ControllerSettings(BaseModel):
    """Where the controller lives and where devices are managed, for ``drop_controller_traffic``."""

    model_config = _STRICT
    prefixes: tuple[Prefix, ...] = ("127.0.0.0/8",)
    management_prefixes: tuple[Prefix, ...] = ("127.0.0.0/8",)


_Rule = (
    ProtectedDevice
    | ProtectedInterface
    | ForbiddenAction
    | ChangeSizeRule
    | ChangeWindowRule
    | ApprovalRule
)


class PolicySet(BaseModel):
    """The operator's guardrails. Rule ids are unique across the whole set."""

    model_config = _STRICT
    version: Literal[1] = 1
    controller: ControllerSettings = ControllerSettings()
    protected_devices: tuple[ProtectedDevice, ...] = ()
    protected_interfaces: tuple[ProtectedInterface, ...] = ()
    forbidden_actions: tuple[ForbiddenAction, ...] = ()
    max_devices_per_change: ChangeSizeRule | None = None
    change_windows: ChangeWindowRule = ChangeWindowRule()
    approval: tuple[ApprovalRule, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [r.id for r in self.rules()]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule ids must be unique; repeated: {dupes}")
        return self

    def rules(self) -> list[_Rule]:
        """Every rule, in the order verdicts report them."""
        out: list[_Rule] = [*self.protected_devices, *self.protected_interfaces]
        out.extend(self.forbidden_actions)
        if self.max_devices_per_change is not None:
            out.append(self.max_devices_per_change)
        out.append(self.change_windows)
        out.extend(self.approval)
        return out


# ------------------------------------------------------------------------------------------
# what a change does


class ActionKind(StrEnum):
    """One kind of thing a change does to a device's config."""

    INTERFACE_DISABLED = "interface disabled"
    INTERFACE_ENABLED = "interface enabled"
    INTERFACE_ADDED = "interface added"
    INTERFACE_REMOVED = "interface removed"
    IGP_COST_CHANGED = "IGP cost changed"
    RATE_LIMIT_CHANGED = "rate limit changed"
    ACL_ATTACHED = "ACL attached"
    ACL_DETACHED = "ACL detached"
    ACL_ADDED = "ACL added"
    ACL_REMOVED = "ACL removed"
    ACL_CHANGED = "ACL changed"
    ROUTE_ADDED = "static route added"
    ROUTE_REMOVED = "static route removed"
    ROUTE_CHANGED = "static route changed"


@dataclass(frozen=True)
class ConfigAction:
    """One action of a change: on ``device``, ``kind`` applied to ``target``, with ``detail``.

    ``target`` is an interface name, an ACL name or a route prefix depending on ``kind``.
    """

    device: str
    kind: ActionKind
    target: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.device}: {self.kind.value} {self.target}"
        return f"{text} ({self.detail})" if self.detail else text


# ------------------------------------------------------------------------------------------
# conflicts


@dataclass(frozen=True)
class IntentConflict:
    """Two expectations that cannot both hold.

    Expectation ``new_index`` of ``new_intent`` against expectation ``existing_index`` of
    ``existing_intent`` (the same intent for a conflict inside one intent).
    ``reason`` says why in operator words, naming both intents and the traffic they share.
    """

    new_intent: Intent
    existing_intent: Intent
    new_index: int
    existing_index: int
    reason: str

    @property
    def rule(self) -> str:
        """The conflicting pair, as verdicts name it: ``new#i <> existing#j``."""
        return (
            f"conflict {self.new_intent.id}#{self.new_index} <> "
            f"{self.existing_intent.id}#{self.existing_index}"
        )

    def verdict(self) -> Verdict:
        """A failed :class:`Verdict` (source ``conflict``) naming the pair and the reason."""
        return Verdict(False, VerdictSource.CONFLICT, self.rule, self.reason)


# ------------------------------------------------------------------------------------------
# the contract


@runtime_checkable
class PolicyEngine(Protocol):
    """Judges changes against the operator's policies. Pure: no I/O, no clock of its own.

    There is no way to skip a rule: no override flag, nothing read from the intent's text or from
    a model. The agent treats any failed verdict as a refusal.
    """

    def evaluate_change(
        self,
        intent: Intent,
        change_set: ChangeSet,
        current_configs: Mapping[str, DeviceConfig],
        *,
        now: datetime,
    ) -> list[Verdict]:
        """Judge a change: one verdict (source ``policy``) per rule checked.

        Failed ones name the rule id and the evidence (device, interface, what changed). ``now``
        must be timezone-aware.
        """
        ...

    def needs_approval(
        self, intent: Intent, change_set: ChangeSet, *, now: datetime
    ) -> Verdict | None:
        """Whether a person must approve first.

        A verdict (source ``approval``, not passed) names the rules that ask for approval and
        why; ``None`` when the change may proceed without one.
        """
        ...
