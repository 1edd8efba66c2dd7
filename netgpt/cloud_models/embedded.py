"""The embedded backend: no model at all, so that everything works with no model server.

* ``read_intent`` requests (see :class:`~netgpt.cloud_models.base.TaskHint`) are answered by the
  controlled-language parser: the answer is the parsed intent's draft, exactly. Text the parser
  cannot place is an :class:`~netgpt.errors.LLMOutputError` carrying the parser's own message
  (there is no model here to do better).
* ``choose_plan`` keeps the planner's order: option 0, and says why.
* ``explain`` and plain chat get a fixed, honest message: no language model is configured; the
  system's own words follow unchanged.

Deterministic; never slow; never unavailable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from netgpt.cloud_models.base import ChatRequest, ChatResponse, HealthReport
from netgpt.cloud_models.intent_draft import draft_from_intent, draft_json
from netgpt.errors import IntentParseError, LLMOutputError
from netgpt.intents.parser import parse_intent

__all__ = ["NO_MODEL_MESSAGE", "EmbeddedModel"]

NO_MODEL_MESSAGE = (
    "No language model is configured (the embedded backend answers without one). Intents are "
    "read by the controlled-language parser; configure the openai_compat or transformers_local "
    "backend for free-form answers."
)
_BACKEND = "embedded"


class EmbeddedModel:
    """A :class:`~netgpt.cloud_models.base.LanguageModel` with no model behind it."""

    @property
    def backend(self) -> str:
        """``embedded``."""
        return _BACKEND

    @property
    def model(self) -> str:
        """What answers: the controlled-language parser."""
        return "controlled-language-parser"

    def _answer(self, request: ChatRequest) -> str:
        hint = request.hint
        if hint is not None and hint.task == "read_intent":
            if hint.names is None:
                raise LLMOutputError("a read_intent request needs the name table in its hint",
                                     backend=_BACKEND)
            try:
                intent = parse_intent(hint.text, hint.names)
            except IntentParseError as exc:
                raise LLMOutputError(
                    f"no model is configured and the controlled-language parser cannot read "
                    f"this text: {exc}", backend=_BACKEND,
                ) from exc
            return draft_json(draft_from_intent(intent))
        if hint is not None and hint.task == "choose_plan":
            if not hint.options:
                raise LLMOutputError("a choose_plan request needs its options in the hint",
                                     backend=_BACKEND)
            return json.dumps({
                "index": 0,
                "reason": "no language model is configured; the planner's first option is kept "
                          "(policies and the twin still judge it)",
            })
        if hint is not None and hint.task == "explain":
            return f"{NO_MODEL_MESSAGE}\nWhat the system reported: {hint.text.strip()}"
        if request.json_schema is not None:
            raise LLMOutputError(
                "no language model is configured, and this structured request is not one the "
                "embedded backend can answer (it answers read_intent and choose_plan)",
                backend=_BACKEND,
            )
        return NO_MODEL_MESSAGE

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Answer from the parser or with the fixed message (see the module docstring)."""
        start = time.perf_counter()
        text = self._answer(request)
        elapsed = time.perf_counter() - start
        return ChatResponse(
            text=text, backend=_BACKEND, model=self.model, adapter=None,
            finish_reason="stop", latency_s=elapsed, ttft_s=elapsed,
            mean_logprob=0.0 if request.logprobs else None,
        )

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """The same answer as :meth:`chat`, in one piece."""
        yield self._answer(request)

    def health(self) -> HealthReport:
        """Always ready."""
        return HealthReport(ok=True, backend=_BACKEND, model=self.model,
                            detail="no model: the controlled-language parser answers intents")

    def close(self) -> None:
        """Nothing to release."""
