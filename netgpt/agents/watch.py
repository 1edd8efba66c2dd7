"""The closed loop: check deployed intents against live telemetry, repair or escalate.

Each :meth:`IntentWatcher.check_once` measures the network (interface rates over SNMP, configs
over NETCONF), judges every active intent's expectations — utilization ceilings on the measured
link rates, the others on a twin of the configs the devices run, with the traffic estimated from
the same measurements — records a fulfilment report, and moves the intent to fulfilled or
violated. A violated intent is re-planned through the same graph (conflicts, twin, policy,
approval, confirmed commit); when no plan passes, the watcher escalates to the operator (audit
``escalated``) and leaves the network as it is.

A workload's service-level objective (``slo``) is judged on its recorded requests
(:attr:`IntentPlatform.service_metrics`) since the intent was last deployed, within the last
``slo_window_s``; the repair re-plans it like any intent, and its plan keeps headroom on the
workload's edge-cloud paths (:func:`netgpt.intents.compiler.slo_path_ceilings`). When those
paths already have their headroom under the measured traffic, or no plan passes, no routing
change can help. When the platform can move the workload's edge instances (a mover given to
:meth:`IntentPlatform.manage_workload`), the watcher moves a site's edge to a device whose way
to the cloud the network carries within the objective
(:func:`netgpt.intents.placement.choose_edge_move`, the cost of the move counted), then
re-plans for the new paths; otherwise it escalates and changes nothing.

With a forecaster, a utilization ceiling that holds now is also judged ahead: the egress
utilization history of its links (the platform's background telemetry) is forecast ``horizon``
steps on; when the probability that a link exceeds the ceiling within the horizon reaches
``probability``, the intent is re-planned *proactively* against the predicted traffic (the
measured matrix with the demands crossing that link scaled to the forecast's upper quantile), with
the same guards; the report and the audit say the violation was predicted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from netgpt.agents.platform import IntentPlatform
from netgpt.edge_models.base import Forecaster
from netgpt.errors import NetGPTError, TelemetryError
from netgpt.intents.compiler import compile_intent, slo_edge_sites, slo_sites
from netgpt.intents.model import (
    ExpectationResult,
    FulfilmentReport,
    Intent,
    LifecycleState,
    ServiceLevelExpectation,
    UtilizationCeilingExpectation,
)
from netgpt.intents.placement import choose_edge_move
from netgpt.intents.verify import evaluate_expectation, path_links, scoped_links
from netgpt.sim_networks.twin import Demand, DigitalTwin, TrafficMatrix
from netgpt.telemetry.base import RateSample
from netgpt.telemetry.views import service_level

__all__ = ["IntentWatcher", "PredictedViolation", "WatchEvent"]

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
    action: str  # "none" | "repaired" | "moved" | "escalated" | "proactive"
    detail: str = ""


@dataclass(frozen=True)
class PredictedViolation:
    """A ceiling a forecast says will be crossed within the horizon."""

    index: int
    link: tuple[str, str]
    probability: float
    now: float  # measured utilization of that link
    peak: float  # the forecast's upper quantile peak within the horizon
    steps: int
    step_s: float

    def __str__(self) -> str:
        return (f"predicted: P(utilization of {self.link[0]}->{self.link[1]} exceeds the ceiling "
                f"within {self.steps} steps of {self.step_s:g} s) = {self.probability:.0%}; now "
                f"{self.now:.1%}, forecast upper quantile {self.peak:.1%}")


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


def _with_prediction(report: FulfilmentReport, hit: PredictedViolation) -> FulfilmentReport:
    """The report with the predicted crossing added to that ceiling's measurement."""
    results = tuple(
        r.model_copy(update={"measurement": f"{r.measurement}; {hit}"}) if r.index == hit.index
        else r
        for r in report.results
    )
    return report.model_copy(update={"results": results})


class IntentWatcher:
    """Keeps deployed intents true: measure, judge, repair within policy, or escalate."""

    def __init__(
        self,
        platform: IntentPlatform,
        *,
        actor: str = "closed-loop",
        forecaster: Forecaster | None = None,
        horizon: int = 12,
        probability: float = 0.5,
        upper_level: float = 0.9,
        min_history: int = 24,
        history_rows: int = 288,
        slo_window_s: float = 60.0,
    ) -> None:
        self.platform = platform
        self.actor = actor
        self.forecaster = forecaster
        self.horizon = horizon
        self.probability = probability
        self.upper_level = upper_level
        self.min_history = min_history
        self.history_rows = history_rows  # the newest polls the forecaster is shown
        self.slo_window_s = slo_window_s

    def predict(
        self,
        intent: Intent,
        twin: DigitalTwin,
        rates: Mapping[tuple[str, str], RateSample] | None = None,
    ) -> PredictedViolation | None:
        """The likeliest predicted crossing of one of the intent's ceilings, if any is likely."""
        telemetry = self.platform.telemetry
        if self.forecaster is None or telemetry is None:
            return None
        found: PredictedViolation | None = None
        for i, e in enumerate(intent.expectations):
            if not isinstance(e, UtilizationCeilingExpectation):
                continue
            scope = scoped_links(e, twin)
            links = scope if scope is not None else sorted(twin.topology.graph.to_directed().edges)
            keys = [(u, twin.topology.interface_to(u, v)) for u, v in links]
            times, history = telemetry.utilization_history(keys)
            times, history = times[-self.history_rows:], history[-self.history_rows:]
            if len(times) < self.min_history:
                continue
            forecast = self.forecaster.predict(
                history, self.horizon, step_s=telemetry.interval_s, last_time=float(times[-1]),
                series=[f"{u}->{v}" for u, v in links])
            odds = forecast.probability_above(e.max_utilization)
            peaks = forecast.quantile(self.upper_level).max(axis=1)
            k = int(np.argmax(odds))
            if odds[k] >= self.probability and (found is None or odds[k] > found.probability):
                measured = rates.get(keys[k]) if rates is not None else None
                if measured is not None:  # the same measurement the traffic estimate uses
                    now = measured.out_utilization
                else:
                    now = float(history[-1, k]) if np.isfinite(history[-1, k]) else 0.0
                found = PredictedViolation(i, links[k], float(odds[k]), now, float(peaks[k]),
                                           self.horizon, telemetry.interval_s)
        return found

    def predicted_traffic(self, twin: DigitalTwin, hit: PredictedViolation) -> TrafficMatrix:
        """The measured matrix, demands crossing the predicted link scaled to the forecast.

        They grow by the forecast's upper quantile over the link's utilization now; the other
        demands stay as measured.
        """
        measured = self.platform.measure_traffic()
        factor = max(1.0, hit.peak / hit.now) if hit.now > 0 else 1.0
        out = []
        for d in measured:
            address = d.dst_address or twin.default_address(d.dst)
            crosses = any(hit.link in path_links(tr.devices)
                          for tr in twin.paths(d.src, address))
            out.append(Demand(d.src, d.dst, d.rate_mbps * factor, d.protocol, d.dst_port,
                              d.src_port, d.src_address, d.dst_address)
                       if crosses else d)
        return TrafficMatrix(tuple(out))

    def service_objective(
        self, intent: Intent, index: int, e: ServiceLevelExpectation, at: datetime
    ) -> ExpectationResult:
        """``e`` measured on the workload's requests since ``intent`` was last deployed.

        With no request to judge yet, it holds and says so (nothing says it does not); when
        every request failed, a latency objective does not hold.
        """
        p = self.platform
        if p.service_metrics is None:
            return evaluate_expectation(e, index, DigitalTwin(p.topology, {}), at=at)
        deployed = [c.at.timestamp() for c in intent.history
                    if c.state is LifecycleState.DEPLOYED]
        since = max([time.time() - self.slo_window_s, *deployed[-1:]])
        frame = p.service_metrics.service_frame(workload=e.workload, since=since)
        sites = slo_sites(e, p.topology)
        if sites is not None:
            frame = frame[frame["site"].isin(sites)]
        where = "every site" if sites is None else "site " + ", ".join(sites)
        try:
            level = service_level(frame, e.metric, window_s=time.time() - since)
        except TelemetryError as exc:
            # no request: nothing says it fails; requests that all failed: it does
            return ExpectationResult(index=index, holds=frame.empty,
                                     measurement=f"{e.workload} at {where}: {exc}",
                                     target=e.target, source="telemetry", at=at)
        upper = e.metric.startswith("latency")
        holds = level.value <= e.target if upper else level.value >= e.target
        return ExpectationResult(
            index=index, holds=holds, value=level.value, target=e.target, source="telemetry",
            at=at, measurement=f"{e.workload} at {where}: {level}; objective "
            f"{'at most' if upper else 'at least'} {e.target:g}")

    def _not_the_paths(self, intent: Intent) -> tuple[str | None, TrafficMatrix | None]:
        """Why re-planning cannot help a violated objective whose paths already have headroom.

        Only for intents made of workload objectives: when their plan against the measured
        traffic changes nothing, the network's share holds and the cause is elsewhere (an ACL
        on the service, the instances, the model). Returns that reason (``None``: re-plan) and
        the traffic it measured, for the re-plan to use rather than measure again.
        """
        p = self.platform
        if not all(isinstance(e, ServiceLevelExpectation) for e in intent.expectations):
            return None, None
        try:
            traffic = p.measure_traffic()
            plan = compile_intent(intent, p.topology, p.read_configs(), traffic=traffic,
                                  workloads=p.workloads)
        except NetGPTError:
            return None, None  # the re-plan says why it cannot
        if plan.changes:
            return None, traffic
        return ("no network change can help: the workload's edge-cloud paths already have "
                "their headroom under the measured traffic, so the cause is elsewhere (an ACL "
                "on the service's port, its instances or its model); left to the operator"), traffic

    def _move_edges(self, intent: Intent, report: FulfilmentReport, why: str,
                    traffic: TrafficMatrix | None, twin: DigitalTwin) -> WatchEvent | None:
        """Keep a violated objective by moving edge instances, when the paths cannot.

        For each site in the scope of each workload objective whose workload the platform can
        move, :func:`~netgpt.intents.placement.choose_edge_move` on the measured traffic; the
        chosen moves are made (audited ``placement``), then the intent is re-planned for the
        new placement (its paths now include the moved edges' ways). ``None`` when nothing
        moved (the caller escalates). ``twin`` holds the configs this pass read (a failed
        re-plan leaves them as they were).
        """
        p = self.platform
        slos = [e for e in intent.expectations if isinstance(e, ServiceLevelExpectation)
                and e.workload in p.edge_movers and e.workload in p.workloads]
        if not slos:
            return None
        try:
            traffic = traffic if traffic is not None else p.measure_traffic()
            load = twin.evaluate(traffic)
        except NetGPTError:
            return None
        hosts = [d for d in p.topology.devices if p.topology.local_prefixes(d)]
        done = []
        for e in slos:
            edge_bytes = p.edge_movers[e.workload][1]
            for site in slo_edge_sites(e, p.workloads[e.workload], p.topology):
                placement = p.workloads[e.workload]  # as the previous move left it
                choice = choose_edge_move(e, placement, site, twin, load, hosts,
                                          edge_bytes=edge_bytes)
                if choice is None:
                    continue
                try:
                    moved = p.move_edge(e.workload, choice, actor=self.actor,
                                        intent_id=intent.id)
                except NetGPTError:
                    continue  # audited as failed; the next site may still move
                done.append(f"{choice} (copied {moved.bytes_moved / 1e6:.1f} MB in "
                            f"{moved.transfer_ms:.0f} ms)")
        if not done:
            return None
        moves = "; ".join(done)
        run = p.replan(intent, why=f"{why}; {moves}", actor=self.actor, traffic=traffic)
        detail = f"moved the edge instance: {moves}"
        if run.outcome != "deployed":
            detail += (f"; the re-plan for the new paths did not pass: "
                       f"{run.state.get('reason', run.outcome)}")
        return WatchEvent(intent.id, p.store.get(intent.id).state, report, "moved", detail)

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
            if isinstance(e, ServiceLevelExpectation):
                results.append(self.service_objective(intent, i, e, at))
                continue
            if traffic is None and e.kind in ("bandwidth", "latency"):
                traffic = self.platform.measure_traffic()
            result = evaluate_expectation(e, i, twin, traffic=traffic, at=at)
            results.append(result.model_copy(update={"source": "device-state"}))
        return FulfilmentReport(results=tuple(results), at=at)

    def _proactive(
        self, intent: Intent, report: FulfilmentReport, twin: DigitalTwin, hit: PredictedViolation
    ) -> WatchEvent:
        """Re-plan ``intent`` for the predicted traffic; the network stays as it is if none fits."""
        p = self.platform
        why = str(hit)
        p.audit.append(actor=self.actor, intent_id=intent.id, step="watch", outcome="predicted",
                       detail={"why": why})
        run = p.replan(intent, why=why, actor=self.actor,
                       traffic=self.predicted_traffic(twin, hit))
        if run.outcome == "deployed":
            return WatchEvent(intent.id, LifecycleState.DEPLOYED, report, "proactive",
                              f"re-planned ahead of a predicted violation ({why}): "
                              f"{run.state.get('reason', '')}")
        reason = run.state.get("reason", run.outcome)
        p.audit.append(actor=self.actor, intent_id=intent.id, step="watch", outcome="escalated",
                       detail={"why": why, "replan": reason})
        return WatchEvent(intent.id, p.store.get(intent.id).state, report, "escalated",
                          f"predicted violation, no plan passed: {reason}")

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
                hit = self.predict(intent, twin, rates)
                if hit is not None:
                    report = _with_prediction(report, hit)
                p.store.save(intent.with_report(report))
                if hit is None:
                    events.append(WatchEvent(intent.id, intent.state, report, "none"))
                else:
                    events.append(self._proactive(intent, report, twin, hit))
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
            elsewhere, measured = self._not_the_paths(intent)
            if elsewhere is not None:
                moved = self._move_edges(intent, report, why, measured, twin)
                if moved is not None:
                    events.append(moved)
                    continue
                p.audit.append(actor=self.actor, intent_id=intent.id, step="watch",
                               outcome="escalated", detail={"why": why, "replan": elsewhere})
                events.append(WatchEvent(intent.id, intent.state, report, "escalated",
                                         elsewhere))
                continue
            run = p.replan(intent, why=why, actor=self.actor, traffic=measured)
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
            moved = self._move_edges(intent, report, why, measured, twin)
            if moved is not None:
                events.append(moved)
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
