"""The plan corpus: (goal and options, choice) pairs for the plan-choice adapter.

Labels come from the project's own planner, never from hand-written answers: each sample draws an
intent that steers traffic (a waypoint, a latency bound or load balancing between places of a
topology), compiles its alternative plans with
:func:`~netgpt.intents.compiler.compile_alternatives`, presents them in a random order as the
agent presents them (:meth:`~netgpt.intents.plan.ChangeSet.summary` under
:func:`~netgpt.cloud_models.prompts.plan_goal`), and takes
:func:`~netgpt.intents.plan.preferred_plan`'s index and reason as the answer. The random order
is what makes the choice learnable: the planner's first plan is not always the preferred one, and
its position says nothing. Intents with fewer than two plans are skipped (counted).

Pure and seeded: the same seed gives the same corpus.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from netgpt.cloud_models.prompts import choose_plan_messages, plan_goal
from netgpt.errors import ConfigError
from netgpt.intents.compiler import compile_alternatives
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.intents.plan import preferred_plan
from netgpt.sim_networks.topology import Topology, build_topology

__all__ = ["PlanCorpus", "PlanPair", "build_plan_corpus"]

_TOPOLOGIES = ("abilene", "campus", "tree,3,2")


@dataclass(frozen=True)
class PlanPair:
    """One sample: the chat messages' texts, the JSON answer, and where it came from."""

    goal: str
    options: tuple[str, ...]
    target: str
    topology: str


@dataclass
class PlanCorpus:
    """Generated pairs and what was skipped (counts by reason)."""

    pairs: list[PlanPair]
    skipped: dict[str, int] = field(default_factory=dict)


def _sentence(rng: random.Random, topo: Topology) -> str:
    devices = sorted(topo.devices)
    kind = rng.random()
    if kind < 0.6:
        a, b, w = rng.sample(devices, 3)
        return f"traffic from {a} to {b} must go through {w}"
    if kind < 0.8:
        a, b = rng.sample(devices, 2)
        return f"balance traffic from {a} to {b} over 2 paths"
    a, b = rng.sample(devices, 2)
    return f"keep latency from {a} to {b} below {rng.choice((5, 10, 15, 20, 30))} ms"


def build_plan_corpus(size: int, *, seed: int = 0,
                      topologies: Sequence[str] = _TOPOLOGIES) -> PlanCorpus:
    """``size`` plan-choice pairs (fewer if the attempts run out), drawn over ``topologies``."""
    if size < 0:
        raise ConfigError(f"size must be >= 0, got {size}")
    rng = random.Random(seed)
    built = [(t, build_topology(t)) for t in topologies]
    tables = {t: NameTable.from_topology(topo) for t, topo in built}
    pairs: list[PlanPair] = []
    skipped: dict[str, int] = {}
    attempts = 0
    while len(pairs) < size and attempts < 40 * size + 100:
        attempts += 1
        name, topo = rng.choice(built)
        text = _sentence(rng, topo)
        try:
            intent = parse_intent(text, tables[name])
            plans = compile_alternatives(intent, topo, {}, limit=3)
        except ConfigError:
            skipped["not-compilable"] = skipped.get("not-compilable", 0) + 1
            continue
        if len(plans) < 2:
            skipped["single-plan"] = skipped.get("single-plan", 0) + 1
            continue
        order = list(range(len(plans)))
        rng.shuffle(order)
        shown = [plans[i] for i in order]
        index, reason = preferred_plan(shown)
        pairs.append(PlanPair(
            goal=plan_goal(text),
            options=tuple(p.summary() for p in shown),
            target=json.dumps({"index": index, "reason": reason}, separators=(",", ":")),
            topology=name,
        ))
    return PlanCorpus(pairs, skipped)


def plan_messages(pair: PlanPair) -> list[dict[str, str]]:
    """The chat messages of ``pair`` as the tokenizer's template takes them."""
    return [{"role": m.role, "content": m.content}
            for m in choose_plan_messages(pair.options, pair.goal)]
