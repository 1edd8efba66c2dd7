"""Cloud language models: one interface, backends by name, and what the agent asks of them.

The contract is :class:`LanguageModel` (``base.py``); backends are ``embedded`` (no model: the
controlled-language parser), ``openai_compat`` (an OpenAI-compatible server such as vLLM) and
``transformers_local`` (in process), chosen with :func:`llm_from_config`. The agent's calls are
:func:`read_intent`, :func:`explain` and :func:`choose_plan`: models only propose. The
project's own model (a small Llama trained on the intent corpus, with per-site LoRA adapters)
ships under ``weights/``; ``netgpt llm train`` retrains it and ``netgpt llm serve`` serves it
with vLLM (``vllm_server.py``).
"""

from netgpt.cloud_models.base import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    HealthReport,
    LanguageModel,
    TaskHint,
)
from netgpt.cloud_models.proposals import (
    IntentReading,
    PlanChoice,
    choose_plan,
    explain,
    read_intent,
)
from netgpt.cloud_models.registry import BACKENDS, backend_names, llm_from_config

__all__ = [
    "BACKENDS",
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "HealthReport",
    "IntentReading",
    "LanguageModel",
    "PlanChoice",
    "TaskHint",
    "backend_names",
    "choose_plan",
    "explain",
    "llm_from_config",
    "read_intent",
]
