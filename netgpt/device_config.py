"""``DeviceConfig``: one device's configuration in a YANG-shaped typed model.

The shape follows the IETF models the devices speak over NETCONF (see :mod:`netgpt.yang_xml` for the
XML mapping): ``ietf-interfaces`` (+ ``ietf-ip`` addresses), ``ietf-access-control-list``, static
routes in ``ietf-routing`` shape, plus two NetGPT augments on each interface: an IGP cost and a
rate-limit leaf set. Everything here is pure data: validation on construction, no I/O.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Acl",
    "AclAction",
    "AclRule",
    "ClassPolicer",
    "DeviceConfig",
    "IPProtocol",
    "InterfaceConfig",
    "PortRange",
    "RateLimit",
    "StaticRoute",
    "TimeWindow",
    "TrafficMatch",
    "Weekday",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)

InterfaceName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_./:-]+$")]
RuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(BaseModel):
    """A recurring window: these weekdays, from ``start`` to ``end`` (may cross midnight).

    Used by intents (when a rule applies) and by devices (an ACL rule's time range, enforced by
    the device's own clock, the way routers' time-based ACLs work). A window that crosses
    midnight belongs to the day it starts on.
    """

    model_config = _STRICT
    days: tuple[Weekday, ...] = _WEEKDAYS
    start: time
    end: time
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _non_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError(f"time window {self.start}-{self.end} is empty")
        if not self.days:
            raise ValueError("a time window needs at least one weekday")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/London"
            ) from None
        return value

    def _intervals_from(self, moment: datetime) -> list[tuple[datetime, datetime]]:
        """The window's occurrences overlapping the eight days from the day before ``moment``."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone) if moment.tzinfo is not None else moment.replace(
            tzinfo=zone)
        out = []
        for offset in range(-1, 8):
            day = local.date() + timedelta(days=offset)
            if _WEEKDAYS[day.weekday()] not in self.days:
                continue
            start = datetime.combine(day, self.start, tzinfo=zone)
            end_day = day if self.start < self.end else day + timedelta(days=1)
            out.append((start, datetime.combine(end_day, self.end, tzinfo=zone)))
        return out

    def next_inside(self, moment: datetime) -> datetime:
        """``moment`` if it lies in the window, else the next time the window opens."""
        for start, end in self._intervals_from(moment):
            if end > moment:
                return max(start, moment)
        raise AssertionError("a window with a weekday recurs within a week")  # pragma: no cover

    def next_outside(self, moment: datetime) -> datetime:
        """``moment`` if it lies outside the window, else the next time the window closes."""
        t = moment
        for _ in range(8):
            if not self.contains(t):
                return t
            t = next(end for start, end in self._intervals_from(t) if start <= t < end)
        raise AssertionError("a window never covers a whole week")  # pragma: no cover

    def __str__(self) -> str:
        return (f"{','.join(self.days)} {self.start.strftime('%H:%M')}-"
                f"{self.end.strftime('%H:%M')} {self.timezone}")

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` lies in the window (a naive moment is read in the window's zone)."""
        if moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(self.timezone))
        day = _WEEKDAYS[moment.weekday()]
        t = moment.timetz().replace(tzinfo=None)
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        prev_day = _WEEKDAYS[(moment.weekday() - 1) % 7]
        return (day in self.days and t >= self.start) or (prev_day in self.days and t < self.end)



class AclAction(StrEnum):
    """Forwarding action of an ACL entry (``ietf-access-control-list`` forwarding identities)."""

    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"


class IPProtocol(StrEnum):
    """IP protocols an ACL entry can match. ``any`` matches every protocol."""

    ANY = "any"
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"

    @property
    def number(self) -> int | None:
        """IANA protocol number, or ``None`` for ``any``."""
        return {"tcp": 6, "udp": 17, "icmp": 1}.get(self.value)

    @classmethod
    def from_number(cls, number: int) -> IPProtocol:
        """The protocol for an IANA number; raises ``ValueError`` for unsupported numbers."""
        for proto in cls:
            if proto.number == number:
                return proto
        raise ValueError(
            f"unsupported IP protocol number {number}; use 1 (icmp), 6 (tcp) or 17 (udp)"
        )


class PortRange(BaseModel):
    """An inclusive TCP/UDP port range; a single port has ``lower == upper``."""

    model_config = _STRICT
    lower: int = Field(ge=0, le=65535)
    upper: int = Field(ge=0, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.lower > self.upper:
            raise ValueError(f"port range {self.lower}-{self.upper} is reversed; write lower-upper")
        return self

    def contains(self, port: int) -> bool:
        """Whether ``port`` lies in the range."""
        return self.lower <= port <= self.upper

    def __str__(self) -> str:
        return str(self.lower) if self.lower == self.upper else f"{self.lower}-{self.upper}"


def _network(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=False))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 prefix such as 10.1.0.0/16") from exc


class AclRule(BaseModel):
    """One access-control entry: matches, then an action. Unset matches match everything.

    A rule with a ``time_range`` is skipped outside that window (NetGPT augment).
    """

    def active_at(self, moment: datetime) -> bool:
        """Whether the rule is in force at ``moment`` (always, without a time range)."""
        return self.time_range is None or self.time_range.contains(moment)


    model_config = _STRICT
    name: RuleName
    action: AclAction
    protocol: IPProtocol = IPProtocol.ANY
    source_prefix: str = "0.0.0.0/0"
    destination_prefix: str = "0.0.0.0/0"
    source_ports: PortRange | None = None
    destination_ports: PortRange | None = None
    time_range: TimeWindow | None = None  # active only inside this window (device clock)

    _prefixes = field_validator("source_prefix", "destination_prefix")(_network)

    @model_validator(mode="after")
    def _ports_need_l4(self) -> Self:
        if (self.source_ports or self.destination_ports) and self.protocol not in (
            IPProtocol.TCP,
            IPProtocol.UDP,
        ):
            raise ValueError(
                f"rule {self.name!r} matches ports but protocol is {self.protocol.value!r}; "
                "set protocol tcp or udp"
            )
        return self


class Acl(BaseModel):
    """A named, ordered list of rules. First match wins; no match means the flow is accepted."""

    model_config = _STRICT
    name: RuleName
    rules: tuple[AclRule, ...] = ()

    @model_validator(mode="after")
    def _unique_rules(self) -> Self:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"ACL {self.name!r} has duplicate rule names {dupes}")
        return self


class RateLimit(BaseModel):
    """Per-interface policers in Mbit/s (NetGPT QoS augment). ``None`` means no limit."""

    model_config = _STRICT
    ingress_mbps: float | None = Field(default=None, gt=0)
    egress_mbps: float | None = Field(default=None, gt=0)


class TrafficMatch(BaseModel):
    """One match of a traffic class: protocol, prefixes, destination ports (unset: any)."""

    model_config = _STRICT
    protocol: IPProtocol = IPProtocol.ANY
    source_prefix: str = "0.0.0.0/0"
    destination_prefix: str = "0.0.0.0/0"
    destination_ports: PortRange | None = None

    _prefixes = field_validator("source_prefix", "destination_prefix")(_network)

    @model_validator(mode="after")
    def _ports_need_l4(self) -> Self:
        if self.destination_ports and self.protocol not in (IPProtocol.TCP, IPProtocol.UDP):
            raise ValueError(
                f"a class match on ports needs protocol tcp or udp, not {self.protocol.value!r}"
            )
        return self


class ClassPolicer(BaseModel):
    """A policer for one traffic class on an interface, in one direction (NetGPT QoS augment).

    The class is the union of ``matches``; all its traffic together is capped at ``rate_mbps``.
    ``assured_mbps`` (0: none) reserves that much of the interface for the class however busy the
    rest is (a guarantee; at most ``rate_mbps``, up to which the class may borrow what others
    leave). The interface's own :class:`RateLimit`, if any, still applies to all traffic after
    it. Of several class policers in one direction, the first whose class matches takes the
    flow.
    """

    model_config = _STRICT
    name: RuleName
    direction: Literal["ingress", "egress"]
    rate_mbps: float = Field(gt=0, le=10_000_000)
    matches: tuple[TrafficMatch, ...] = Field(min_length=1, max_length=256)
    assured_mbps: float = Field(default=0.0, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _assured_within_rate(self) -> Self:
        if self.assured_mbps > self.rate_mbps:
            raise ValueError(f"class {self.name!r}: assured {self.assured_mbps:g} Mbit/s is more "
                             f"than its rate {self.rate_mbps:g} Mbit/s")
        return self


class InterfaceConfig(BaseModel):
    """One interface: ``ietf-interfaces`` leaves plus IGP cost, ACL attachments and rate limits."""

    model_config = _STRICT
    name: InterfaceName
    description: str = Field(default="", max_length=255)
    enabled: bool = True
    ipv4_address: str | None = None  # "10.255.0.0/31" (address with prefix length)
    igp_cost: int | None = Field(default=None, ge=1, le=65535)
    acl_ingress: tuple[RuleName, ...] = ()
    acl_egress: tuple[RuleName, ...] = ()
    rate_limit: RateLimit | None = None
    class_policers: tuple[ClassPolicer, ...] = ()

    @field_validator("class_policers")
    @classmethod
    def _unique_classes(cls, value: tuple[ClassPolicer, ...]) -> tuple[ClassPolicer, ...]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate class policer names {dupes}")
        return value

    @field_validator("ipv4_address")
    @classmethod
    def _interface_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.IPv4Interface(value))
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not an IPv4 interface address such as 10.255.0.1/31"
            ) from exc


class StaticRoute(BaseModel):
    """A static IPv4 route (``ietf-routing`` static-routes shape). One next hop kind is set."""

    model_config = _STRICT
    prefix: str
    next_hop_address: str | None = None
    outgoing_interface: InterfaceName | None = None
    discard: bool = False  # a null route (special-next-hop blackhole)

    _prefix = field_validator("prefix")(_network)

    @field_validator("next_hop_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 address") from exc

    @model_validator(mode="after")
    def _one_next_hop(self) -> Self:
        kinds = [
            self.next_hop_address is not None,
            self.outgoing_interface is not None,
            self.discard,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                f"static route {self.prefix} needs exactly one of next-hop-address, "
                "outgoing-interface or special-next-hop blackhole"
            )
        return self


class DeviceConfig(BaseModel):
    """A device's whole configuration. Hashable and immutable: edits build a new one."""

    model_config = _STRICT
    hostname: str = Field(min_length=1, max_length=64)
    interfaces: tuple[InterfaceConfig, ...] = ()
    acls: tuple[Acl, ...] = ()
    static_routes: tuple[StaticRoute, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Self:
        names = [i.name for i in self.interfaces]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate interface names {dupes}")
        acl_names = [a.name for a in self.acls]
        dupes = sorted({n for n in acl_names if acl_names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate ACL names {dupes}")
        known = set(acl_names)
        for itf in self.interfaces:
            for ref in (*itf.acl_ingress, *itf.acl_egress):
                if ref not in known:
                    raise ValueError(
                        f"interface {itf.name!r} attaches ACL {ref!r}, which is not defined; "
                        "define it under acls or remove the attachment"
                    )
        prefixes = [r.prefix for r in self.static_routes]
        dupes = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if dupes:
            raise ValueError(f"duplicate static routes for {dupes}")
        for route in self.static_routes:
            if route.outgoing_interface is not None and route.outgoing_interface not in names:
                raise ValueError(
                    f"static route {route.prefix} uses interface {route.outgoing_interface!r}, "
                    "which does not exist on this device"
                )
        return self

    def interface(self, name: str) -> InterfaceConfig:
        """The interface called ``name``; ``KeyError`` names the known ones otherwise."""
        for itf in self.interfaces:
            if itf.name == name:
                return itf
        raise KeyError(f"no interface {name!r}; known: {[i.name for i in self.interfaces]}")

    def acl(self, name: str) -> Acl:
        """The ACL called ``name``."""
        for acl in self.acls:
            if acl.name == name:
                return acl
        raise KeyError(f"no ACL {name!r}; known: {[a.name for a in self.acls]}")

    def with_interface(self, interface: InterfaceConfig) -> DeviceConfig:
        """A copy with ``interface`` replacing the one of the same name (or appended)."""
        others = tuple(i for i in self.interfaces if i.name != interface.name)
        ordered = sorted((*others, interface), key=lambda i: _natural_key(i.name))
        return DeviceConfig(
            hostname=self.hostname,
            interfaces=tuple(ordered),
            acls=self.acls,
            static_routes=self.static_routes,
        )


def _natural_key(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return head, int(tail) if tail else -1
