"""The intent agent: a langgraph ``StateGraph`` from operator text to a verified change.

::

    parse -> check -> compile -> choose -> verify_twin -> policy -> hold -> approve -> apply -> END

and from every node to END as soon as a verdict fails (refused, conflict, failed). Every node
records an audit entry and returns only the fields it changes; the routers stop the run at the
first failed verdict. ``hold`` marks the intent as waiting when policy asks for a person, and
``approve`` calls ``interrupt`` with no side effects before it (a resumed node runs again from
its start). The run resumes from its SQLite checkpoint, in this process or a later one, with
``Command(resume={"decision": "approve"|"reject", "by": NAME})``. The collaborators (parser,
compiler, twin verification, policies, device access) come in through :class:`AgentContext`, so
the graph holds no I/O of its own and tests can point it at any network.

A language model takes part in two places, only when one is configured (``AgentContext.draft``
and ``explain``): text the parser could not place (reason ``unplaced`` or ``incomplete``; never a
refusal on policy grounds) is read into a formal intent by the model, which then goes through
the same checks as a parsed one; and a refusal or rollback gets the model's plain-language
explanation next to the system's own reason. ``intent_source`` (state and audit) says which
stage produced the intent.

The compiler may offer alternative plans (``AgentContext.compile`` returns them, the planner's
preference first). ``choose`` checks each on the twin and the policies; only those that pass are
options, numbered as the chooser sees them. With two or more, the model chooses
(``AgentContext.choose``) and its reason is kept (state ``plan_choice`` and the audit); with no
model, or when the model fails, the planner's preference (:func:`preferred_plan`: fewest devices,
then fewest steered links) is kept and the record says why. The chosen plan then goes through
``verify_twin`` and ``policy`` like any plan: nothing a model says skips them.
"""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from netgpt.agents.audit import AuditLog
from netgpt.agents.store import IntentStore
from netgpt.device_config import DeviceConfig
from netgpt.errors import IntentParseError, NetGPTError
from netgpt.intents.model import FulfilmentReport, Intent, LifecycleState
from netgpt.intents.plan import ChangeSet, Verdict, VerdictSource, preferred_plan
from netgpt.tools.base import ApplyResult, config_diff

__all__ = [
    "EDGE_PARSE_REASONS",
    "MODEL_PARSE_REASONS",
    "AgentContext",
    "IntentRunState",
    "Outcome",
    "build_intent_graph",
]

# parser failures a language model may try to resolve: words it could not place, a requirement
# with a part missing. Refusals (instructions to the system), contradictions, out-of-range values
# and unknown names stay refusals.
MODEL_PARSE_REASONS = frozenset({"unplaced", "incomplete"})
# the edge model may also try text with a word the parser took for an unknown name ("we need
# ..."): it can only point at names the text or the network has, never invent one
EDGE_PARSE_REASONS = MODEL_PARSE_REASONS | {"unknown-name"}

Outcome = Literal["refused", "conflict", "failed", "dry_run", "rejected", "deployed", "rolled_back"]


class IntentRunState(TypedDict, total=False):
    """What a run carries between nodes (JSON-able, so the checkpointer can store it)."""

    run_id: str
    text: str
    actor: str
    dry_run: bool
    approved: bool  # pre-approval (``--yes``) for changes that policy lets a human approve
    intent: dict[str, Any]
    configs: dict[str, dict[str, Any]]
    plan: dict[str, Any]
    needs_approval: str
    awaiting: bool
    verdicts: Annotated[list[dict[str, Any]], operator.add]
    outcome: Outcome
    reason: str
    timings: Annotated[list[tuple[str, float]], operator.add]
    intent_source: dict[str, Any]  # {"stage": "parser"} or {"stage": "model", "backend": ...}
    explanation: str  # a language model's words on a refusal or rollback (next to ``reason``)
    plans: list[dict[str, Any]]  # the compiler's alternatives, its preference first
    plan_choice: dict[str, Any]  # the options, which was chosen, by whom, and why


@dataclass
class AgentContext:
    """The agent's collaborators. Each is a plain callable so backends can be swapped.

    ``parse(text, actor)`` -> Intent (raises NetGPTError to refuse); ``conflicts(intent, active)``
    -> failed Verdicts; ``read_configs()`` -> running configs by device; ``compile(intent,
    configs)`` -> alternative ChangeSets, at least one, the preferred first;
    ``verify_twin(intent, configs_after, active)`` -> (report, verdicts);
    ``policy(intent, change_set, configs)`` -> verdicts; ``approval(intent, change_set, configs)``
    -> why a human must approve, or None; ``apply(change_set, intent)`` -> (ApplyResult, the live
    fulfilment report) (all or nothing, confirmed commit, live verification inside).

    Optional, set when a language model is configured: ``draft(text, actor)`` -> (Intent, how it
    was read: backend, model, confidence...) for text the parser could not place (raises
    NetGPTError when the model cannot either); ``explain(what)`` -> (explanation, backend);
    ``choose(intent, options)`` -> (index, reason, backend, adapter or None) among option
    summaries (raises NetGPTError when the model cannot answer).
    """

    parse: Callable[[str, str], Intent]
    conflicts: Callable[[Intent, Sequence[Intent]], list[Verdict]]
    read_configs: Callable[[], Mapping[str, DeviceConfig]]
    compile: Callable[[Intent, Mapping[str, DeviceConfig]], Sequence[ChangeSet]]
    verify_twin: Callable[
        [Intent, Mapping[str, DeviceConfig], Sequence[Intent]],
        tuple[FulfilmentReport, list[Verdict]],
    ]
    policy: Callable[[Intent, ChangeSet, Mapping[str, DeviceConfig]], list[Verdict]]
    approval: Callable[[Intent, ChangeSet, Mapping[str, DeviceConfig]], str | None]
    apply: Callable[[ChangeSet, Intent], tuple[ApplyResult, FulfilmentReport | None]]
    store: IntentStore
    audit: AuditLog
    draft: Callable[[str, str], tuple[Intent, dict[str, Any]]] | None = None
    explain: Callable[[str], tuple[str, str]] | None = None
    choose: Callable[[Intent, Sequence[str]], tuple[int, str, str, str | None]] | None = None


def _verdict_dict(v: Verdict) -> dict[str, Any]:
    d = asdict(v)
    d["source"] = v.source.value
    d["details"] = list(v.details)
    return d


def _plan_dict(cs: ChangeSet, configs: Mapping[str, DeviceConfig]) -> dict[str, Any]:
    return {
        "intent_id": cs.intent_id,
        "notes": list(cs.notes),
        "steered": [list(k) for k in cs.steered],
        "changes": {
            c.device: {
                "candidate": c.candidate.model_dump(mode="json"),
                "reasons": list(c.reasons),
                "diff": config_diff(configs[c.device], c.candidate) if c.device in configs else "",
            }
            for c in cs.changes
        },
    }


def _plan_from(d: Mapping[str, Any]) -> ChangeSet:
    from netgpt.intents.plan import DeviceChange

    return ChangeSet(
        intent_id=d["intent_id"],
        changes=tuple(
            DeviceChange(
                device=name,
                candidate=DeviceConfig.model_validate(c["candidate"]),
                reasons=tuple(c["reasons"]),
            )
            for name, c in d["changes"].items()
        ),
        notes=tuple(d["notes"]),
        steered=tuple((str(u), str(v)) for u, v in d.get("steered", ())),
    )


def _configs_from(d: Mapping[str, Mapping[str, Any]]) -> dict[str, DeviceConfig]:
    return {k: DeviceConfig.model_validate(v) for k, v in d.items()}


def build_intent_graph(ctx: AgentContext, checkpointer: Any = None) -> Any:
    """Compile the intent graph over ``ctx``; give a checkpointer for approval and resume."""

    def record(
        state: IntentRunState, step: str, outcome: str, *, actor: str | None = None, **detail: Any
    ) -> None:
        ctx.audit.append(
            actor=actor or state.get("actor", "operator"),
            intent_id=state["intent"]["id"] if "intent" in state else state["run_id"],
            step=step,
            outcome=outcome,
            detail=detail,
        )

    def intent_of(state: IntentRunState) -> Intent:
        return Intent.model_validate(state["intent"])

    def moved(
        state: IntentRunState, to: LifecycleState, reason: str,
        report: FulfilmentReport | None = None,
    ) -> dict[str, Any]:
        intent = intent_of(state).moved_to(to, reason)
        if report is not None:
            intent = intent.with_report(report)
        ctx.store.save(intent)
        return intent.model_dump(mode="json")

    def fail(
        state: IntentRunState, step: str, outcome: Outcome, reason: str, verdicts: list[Verdict]
    ) -> IntentRunState:
        update: IntentRunState = {
            "outcome": outcome,
            "reason": reason,
            "verdicts": [_verdict_dict(v) for v in verdicts],
        }
        explained: dict[str, Any] = {}
        if ctx.explain is not None and outcome in ("refused", "conflict", "failed", "rolled_back"):
            # a model's words next to the system's reason, never instead of it
            try:
                text, backend = ctx.explain(f"{outcome} at step {step}: {reason}")
                update["explanation"] = text
                explained = {"explanation": text, "explained_by": backend}
            except NetGPTError as exc:
                explained = {"explanation_error": str(exc)}
        # a failed re-plan leaves a deployed, fulfilled or violated intent as it was (the
        # watcher escalates); only a new intent fails
        current = intent_of(state) if "intent" in state else None
        if (current is not None and current.state is not LifecycleState.VIOLATED
                and current.can_move_to(LifecycleState.FAILED)):
            update["intent"] = moved(state, LifecycleState.FAILED, reason)
        record(state, step, outcome, reason=reason, verdicts=[str(v) for v in verdicts],
               **explained)
        return update

    def parse(state: IntentRunState) -> IntentRunState:
        t0 = time.perf_counter()
        if "intent" in state:  # a re-plan of a known intent (closed loop): nothing to parse
            record(state, "replan", "ok", why=state.get("reason", ""))
            return {"reason": "", "timings": [("parse", time.perf_counter() - t0)]}
        actor = state.get("actor", "operator")
        source: dict[str, Any] = {"stage": "parser"}
        try:
            try:
                intent = ctx.parse(state["text"], actor)
            except IntentParseError as exc:
                if ctx.draft is None or exc.reason not in EDGE_PARSE_REASONS:
                    raise
                try:
                    intent, how = ctx.draft(state["text"], actor)
                except IntentParseError as question:  # a clarifying question: ask it as is
                    raise question from None
                except NetGPTError as model_exc:
                    raise NetGPTError(
                        f"{exc} (the language model could not read it either: {model_exc})"
                    ) from model_exc
                source = {"stage": "model", **how, "parser_said": str(exc)}
        except NetGPTError as exc:
            verdict = Verdict(False, VerdictSource.PARSER, "parse", str(exc))
            return {
                **fail(state, "parse", "refused", str(exc), [verdict]),
                "timings": [("parse", time.perf_counter() - t0)],
            }
        intent = intent.model_copy(update={"id": state["run_id"], "text": state["text"]})
        ctx.store.save(intent)
        record(state, "parse", "ok", intent=intent.model_dump(mode="json"), source=source)
        if source["stage"] == "model":
            evidence = (f"read by the {source.get('backend')} model as "
                        f"{', '.join(intent.kinds)} (a proposal: the checks below judge it)")
        else:
            evidence = f"understood as {', '.join(intent.kinds)}"
        return {
            "intent": intent.model_dump(mode="json"),
            "intent_source": source,
            "verdicts": [_verdict_dict(Verdict(True, VerdictSource.PARSER, "parse", evidence))],
            "timings": [("parse", time.perf_counter() - t0)],
        }

    def check(state: IntentRunState) -> IntentRunState:
        t0 = time.perf_counter()
        intent = intent_of(state)
        active = [i for i in ctx.store.active() if i.id != intent.id]
        try:
            failed = ctx.conflicts(intent, active)
        except NetGPTError as exc:  # e.g. no traffic measurement: the run fails, saying why
            verdict = Verdict(False, VerdictSource.CONFLICT, "conflicts", str(exc))
            return {
                **fail(state, "check", "failed", str(exc), [verdict]),
                "timings": [("check", time.perf_counter() - t0)],
            }
        if failed:
            return {
                **fail(state, "check", "conflict", failed[0].evidence, failed),
                "timings": [("check", time.perf_counter() - t0)],
            }
        record(state, "check", "ok", active=len(active))
        ok = Verdict(
            True,
            VerdictSource.CONFLICT,
            "conflicts",
            f"no conflict with {len(active)} active intent(s)",
        )
        return {"verdicts": [_verdict_dict(ok)], "timings": [("check", time.perf_counter() - t0)]}

    def compile_(state: IntentRunState) -> IntentRunState:
        t0 = time.perf_counter()
        intent = intent_of(state)
        try:
            configs = dict(ctx.read_configs())
            alternatives = list(ctx.compile(intent, configs))
            if not alternatives:
                raise NetGPTError("the compiler returned no plan")
            change_set = alternatives[0]
        except NetGPTError as exc:
            verdict = Verdict(False, VerdictSource.TWIN, "compile", str(exc))
            return {
                **fail(state, "compile", "failed", str(exc), [verdict]),
                "timings": [("compile", time.perf_counter() - t0)],
            }
        plans = [_plan_dict(cs, configs) for cs in alternatives]
        plan = plans[0]
        record(
            state,
            "compile",
            "ok",
            devices=list(change_set.devices),
            notes=plan["notes"],
            diffs={d: c["diff"] for d, c in plan["changes"].items()},
            alternatives=[{"devices": list(cs.devices), "notes": list(cs.notes)}
                          for cs in alternatives[1:]],
        )
        return {
            "configs": {k: v.model_dump(mode="json") for k, v in configs.items()},
            "plan": plan,
            "plans": plans,
            **(
                {}
                if intent.state is LifecycleState.VIOLATED
                else {
                    "intent": moved(
                        state,
                        LifecycleState.COMPILED,
                        f"plan touches {len(change_set.devices)} device(s)",
                    )
                }
            ),
            "timings": [("compile", time.perf_counter() - t0)],
        }

    def choose(state: IntentRunState) -> IntentRunState:
        """Among the alternatives that pass the twin and the policies, pick one; record why."""
        plans = state.get("plans") or [state["plan"]]
        if len(plans) < 2:
            return {}
        t0 = time.perf_counter()
        intent = intent_of(state)
        configs = _configs_from(state["configs"])
        active = [i for i in ctx.store.active() if i.id != intent.id]
        options: list[dict[str, Any]] = []
        change_sets = [_plan_from(plan) for plan in plans]
        for index, change_set in enumerate(change_sets):
            try:
                _report, twin_verdicts = ctx.verify_twin(
                    intent, change_set.applied_to(configs), active)
                policy_verdicts = ctx.policy(intent, change_set, configs)
                failed = [str(v) for v in (*twin_verdicts, *policy_verdicts) if not v.passed]
            except NetGPTError as exc:  # this option cannot be judged: it is no option
                failed = [f"not judged: {exc}"]
            options.append({
                "index": index,
                "devices": list(change_set.devices),
                "summary": change_set.summary(),
                "passes": not failed,
                "failed_on": failed[0] if failed else "",
            })
        viable = [o for o in options if o["passes"]]
        chosen, reason, by, adapter = 0, "", "planner", None
        if not viable:
            reason = "no alternative passes the twin and the policies; the first plan is judged"
        elif len(viable) == 1:
            chosen = viable[0]["index"]
            reason = "the only plan that passes the twin and the policies"
        else:
            # the planner's preference, renumbered among the passing options as a model sees them
            pick, why = preferred_plan([change_sets[o["index"]] for o in viable])
            chosen, reason = viable[pick]["index"], f"{why} (no language model is configured)"
            if ctx.choose is not None:
                try:
                    pick, why, by, adapter = ctx.choose(intent, [o["summary"] for o in viable])
                    chosen, reason = viable[pick]["index"], why
                except (NetGPTError, IndexError) as exc:
                    reason = f"{why[:-1]}: the planner's preference (the model failed: {exc})"
        choice = {"options": options, "chosen": chosen, "reason": reason, "by": by,
                  "adapter": adapter}
        record(state, "choose", "ok", chosen=chosen, reason=reason, by=by, adapter=adapter,
               options=[{k: o[k] for k in ("index", "devices", "passes", "failed_on")}
                        for o in options])
        return {
            "plan": plans[chosen],
            "plan_choice": choice,
            "timings": [("choose", time.perf_counter() - t0)],
        }

    def verify_twin(state: IntentRunState) -> IntentRunState:
        t0 = time.perf_counter()
        intent = intent_of(state)
        change_set = _plan_from(state["plan"])
        after = change_set.applied_to(_configs_from(state["configs"]))
        active = [i for i in ctx.store.active() if i.id != intent.id]
        _report, verdicts = ctx.verify_twin(intent, after, active)
        failed = [v for v in verdicts if not v.passed]
        if failed:
            return {
                **fail(
                    state,
                    "verify_twin",
                    "failed",
                    f"the twin says the plan does not hold: {failed[0].evidence}",
                    verdicts,
                ),
                "timings": [("verify_twin", time.perf_counter() - t0)],
            }
        record(state, "verify_twin", "ok", verdicts=[str(v) for v in verdicts])
        return {
            "verdicts": [_verdict_dict(v) for v in verdicts],
            "timings": [("verify_twin", time.perf_counter() - t0)],
        }

    def policy(state: IntentRunState) -> IntentRunState:
        t0 = time.perf_counter()
        intent = intent_of(state)
        change_set = _plan_from(state["plan"])
        configs = _configs_from(state["configs"])
        verdicts = ctx.policy(intent, change_set, configs)
        failed = [v for v in verdicts if not v.passed]
        if failed:
            return {
                **fail(
                    state,
                    "policy",
                    "refused",
                    f"refused by policy rule {failed[0].rule}: {failed[0].evidence}",
                    verdicts,
                ),
                "timings": [("policy", time.perf_counter() - t0)],
            }
        why = ctx.approval(intent, change_set, configs)
        record(state, "policy", "ok", verdicts=[str(v) for v in verdicts], approval=why)
        return {
            "verdicts": [_verdict_dict(v) for v in verdicts],
            "needs_approval": why or "",
            "timings": [("policy", time.perf_counter() - t0)],
        }

    def hold(state: IntentRunState) -> IntentRunState:
        """Stop for a dry run; else mark the intent as waiting when a person must approve."""
        if state.get("dry_run"):
            record(state, "hold", "dry_run")
            return {"outcome": "dry_run", "reason": "dry run: nothing applied"}
        why = state.get("needs_approval", "")
        if not why:
            return {}
        if state.get("approved"):
            record(state, "hold", "pre-approved", why=why)
            verdict = Verdict(
                True,
                VerdictSource.APPROVAL,
                "approval",
                f"approved up front by {state.get('actor', 'operator')}: {why}",
            )
            return {"verdicts": [_verdict_dict(verdict)]}
        record(state, "hold", "waiting", why=why)
        return {"intent": moved(state, LifecycleState.AWAITING_APPROVAL, why), "awaiting": True}

    def approve(state: IntentRunState) -> IntentRunState:
        """Wait for a person (``interrupt``); nothing before the interrupt has side effects."""
        if not state.get("awaiting"):
            return {}
        answer = interrupt(
            {
                "intent_id": state["run_id"],
                "why": state.get("needs_approval", ""),
                "diffs": {d: c["diff"] for d, c in state["plan"]["changes"].items()},
            }
        )
        decision = str(answer.get("decision") if isinstance(answer, dict) else answer).lower()
        approver = str(answer.get("by", "approver") if isinstance(answer, dict) else "approver")
        if decision != "approve":
            reason = f"rejected by {approver}"
            record(state, "approve", "rejected", actor=approver)
            verdict = Verdict(False, VerdictSource.APPROVAL, "approval", reason)
            return {
                "intent": moved(state, LifecycleState.FAILED, reason),
                "outcome": "rejected",
                "reason": reason,
                "verdicts": [_verdict_dict(verdict)],
            }
        record(state, "approve", "approved", actor=approver)
        verdict = Verdict(True, VerdictSource.APPROVAL, "approval", f"approved by {approver}")
        return {"verdicts": [_verdict_dict(verdict)]}

    def apply(state: IntentRunState) -> IntentRunState:
        t0 = time.perf_counter()
        intent = intent_of(state)
        change_set = _plan_from(state["plan"])
        result, report = ctx.apply(change_set, intent)
        took = [("apply", time.perf_counter() - t0)]
        detail = {"apply_outcome": result.outcome, "summary": result.summary()}
        if result.outcome in ("applied", "no_change"):
            record(state, "apply", "deployed", **detail)
            deployed = moved(state, LifecycleState.DEPLOYED, result.summary().splitlines()[0],
                             report=report)
            verdict = Verdict(True, VerdictSource.LIVE, "apply", result.summary().splitlines()[0])
            return {
                "intent": deployed,
                "outcome": "deployed",
                "reason": "deployed and verified",
                "verdicts": [_verdict_dict(verdict)],
                "timings": took,
            }
        outcome: Outcome = "rolled_back" if result.outcome == "rolled_back" else "failed"
        reason = result.error or result.summary()
        verdict = Verdict(False, VerdictSource.LIVE, "apply", reason)
        return {**fail(state, "apply", outcome, reason, [verdict]), "timings": took}

    def after(step: str) -> Callable[[IntentRunState], Literal["next", "stop"]]:
        def route(state: IntentRunState) -> Literal["next", "stop"]:
            return "stop" if state.get("outcome") else "next"

        route.__name__ = f"after_{step}"
        return route

    graph = StateGraph(IntentRunState)
    steps: list[tuple[str, Any]] = [
        ("parse", parse),
        ("check", check),
        ("compile", compile_),
        ("choose", choose),
        ("verify_twin", verify_twin),
        ("policy", policy),
        ("hold", hold),
        ("approve", approve),
        ("apply", apply),
    ]
    for name, fn in steps:
        graph.add_node(name, fn)
    graph.add_edge(START, "parse")
    for (name, _), (nxt, _) in itertools.pairwise(steps):
        graph.add_conditional_edges(name, after(name), {"next": nxt, "stop": END})
    graph.add_edge("apply", END)
    return graph.compile(checkpointer=checkpointer)
