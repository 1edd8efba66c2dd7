"""Prompts: the exact messages each task sends, and the project model's chat template.

The project's own model is trained on precisely the messages :func:`intent_messages` builds,
rendered by :data:`CHAT_TEMPLATE` (saved with its tokenizer, so vLLM's chat endpoint and
``transformers`` render them the same way). A general model served over ``openai_compat`` reads
the same messages as ordinary instructions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from netgpt.cloud_models.base import ChatMessage

__all__ = [
    "CHAT_TEMPLATE",
    "INTENT_SYSTEM",
    "choose_plan_messages",
    "explain_messages",
    "intent_messages",
    "plan_goal",
    "restate_schema_message",
]

# one special token per role; <|end|> closes every turn and is the end-of-sequence token
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
INTENT_SYSTEM = "Write the network intent as an intent draft in JSON."
_PLAN_SYSTEM = (
    "You choose between plans for a network change. Answer in JSON with the index of the best "
    "option (0-based) and a one-sentence reason. You only propose: policies and a digital twin "
    "check whatever you choose."
)
_EXPLAIN_SYSTEM = (
    "Explain to a network operator, in two or three plain sentences, what happened and why. "
    "Do not invent facts beyond the text."
)


def intent_messages(text: str, context: str = "") -> tuple[ChatMessage, ...]:
    """System + user messages asking for the intent draft of ``text``.

    ``context`` (the network's name, the conversation so far) is appended to the system
    message on a new line.
    """
    system = INTENT_SYSTEM + (f"\n{context.strip()}" if context.strip() else "")
    return (ChatMessage("system", system), ChatMessage("user", text.strip()))


def choose_plan_messages(options: Sequence[str], goal: str) -> tuple[ChatMessage, ...]:
    """Messages asking which of ``options`` best meets ``goal``."""
    listed = "\n".join(f"{i}: {o}" for i, o in enumerate(options))
    return (
        ChatMessage("system", _PLAN_SYSTEM),
        ChatMessage("user", f"Goal: {goal.strip()}\nOptions:\n{listed}"),
    )


def plan_goal(intent_text: str) -> str:
    """The goal a plan chooser is given for an intent (the agent and the corpus say the same)."""
    return (f"{intent_text.strip().rstrip('.')}. Every option meets it on the twin and passes "
            "the policies; prefer the smaller change.")


def explain_messages(what: str) -> tuple[ChatMessage, ...]:
    """Messages asking for a plain-language explanation of ``what`` (a refusal, a rollback)."""
    return (ChatMessage("system", _EXPLAIN_SYSTEM), ChatMessage("user", what.strip()))


def restate_schema_message(problem: str, schema: Mapping[str, Any]) -> ChatMessage:
    """The retry turn: what was wrong with the answer, and the schema again."""
    return ChatMessage(
        "user",
        f"That answer cannot be used: {problem}. Reply with JSON only, matching this JSON "
        f"schema exactly: {json.dumps(schema, separators=(',', ':'))}",
    )
