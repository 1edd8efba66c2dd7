"""NetConfEval step-1 format: import, export and its scoring metric.

NetConfEval (CoNEXT 2024) asks a translator to turn requirement sentences into
``{"reachability": {node: [prefix]}, "waypoint": {"(node,prefix)": [node, ...]},
"loadbalancing": {"(node,prefix)": n}}``. :func:`to_netconfeval` and :func:`from_netconfeval`
convert between that and :class:`~netgpt.intents.model.Intent`; :func:`score_step1` is its
metric: the share of expected requirements present, identically, in the prediction (one per
(node, prefix) reachability pair, one per waypoint key with its list, one per load-balancing key
with its count); ``wrong`` counts predicted requirements that are not expected.

Note: NetConfEval's own script checks a waypoint key's presence but, through a generator
expression that is always true, not its list; :func:`score_step1` compares the list too
(``lenient_waypoints=True`` reproduces the original behaviour).

The only I/O is :func:`load_step1`, which reads the shared dataset file it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netgpt.errors import ConfigError
from netgpt.intents.model import (
    DeviceEndpoint,
    Endpoint,
    Expectation,
    Intent,
    LoadBalancingExpectation,
    PrefixEndpoint,
    ReachabilityExpectation,
    SiteEndpoint,
    WaypointExpectation,
)
from netgpt.intents.names import NameTable

__all__ = [
    "Step1Row",
    "Step1Score",
    "from_netconfeval",
    "load_step1",
    "locations",
    "name_table",
    "score_step1",
    "to_netconfeval",
    "translate_step1",
]

Spec = dict[str, dict[str, Any]]
_KEY = re.compile(r"^\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)$")


@dataclass(frozen=True)
class Step1Row:
    """One batch of the step-1 translation dataset."""

    human_language: str
    expected: Spec
    batch_size: int
    n_policy_types: int


@dataclass(frozen=True)
class Step1Score:
    """NetConfEval's counts for one batch."""

    expected: int
    success: int
    wrong: int

    @property
    def accuracy(self) -> float:
        """Share of expected requirements present in the prediction (1.0 when none expected)."""
        return self.success / self.expected if self.expected else 1.0


def load_step1(path: Path) -> list[Step1Row]:
    """Read ``step_1_spec_translation.jsonl``; :class:`ConfigError` names a bad line."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read NetConfEval data {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            expected = raw["expected"]
            rows.append(
                Step1Row(
                    human_language=str(raw["human_language"]),
                    expected=json.loads(expected) if isinstance(expected, str) else expected,
                    batch_size=int(raw["batch_size"]),
                    n_policy_types=int(raw["n_policy_types"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{n}: not a step-1 row ({exc})") from exc
    return rows


def _split_key(key: str) -> tuple[str, str]:
    m = _KEY.match(key)
    if m is None:
        raise ConfigError(f"NetConfEval key {key!r} is not '(node,prefix)'")
    return m.group(1), m.group(2)


def locations(specs: Iterable[Spec]) -> list[str]:
    """Every location (node) named in ``specs``, sorted."""
    found: set[str] = set()
    for spec in specs:
        found.update(spec.get("reachability", {}))
        for key, via in spec.get("waypoint", {}).items():
            found.add(_split_key(key)[0])
            found.update(via)
        for key in spec.get("loadbalancing", {}):
            found.add(_split_key(key)[0])
    return sorted(found)


def name_table(specs: Iterable[Spec]) -> NameTable:
    """A :class:`NameTable` whose devices are the locations named in ``specs``."""
    return NameTable.from_names(devices=locations(specs))


def _node(ep: Endpoint, what: str) -> str:
    if isinstance(ep, DeviceEndpoint | SiteEndpoint):
        return ep.name
    raise ConfigError(f"NetConfEval needs a location as {what}, got {ep.kind} endpoint")


def _prefix(ep: Endpoint) -> str:
    if isinstance(ep, PrefixEndpoint):
        return ep.prefix
    raise ConfigError(f"NetConfEval needs a prefix as destination, got {ep.kind} endpoint")


def to_netconfeval(intent: Intent) -> Spec:
    """Export reachability, waypoint and load-balancing expectations in NetConfEval's format.

    :class:`ConfigError` for expectations the format cannot hold (other kinds, "must not
    reach", endpoints other than location -> prefix).
    """
    spec: Spec = {"reachability": {}, "waypoint": {}, "loadbalancing": {}}
    for e in intent.expectations:
        if isinstance(e, ReachabilityExpectation):
            if not e.reachable:
                raise ConfigError("NetConfEval step 1 has no 'must not reach' requirement")
            targets = spec["reachability"].setdefault(_node(e.source, "source"), [])
            if _prefix(e.destination) not in targets:
                targets.append(_prefix(e.destination))
        elif isinstance(e, WaypointExpectation):
            key = f"({_node(e.source, 'source')},{_prefix(e.destination)})"
            spec["waypoint"][key] = list(e.via)
        elif isinstance(e, LoadBalancingExpectation):
            key = f"({_node(e.source, 'source')},{_prefix(e.destination)})"
            spec["loadbalancing"][key] = e.paths
        else:
            raise ConfigError(f"NetConfEval step 1 cannot express a {e.kind} expectation")
    return spec


def from_netconfeval(spec: Spec, *, text: str = "") -> Intent:
    """An :class:`Intent` holding the requirements of a NetConfEval spec (locations = devices)."""
    exps: list[Expectation] = []
    try:
        for node, prefixes in spec.get("reachability", {}).items():
            for p in prefixes:
                exps.append(ReachabilityExpectation(
                    source=DeviceEndpoint(name=node), destination=PrefixEndpoint(prefix=p)))
        for key, via in spec.get("waypoint", {}).items():
            node, p = _split_key(key)
            exps.append(WaypointExpectation(source=DeviceEndpoint(name=node),
                                            destination=PrefixEndpoint(prefix=p),
                                            via=tuple(via)))
        for key, n in spec.get("loadbalancing", {}).items():
            node, p = _split_key(key)
            exps.append(LoadBalancingExpectation(source=DeviceEndpoint(name=node),
                                                 destination=PrefixEndpoint(prefix=p),
                                                 paths=int(n)))
        return Intent(text=text[:4000], expectations=tuple(exps))
    except ValueError as exc:
        raise ConfigError(f"NetConfEval spec does not fit the intent model: {exc}") from exc


def translate_step1(text: str, names: NameTable, *, chunk: int = 50) -> Spec:
    """Parse NetConfEval requirement sentences and export them in its format.

    An :class:`Intent` holds at most 100 expectations, so the sentences are parsed ``chunk`` at
    a time and the exports merged. Raises :class:`~netgpt.errors.IntentParseError` as
    :func:`~netgpt.intents.parser.parse_intent` does.
    """
    from netgpt.intents.parser import parse_intent

    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    merged: Spec = {"reachability": {}, "waypoint": {}, "loadbalancing": {}}
    for start in range(0, len(sentences), chunk):
        part = to_netconfeval(parse_intent(" ".join(sentences[start:start + chunk]), names))
        for node, prefixes in part["reachability"].items():
            targets = merged["reachability"].setdefault(node, [])
            targets.extend(p for p in prefixes if p not in targets)
        merged["waypoint"].update(part["waypoint"])
        merged["loadbalancing"].update(part["loadbalancing"])
    return merged


def _norm(spec: Spec, section: str) -> dict[str, Any]:
    return {k.replace(" ", ""): v for k, v in spec.get(section, {}).items()}


def score_step1(expected: Spec, predicted: Spec, *, lenient_waypoints: bool = False) -> Step1Score:
    """NetConfEval's step-1 metric for one batch (see the module docstring)."""
    pred_reach = predicted.get("reachability", {})
    pred_way = _norm(predicted, "waypoint")
    pred_lb = _norm(predicted, "loadbalancing")
    exp_reach = expected.get("reachability", {})
    exp_way = _norm(expected, "waypoint")
    exp_lb = _norm(expected, "loadbalancing")
    total = success = wrong = 0
    for node, prefixes in exp_reach.items():
        for p in prefixes:
            total += 1
            success += p in pred_reach.get(node, [])
    for key, via in exp_way.items():
        total += 1
        success += key in pred_way and (lenient_waypoints or list(pred_way[key]) == list(via))
    for key, n in exp_lb.items():
        total += 1
        success += key in pred_lb and int(pred_lb[key]) == int(n)
    for node, prefixes in pred_reach.items():
        for p in prefixes:
            if p not in exp_reach.get(node, []) and f"({node},{p})" not in exp_way:
                wrong += 1
    for key, via in pred_way.items():
        wrong += not (key in exp_way and (lenient_waypoints or list(exp_way[key]) == list(via)))
    for key, n in pred_lb.items():
        wrong += not (key in exp_lb and int(exp_lb[key]) == int(n))
    return Step1Score(expected=total, success=success, wrong=wrong)
