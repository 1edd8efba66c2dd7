"""The typed bodies the API takes and returns (they make its OpenAPI spec)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from netgpt.intents.model import Intent

__all__ = [
    "AuditView",
    "DeviceView",
    "ErrorView",
    "ForecastView",
    "IntentRequest",
    "LinkView",
    "LoginRequest",
    "PendingView",
    "PlanChoiceView",
    "PlanOptionView",
    "RunView",
    "TelemetryView",
    "TopologyView",
    "UserView",
    "VerdictView",
]

_STRICT = ConfigDict(extra="forbid")


class ErrorView(BaseModel):
    """A refused request: ``detail`` names the bad value or state and what to do instead."""

    detail: str


class LoginRequest(BaseModel):
    """Trade an API token for a console session cookie."""

    model_config = _STRICT
    token: str = Field(min_length=1, max_length=256)


class UserView(BaseModel):
    """Who the caller is."""

    name: str
    role: Literal["viewer", "operator", "approver", "admin"]


class IntentRequest(BaseModel):
    """An intent in words. ``dry_run`` plans and verifies it and applies nothing.

    ``dry_run`` must be a JSON boolean: ``"no"`` or ``0`` are refused rather than read as
    "apply it".
    """

    model_config = _STRICT
    text: str = Field(min_length=1, max_length=2000)
    dry_run: StrictBool = False


class VerdictView(BaseModel):
    """One check: policy rule, twin verification, conflict or approval."""

    passed: bool
    source: str
    rule: str
    evidence: str


class PlanOptionView(BaseModel):
    """One of the compiler's alternative plans, as the chooser saw it."""

    index: int
    devices: list[str]
    summary: str
    passes: bool
    failed_on: str


class PlanChoiceView(BaseModel):
    """Which alternative plan was chosen, by whom, and why.

    ``by`` is a backend or ``planner``; ``adapter`` the model's task adapter, if it used one.
    """

    options: list[PlanOptionView]
    chosen: int
    reason: str
    by: str
    adapter: str | None = None


class RunView(BaseModel):
    """How one run of the agent graph ended, or that it waits for approval.

    ``plan_choice`` is set when the compiler offered alternative plans.
    """

    run_id: str
    outcome: str
    reason: str
    intent: Intent | None
    diffs: dict[str, str]
    notes: list[str]
    verdicts: list[VerdictView]
    awaiting_approval: str | None
    seconds: float
    plan_choice: PlanChoiceView | None = None


class PendingView(BaseModel):
    """A change waiting for an approver, with each device's diff."""

    run_id: str
    text: str
    submitter: str
    why: str
    diffs: dict[str, str]


class DeviceView(BaseModel):
    """A device on the map."""

    name: str
    role: str
    site: str
    location: tuple[float, float] | None
    reachable: bool


class LinkView(BaseModel):
    """A link with its measured load in each direction.

    Loads are fractions of capacity; ``None`` before telemetry has two polls.
    """

    a: str
    b: str
    a_interface: str
    b_interface: str
    capacity_mbps: float
    a_to_b: float | None
    b_to_a: float | None
    up: bool | None


class TopologyView(BaseModel):
    """Everything the console's map draws."""

    name: str
    devices: list[DeviceView]
    links: list[LinkView]


class TelemetryView(BaseModel):
    """One link direction's egress utilization per polling round (``None``: missed poll)."""

    link: str
    times: list[float]
    utilization: list[float | None]


class ForecastView(BaseModel):
    """Quantile forecast of a link's utilization over the next polling steps."""

    link: str
    times: list[float]
    q10: list[float]
    q50: list[float]
    q90: list[float]
    threshold: float | None
    probability_above: float | None


class AuditView(BaseModel):
    """One audit record (hash-chained; ``netgpt audit --verify`` checks the chain)."""

    seq: int
    at: str
    actor: str
    intent_id: str
    step: str
    outcome: str
    detail: dict[str, object]
    hash: str
