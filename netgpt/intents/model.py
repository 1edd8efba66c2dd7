"""The formal intent: what an operator wants, as typed expectations with a lifecycle.

Shaped after 3GPP TS 28.312 / TM Forum intents: an :class:`Intent` holds one or more
*expectations* (what must hold), a scope, a priority, an owner and a lifecycle state; a
:class:`FulfilmentReport` says, per expectation, whether it holds and by which measurement.
Pure data and pure rules (lifecycle transitions); no I/O.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from netgpt.device_config import IPProtocol, PortRange, TimeWindow
from netgpt.errors import ConfigError, LifecycleError

__all__ = [
    "MAX_INTENT_TEXT",
    "AccessAction",
    "AccessExpectation",
    "AnyEndpoint",
    "BandwidthExpectation",
    "BandwidthMode",
    "DeviceEndpoint",
    "Endpoint",
    "Expectation",
    "ExpectationResult",
    "FulfilmentReport",
    "GroupEndpoint",
    "Intent",
    "IntentScope",
    "LatencyExpectation",
    "LifecycleState",
    "LoadBalancingExpectation",
    "PrefixEndpoint",
    "ReachabilityExpectation",
    "ServiceLevelExpectation",
    "SiteEndpoint",
    "StateChange",
    "TimeWindow",
    "TrafficSelector",
    "UtilizationCeilingExpectation",
    "WaypointExpectation",
    "WorkloadPlacement",
    "new_intent_id",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
Name = Annotated[str, Field(min_length=1, max_length=64)]
MAX_INTENT_TEXT = 4000
"""The longest operator text an intent keeps (characters); longer text is refused."""


# ------------------------------------------------------------------------------------------
# endpoints and traffic


class DeviceEndpoint(BaseModel):
    """A device (its local prefixes)."""

    model_config = _STRICT
    kind: Literal["device"] = "device"
    name: Name


class GroupEndpoint(BaseModel):
    """A named group of prefixes (department, guests, servers)."""

    model_config = _STRICT
    kind: Literal["group"] = "group"
    name: Name


class SiteEndpoint(BaseModel):
    """Every device of a site."""

    model_config = _STRICT
    kind: Literal["site"] = "site"
    name: Name


class PrefixEndpoint(BaseModel):
    """An IPv4 prefix."""

    model_config = _STRICT
    kind: Literal["prefix"] = "prefix"
    prefix: str

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Network(value, strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 prefix such as 10.1.0.0/16") from exc


class AnyEndpoint(BaseModel):
    """Anywhere."""

    model_config = _STRICT
    kind: Literal["any"] = "any"


Endpoint = Annotated[
    DeviceEndpoint | GroupEndpoint | SiteEndpoint | PrefixEndpoint | AnyEndpoint,
    Field(discriminator="kind"),
]


class TrafficSelector(BaseModel):
    """Which traffic: from where, to where, and optionally which service/protocol/ports."""

    model_config = _STRICT
    source: Endpoint = AnyEndpoint()
    destination: Endpoint = AnyEndpoint()
    service: Name | None = None
    protocol: IPProtocol = IPProtocol.ANY
    ports: PortRange | None = None

    @model_validator(mode="after")
    def _ports_need_l4(self) -> Self:
        if self.ports is not None and self.protocol not in (IPProtocol.TCP, IPProtocol.UDP):
            raise ValueError("a port match needs protocol tcp or udp")
        return self


# ------------------------------------------------------------------------------------------
# expectations


class ReachabilityExpectation(BaseModel):
    """``source`` must (or must not) reach ``destination``."""

    model_config = _STRICT
    kind: Literal["reachability"] = "reachability"
    source: Endpoint
    destination: Endpoint
    reachable: bool = True


class AccessAction(StrEnum):
    """Allow or block."""

    ALLOW = "allow"
    BLOCK = "block"


class AccessExpectation(BaseModel):
    """Allow or block the selected traffic, optionally only in a time window."""

    model_config = _STRICT
    kind: Literal["access"] = "access"
    action: AccessAction
    traffic: TrafficSelector
    window: TimeWindow | None = None


class WaypointExpectation(BaseModel):
    """Traffic from ``source`` to ``destination`` traverses ``via`` (in order)."""

    model_config = _STRICT
    kind: Literal["waypoint"] = "waypoint"
    source: Endpoint
    destination: Endpoint
    via: tuple[Name, ...] = Field(min_length=1)


class LoadBalancingExpectation(BaseModel):
    """Traffic from ``source`` to ``destination`` is split over ``paths`` paths."""

    model_config = _STRICT
    kind: Literal["load_balancing"] = "load_balancing"
    source: Endpoint
    destination: Endpoint
    paths: int = Field(ge=2, le=64)


class BandwidthMode(StrEnum):
    """Guarantee at least, or cap at most."""

    GUARANTEE = "guarantee"
    CAP = "cap"


class BandwidthExpectation(BaseModel):
    """Guarantee or cap ``rate_mbps`` for the selected traffic."""

    model_config = _STRICT
    kind: Literal["bandwidth"] = "bandwidth"
    mode: BandwidthMode
    traffic: TrafficSelector
    rate_mbps: float = Field(gt=0, le=10_000_000)


class UtilizationCeilingExpectation(BaseModel):
    """Keep link utilization under ``max_utilization``.

    On the path between two endpoints, or on every link of a region (devices and sites), or
    everywhere when neither is given.
    """

    model_config = _STRICT
    kind: Literal["utilization_ceiling"] = "utilization_ceiling"
    max_utilization: float = Field(gt=0, le=1)
    source: Endpoint | None = None
    destination: Endpoint | None = None
    region: tuple[Name, ...] = ()
    service: Name | None = None

    @model_validator(mode="after")
    def _path_or_region(self) -> Self:
        if (self.source is None) != (self.destination is None):
            raise ValueError("a path needs both source and destination")
        if self.source is not None and self.region:
            raise ValueError("give a path (source and destination) or a region, not both")
        return self


class LatencyExpectation(BaseModel):
    """Keep one-way latency of ``service`` between two sites under ``max_ms``."""

    model_config = _STRICT
    kind: Literal["latency"] = "latency"
    source: Endpoint
    destination: Endpoint
    max_ms: float = Field(gt=0, le=100_000)
    service: Name | None = None
    percentile: float = Field(default=95, gt=0, le=100)


class ServiceLevelExpectation(BaseModel):
    """A service-level objective of a managed workload (e.g. the generative service)."""

    model_config = _STRICT
    kind: Literal["slo"] = "slo"
    workload: Name
    metric: Literal["latency_p95_ms", "latency_p50_ms", "availability", "throughput_mbps"]
    target: float = Field(gt=0)
    scope: Endpoint = AnyEndpoint()

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.metric == "availability" and not self.target <= 1:
            raise ValueError(f"availability target {self.target} must be a fraction up to 1")
        return self


class WorkloadPlacement(BaseModel):
    """Where a managed workload's instances run, so its objectives map onto network paths.

    ``cloud_device`` hosts the cloud instance; ``edges`` maps each site to the device hosting
    that site's edge instance; ``users`` each site to the device its users attach at (left
    out: the edges' devices as first placed, which moving an edge does not change). Edge and
    cloud talk over ``protocol``/``port``; users reach their edge on the same port.
    """

    model_config = _STRICT
    workload: Name
    cloud_device: Name
    edges: dict[Name, Name] = Field(default_factory=dict)
    users: dict[Name, Name] = Field(default_factory=dict)
    protocol: Literal["tcp", "udp"] = "tcp"
    port: int = Field(default=8800, ge=1, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _users_default_to_edges(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("users"):
            return {**data, "users": dict(data.get("edges") or {})}
        return data

    def user_device(self, site: str) -> str:
        """Where ``site``'s users attach (ConfigError naming the known sites otherwise)."""
        self.edge_of(site)
        return self.users.get(site, self.edges[site])

    def edge_of(self, site: str) -> str:
        """The device of ``site``'s edge instance; ConfigError naming the known sites otherwise."""
        try:
            return self.edges[site]
        except KeyError:
            raise ConfigError(f"workload {self.workload!r} has no edge instance at site {site!r}; "
                             f"it has {sorted(self.edges) or 'none'}") from None

    def moved(self, site: str, device: str) -> WorkloadPlacement:
        """A copy with ``site``'s edge instance on ``device``."""
        return self.model_copy(update={"edges": {**self.edges, site: device}})


Expectation = Annotated[
    ReachabilityExpectation
    | AccessExpectation
    | WaypointExpectation
    | LoadBalancingExpectation
    | BandwidthExpectation
    | UtilizationCeilingExpectation
    | LatencyExpectation
    | ServiceLevelExpectation,
    Field(discriminator="kind"),
]


# ------------------------------------------------------------------------------------------
# lifecycle and fulfilment


class LifecycleState(StrEnum):
    """Where an intent is in its life (3GPP TS 28.312 / TM Forum style)."""

    RECEIVED = "received"
    COMPILED = "compiled"
    AWAITING_APPROVAL = "awaiting_approval"
    DEPLOYED = "deployed"
    FULFILLED = "fulfilled"
    DEGRADED = "degraded"
    VIOLATED = "violated"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


_S = LifecycleState
_TRANSITIONS: dict[LifecycleState, frozenset[LifecycleState]] = {
    _S.RECEIVED: frozenset({_S.COMPILED, _S.FAILED, _S.WITHDRAWN}),
    _S.COMPILED: frozenset({_S.AWAITING_APPROVAL, _S.DEPLOYED, _S.FAILED, _S.WITHDRAWN}),
    _S.AWAITING_APPROVAL: frozenset({_S.DEPLOYED, _S.FAILED, _S.WITHDRAWN}),
    _S.DEPLOYED: frozenset({_S.FULFILLED, _S.DEGRADED, _S.VIOLATED, _S.FAILED, _S.WITHDRAWN}),
    _S.FULFILLED: frozenset({_S.DEGRADED, _S.VIOLATED, _S.COMPILED, _S.WITHDRAWN}),
    _S.DEGRADED: frozenset({_S.FULFILLED, _S.VIOLATED, _S.COMPILED, _S.WITHDRAWN}),
    # a violated intent is re-planned in place (closed loop): it may be re-deployed, wait for
    # approval of the repair, or stay violated when no repair passes
    _S.VIOLATED: frozenset(
        {
            _S.FULFILLED,
            _S.DEGRADED,
            _S.COMPILED,
            _S.AWAITING_APPROVAL,
            _S.DEPLOYED,
            _S.FAILED,
            _S.WITHDRAWN,
        }
    ),
    _S.FAILED: frozenset({_S.COMPILED, _S.WITHDRAWN}),
    _S.WITHDRAWN: frozenset(),
}


class StateChange(BaseModel):
    """One lifecycle transition, with why."""

    model_config = _STRICT
    state: LifecycleState
    at: datetime
    reason: str = ""


class ExpectationResult(BaseModel):
    """Whether one expectation holds, and the measurement that says so."""

    model_config = _STRICT
    index: int = Field(ge=0)
    holds: bool
    measurement: str  # what was measured, in words: "max utilization on CHIN-NYCM (SNMP)"
    value: float | None = None
    target: float | None = None
    source: Literal["twin", "telemetry", "device-state", "forecast"]
    at: datetime


class FulfilmentReport(BaseModel):
    """Per-expectation results at one moment; ``fulfilled`` iff every expectation holds."""

    model_config = _STRICT
    results: tuple[ExpectationResult, ...]
    at: datetime

    @property
    def fulfilled(self) -> bool:
        """Every expectation holds."""
        return bool(self.results) and all(r.holds for r in self.results)


class IntentScope(BaseModel):
    """Where an intent may act: devices and sites it may change (empty: the whole network)."""

    model_config = _STRICT
    devices: tuple[Name, ...] = ()
    sites: tuple[Name, ...] = ()


def _now() -> datetime:
    return datetime.now(UTC)


def new_intent_id() -> str:
    """A fresh intent id: ``int-`` and ten hex digits."""
    return "int-" + uuid.uuid4().hex[:10]


class Intent(BaseModel):
    """A formal intent. Immutable: lifecycle changes return a new one (see :meth:`moved_to`)."""

    model_config = _STRICT
    id: str = Field(default_factory=new_intent_id, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    text: str = Field(default="", max_length=MAX_INTENT_TEXT)
    expectations: tuple[Expectation, ...] = Field(min_length=1, max_length=100)
    scope: IntentScope = IntentScope()
    priority: int = Field(default=5, ge=1, le=10)
    owner: Name = "operator"
    state: LifecycleState = LifecycleState.RECEIVED
    history: tuple[StateChange, ...] = ()
    report: FulfilmentReport | None = None
    created_at: datetime = Field(default_factory=_now)

    def can_move_to(self, state: LifecycleState) -> bool:
        """Whether the lifecycle allows going from the current state to ``state``."""
        return state in _TRANSITIONS[self.state]

    def moved_to(self, state: LifecycleState, reason: str = "") -> Intent:
        """A copy in ``state``; :class:`LifecycleError` if the lifecycle does not allow it."""
        if state not in _TRANSITIONS[self.state]:
            allowed = sorted(s.value for s in _TRANSITIONS[self.state])
            raise LifecycleError(
                f"intent {self.id} cannot go from {self.state.value} to {state.value}; "
                f"from {self.state.value} it can go to {allowed or 'nothing (final)'}"
            )
        change = StateChange(state=state, at=_now(), reason=reason)
        return self.model_copy(update={"state": state, "history": (*self.history, change)})

    def with_report(self, report: FulfilmentReport) -> Intent:
        """A copy carrying ``report``."""
        return self.model_copy(update={"report": report})

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of its expectations, in order."""
        return tuple(e.kind for e in self.expectations)
