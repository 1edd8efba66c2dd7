"""Wiring: the agent's collaborators for one network (inventory + topology + state directory).

:class:`IntentPlatform` owns the intent store, the audit log and the langgraph checkpointer in
the state directory, and builds the :class:`~netgpt.agents.graph.AgentContext` from the parser,
the compiler, the twin, the policies and the tools. ``submit`` runs an intent; ``resume``
answers a pending approval (also from another process, after a restart).

``llm`` picks the language model (a backend name for
:func:`~netgpt.cloud_models.registry.llm_from_config`, an instance, or ``None``:
``$NETGPT_LLM_BACKEND``, default ``embedded``). With a model backend, text the parser cannot
place is read by the model (its reading must name only what the text names), and refusals get
the model's explanation; the embedded backend adds nothing to the parser, so then the graph
runs without a model.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from netgpt.agents.audit import AuditLog
from netgpt.agents.graph import AgentContext, IntentRunState, build_intent_graph
from netgpt.agents.intent_reading import IntentReader
from netgpt.agents.store import IntentStore
from netgpt.cloud_models import (
    LanguageModel,
    choose_plan,
    explain,
    llm_from_config,
)
from netgpt.cloud_models.prompts import plan_goal
from netgpt.cloud_models.training import PLANS_ADAPTER
from netgpt.device_config import DeviceConfig
from netgpt.edge_models.intent_model import EdgeIntentModel
from netgpt.errors import (
    ConfigError,
    DeviceError,
    LifecycleError,
    NetGPTError,
    TelemetryError,
)
from netgpt.intents.compiler import compile_alternatives
from netgpt.intents.model import (
    FulfilmentReport,
    Intent,
    LifecycleState,
    WorkloadPlacement,
    new_intent_id,
)
from netgpt.intents.parser import NameTable, parse_intent
from netgpt.intents.placement import EdgeMoveChoice, EdgeMover, PlacementMove
from netgpt.intents.plan import ChangeSet, Verdict, VerdictSource
from netgpt.intents.verify import verify_on_twin
from netgpt.intents.withdraw import DeployedPlan, withdrawal_change_set
from netgpt.inventory import Inventory
from netgpt.policies.base import PolicySet
from netgpt.policies.conflicts import find_conflicts
from netgpt.policies.guardrails import default_policies, evaluate_change, needs_approval
from netgpt.sim_networks.topology import Topology, build_topology
from netgpt.sim_networks.twin import DigitalTwin, TrafficMatrix
from netgpt.telemetry.base import RateSample, ServiceMetricsSource
from netgpt.telemetry.poller import TelemetryPoller
from netgpt.telemetry.views import latest_by_interface, tomogravity_traffic_matrix
from netgpt.tools.applier import apply_changes
from netgpt.tools.base import ApplyResult
from netgpt.tools.netconf import NetconfDriver, netconf_drivers

__all__ = ["BackgroundTelemetry", "IntentPlatform", "PendingApproval", "RunResult"]

# kinds whose compilation or verification needs the current traffic
_TRAFFIC_KINDS = frozenset({"utilization_ceiling", "bandwidth", "latency", "slo"})


class BackgroundTelemetry:
    """Polls every device on an interval in a thread of its own; keeps the latest rates.

    A long-running platform plans with these instead of sampling the network in each run.
    """

    def __init__(
        self, inventory: Inventory, *, interval_s: float = 1.0, history: int = 2048
    ) -> None:
        self.interval_s = interval_s
        self._inventory = inventory
        self._latest: dict[tuple[str, str], RateSample] = {}
        # egress utilization per round, newest last: what the closed loop forecasts from
        self._history: deque[tuple[float, dict[tuple[str, str], float]]] = deque(maxlen=history)
        self._updated = 0.0
        self._window_start = 0.0  # when the interval of the latest rates began
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def loop() -> None:
            poller = TelemetryPoller(self._inventory, None, interval_s=self.interval_s)
            previous = None
            try:
                while not self._stop.is_set():
                    started = time.monotonic()
                    result = await poller.poll_once()
                    if result.rates and previous is not None:
                        with self._lock:
                            fresh = latest_by_interface(result.rates)
                            self._latest.update(fresh)
                            self._updated = time.monotonic()
                            self._window_start = previous
                            self._history.append((time.time(), {
                                k: r.out_utilization for k, r in fresh.items()}))
                    previous = started
                    wait = self.interval_s - (time.monotonic() - started)
                    await asyncio.sleep(max(0.0, wait))
            finally:
                await poller.aclose()

        asyncio.run(loop())

    def latest(
        self, *, max_age_s: float, since: float | None = None
    ) -> dict[tuple[str, str], RateSample] | None:
        """The latest rates, or ``None`` when they are too old.

        Too old: more than ``max_age_s`` ago, or (with ``since``, a monotonic time) measured over
        an interval that began before ``since``.
        """
        with self._lock:
            if not self._latest or time.monotonic() - self._updated > max_age_s:
                return None
            if since is not None and self._window_start < since:
                return None
            return dict(self._latest)

    def utilization_history(
        self, keys: Sequence[tuple[str, str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(epoch times, egress utilization ``(rounds, len(keys))``), oldest first, NaN if missed.

        One row per polling round, ``interval_s`` apart.
        """
        with self._lock:
            rounds = list(self._history)
        times = np.array([t for t, _ in rounds], dtype=np.float64)
        values = np.array([[r.get(k, np.nan) for k in keys] for _, r in rounds],
                          dtype=np.float64).reshape(len(rounds), len(keys))
        return times, values

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Block until the first rates exist (two polls); whether they arrived in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.latest(max_age_s=timeout_s) is not None:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)


MEASURE_MAX_POLLS = 6  # polls to get rates from every device (a rate needs two answers)
CONTROL_PLANE_MBPS = 0.05  # per link direction: traffic of the network itself, not of sites


def _explains(
    twin: DigitalTwin, matrix: TrafficMatrix, latest: Mapping[tuple[str, str], RateSample]
) -> bool:
    """Whether ``matrix`` reproduces the measured egress rates of the links within 20%.

    Plus :data:`CONTROL_PLANE_MBPS` per link: routing hellos and ARP cross every link of a real
    network and no site-to-site matrix explains them; on an idle network they are all there is.
    """
    predicted = twin.evaluate(matrix).interfaces
    keys = [k for k in latest if k in predicted and k[1] != "eth0"]
    measured = sum(latest[k].out_mbps for k in keys)
    error = sum(abs(predicted[k].egress_mbps - latest[k].out_mbps) for k in keys)
    return measured <= 0 or error <= 0.2 * measured + CONTROL_PLANE_MBPS * len(keys)


@dataclass
class RunResult:
    """How one run ended (or paused for approval)."""

    run_id: str
    state: IntentRunState
    waiting_for_approval: dict[str, Any] | None = None
    seconds: float = 0.0
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """refused, conflict, failed, dry_run, rejected, deployed, rolled_back, or awaiting."""
        if self.waiting_for_approval is not None:
            return "awaiting_approval"
        return str(self.state.get("outcome", "unknown"))


@dataclass(frozen=True)
class PendingApproval:
    """A run stopped for a person: the submitter may not approve it (four eyes)."""

    run_id: str
    text: str
    submitter: str
    why: str
    diffs: dict[str, str]


class IntentPlatform:
    """Intents over one inventory's network, with state in ``state_dir``."""

    def __init__(
        self,
        inventory: Inventory,
        state_dir: Path,
        *,
        topology: Topology | None = None,
        policies: PolicySet | None = None,
        confirm_timeout_s: int = 60,
        traffic_sample_s: float = 0.5,
        llm: LanguageModel | str | None = None,
        llm_timeout_s: float | None = None,
        plan_alternatives: int = 3,
        device_timeout_s: float = 30.0,
        edge_model: EdgeIntentModel | bool = True,
        edge_min_confidence: float | None = None,
    ) -> None:
        if not isinstance(plan_alternatives, int) or plan_alternatives < 1:
            raise ConfigError(f"plan_alternatives must be an integer >= 1, got "
                              f"{plan_alternatives!r}; 1 keeps the planner's single plan")
        self.plan_alternatives = plan_alternatives
        self.inventory = inventory
        # a model we built from a name is ours to close; one handed in belongs to the caller
        self._owns_llm = not isinstance(llm, LanguageModel)
        self.llm: LanguageModel = llm if isinstance(llm, LanguageModel) else llm_from_config(llm)
        self.llm_timeout_s = llm_timeout_s
        # the edge intent model reads what the parser cannot place (True: the shipped model,
        # loaded on first use; False: none)
        self._edge_model = edge_model
        self._edge_min_confidence = edge_min_confidence
        self._intent_reader: IntentReader | None = None
        if topology is None:
            topology = build_topology(inventory.topology or inventory.network)
            if inventory.links:  # the deployed network's capacities (a lab shapes them down)
                topology = topology.with_link_capacities(
                    {(lk.a, lk.b): lk.capacity_mbps for lk in inventory.links}
                )
        self.topology = topology
        self.policies = policies or default_policies()
        self.names = NameTable.from_topology(self.topology)
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store = IntentStore(state_dir / "intents.sqlite")
        self.audit = AuditLog(state_dir / "audit.sqlite")
        self._checkpoint_db = sqlite3.connect(
            state_dir / "agent-checkpoints.sqlite", check_same_thread=False
        )
        self.checkpointer = SqliteSaver(self._checkpoint_db)
        self.confirm_timeout_s = confirm_timeout_s
        self.traffic_sample_s = traffic_sample_s
        self._drivers = netconf_drivers(inventory, timeout_s=device_timeout_s)
        self._readers: dict[str, NetconfDriver] = {}
        self._reader_locks: dict[str, threading.Lock] = {}
        self._traffic: TrafficMatrix | None = None
        self._plan_adapter: str | None = None  # "" once known that the model has none
        self.telemetry: BackgroundTelemetry | None = None
        # managed workloads: where their instances run, and where their requests are recorded
        self.workloads: dict[str, WorkloadPlacement] = {}
        self.service_metrics: ServiceMetricsSource | None = None
        self.edge_movers: dict[str, tuple[EdgeMover, int]] = {}
        self._last_change = 0.0  # monotonic time of the last apply
        self.graph = build_intent_graph(self._context(), self.checkpointer)

    def manage_workload(self, placement: WorkloadPlacement,
                        metrics: ServiceMetricsSource | None = None, *,
                        mover: EdgeMover | None = None, edge_bytes: int = 0) -> None:
        """Know where ``placement.workload`` runs, and where its requests are recorded.

        The placement gives its objectives' paths; ``metrics`` is the store its objectives are
        measured from; ``mover`` (with the ``edge_bytes`` a move copies) lets the closed loop
        move its edge instances when the network's paths cannot keep an objective.
        """
        self.workloads[placement.workload] = placement
        if metrics is not None:
            self.service_metrics = metrics
        if mover is not None:
            self.edge_movers[placement.workload] = (mover, edge_bytes)

    def move_edge(self, workload: str, choice: EdgeMoveChoice, *, actor: str,
                  intent_id: str) -> PlacementMove:
        """Carry out ``choice`` through the workload's mover; audited either way.

        The platform's placement follows the move. Raises :class:`ConfigError` when the
        workload has no mover, and what the mover raises (nothing moved then).
        """
        entry = self.edge_movers.get(workload)
        if entry is None:
            raise ConfigError(f"workload {workload!r} has no way to move its edge instances; "
                              "manage it with a mover (manage_workload(..., mover=...))")
        try:
            moved = entry[0].move_edge(choice.site, choice.new_device)
        except NetGPTError as exc:
            self.audit.append(actor=actor, intent_id=intent_id, step="placement",
                              outcome="failed", detail={"choice": str(choice), "error": str(exc)})
            raise
        self.workloads[workload] = self.workloads[workload].moved(choice.site, choice.new_device)
        self.audit.append(actor=actor, intent_id=intent_id, step="placement", outcome="moved",
                          detail={"choice": str(choice), "site": moved.site,
                                  "old_device": moved.old_device,
                                  "new_device": moved.new_device,
                                  "bytes_moved": moved.bytes_moved,
                                  "transfer_ms": round(moved.transfer_ms, 3)})
        return moved

    def start_telemetry(self, interval_s: float = 1.0, *, wait: bool = True) -> None:
        """Poll in the background so runs plan with fresh rates without sampling themselves."""
        if self.telemetry is None:
            self.telemetry = BackgroundTelemetry(self.inventory, interval_s=interval_s)
        if wait and not self.telemetry.wait_ready():
            raise ConfigError(
                "background telemetry produced no rates within 10 s; is the "
                "network up and answering SNMP?"
            )

    # -- collaborators -------------------------------------------------------------------

    def _reader(self, name: str) -> NetconfDriver:
        driver = self._readers.get(name)
        if driver is None:
            driver = self._drivers(name)
            driver.open()
            self._readers[name] = driver
        return driver

    def read_configs(self, devices: Sequence[str] | None = None) -> dict[str, DeviceConfig]:
        """Running config of every device (or of ``devices``), read over NETCONF concurrently."""

        def one(name: str) -> tuple[str, DeviceConfig]:
            # one long-lived read session per device (an SSH handshake costs more than the read);
            # a session that died (device restarted, agent killed) is reopened once
            with self._reader_locks.setdefault(name, threading.Lock()):
                try:
                    return name, self._reader(name).get_config("running")
                except DeviceError:
                    stale = self._readers.pop(name, None)
                    if stale is not None:
                        stale.close()
                return name, self._reader(name).get_config("running")

        with ThreadPoolExecutor(max_workers=min(16, len(self.inventory.devices))) as pool:
            names = (
                list(devices) if devices is not None else [d.name for d in self.inventory.devices]
            )
            return dict(pool.map(one, names))

    def measure_rates(self) -> dict[tuple[str, str], RateSample]:
        """Every interface's latest rates.

        From background telemetry when it is fresh (at most 2.5 poll intervals old), else from
        two SNMP polls ``traffic_sample_s`` apart.
        """
        if self.telemetry is not None:
            # rates measured before the last change on the devices would describe the old state
            fresh = self.telemetry.latest(
                max_age_s=2.5 * self.telemetry.interval_s, since=self._last_change
            )
            if fresh is not None:
                return fresh

        wanted = {d.name for d in self.inventory.devices}

        async def sample() -> tuple[list[RateSample], set[str], dict[str, str]]:
            poller = TelemetryPoller(self.inventory, None, interval_s=self.traffic_sample_s)
            rates: list[RateSample] = []
            missing = set(wanted)
            failed: dict[str, str] = {}
            try:
                for n in range(MEASURE_MAX_POLLS):
                    if n:
                        await asyncio.sleep(self.traffic_sample_s)
                    polled = await poller.poll_once()
                    rates.extend(polled.rates)
                    failed.update(polled.failed)
                    missing -= {r.device for r in polled.rates}
                    if not missing:
                        break
            finally:
                await poller.aclose()
            return rates, missing, failed

        rates, missing, failed = asyncio.run(sample())
        if missing:
            why = "; ".join(f"{d}: {failed[d]}" for d in sorted(missing)[:3] if d in failed)
            raise TelemetryError(
                f"no traffic measurement from {sorted(missing)} in {MEASURE_MAX_POLLS} SNMP polls"
                + (f" ({why})" if why else "")
                + "; planning on a guess could overload links: retry when telemetry is back"
            )
        return latest_by_interface(rates)

    def measure_traffic(self) -> TrafficMatrix:
        """The traffic matrix that explains the measured loads (tomogravity over the twin).

        Rates measured while the routing changed (someone committed during the window) cannot
        be explained by one routing: the configs are read before and after, and the link loads
        the estimate predicts must match the measured ones within 20%. Otherwise it measures
        again, once, then raises :class:`ConfigError` rather than plan on a wrong matrix.
        """
        for _attempt in (1, 2):
            configs = self.read_configs()
            latest = self.measure_rates()
            if self.read_configs() != configs:
                continue
            twin = DigitalTwin(self.topology, configs)
            matrix = tomogravity_traffic_matrix(latest, twin)
            if _explains(twin, matrix, latest):
                return matrix
        raise ConfigError(
            "the measured link loads are not explained by any traffic matrix over the current "
            "routing (the network changed while it was measured?); try again"
        )

    def _plans_adapter(self) -> str | None:
        """The model's plan-choice adapter when it serves one.

        Looked up by a health check; kept once a check answers, asked again while none does.
        """
        if self._plan_adapter is None:
            health = self.llm.health()
            if not health.ok:
                return None
            self._plan_adapter = PLANS_ADAPTER if PLANS_ADAPTER in health.adapters else ""
        return self._plan_adapter or None

    def _traffic_for(self, intents: Sequence[Intent]) -> TrafficMatrix | None:
        if not any(k in _TRAFFIC_KINDS for i in intents for k in i.kinds):
            return None
        if self._traffic is None:
            self._traffic = self.measure_traffic()
        return self._traffic

    def _context(self) -> AgentContext:
        topo = self.topology

        def parse(text: str, actor: str) -> Intent:
            self._traffic = None  # a new run measures afresh when it needs traffic
            return parse_intent(text, self.names, owner=actor)

        def conflicts(intent: Intent, active: Sequence[Intent]) -> list[Verdict]:
            traffic = self._traffic_for([intent])
            twin = DigitalTwin(topo, self.read_configs()) if traffic is not None else None
            found = find_conflicts(intent, active, topo, twin=twin, traffic=traffic)
            return [c.verdict() for c in found]

        def compile_(intent: Intent, configs: Mapping[str, DeviceConfig]) -> list[ChangeSet]:
            return compile_alternatives(intent, topo, configs,
                                        traffic=self._traffic_for([intent]),
                                        limit=self.plan_alternatives,
                                        workloads=self.workloads)

        def verify_twin(
            intent: Intent, after: Mapping[str, DeviceConfig], active: Sequence[Intent]
        ) -> tuple[FulfilmentReport, list[Verdict]]:
            traffic = self._traffic_for([intent, *active])
            return verify_on_twin(intent, topo, after, traffic=traffic, active=active)

        def policy(
            intent: Intent, change_set: ChangeSet, configs: Mapping[str, DeviceConfig]
        ) -> list[Verdict]:
            return evaluate_change(
                self.policies, intent, change_set, configs, now=datetime.now(UTC), topology=topo
            )

        def approval(
            intent: Intent, change_set: ChangeSet, configs: Mapping[str, DeviceConfig]
        ) -> str | None:
            verdict = needs_approval(
                self.policies, intent, change_set, now=datetime.now(UTC), current_configs=configs
            )
            return None if verdict is None else verdict.evidence

        def apply(
            change_set: ChangeSet, intent: Intent
        ) -> tuple[ApplyResult, FulfilmentReport | None]:
            reports: list[FulfilmentReport] = []

            def live_check() -> bool | str:
                # the committed configs, read back from the devices, must be the plan, and the
                # intent must hold on a twin of what the devices now run
                live = self.read_configs()
                for name, candidate in change_set.candidates().items():
                    if live[name] != candidate:
                        return f"{name} runs a config other than the committed plan"
                traffic = self._traffic_for([intent])
                report, verdicts = verify_on_twin(intent, topo, live, traffic=traffic)
                reports.append(report)
                failed = [v for v in verdicts if not v.passed]
                return True if not failed else f"live state: {failed[0].evidence}"

            if not change_set.changes:
                outcome = live_check()
                if outcome is not True:
                    return ApplyResult(results=(), outcome="failed", error=str(outcome)), None
                return ApplyResult(results=(), outcome="no_change"), reports[-1]
            self._last_change = time.monotonic()
            result = apply_changes(
                change_set.candidates(),
                self._drivers,
                dry_run=False,
                confirm_timeout_s=self.confirm_timeout_s,
                verify=live_check,
            )
            self._last_change = time.monotonic()
            return result, (reports[-1] if reports else None)

        def draft(text: str, actor: str) -> tuple[Intent, dict[str, Any]]:
            understood = self.intent_reader().read(text, owner=actor)
            assert understood.intent is not None
            how: dict[str, Any] = {"reader": understood.stage,
                                   "confidence": understood.confidence,
                                   "latency_s": round(understood.latency_ms / 1000, 3)}
            if understood.stage == "edge":
                edge = understood.detail["edge"]
                how.update(backend="edge", model="edge-intent-gpt2", adapter=edge["adapter"],
                           tokens=edge["tokens"])
            elif understood.stage == "cloud":
                how.update(understood.detail["cloud"])
            return understood.intent, how

        def explain_(what: str) -> tuple[str, str]:
            return explain(self.llm, what, timeout_s=self.llm_timeout_s), self.llm.backend

        def choose_(intent: Intent, options: Sequence[str]) -> tuple[int, str, str, str | None]:
            goal = plan_goal(intent.text or ", ".join(intent.kinds))
            adapter = self._plans_adapter()
            index, reason = choose_plan(self.llm, options, goal, timeout_s=self.llm_timeout_s,
                                        adapter=adapter)
            return index, reason, self.llm.backend, adapter

        with_model = self.llm.backend != "embedded"
        can_draft = with_model or self._edge_model is not False
        return AgentContext(
            parse=parse,
            conflicts=conflicts,
            read_configs=lambda: self.read_configs(),
            compile=compile_,
            verify_twin=verify_twin,
            policy=policy,
            approval=approval,
            apply=apply,
            store=self.store,
            audit=self.audit,
            draft=draft if can_draft else None,
            explain=explain_ if with_model else None,
            choose=choose_ if with_model else None,
        )

    def intent_reader(self) -> IntentReader:
        """The reading chain: parser, edge model, cloud model (when configured), question."""
        if self._intent_reader is None:
            edge: EdgeIntentModel | None = None
            if isinstance(self._edge_model, EdgeIntentModel):
                edge = self._edge_model
            elif self._edge_model:
                edge = EdgeIntentModel.load_shipped()
            self._intent_reader = IntentReader(self.names, edge=edge, llm=self.llm,
                                        min_confidence=self._edge_min_confidence,
                                        llm_timeout_s=self.llm_timeout_s)
        return self._intent_reader

    # -- runs ----------------------------------------------------------------------------

    def _finish(self, run_id: str, started: float, out: dict[str, Any]) -> RunResult:
        waiting = None
        if "__interrupt__" in out:
            waiting = out["__interrupt__"][0].value
        state = self.graph.get_state({"configurable": {"thread_id": run_id}}).values
        verdicts = [
            Verdict(
                passed=v["passed"],
                source=VerdictSource(v["source"]),
                rule=v["rule"],
                evidence=v["evidence"],
                details=tuple(v.get("details", ())),
            )
            for v in state.get("verdicts", [])
        ]
        return RunResult(run_id, state, waiting, time.perf_counter() - started, verdicts)

    def submit(
        self, text: str, *, actor: str = "operator", dry_run: bool = False, approved: bool = False
    ) -> RunResult:
        """Run ``text`` through the graph; returns when it ends or waits for approval."""
        started = time.perf_counter()
        run_id = new_intent_id()
        initial: IntentRunState = {
            "run_id": run_id,
            "text": text,
            "actor": actor,
            "dry_run": dry_run,
            "approved": approved,
            "verdicts": [],
            "timings": [],
        }
        out = self.graph.invoke(initial, {"configurable": {"thread_id": run_id}})
        return self._finish(run_id, started, out)

    def resume(self, run_id: str, *, decision: str, by: str) -> RunResult:
        """Answer a pending approval: ``decision`` is ``approve`` or ``reject``."""
        if decision not in ("approve", "reject"):
            raise ConfigError(f"decision must be 'approve' or 'reject', got {decision!r}")
        config = {"configurable": {"thread_id": run_id}}
        snapshot = self.graph.get_state(config)
        if not snapshot.next or "approve" not in snapshot.next:
            raise LifecycleError(
                f"intent {run_id!r} is not waiting for approval; 'netgpt intents list' shows "
                "the ones that are"
            )
        if decision == "approve" and self.store.get(run_id).state is LifecycleState.WITHDRAWN:
            raise LifecycleError(
                f"intent {run_id!r} was withdrawn; it cannot be approved any more"
            )
        submitter = str(snapshot.values.get("actor", ""))
        if decision == "approve" and submitter and by == submitter:
            raise ConfigError(
                f"{by!r} submitted intent {run_id!r} and cannot also approve it (four eyes: "
                "another approver must); rejecting it is allowed"
            )
        started = time.perf_counter()
        out = self.graph.invoke(Command(resume={"decision": decision, "by": by}), config)
        return self._finish(run_id, started, out)

    def pending_approvals(self) -> list[PendingApproval]:
        """Runs waiting for a person, oldest first, with who asked, why, and each device's diff."""
        out = []
        for intent in self.store.intents([LifecycleState.AWAITING_APPROVAL]):
            snapshot = self.graph.get_state({"configurable": {"thread_id": intent.id}})
            if "approve" not in (snapshot.next or ()):
                continue
            values = snapshot.values
            out.append(
                PendingApproval(
                    run_id=intent.id,
                    text=str(values.get("text", intent.text)),
                    submitter=str(values.get("actor", intent.owner)),
                    why=str(values.get("needs_approval", "")),
                    diffs={d: str(c["diff"]) for d, c in values["plan"]["changes"].items()},
                )
            )
        return out

    def replan(
        self,
        intent: Intent,
        *,
        why: str,
        actor: str = "closed-loop",
        traffic: TrafficMatrix | None = None,
    ) -> RunResult:
        """Run a known intent through the graph again (same guards, same audit).

        Used when telemetry shows it violated, or a forecast says it will be: then ``traffic``
        is the predicted matrix the plan must fit (and is verified against). The run id is the
        intent id with a suffix.
        """
        started = time.perf_counter()
        n = sum(1 for r in self.audit.records(intent.id) if r.step == "replan") + 1
        run_id = f"{intent.id}.r{n}"
        initial: IntentRunState = {
            "run_id": run_id,
            "text": intent.text,
            "actor": actor,
            "dry_run": False,
            "approved": False,
            "intent": intent.model_dump(mode="json"),
            "reason": why,
            "verdicts": [],
            "timings": [],
        }
        self._traffic = traffic
        out = self.graph.invoke(initial, {"configurable": {"thread_id": run_id}})
        return self._finish(run_id, started, out)

    def unfinished_runs(self) -> list[str]:
        """Runs whose process stopped inside the graph (not those waiting for a person)."""
        threads = dict.fromkeys(
            str(c.config["configurable"]["thread_id"]) for c in self.checkpointer.list(None)
        )
        out = []
        for thread in threads:
            snapshot = self.graph.get_state({"configurable": {"thread_id": thread}})
            if snapshot.next and not snapshot.interrupts:
                out.append(thread)
        return out

    def recover(self, run_id: str) -> RunResult:
        """Continue a run that a crash interrupted, from its last checkpoint.

        The step that was running when the process died runs again: a commit it had made and
        not confirmed has rolled back on the devices by then (confirmed commit), so the step
        starts from the state the checkpoint describes.
        """
        if run_id not in self.unfinished_runs():
            raise ConfigError(
                f"run {run_id!r} has nothing to recover (finished, waiting for approval, or "
                "unknown); 'netgpt intents recover' lists the ones that do"
            )
        started = time.perf_counter()
        config = {"configurable": {"thread_id": run_id}}
        self.audit.append(actor="recovery", intent_id=run_id, step="recover", outcome="resumed")
        out = self.graph.invoke(None, config)
        return self._finish(run_id, started, out)

    def _deployed_plans(self, intent: Intent) -> list[DeployedPlan]:
        """The plans this intent's runs applied (its first run, then closed-loop re-plans)."""
        threads = [intent.id] + [
            f"{intent.id}.r{n}"
            for n in range(
                1, 1 + sum(1 for r in self.audit.records(intent.id) if r.step == "replan")
            )
        ]
        plans = []
        for thread in threads:
            values = self.graph.get_state({"configurable": {"thread_id": thread}}).values
            if values.get("outcome") != "deployed" or not values.get("plan"):
                continue
            before = {k: DeviceConfig.model_validate(v) for k, v in values["configs"].items()}
            after = {
                k: DeviceConfig.model_validate(c["candidate"])
                for k, c in values["plan"]["changes"].items()
            }
            plans.append(DeployedPlan(before=before, after=after))
        return plans

    def withdraw(self, intent_id: str, *, by: str) -> tuple[Intent, ApplyResult]:
        """Take an intent out: revert what its deployed plans changed, then mark it withdrawn.

        The withdrawal is itself a change: policy-checked, applied all-or-nothing with a
        confirmed commit. Values others changed since are kept. A refused or failed withdrawal
        leaves the intent and the devices as they were.
        """
        intent = self.store.get(intent_id)
        if intent.state is LifecycleState.WITHDRAWN:
            raise LifecycleError(f"intent {intent_id} is already withdrawn")
        current = self.read_configs()
        change_set = withdrawal_change_set(intent.id, self._deployed_plans(intent), current)
        verdicts = evaluate_change(
            self.policies,
            intent,
            change_set,
            current,
            now=datetime.now(UTC),
            topology=self.topology,
        )
        failed = [v for v in verdicts if not v.passed]
        if failed:
            raise ConfigError(f"withdrawing {intent_id} is refused by policy: {failed[0]}")
        if change_set.changes:
            result = apply_changes(
                change_set.candidates(),
                self._drivers,
                dry_run=False,
                confirm_timeout_s=self.confirm_timeout_s,
            )
            self._last_change = time.monotonic()
        else:
            result = ApplyResult(results=(), outcome="no_change")
        if result.outcome not in ("applied", "no_change"):
            self.audit.append(
                actor=by,
                intent_id=intent_id,
                step="withdraw",
                outcome="failed",
                detail={"summary": result.summary()},
            )
            raise ConfigError(f"withdrawing {intent_id} failed; nothing changed: {result.error}")
        withdrawn = intent.moved_to(LifecycleState.WITHDRAWN, f"withdrawn by {by}")
        self.store.save(withdrawn)
        self.audit.append(
            actor=by,
            intent_id=intent_id,
            step="withdraw",
            outcome="ok",
            detail={"devices": list(change_set.devices), "summary": result.summary()},
        )
        return withdrawn, result

    def close(self) -> None:
        """Stop background telemetry and close the stores."""
        if self.telemetry is not None:
            self.telemetry.stop()
            self.telemetry = None
        for driver in self._readers.values():
            driver.close()
        self._readers.clear()
        self.store.close()
        self.audit.close()
        self._checkpoint_db.close()
        if self._owns_llm:
            self.llm.close()
