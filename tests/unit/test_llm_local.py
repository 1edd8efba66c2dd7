"""The transformers_local backend with the shipped model: constrained decoding, adapters, limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from netgpt.cloud_models import ChatMessage, ChatRequest, LanguageModel, llm_from_config
from netgpt.cloud_models import read_intent as read
from netgpt.cloud_models.intent_draft import intent_draft_schema
from netgpt.cloud_models.prompts import intent_messages
from netgpt.cloud_models.training import load_card, shipped_adapters, shipped_model_dir
from netgpt.errors import ConfigError, LLMOutputError, LLMTimeoutError, LLMUnavailableError
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.sim_networks.topology import build_topology

pytestmark = pytest.mark.unit

CAMPUS = NameTable.from_topology(build_topology("campus"))
ABILENE = NameTable.from_topology(build_topology("abilene"))


@pytest.fixture(scope="module")
def llm() -> Iterator[LanguageModel]:
    model = llm_from_config("transformers_local", environ={}, threads=1)
    yield model
    model.close()


def test_the_shipped_model_is_small_and_documented():
    card = load_card(shipped_model_dir())
    assert card is not None
    assert card.parameters < 5_000_000 and card.size_bytes < 10_000_000
    assert sorted(card.tasks) == ["choose_plan", "read_intent"]
    assert sorted(shipped_adapters()) == ["abilene", "campus", "plans"]
    (plans,) = [a for a in card.adapters if a.name == "plans"]
    assert plans.task == "choose_plan" and plans.size_bytes < 2_000_000
    assert plans.choice_accuracy_adapter is not None and plans.choice_accuracy_adapter > 0.8
    config = json.loads((shipped_model_dir() / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]


@pytest.mark.parametrize(
    ("text", "names", "meaning"),
    [
        ("Balance NYCMng to LOSAng over 2 paths", ABILENE, None),
        ("Please block ssh coming from students towards the servers.", CAMPUS, None),
        ("Kindly throttle the students to 200 Mbps.", CAMPUS,
         "cap traffic from students at 200 Mbps"),
        ("We want every link kept below 80% utilization.", ABILENE,
         "keep every link under 80% utilization"),
    ],
)
def test_reads_intents_as_the_parser_means_them(llm, text, names, meaning):
    reading = read(llm, text, names)
    assert reading.intent.expectations == parse_intent(meaning or text, names).expectations
    assert reading.backend == "transformers_local" and reading.attempts == 1
    assert reading.confidence is not None and reading.confidence > 0.8


def test_constrained_decoding_keeps_any_answer_inside_the_schema(llm):
    """Even for text that is no intent at all, the answer parses and names only real places."""
    request = ChatRequest(messages=intent_messages("the quick brown fox jumps over"),
                          max_tokens=200, json_schema=intent_draft_schema(CAMPUS))
    data = json.loads(llm.chat(request).text)
    assert set(data) == {"expectations", "priority"}
    try:
        intent = read(llm, "the quick brown fox jumps over", CAMPUS).intent
    except LLMOutputError:  # a model-level validator may still refuse it: a clean failure
        return
    assert intent.expectations  # a proposal; the policies and the twin judge it


def test_stream_equals_chat_and_reports_ttft(llm):
    request = ChatRequest(messages=intent_messages("finance must reach servers"), max_tokens=64)
    pieces = list(llm.stream(request))
    response = llm.chat(request)
    assert "".join(pieces) == response.text
    assert response.ttft_s is not None and 0 < response.ttft_s <= response.latency_s
    assert response.finish_reason == "stop" and response.completion_tokens > 5


def test_adapters_are_selected_by_name(llm):
    jargon = "Cap the dorms at 100 Mbps."  # campus jargon: the dorms are the students group
    with_adapter = read(llm, jargon, CAMPUS, adapter="campus")
    assert with_adapter.adapter == "campus"
    assert with_adapter.intent.expectations == parse_intent(
        "cap traffic from students at 100 Mbps", CAMPUS).expectations
    assert read(llm, jargon, CAMPUS).draft != with_adapter.draft
    with pytest.raises(ConfigError, match="adapter 'mars' is not loaded"):
        read(llm, jargon, CAMPUS, adapter="mars")


def test_timeouts_and_limits_fail_cleanly(llm):
    request = ChatRequest(messages=(ChatMessage("user", "hello"),), max_tokens=50,
                          timeout_s=1e-6)
    with pytest.raises(LLMTimeoutError, match="ran past"):
        llm.chat(request)
    long = ChatRequest(messages=(ChatMessage("user", "reach " * 3000),), max_tokens=10)
    with pytest.raises(LLMOutputError, match="positions"):
        llm.chat(long)


def test_missing_model_is_unavailable(tmp_path: Path):
    with pytest.raises(LLMUnavailableError, match="netgpt llm train"):
        llm_from_config("transformers_local", environ={}, model_dir=tmp_path)
