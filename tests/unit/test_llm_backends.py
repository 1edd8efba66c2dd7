"""The LLM contract: typed requests, the embedded backend, the registry."""

from __future__ import annotations

import pytest

from netgpt.cloud_models import (
    BACKENDS,
    ChatMessage,
    ChatRequest,
    LanguageModel,
    TaskHint,
    choose_plan,
    explain,
    llm_from_config,
    read_intent,
)
from netgpt.cloud_models.embedded import NO_MODEL_MESSAGE, EmbeddedModel
from netgpt.cloud_models.openai_compat import OpenAICompatModel
from netgpt.errors import ConfigError, LLMOutputError
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.sim_networks.topology import build_topology

pytestmark = pytest.mark.unit

NAMES = NameTable.from_topology(build_topology("campus"))
HELLO = (ChatMessage("user", "hello"),)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"messages": ()}, "at least one message"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"adapter": " "}, "adapter"),
    ],
)
def test_requests_validate_on_construction(changes, message):
    with pytest.raises(ConfigError, match=message):
        ChatRequest(**{"messages": HELLO, **changes})


def test_bad_role_is_refused():
    with pytest.raises(ConfigError, match="role"):
        ChatMessage("tool", "x")  # type: ignore[arg-type]


def test_embedded_reads_intents_with_the_parser():
    llm = EmbeddedModel()
    assert isinstance(llm, LanguageModel)
    text = "Block telnet from guests to servers. Priority high."
    reading = read_intent(llm, text, NAMES)
    expected = parse_intent(text, NAMES)
    assert reading.intent.expectations == expected.expectations
    assert reading.intent.priority == 8 and reading.intent.text == text
    assert (reading.backend, reading.confidence, reading.attempts) == ("embedded", 1.0, 1)


def test_embedded_says_honestly_what_it_cannot_read():
    with pytest.raises(LLMOutputError) as err:
        read_intent(EmbeddedModel(), "make the network feel snappier", NAMES)
    assert "no model is configured" in str(err.value)
    assert "could not place" in str(err.value)  # the parser's own message comes along
    with pytest.raises(ConfigError, match="empty"):
        read_intent(EmbeddedModel(), "  ", NAMES)


def test_embedded_chat_plan_and_explanation_are_fixed_and_honest():
    llm = EmbeddedModel()
    assert llm.chat(ChatRequest(messages=HELLO)).text == NO_MODEL_MESSAGE
    assert "".join(llm.stream(ChatRequest(messages=HELLO))) == NO_MODEL_MESSAGE
    index, reason = choose_plan(llm, ["reroute via dist2", "raise the cap"], "lower latency")
    assert index == 0 and "no language model" in reason
    text = explain(llm, "refused: rule no-controller-block (core1 eth0 drops 0.0.0.0/0)")
    assert text.startswith(NO_MODEL_MESSAGE) and "no-controller-block" in text
    with pytest.raises(LLMOutputError, match="not one the embedded backend can answer"):
        llm.chat(ChatRequest(messages=HELLO, json_schema={"type": "object"}))
    with pytest.raises(LLMOutputError, match="name table"):
        llm.chat(ChatRequest(messages=HELLO, hint=TaskHint("read_intent", text="x")))
    assert llm.health().ok
    with pytest.raises(ConfigError, match="at least one option"):
        choose_plan(llm, [], "goal")


def test_registry_picks_backends_by_name_and_validates_options():
    assert set(BACKENDS) == {"embedded", "openai_compat", "transformers_local"}
    assert llm_from_config(environ={}).backend == "embedded"
    assert llm_from_config(environ={"NETGPT_LLM_BACKEND": "embedded"}).backend == "embedded"
    with pytest.raises(ConfigError, match="unknown LLM backend 'gpt5'"):
        llm_from_config("gpt5", environ={})
    with pytest.raises(ConfigError, match="takes no options"):
        llm_from_config("embedded", environ={}, model="x")
    with pytest.raises(ConfigError, match="base_url"):
        llm_from_config("openai_compat", environ={}, base_url="ftp://x")
    with pytest.raises(ConfigError, match="temperature_typo"):
        llm_from_config("openai_compat", environ={}, temperature_typo=1)
    with pytest.raises(ConfigError, match="timeout_s"):
        llm_from_config("openai_compat", environ={"NETGPT_LLM_TIMEOUT_S": "-1"})


def test_registry_environment_overrides_yield_to_explicit_options():
    env = {"NETGPT_LLM_BASE_URL": "http://127.0.0.1:9/v1", "NETGPT_LLM_MODEL": "campus",
           "NETGPT_LLM_TIMEOUT_S": "7"}
    llm = llm_from_config("openai_compat", environ=env)
    assert isinstance(llm, OpenAICompatModel)
    assert (llm.settings.base_url, llm.model, llm.settings.timeout_s) == (
        "http://127.0.0.1:9/v1", "campus", 7.0)
    llm.close()
    llm = llm_from_config("openai_compat", environ=env, model="netgpt-intent")
    assert llm.model == "netgpt-intent"
    llm.close()
