"""What the agent asks a language model for: an intent, an explanation, a plan choice.

Every function takes a :class:`~netgpt.cloud_models.base.LanguageModel` (any backend) and
returns a *proposal*: nothing here applies anything. A formal intent still goes through the
conflict checker, the compiler, the policies and the twin; a plan choice is checked the same
way; an explanation is text for a person.

* :func:`read_intent`: text the controlled-language parser could not place -> a formal
  :class:`~netgpt.intents.model.Intent`, decoded against a JSON schema whose names come from
  the network's :class:`~netgpt.intents.names.NameTable`, validated by pydantic, by name
  resolution and by one sanity rule (no requirement from a place to itself); one retry with the
  schema restated, then :class:`~netgpt.errors.LLMOutputError`.
* :func:`explain`: a plain-language explanation of a refusal or a rollback.
* :func:`choose_plan`: which of several plans best meets a goal, and why (schema-constrained).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from netgpt.cloud_models.base import ChatRequest, LanguageModel, TaskHint
from netgpt.cloud_models.intent_draft import (
    DRAFT_TITLE,
    endpoint_label,
    intent_draft_schema,
    intent_from_draft,
)
from netgpt.cloud_models.prompts import choose_plan_messages, explain_messages, intent_messages
from netgpt.cloud_models.structured import ask_structured
from netgpt.errors import ConfigError, LLMOutputError
from netgpt.intents.model import Intent
from netgpt.intents.names import NameTable

__all__ = ["IntentReading", "PlanChoice", "choose_plan", "explain", "read_intent"]

_INTENT_MAX_TOKENS = 320
_MAX_OPTIONS = 32


@dataclass(frozen=True)
class IntentReading:
    """A model's reading of an intent text: the intent and who read it, how sure, how fast.

    ``confidence`` is the geometric-mean probability of the answer's tokens (0-1) where the
    backend reports log-probabilities (1.0 for the embedded parser; ``None`` when unknown).
    ``attempts`` is 2 when the first answer had to be retried. ``draft`` is the JSON the model
    wrote.
    """

    intent: Intent
    backend: str
    model: str
    adapter: str | None
    confidence: float | None
    attempts: int
    latency_s: float
    draft: dict[str, Any]


def read_intent(
    llm: LanguageModel,
    text: str,
    names: NameTable,
    context: str = "",
    *,
    adapter: str | None = None,
    owner: str = "operator",
    timeout_s: float | None = None,
) -> IntentReading:
    """Read ``text`` into a formal intent with ``llm``; names must resolve in ``names``.

    ``context`` (e.g. ``"network: campus"``) is added to the system message; ``adapter`` picks
    a LoRA adapter (a site's own words). Raises :class:`~netgpt.errors.ConfigError` for empty
    text, :class:`~netgpt.errors.LLMOutputError` when no usable intent came back after one
    retry, and the backend's :class:`~netgpt.errors.LLMError` for an unreachable, slow or
    refusing model. The intent is a proposal in state ``received``.
    """
    if not text or not text.strip():
        raise ConfigError("the intent text is empty; say what must hold, e.g. "
                          "'engineering must reach servers'")
    request = ChatRequest(
        messages=intent_messages(text, context),
        max_tokens=_INTENT_MAX_TOKENS,
        temperature=0.0,
        json_schema=intent_draft_schema(names),
        schema_name=DRAFT_TITLE,
        adapter=adapter,
        timeout_s=timeout_s,
        logprobs=True,
        hint=TaskHint("read_intent", text=text, names=names),
    )
    def validate(data: Any) -> Intent:
        intent = intent_from_draft(data, names, text=text, owner=owner)
        _no_self_loops(intent)
        return intent

    answer = ask_structured(llm, request, validate)
    return IntentReading(
        intent=answer.value,
        backend=answer.response.backend,
        model=answer.response.model,
        adapter=adapter,
        confidence=answer.response.confidence,
        attempts=answer.attempts,
        latency_s=answer.response.latency_s,
        draft=answer.data,
    )


def _no_self_loops(intent: Intent) -> None:
    """A requirement between a place and itself is a misreading (a small model's usual slip)."""
    for i, e in enumerate(intent.expectations):
        traffic = getattr(e, "traffic", None)
        ends = (traffic.source, traffic.destination) if traffic is not None else (
            getattr(e, "source", None), getattr(e, "destination", None))
        if ends[0] is not None and ends[0] == ends[1] and ends[0].kind != "any":
            raise ValueError(f"expectation {i} ({e.kind}) has {endpoint_label(ends[0])} as both "
                             "source and destination; name two different places")


def explain(llm: LanguageModel, what: str, *, timeout_s: float | None = None) -> str:
    """A plain-language explanation of ``what`` (a refusal, a rollback, a verdict's evidence)."""
    if not what or not what.strip():
        raise ConfigError("nothing to explain: 'what' is empty")
    request = ChatRequest(
        messages=explain_messages(what), max_tokens=200, temperature=0.0, timeout_s=timeout_s,
        hint=TaskHint("explain", text=what),
    )
    text = llm.chat(request).text.strip()
    if not text:
        raise LLMOutputError("the model returned an empty explanation", backend=llm.backend)
    return text


class PlanChoice(BaseModel):
    """A model's choice among plans: the option's index and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    index: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=400)


def _plan_schema(n: int) -> dict[str, Any]:
    return {
        "title": "PlanChoice",
        "type": "object",
        "properties": {
            "index": {"type": "integer", "minimum": 0, "maximum": n - 1},
            "reason": {"type": "string", "minLength": 1, "maxLength": 400},
        },
        "required": ["index", "reason"],
        "additionalProperties": False,
    }


def choose_plan(
    llm: LanguageModel,
    options: Sequence[str],
    goal: str,
    *,
    timeout_s: float | None = None,
    adapter: str | None = None,
) -> tuple[int, str]:
    """Which of ``options`` best meets ``goal``: ``(index, reason)``, schema-constrained.

    ``adapter``: a LoRA adapter trained for the task (the project's ``plans``), if served.

    The index is checked against the options (one retry, then
    :class:`~netgpt.errors.LLMOutputError`). The choice is a proposal: the chosen plan still
    meets the policies and the twin.
    """
    if not options:
        raise ConfigError("choose_plan needs at least one option")
    if len(options) > _MAX_OPTIONS:
        raise ConfigError(f"{len(options)} options; at most {_MAX_OPTIONS}")
    n = len(options)

    def validate(data: Any) -> PlanChoice:
        choice = PlanChoice.model_validate(data)
        if choice.index >= n:
            raise ValueError(f"index {choice.index} is not an option (0-{n - 1})")
        return choice

    request = ChatRequest(
        messages=choose_plan_messages(options, goal), max_tokens=160, temperature=0.0,
        json_schema=_plan_schema(n), schema_name="PlanChoice", timeout_s=timeout_s,
        adapter=adapter,
        hint=TaskHint("choose_plan", text=goal, options=tuple(options)),
    )
    answer = ask_structured(llm, request, validate)
    return answer.value.index, answer.value.reason.strip()
