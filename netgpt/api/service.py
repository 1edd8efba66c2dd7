"""What the API does, without HTTP: one platform, one change at a time, live events, metrics.

:class:`ControlService` owns an :class:`~netgpt.agents.platform.IntentPlatform` for the life of
the server. Changes (submit, approve, reject, withdraw, closed-loop repairs, policy edits) run one
at a time under a lock, as an operator's change board would; reads go straight to the
thread-safe stores. A background thread publishes intent state changes and link utilization as
:class:`~netgpt.api.events.LiveEvent` and runs the closed loop every ``watch_interval_s``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from netgpt.agents.audit import AuditRecord
from netgpt.agents.platform import IntentPlatform, PendingApproval, RunResult
from netgpt.agents.watch import IntentWatcher
from netgpt.api.auth import ApiUser
from netgpt.api.events import EventBus
from netgpt.api.models import (
    DeviceView,
    ForecastView,
    LinkView,
    PlanChoiceView,
    RunView,
    TelemetryView,
    TopologyView,
    VerdictView,
)
from netgpt.edge_models.base import Forecast, Forecaster
from netgpt.errors import ConfigError, NetGPTError
from netgpt.intents.model import Intent, LifecycleState
from netgpt.policies.base import PolicySet
from netgpt.telemetry.views import link_utilizations

__all__ = ["ControlService", "ForbiddenError", "UnknownItemError"]


class UnknownItemError(ConfigError):
    """An id or name the request refers to does not exist (HTTP 404)."""


class ForbiddenError(NetGPTError):
    """The caller is known but their role, or the four-eyes rule, does not allow this (403)."""


def run_view(run: RunResult) -> RunView:
    """The typed summary of one graph run the API returns."""
    state = run.state
    plan = state.get("plan") or {}
    intent = Intent.model_validate(state["intent"]) if state.get("intent") else None
    return RunView(
        run_id=run.run_id,
        outcome=run.outcome,
        reason=str(state.get("reason", "")),
        intent=intent,
        diffs={d: str(c.get("diff", "")) for d, c in plan.get("changes", {}).items()},
        notes=[str(n) for n in plan.get("notes", [])],
        verdicts=[
            VerdictView(passed=v.passed, source=v.source.value, rule=v.rule, evidence=v.evidence)
            for v in run.verdicts
        ],
        awaiting_approval=(
            str(run.waiting_for_approval.get("why", ""))
            if run.waiting_for_approval is not None
            else None
        ),
        seconds=round(run.seconds, 4),
        plan_choice=(
            PlanChoiceView.model_validate(state["plan_choice"]) if state.get("plan_choice")
            else None
        ),
    )


class _PlatformCollector(Collector):
    """Gauges computed at scrape time from the stores and the latest telemetry."""

    def __init__(self, service: ControlService) -> None:
        self.service = service

    def collect(self) -> Any:
        s = self.service
        by_state = GaugeMetricFamily(
            "netgpt_intents", "Intents by lifecycle state", labels=["state"]
        )
        counts = dict.fromkeys((st.value for st in LifecycleState), 0)
        for intent in s.platform.store.intents():
            counts[intent.state.value] += 1
        for state, n in counts.items():
            by_state.add_metric([state], n)
        yield by_state
        reach = GaugeMetricFamily(
            "netgpt_device_reachable",
            "1 when the device answered SNMP in the last three polling rounds",
            labels=["device"],
        )
        for d in s.devices():
            reach.add_metric([d.name], 1.0 if d.reachable else 0.0)
        yield reach
        util = GaugeMetricFamily(
            "netgpt_link_utilization",
            "Egress utilization of each link direction (fraction of capacity), from SNMP",
            labels=["source", "target"],
        )
        for lk in s.links():
            if lk.a_to_b is not None and lk.b_to_a is not None:
                util.add_metric([lk.a, lk.b], lk.a_to_b)
                util.add_metric([lk.b, lk.a], lk.b_to_a)
        yield util


class ControlService:
    """The platform behind the API (see the module docstring).

    ``forecaster`` is loaded on first use by ``load_forecaster`` (a callable, so tests and
    servers without the weights can pass their own); ``policy_file`` is where an admin's policy
    edits are kept (read back at the next start). ``proactive``: a forecaster of its own for the
    closed loop, which then re-plans a utilization ceiling ahead of a predicted crossing
    (:class:`~netgpt.agents.watch.IntentWatcher`); without it the loop acts on measurements only.
    """

    def __init__(
        self,
        platform: IntentPlatform,
        *,
        tick_s: float = 1.0,
        watch_interval_s: float = 10.0,
        policy_file: Path | None = None,
        load_forecaster: Callable[[], Forecaster] | None = None,
        proactive: Forecaster | None = None,
    ) -> None:
        self.platform = platform
        self.bus = EventBus()
        self.tick_s = tick_s
        self.watch_interval_s = watch_interval_s
        self.policy_file = policy_file
        self._load_forecaster = load_forecaster
        self._forecaster: Forecaster | None = None
        self._change = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._states: dict[str, str] = {}
        self._states_lock = threading.Lock()
        self.watcher = IntentWatcher(platform, actor="closed-loop", forecaster=proactive)
        self.registry = CollectorRegistry()
        self.apply_seconds = Histogram(
            "netgpt_apply_seconds",
            "Time from commit to confirmed (or rolled back) change, per applied run",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.registry.register(_PlatformCollector(self))

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (events and the closed loop)."""
        if self._thread is None:
            self._states = {i.id: i.state.value for i in self.platform.store.intents()}
            self._thread = threading.Thread(target=self._loop, name="netgpt-api", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (the platform is the caller's to close)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        next_watch = time.monotonic() + self.watch_interval_s
        while not self._stop.wait(self.tick_s):
            try:
                self.publish_changes()
                self.bus.publish("links", {"links": [lk.model_dump() for lk in self.links()]})
                if self.watch_interval_s > 0 and time.monotonic() >= next_watch:
                    next_watch = time.monotonic() + self.watch_interval_s
                    self.watch_once()
            except NetGPTError as exc:  # a device down must not end the loop
                self.bus.publish("error", {"detail": str(exc)})

    def publish_changes(self) -> None:
        """Publish an ``intent`` event for each intent whose state changed since the last call."""
        with self._states_lock:  # the loop and request threads both call this: one event each
            changed = []
            for intent in self.platform.store.intents():
                if self._states.get(intent.id) != intent.state.value:
                    self._states[intent.id] = intent.state.value
                    changed.append(intent)
        for intent in changed:
            self.bus.publish(
                "intent", {"id": intent.id, "state": intent.state.value, "text": intent.text}
            )

    def watch_once(self) -> None:
        """One closed-loop pass, as one change; what it did becomes ``watch`` events."""
        with self._change:
            events = self.watcher.check_once()
        for e in events:
            if e.action != "none":
                self.bus.publish("watch", {"id": e.intent_id, "action": e.action,
                                           "state": e.state.value, "detail": e.detail})
        self.publish_changes()

    # -- changes ----------------------------------------------------------------------------

    def _ran(self, run: RunResult) -> RunView:
        for step, seconds in run.state.get("timings", []):
            if step == "apply":
                self.apply_seconds.observe(float(seconds))
        view = run_view(run)
        self.bus.publish("run", {"run_id": view.run_id, "outcome": view.outcome,
                                 "reason": view.reason})
        self.publish_changes()
        return view

    def submit(self, user: ApiUser, text: str, *, dry_run: bool) -> RunView:
        """Run ``text`` through the graph as ``user``; risky changes wait for another person."""
        with self._change:
            run = self.platform.submit(text, actor=user.name, dry_run=dry_run)
        return self._ran(run)

    def decide(self, user: ApiUser, run_id: str, decision: str) -> RunView:
        """Approve or reject a pending run (the submitter cannot approve their own)."""
        pending = {p.run_id: p for p in self.approvals()}
        if run_id not in pending:
            raise UnknownItemError(
                f"no change waiting for approval has id {run_id!r}; GET /api/approvals lists them"
            )
        if decision == "approve" and pending[run_id].submitter == user.name:
            self.platform.audit.append(
                actor=user.name, intent_id=run_id, step="approve", outcome="refused",
                detail={"why": "four eyes: the submitter may not approve their own change"})
            raise ForbiddenError(
                f"{user.name} submitted {run_id} and cannot also approve it; another approver "
                "must (rejecting it is allowed)"
            )
        with self._change:
            run = self.platform.resume(run_id, decision=decision, by=user.name)
        return self._ran(run)

    def withdraw(self, user: ApiUser, intent_id: str) -> Intent:
        """Revert what the intent changed and mark it withdrawn (all or nothing)."""
        self.intent(intent_id)
        with self._change:
            intent, _ = self.platform.withdraw(intent_id, by=user.name)
        self.publish_changes()
        return intent

    def set_policies(self, user: ApiUser, policies: PolicySet) -> PolicySet:
        """Replace the guardrails (admin); kept in ``policy_file`` and audited."""
        with self._change:
            before = self.platform.policies
            self.platform.policies = policies
            if self.policy_file is not None:
                body = yaml.safe_dump(policies.model_dump(mode="json"), sort_keys=False)
                self.policy_file.write_text(body, encoding="utf-8")
            self.platform.audit.append(
                actor=user.name, intent_id="-", step="policy", outcome="replaced",
                detail={"rules_before": [r.id for r in before.rules()],
                        "rules_after": [r.id for r in policies.rules()]},
            )
        self.bus.publish("policy", {"by": user.name, "rules": [r.id for r in policies.rules()]})
        return policies

    # -- reads ------------------------------------------------------------------------------

    def intents(self) -> list[Intent]:
        """Every intent, newest first."""
        return sorted(self.platform.store.intents(), key=lambda i: i.created_at, reverse=True)

    def intent(self, intent_id: str) -> Intent:
        """One intent; :class:`UnknownItemError` when there is none by that id."""
        try:
            return self.platform.store.get(intent_id)
        except ConfigError:
            raise UnknownItemError(
                f"no intent has id {intent_id!r}; GET /api/intents lists them"
            ) from None

    def approvals(self) -> list[PendingApproval]:
        """Changes waiting for a person."""
        return self.platform.pending_approvals()

    def audit(self, intent_id: str | None = None, limit: int = 200) -> list[AuditRecord]:
        """The newest ``limit`` audit records (of one intent's runs when given), oldest first."""
        records = list(self.platform.audit.records())
        if intent_id is not None:
            records = [r for r in records
                       if r.intent_id == intent_id or r.intent_id.startswith(intent_id + ".")]
        return records[-limit:]

    def _latest(self) -> dict[tuple[str, str], Any]:
        telemetry = self.platform.telemetry
        if telemetry is None:
            return {}
        return telemetry.latest(max_age_s=max(5.0, 3 * telemetry.interval_s)) or {}

    def links(self) -> list[LinkView]:
        """Every link with its measured load (``None`` before telemetry has two polls)."""
        inventory = self.platform.inventory
        measured = {(u.a, u.b): u for u in link_utilizations(inventory, self._latest())}
        out = []
        for lk in self.platform.topology.links():
            m = measured.get((lk.a, lk.b))
            out.append(LinkView(
                a=lk.a, b=lk.b, a_interface=lk.a_interface, b_interface=lk.b_interface,
                capacity_mbps=lk.capacity_mbps,
                a_to_b=None if m is None else round(m.a_to_b_mbps / lk.capacity_mbps, 4),
                b_to_a=None if m is None else round(m.b_to_a_mbps / lk.capacity_mbps, 4),
                up=None if m is None else m.up,
            ))
        return out

    def devices(self) -> list[DeviceView]:
        """Every device with its site and whether it answered the latest polls."""
        latest = self._latest()
        graph = self.platform.topology.graph
        fresh = {dev for (dev, _itf) in latest}
        out = []
        for name in self.platform.topology.devices:
            node = graph.nodes[name]
            loc = node.get("location")
            out.append(DeviceView(
                name=name, role=str(node.get("role", "")), site=str(node.get("site", "")),
                location=None if loc is None else (float(loc[0]), float(loc[1])),
                reachable=name in fresh,
            ))
        return out

    def topology(self) -> TopologyView:
        """Devices and links for the map."""
        return TopologyView(name=self.platform.topology.name, devices=self.devices(),
                            links=self.links())

    def _direction(self, source: str, target: str) -> tuple[str, str]:
        topo = self.platform.topology
        if not topo.graph.has_edge(source, target):
            raise UnknownItemError(
                f"no link {source}->{target}; GET /api/links lists the links"
            )
        return source, topo.interface_to(source, target)

    def telemetry(self, source: str, target: str, rows: int = 288) -> TelemetryView:
        """The egress utilization history of ``source -> target`` from background polling."""
        key = self._direction(source, target)
        telemetry = self.platform.telemetry
        if telemetry is None:
            raise ConfigError("telemetry is not running on this server; start it with "
                              "'netgpt serve' (it polls by default)")
        times, values = telemetry.utilization_history([key])
        times, values = times[-rows:], values[-rows:, 0]
        return TelemetryView(link=f"{source}->{target}", times=times.tolist(),
                             utilization=[None if not np.isfinite(v) else float(v)
                                          for v in values])

    def forecaster(self) -> Forecaster:
        """The edge forecaster (loaded once)."""
        if self._forecaster is None:
            if self._load_forecaster is None:
                from netgpt.edge_models.forecasting import load_forecaster

                self._forecaster = load_forecaster()
            else:
                self._forecaster = self._load_forecaster()
        return self._forecaster

    def _predict(
        self, source: str, target: str, horizon: int
    ) -> tuple[TelemetryView, np.ndarray, Forecast]:
        if not 1 <= horizon <= 288:
            raise ConfigError(f"horizon {horizon} is out of range; give 1 to 288 polling steps")
        history = self.telemetry(source, target)
        values = np.array([np.nan if v is None else v for v in history.utilization])
        # too short a history gets the forecaster's own ForecastError, naming what it needs
        telemetry = self.platform.telemetry
        assert telemetry is not None  # self.telemetry() raised otherwise
        fc = self.forecaster().predict(
            values.reshape(-1, 1), horizon, step_s=telemetry.interval_s,
            last_time=history.times[-1], series=[history.link])
        return history, values, fc

    def forecast(self, source: str, target: str, horizon: int = 12,
                 threshold: float | None = None) -> ForecastView:
        """The link's utilization forecast with its 10/50/90% quantiles."""
        history, _, fc = self._predict(source, target, horizon)
        future = fc.times
        return ForecastView(
            link=history.link,
            times=[] if future is None else [float(t) for t in future],
            q10=[float(v) for v in fc.quantile(0.1)[0]],
            q50=[float(v) for v in fc.quantile(0.5)[0]],
            q90=[float(v) for v in fc.quantile(0.9)[0]],
            probability_above=(None if threshold is None
                               else float(fc.probability_above(threshold)[0])),
            threshold=threshold,
        )

    def forecast_png(self, source: str, target: str, horizon: int = 12) -> bytes:
        """History, forecast and quantile band of one link as a PNG."""
        from netgpt.edge_models.plot import plot_forecast

        history, values, fc = self._predict(source, target, horizon)
        with tempfile.TemporaryDirectory() as tmp:
            path = plot_forecast(Path(tmp) / "forecast.png", np.array(history.times), values, fc,
                                 title=f"{history.link} egress utilization, "
                                 f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
            return path.read_bytes()
