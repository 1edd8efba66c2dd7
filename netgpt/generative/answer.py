"""The cloud stage's default when no model server is configured: a grounded, honest answer.

:class:`GroundedAnswerModel` keeps the :class:`~netgpt.cloud_models.base.LanguageModel` contract
so the service runs with no model server (tests, ``netgpt demo``). It writes no prose of its own:
it answers with the context sentences the prompt carries, after saying that no language model
wrote it. Whether the answer uses the right local context therefore depends only on what the
edge (or, cloud-only, the cloud's completion) put in the prompt, which is what the service's
personalization figures measure. With vLLM or a local transformers model the same service gets
a model's answer instead (``netgpt.cloud_models.registry.llm_from_config``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from netgpt.cloud_models.base import ChatRequest, ChatResponse, HealthReport
from netgpt.errors import LLMOutputError

__all__ = ["GroundedAnswerModel"]

_BACKEND = "grounded"
_PREFIX = "(no language model configured: grounded on your context) "
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class GroundedAnswerModel:
    """Answers with the context sentences of the last user message (see the module docstring)."""

    backend = _BACKEND
    model = "grounded-context"

    def _answer(self, request: ChatRequest) -> str:
        users = [m.content for m in request.messages if m.role == "user"]
        if not users or not users[-1].strip():
            raise LLMOutputError("the request has no user message to answer")
        sentences = [s.strip() for s in _SENTENCE.split(users[-1].strip()) if s.strip()]
        words = (_PREFIX + " ".join(sentences)).split(" ")
        return " ".join(words[: max(1, request.max_tokens)])

    def chat(self, request: ChatRequest) -> ChatResponse:
        """The grounded answer, in full."""
        start = time.perf_counter()
        text = self._answer(request)
        elapsed = time.perf_counter() - start
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        return ChatResponse(text=text, backend=_BACKEND, model=self.model,
                            prompt_tokens=prompt_words, completion_tokens=len(text.split()),
                            finish_reason="stop", latency_s=elapsed, ttft_s=elapsed)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """The same answer, a word at a time."""
        words = self._answer(request).split(" ")
        for i, w in enumerate(words):
            yield w if i == 0 else " " + w

    def health(self) -> HealthReport:
        """Always ready."""
        return HealthReport(ok=True, backend=_BACKEND, model=self.model,
                            detail="answers from the prompt's context; no model server")

    def close(self) -> None:
        """Nothing to release."""
