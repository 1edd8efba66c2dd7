"""The closed loop: check deployed intents against live telemetry, repair or escalate.

Each :meth:`IntentWatcher.check_once` measures the network (interface rates over SNMP, configs
over NETCONF), judges every active intent's expectations — utilization ceilings on the measured
link rates, the others on a twin of the configs the devices run, with the traffic estimated from
the same measurements — records a fulfilment report, and moves the intent to fulfilled or
violated. A violated intent is re-planned through the same graph (conflicts, twin, policy,
approval, confirmed commit); when no plan passes, the watcher escalates to the operator (audit
``escalated``) and leaves the network as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from netgpt.agents.platform import IntentPlatform
from netgpt.intents.model import (
    ExpectationResult,
    FulfilmentReport,
    Intent,
    LifecycleState,
    UtilizationCeilingExpectation,
)
from netgpt.intents.verify import evaluate_expectation, scoped_links
from netgpt.sim_networks.twin import DigitalTwin
from netgpt.telemetry.base import RateSample

__all__ = ["IntentWatcher", "WatchEvent"]

_WATCHED = frozenset(
    {
        LifecycleState.DEPLOYED,
        LifecycleState.FULFILLED,
        LifecycleState.DEGRADED,
        LifecycleState.VIOLATED,
    }
)


@dataclass(frozen=True)
class WatchEvent:
    """What the watcher found for one intent and what it did."""

    intent_id: str
    state: LifecycleState
    report: FulfilmentReport
    action: str  # "none" | "repaired" | "escalated"
    detail: str = ""


def _ceiling_from_telemetry(
    e: UtilizationCeilingExpectation,
    index: int,
    twin: DigitalTwin,
    rates: Mapping[tuple[str, str], RateSample],
    at: datetime,
) -> ExpectationResult:
    scope = scoped_links(e, twin)
    keys = (
        scope if scope is not None else [(u, v) for u, v in twin.topology.graph.to_directed().edges]
    )
    worst, where = 0.0, ""
    for u, v in keys:
        rate = rates.get((u, twin.topology.interface_to(u, v)))
        if rate is None:
            continue
        util = rate.out_utilization
        if util > worst:
            worst, where = util, f"{u}->{v}"
    return ExpectationResult(
        index=index,
        holds=worst <= e.max_utilization,
        measurement=f"max measured utilization {worst:.1%} on {where or 'no link'} (SNMP rates), "
        f"ceiling {e.max_utilization:.0%}",
        value=worst,
        target=e.max_utilization,
        source="telemetry",
        at=at,
    )


class IntentWatcher:
    """Keeps deployed intents true: measure, judge, repair within policy, or escalate."""

    def __init__(self, platform: IntentPlatform, *, actor: str = "closed-loop") -> None:
        self.platform = platform
        self.actor = actor

    def judge(
        self,
        intent: Intent,
        rates: Mapping[tuple[str, str], RateSample],
        twin: DigitalTwin,
    ) -> FulfilmentReport:
        """Each expectation of ``intent`` on the measurements (ceilings) or the live twin."""
        at = datetime.now(UTC)
        results = []
        traffic = None
        for i, e in enumerate(intent.expectations):
            if isinstance(e, UtilizationCeilingExpectation):
                results.append(_ceiling_from_telemetry(e, i, twin, rates, at))
                continue
            if traffic is None and e.kind in ("bandwidth", "latency"):
                traffic = self.platform.measure_traffic()
            result = evaluate_expectation(e, i, twin, traffic=traffic, at=at)
            results.append(result.model_copy(update={"source": "device-state"}))
        return FulfilmentReport(results=tuple(results), at=at)

    def check_once(self) -> list[WatchEvent]:
        """One pass over every watched intent; returns what happened to each."""
        p = self.platform
        intents = [i for i in p.store.intents() if i.state in _WATCHED]
        if not intents:
            return []
        rates = p.measure_rates()
        twin = DigitalTwin(p.topology, p.read_configs())
        events = []
        for intent in intents:
            report = self.judge(intent, rates, twin)
            failed = [r for r in report.results if not r.holds]
            if not failed:
                if intent.state is not LifecycleState.FULFILLED:
                    intent = intent.moved_to(LifecycleState.FULFILLED, "every expectation holds")
                p.store.save(intent.with_report(report))
                events.append(WatchEvent(intent.id, intent.state, report, "none"))
                continue
            why = "; ".join(r.measurement for r in failed)
            if intent.state is not LifecycleState.VIOLATED:
                intent = intent.moved_to(LifecycleState.VIOLATED, why)
            intent = intent.with_report(report)
            p.store.save(intent)
            p.audit.append(
                actor=self.actor,
                intent_id=intent.id,
                step="watch",
                outcome="violated",
                detail={"why": why},
            )
            run = p.replan(intent, why=why, actor=self.actor)
            if run.outcome == "deployed":
                events.append(
                    WatchEvent(
                        intent.id,
                        LifecycleState.DEPLOYED,
                        report,
                        "repaired",
                        f"re-planned and applied: {run.state.get('reason', '')}",
                    )
                )
                continue
            reason = run.state.get("reason", run.outcome)
            p.audit.append(
                actor=self.actor,
                intent_id=intent.id,
                step="watch",
                outcome="escalated",
                detail={"why": why, "replan": reason},
            )
            events.append(
                WatchEvent(
                    intent.id,
                    p.store.get(intent.id).state,
                    report,
                    "escalated",
                    f"no plan passed: {reason}",
                )
            )
        return events
