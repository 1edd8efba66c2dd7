"""Reading an operator's words: parser, then edge model, then cloud model or a question.

:class:`IntentReader` tries, in order:

1. the controlled-language parser (exact; its refusals — hidden characters, instructions aimed
   at the system, contradictions, out-of-range values — are final and never passed to a model;
   a word it took for an unknown name goes to the edge model, which can only point at names the
   text or the network has, but not to the cloud model);
2. the edge intent model (:mod:`netgpt.edge_models.intent_model`), with the operator's site and
   that site's adapter when there is one. Its reading is taken when its calibrated confidence
   is at least ``min_confidence`` (unless given: the stricter of the threshold fitted at
   training time and :data:`~netgpt.edge_models.intent_model.DEFAULT_MIN_CONFIDENCE`),
   every name it uses is one the text says (or the site's adapter is active, or it is the
   operator's own site said as "here"), the text names something of the network, and, if the
   text has words the model never learnt, its confidence is at least
   :data:`SURE_DESPITE_UNKNOWN_WORDS`;
3. the cloud language model, when one is configured (not the embedded default);
4. otherwise a clarifying question (:class:`Clarification`) quoting the best guess and why it
   was not taken — never a silent guess.

:class:`IntentUnderstanding` says which stage answered, with what confidence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from netgpt.agents.graph import EDGE_PARSE_REASONS, MODEL_PARSE_REASONS
from netgpt.errors import IntentParseError, LLMError, LLMOutputError, NetGPTError
from netgpt.intents.model import (
    AccessExpectation,
    BandwidthExpectation,
    Expectation,
    Intent,
    LatencyExpectation,
    LoadBalancingExpectation,
    ReachabilityExpectation,
    UtilizationCeilingExpectation,
    WaypointExpectation,
)
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent

if TYPE_CHECKING:
    from netgpt.cloud_models.base import LanguageModel
    from netgpt.edge_models.intent_model import EdgeIntentModel, EdgeReading

__all__ = [
    "Clarification",
    "IntentReader",
    "IntentUnderstanding",
    "describe_intent",
]


Stage = Literal["parser", "edge", "cloud", "clarify"]
# an edge reading of text with words the model never learnt is acted on only when it is this
# sure: an unknown word may be the one that matters ("not", "except", a verb it never saw)
SURE_DESPITE_UNKNOWN_WORDS = 0.99


class Clarification(IntentParseError):
    """No stage was sure enough: ``question`` asks the operator what they meant."""

    def __init__(self, question: str, *, guess: str | None, confidence: float | None,
                 detail: dict[str, Any] | None = None) -> None:
        super().__init__(question, reason="unsure")
        self.question = question
        self.guess = guess
        self.confidence = confidence
        self.detail = dict(detail or {})


@dataclass(frozen=True)
class IntentUnderstanding:
    """Who read the text and what they read: ``intent`` is ``None`` only for ``clarify``."""

    stage: Stage
    intent: Intent | None
    confidence: float | None
    latency_ms: float
    question: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``netgpt intent parse --json`` prints)."""
        return {
            "stage": self.stage,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "latency_ms": round(self.latency_ms, 2),
            "intent": None if self.intent is None else self.intent.model_dump(mode="json"),
            "question": self.question,
            "detail": self.detail,
        }


def _endpoint_text(ep: Any) -> str:
    if ep is None:
        return "anywhere"
    kind = getattr(ep, "kind", "any")
    if kind == "any":
        return "anywhere"
    if kind == "prefix":
        return str(ep.prefix)
    return f"{kind} {ep.name}"


def _describe(e: Expectation) -> str:
    if isinstance(e, ReachabilityExpectation):
        verb = "must reach" if e.reachable else "must not reach"
        return f"{_endpoint_text(e.source)} {verb} {_endpoint_text(e.destination)}"
    if isinstance(e, AccessExpectation):
        t = e.traffic
        what = t.service or (f"{t.protocol} {t.ports}" if t.ports else str(t.protocol))
        return (f"{e.action} {what} from {_endpoint_text(t.source)} to "
                f"{_endpoint_text(t.destination)}" + (" in a time window" if e.window else ""))
    if isinstance(e, WaypointExpectation):
        return (f"traffic from {_endpoint_text(e.source)} to {_endpoint_text(e.destination)} "
                f"must go through {', '.join(e.via)}")
    if isinstance(e, LoadBalancingExpectation):
        return (f"balance {_endpoint_text(e.source)} to {_endpoint_text(e.destination)} over "
                f"{e.paths} paths")
    if isinstance(e, BandwidthExpectation):
        t = e.traffic
        return (f"{e.mode} {e.rate_mbps:g} Mbps for traffic from {_endpoint_text(t.source)} to "
                f"{_endpoint_text(t.destination)}")
    if isinstance(e, UtilizationCeilingExpectation):
        where = (f" in {', '.join(e.region)}" if e.region else
                 f" between {_endpoint_text(e.source)} and {_endpoint_text(e.destination)}"
                 if e.source or e.destination else "")
        return f"keep links{where} under {e.max_utilization * 100:g}% utilization"
    if isinstance(e, LatencyExpectation):
        return (f"keep p{e.percentile:g} latency from {_endpoint_text(e.source)} to "
                f"{_endpoint_text(e.destination)} below {e.max_ms:g} ms")
    return f"{e.workload} {e.metric} target {e.target:g}"


def describe_intent(intent: Intent) -> str:
    """The intent in short words, for questions and logs ("group guests must not reach ...")."""
    prio = f" (priority {intent.priority})" if intent.priority != 5 else ""
    return "; ".join(_describe(e) for e in intent.expectations) + prio


class IntentReader:
    """The reading chain for one network's names (see the module docstring)."""

    def __init__(self, names: NameTable, *, edge: EdgeIntentModel | None = None,
                 llm: LanguageModel | None = None, min_confidence: float | None = None,
                 llm_timeout_s: float | None = None) -> None:
        from netgpt.edge_models.intent_model import DEFAULT_MIN_CONFIDENCE

        self.names = names
        self.edge = edge
        self.llm = llm if llm is not None and llm.backend != "embedded" else None
        if min_confidence is None:  # the stricter of the model's own (fitted) and the default
            fitted = float(edge.card.get("min_confidence", 0.0)) if edge is not None else 0.0
            min_confidence = max(fitted, DEFAULT_MIN_CONFIDENCE)
        self.min_confidence = min_confidence
        if not 0 <= self.min_confidence <= 1:
            raise NetGPTError(f"min_confidence {self.min_confidence} must be within 0-1")
        self.llm_timeout_s = llm_timeout_s

    def read(self, text: str, *, site: str | None = None, owner: str = "operator",
             adapter: str | None = None) -> IntentUnderstanding:
        """Read ``text`` said at ``site``; raises :class:`Clarification` when unsure.

        The parser's refusals are raised as they are (:class:`IntentParseError`).
        """
        start = time.perf_counter()
        try:
            intent = parse_intent(text, self.names, owner=owner)
            return IntentUnderstanding("parser", intent, 1.0, _ms(start))
        except IntentParseError as exc:
            if exc.reason not in EDGE_PARSE_REASONS:
                raise
            parser_exc = exc
            parser_said = str(exc)
        cloud_may_read = self.llm is not None and parser_exc.reason in MODEL_PARSE_REASONS
        if self.edge is None and not cloud_may_read:
            raise parser_exc
        detail: dict[str, Any] = {"parser_said": parser_said}
        guess: EdgeReading | None = None
        if self.edge is not None:
            if adapter is None and site is not None and site in self.edge.adapter_names():
                adapter = site
            guess = self.edge.read(text, self.names, site=site, adapter=adapter, owner=owner)
            why_not = self._doubt(guess, adapter)
            detail["edge"] = {"tokens": list(guess.tokens), "tagged": guess.tagged,
                              "confidence": round(guess.confidence, 4), "adapter": adapter,
                              "latency_ms": round(guess.latency_ms, 2), "doubt": why_not}
            if why_not is None and guess.intent is not None:
                return IntentUnderstanding("edge", guess.intent, guess.confidence, _ms(start),
                                           detail=detail)
        if self.llm is not None and cloud_may_read:
            from netgpt.cloud_models.intent_draft import ungrounded_names
            from netgpt.cloud_models.proposals import read_intent

            try:
                reading = read_intent(self.llm, text, self.names, owner=owner,
                                      timeout_s=self.llm_timeout_s)
                missing = ungrounded_names(reading.intent, text, self.names)
                if missing:
                    raise LLMOutputError(
                        f"its reading names {missing}, which the text does not mention; "
                        "refused rather than act on a guess", backend=reading.backend,
                        output=str(reading.draft))
                detail["cloud"] = {"backend": reading.backend, "model": reading.model,
                                   "adapter": reading.adapter, "attempts": reading.attempts,
                                   "confidence": reading.confidence,
                                   "latency_s": round(reading.latency_s, 3),
                                   "draft": reading.draft}
                return IntentUnderstanding("cloud", reading.intent, reading.confidence,
                                           _ms(start), detail=detail)
            except (LLMError, NetGPTError) as exc:
                if guess is None:
                    raise  # no edge guess to offer: the cloud model's own reason stands
                detail["cloud"] = {"error": str(exc)}
        raise self._question(text, guess, detail)

    def _doubt(self, reading: EdgeReading, adapter: str | None) -> str | None:
        """Why the edge reading must not be acted on, or ``None``."""
        if reading.intent is None:
            return f"its draft is not a valid intent: {reading.error}"
        if "<" not in reading.tagged:
            return "the text names nothing this network has (no place, service or value)"
        if reading.confidence < self.min_confidence:
            return (f"confidence {reading.confidence:.2f} is below {self.min_confidence:.2f}")
        if reading.unknown_words and reading.confidence < SURE_DESPITE_UNKNOWN_WORDS:
            return (f"it does not know the words {list(reading.unknown_words)}, which may "
                    "change the meaning")
        if adapter is None and reading.unsaid_names:
            return f"it names {list(reading.unsaid_names)}, which the text does not mention"
        return None

    def _question(self, text: str, guess: EdgeReading | None,
                  detail: dict[str, Any]) -> Clarification:
        if guess is not None and guess.intent is not None:
            best = describe_intent(guess.intent)
            cloud = detail.get("cloud", {}).get("error")
            also = f"; the cloud model could not read it either: {cloud}" if cloud else ""
            q = (f"I am not sure what {text!r} asks for. Did you mean: {best}? "
                 f"(edge model confidence {guess.confidence:.2f}; "
                 f"{detail['edge']['doubt']}{also}). Confirm by writing it that way, or "
                 "rephrase.")
            return Clarification(q, guess=best, confidence=guess.confidence, detail=detail)
        q = (f"I could not read {text!r} as an intent ({detail['parser_said']}). "
             "Say what must hold, e.g. 'block telnet from guests to servers'.")
        return Clarification(q, guess=None, confidence=None, detail=detail)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
