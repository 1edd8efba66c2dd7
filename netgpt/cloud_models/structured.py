"""Structured answers: ask for JSON against a schema, check it, retry once, or fail cleanly.

:func:`ask_structured` sends a schema-constrained :class:`~netgpt.cloud_models.base.ChatRequest`,
parses the answer as JSON and hands it to the caller's ``validate`` (pydantic models, name
resolution: anything that raises ``ValueError``). If the answer is not JSON or does not
validate, it asks **once** more, with the bad answer and the problem in the conversation and
the schema restated; if that fails too, :class:`~netgpt.errors.LLMOutputError` says what was
wrong both times and carries the last raw answer. Transport errors (unreachable, timeout,
refused) pass through as they are: they are not the model's output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from netgpt.cloud_models.base import ChatMessage, ChatRequest, ChatResponse, LanguageModel
from netgpt.cloud_models.prompts import restate_schema_message
from netgpt.errors import LLMError, LLMOutputError

__all__ = ["StructuredAnswer", "ask_structured"]

T = TypeVar("T")


@dataclass(frozen=True)
class StructuredAnswer(Generic[T]):
    """A validated answer, the response it came in, and how many answers it took (1 or 2)."""

    value: T
    response: ChatResponse
    attempts: int
    data: Any


class _Unusable(Exception):
    """The answer is not JSON or does not validate; the message says why."""


def _check(text: str, validate: Callable[[Any], T]) -> tuple[T, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _Unusable(f"not valid JSON ({exc.__class__.__name__}: {exc}): "
                        f"{text[:120]!r}") from exc
    try:
        return validate(data), data
    except ValueError as exc:  # pydantic's ValidationError, DraftError, LLMOutputError...
        raise _Unusable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


def ask_structured(
    llm: LanguageModel,
    request: ChatRequest,
    validate: Callable[[Any], T],
) -> StructuredAnswer[T]:
    """Ask ``llm`` for JSON fitting ``request.json_schema`` and ``validate``; retry once.

    Raises :class:`~netgpt.errors.LLMOutputError` (``attempts`` = 2, ``output`` = the last
    answer) when neither answer is usable, and whatever the backend raises for transport
    problems.
    """
    if request.json_schema is None:
        raise ValueError("ask_structured needs a request with json_schema set")
    first = llm.chat(request)
    try:
        value, data = _check(first.text, validate)
        return StructuredAnswer(value=value, response=first, attempts=1, data=data)
    except _Unusable as exc:
        problem = str(exc)
    retry = replace(
        request,
        messages=(
            *request.messages,
            ChatMessage("assistant", first.text[:2000]),
            restate_schema_message(problem, request.json_schema),
        ),
    )
    try:
        second = llm.chat(retry)
    except LLMError as exc:
        raise LLMOutputError(
            f"the answer did not fit the schema ({problem}) and the retry with the schema "
            f"restated failed: {exc}", backend=llm.backend, output=first.text, attempts=1,
        ) from exc
    try:
        value, data = _check(second.text, validate)
    except _Unusable as exc:
        raise LLMOutputError(
            f"the answer did not fit the schema twice: first {problem}; then, with the schema "
            f"restated, {exc}", backend=llm.backend, output=second.text, attempts=2,
        ) from exc
    return StructuredAnswer(value=value, response=second, attempts=2, data=data)
