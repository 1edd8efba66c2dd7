"""Scoring the edge intent model: field accuracy, exact match, NetConfEval, calibration.

*Fields*: an intent flattened to ``(path, value)`` leaves of its expectations' JSON (defaults
included, expectations by position) plus its priority. A reading's field accuracy is the share
of the union of expected and predicted paths whose values agree; *exact* means every field
agrees. A reading that failed (no intent) scores 0. NetConfEval is scored with its own step-1
metric (:func:`~netgpt.intents.netconfeval.score_step1`), each batch read sentence by sentence.
Calibration: expected calibration error over 10 confidence bins, and the share of confident
(``>= threshold``) readings that are wrong (what the router would act on silently).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netgpt.cloud_models.intent_draft import intent_from_draft
from netgpt.errors import ConfigError
from netgpt.intents import netconfeval as nce
from netgpt.intents.model import Expectation, Intent
from netgpt.intents.names import NameTable

__all__ = [
    "ReadOutcome",
    "Scores",
    "field_accuracy",
    "flatten_intent",
    "score_netconfeval",
    "score_requests",
]

Reader = Callable[[str, NameTable], tuple[Intent | None, float, float]]


def _leaves(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(f"{prefix}.{k}", v, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = tuple(value)
    elif isinstance(value, float):
        out[prefix] = round(value, 6)
    else:
        out[prefix] = value


def flatten_intent(intent: Intent) -> dict[str, Any]:
    """``path -> value`` for every field of ``intent``'s expectations and its priority."""
    out: dict[str, Any] = {"priority": intent.priority}
    for i, e in enumerate(intent.expectations):
        _leaves(str(i), e.model_dump(mode="json"), out)
    return out


def field_accuracy(expected: Intent, got: Intent | None) -> tuple[float, bool]:
    """(share of fields that agree, exact match)."""
    if got is None:
        return 0.0, False
    a, b = flatten_intent(expected), flatten_intent(got)
    paths = set(a) | set(b)
    same = sum(1 for p in paths if p in a and p in b and a[p] == b[p])
    return same / len(paths), same == len(paths)


@dataclass(frozen=True)
class ReadOutcome:
    """One scored reading."""

    text: str
    field_accuracy: float
    exact: bool
    confidence: float
    latency_ms: float


@dataclass(frozen=True)
class Scores:
    """Aggregates over readings."""

    items: int
    field_accuracy: float
    exact_match: float
    latency_p50_ms: float
    latency_p95_ms: float
    ece: float
    confident_share: float
    confident_wrong: float  # share of confident readings that are not exact

    def as_json(self) -> dict[str, Any]:
        """Rounded for reports."""
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}


def _percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


def summarize(outcomes: Sequence[ReadOutcome], threshold: float) -> Scores:
    """Aggregate ``outcomes``; ``threshold`` is the router's confidence threshold."""
    n = len(outcomes)
    if not n:
        return Scores(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    bins: dict[int, list[ReadOutcome]] = {}
    for o in outcomes:
        bins.setdefault(min(9, int(o.confidence * 10)), []).append(o)
    ece = sum(len(b) / n * abs(statistics.fmean(o.confidence for o in b)
                                - statistics.fmean(float(o.exact) for o in b))
              for b in bins.values())
    confident = [o for o in outcomes if o.confidence >= threshold]
    lat = [o.latency_ms for o in outcomes]
    return Scores(
        items=n,
        field_accuracy=statistics.fmean(o.field_accuracy for o in outcomes),
        exact_match=statistics.fmean(float(o.exact) for o in outcomes),
        latency_p50_ms=_percentile(lat, 0.5),
        latency_p95_ms=_percentile(lat, 0.95),
        ece=ece,
        confident_share=len(confident) / n,
        confident_wrong=(sum(not o.exact for o in confident) / len(confident)
                         if confident else 0.0),
    )


def score_requests(requests: Iterable[Any], tables: dict[str, NameTable], read: Reader,
                   ) -> list[ReadOutcome]:
    """Read each labelled request (``text``, ``draft``, ``topology``) and score it."""
    out = []
    for r in requests:
        names = tables[r.topology]
        expected = intent_from_draft(r.draft, names, text=r.text)
        got, confidence, ms = read(r.text, names)
        acc, exact = field_accuracy(expected, got)
        out.append(ReadOutcome(r.text, acc, exact, confidence, ms))
    return out


def score_netconfeval(path: Path, read: Reader, *, limit: int | None = None,
                      only: Callable[[str], bool] | None = None,
                      cache: dict[str, Intent | None] | None = None) -> dict[str, Any]:
    """NetConfEval step-1 accuracy (its metric), reading each batch sentence by sentence.

    ``only`` keeps the batches whose every sentence it accepts; ``cache`` (sentence -> reading)
    may be shared between calls.
    """
    rows = nce.load_step1(path)[:limit]
    names = nce.name_table(r.expected for r in nce.load_step1(path))
    cache = {} if cache is None else cache
    scores = []
    unread = unexportable = 0
    for row in rows:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", row.human_language.strip()) if s]
        if only is not None and not all(only(s) for s in sentences):
            continue
        exps: list[Expectation] = []
        for s in sentences:
            if s not in cache:
                cache[s] = read(s, names)[0]
            got = cache[s]
            if got is None:
                unread += 1
                continue
            exps.extend(got.expectations)
        predicted: dict[str, Any] = {"reachability": {}, "waypoint": {}, "loadbalancing": {}}
        for e in exps:
            try:
                part = nce.to_netconfeval(Intent(expectations=(e,)))
            except ConfigError:  # a reading the format cannot hold: it is simply not credited
                unexportable += 1
                continue
            for node, prefixes in part["reachability"].items():
                targets = predicted["reachability"].setdefault(node, [])
                targets.extend(p for p in prefixes if p not in targets)
            predicted["waypoint"].update(part["waypoint"])
            predicted["loadbalancing"].update(part["loadbalancing"])
        scores.append(nce.score_step1(row.expected, predicted))
    return {
        "batches": len(scores),
        "accuracy": statistics.fmean(s.accuracy for s in scores) if scores else 0.0,
        "requirements": sum(s.expected for s in scores),
        "wrong": sum(s.wrong for s in scores),
        "unique_sentences": len(cache),
        "unread_sentences": unread,
        "unexportable_readings": unexportable,
    }
