"""The contract every language-model backend keeps, and the typed things that cross it.

A backend is chosen by name (:func:`netgpt.cloud_models.registry.llm_from_config`):
``openai_compat`` (an OpenAI-compatible HTTP server such as vLLM), ``transformers_local``
(in process, transformers) or ``embedded`` (no model: the controlled-language parser answers
intent requests, chat gets a fixed, honest message). Whatever the backend:

* :meth:`LanguageModel.chat` answers one :class:`ChatRequest` with a :class:`ChatResponse`.
  With ``json_schema`` set, the backend constrains decoding to that schema where it can
  (vLLM's structured outputs, llguidance in process) and the text is the JSON.
* :meth:`LanguageModel.stream` yields the answer's text in pieces as it is generated.
* :meth:`LanguageModel.health` says whether the model can answer now, without raising.
* Failures raise the :class:`~netgpt.errors.LLMError` subclasses only: unreachable
  (:class:`~netgpt.errors.LLMUnavailableError`), too slow (:class:`~netgpt.errors.LLMTimeoutError`),
  refused (:class:`~netgpt.errors.LLMRequestError`), unusable output
  (:class:`~netgpt.errors.LLMOutputError`). A library's exception never leaks.

Models only propose: nothing a backend returns is applied by this package.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from netgpt.errors import ConfigError

if TYPE_CHECKING:
    from netgpt.intents.names import NameTable

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "HealthReport",
    "LanguageModel",
    "Role",
    "TaskHint",
]

Role = Literal["system", "user", "assistant"]
Task = Literal["read_intent", "choose_plan", "explain"]
_MAX_TOKENS = 8192


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant"):
            raise ConfigError(f"message role {self.role!r} must be system, user or assistant")


@dataclass(frozen=True)
class TaskHint:
    """What a request is for, so that a backend without a model can still answer it.

    Model backends ignore it (the messages say everything); the embedded backend answers
    ``read_intent`` with the controlled-language parser over ``names``, ``choose_plan`` and
    ``explain`` with fixed, honest rules.
    """

    task: Task
    text: str = ""
    names: NameTable | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatRequest:
    """One request to a model. Keyword-only; validated on construction.

    ``json_schema``: constrain the answer to this JSON schema (``schema_name`` names it for
    servers that want a name). ``adapter``: a LoRA adapter to answer with (vLLM's
    ``--lora-modules`` name, or an adapter the local backend loaded); ``None`` is the base
    model. ``timeout_s`` overrides the backend's default for this request. ``logprobs``: ask
    for token log-probabilities (the response's ``mean_logprob``), where the backend can.
    """

    messages: tuple[ChatMessage, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "answer"
    adapter: str | None = None
    timeout_s: float | None = None
    logprobs: bool = False
    hint: TaskHint | None = None
    stop: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.messages:
            raise ConfigError("a chat request needs at least one message")
        if not 1 <= self.max_tokens <= _MAX_TOKENS:
            raise ConfigError(f"max_tokens {self.max_tokens} must be 1-{_MAX_TOKENS}")
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"temperature {self.temperature} must be within 0-2")
        if self.timeout_s is not None and not 0 < self.timeout_s <= 3600:
            raise ConfigError(f"timeout_s {self.timeout_s} must be in (0, 3600]")
        if self.adapter is not None and not self.adapter.strip():
            raise ConfigError("adapter must be a non-empty name or None")


@dataclass(frozen=True)
class ChatResponse:
    """A model's answer and how it was produced.

    ``ttft_s`` is the time to the first generated token where the backend can tell (streaming,
    local generation); ``mean_logprob`` the mean log-probability of the generated tokens when
    they were asked for.
    """

    text: str
    backend: str
    model: str
    adapter: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    latency_s: float = 0.0
    ttft_s: float | None = None
    mean_logprob: float | None = None

    @property
    def confidence(self) -> float | None:
        """Geometric-mean probability of the generated tokens (0-1), when logprobs came back."""
        if self.mean_logprob is None:
            return None
        return math.exp(min(0.0, self.mean_logprob))


@dataclass(frozen=True)
class HealthReport:
    """Whether a backend can answer now, and what it serves."""

    ok: bool
    backend: str
    model: str
    detail: str
    latency_ms: float = 0.0
    adapters: tuple[str, ...] = ()


@runtime_checkable
class LanguageModel(Protocol):
    """A language-model backend. Implementations live one per module in this package."""

    @property
    def backend(self) -> str:
        """The backend's registry name (``openai_compat``, ``transformers_local``, ...)."""
        ...

    @property
    def model(self) -> str:
        """What answers: the served model name, a model directory, or ``embedded``."""
        ...

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Answer ``request`` in full.

        Raises :class:`~netgpt.errors.LLMUnavailableError` when the model cannot be reached,
        :class:`~netgpt.errors.LLMTimeoutError` past the timeout,
        :class:`~netgpt.errors.LLMRequestError` when the server refuses the request, and
        :class:`~netgpt.errors.LLMOutputError` when there is no usable answer.
        """
        ...

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Yield the answer's text in pieces as they are generated (same errors as chat)."""
        ...

    def health(self) -> HealthReport:
        """Whether the model answers now. Never raises: problems go into ``detail``."""
        ...

    def close(self) -> None:
        """Release connections or memory. Safe to call twice."""
        ...
