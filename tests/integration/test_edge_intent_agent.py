"""The edge intent model in the agent graph, on the embedded campus network (real NETCONF).

Text the parser cannot place goes to the edge model; a confident reading runs through the same
conflict, twin, policy and apply steps as a parsed one and the audit says who read it. A text it
is unsure of is refused with a clarifying question, and nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from netgpt.agents.platform import IntentPlatform
from netgpt.edge_models.intent_model import SHIPPED_INTENT_WEIGHTS, EdgeIntentModel
from netgpt.errors import IntentParseError
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.twin import DigitalTwin
from tests.integration.networks import start_network, telnet_from

pytestmark = pytest.mark.integration

PARAPHRASE = "Kindly block telnet from the guests to the servers."


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNetwork]:
    net = start_network("campus", tmp_path_factory.mktemp("campus-edge"), start=47000)
    yield net
    net.stop()


def _platform(campus: EmbeddedNetwork, where: Path,
              edge_min_confidence: float | None = None) -> IntentPlatform:
    assert campus.inventory is not None
    return IntentPlatform(campus.inventory, where, topology=campus.topology,
                          edge_min_confidence=edge_min_confidence)


def test_a_paraphrase_is_read_by_the_edge_model_and_deployed(campus: EmbeddedNetwork,
                                                             tmp_path: Path) -> None:
    # the shipped model reads it right, below the default 0.95 (0.68 with the session-11
    # weights): an operator who accepts its readings from there up sees it deployed
    reading = EdgeIntentModel.load(SHIPPED_INTENT_WEIGHTS).read(
        PARAPHRASE, NameTable.from_topology(campus.topology))
    assert reading.draft["expectations"][0]["action"] == "block", reading.tokens
    assert reading.confidence >= 0.5  # no operator would act on a coin toss
    threshold = min(0.7, math.floor(reading.confidence * 100) / 100)
    p = _platform(campus, tmp_path / "agent", edge_min_confidence=threshold)
    try:
        with pytest.raises(IntentParseError):
            parse_intent(PARAPHRASE, p.names)
        run = p.submit(PARAPHRASE)
        assert run.outcome == "deployed", run.state.get("reason")
        source = run.state["intent_source"]
        assert source["stage"] == "model" and source["reader"] == "edge"
        assert source["confidence"] >= threshold
        intent = p.store.get(run.run_id)
        (exp,) = intent.expectations
        assert exp.kind == "access" and exp.action == "block"
        assert exp.traffic.service == "telnet"
        # the devices now run it: on a twin of what they run, telnet guests->servers is dropped
        assert not telnet_from(DigitalTwin(campus.topology, p.read_configs()), campus,
                                "guests")
        (record,) = [r for r in p.audit.records(run.run_id) if r.step == "parse"]
        assert record.detail["source"]["reader"] == "edge"
        p.withdraw(run.run_id, by="operator")
        assert telnet_from(DigitalTwin(campus.topology, p.read_configs()), campus, "guests")
    finally:
        p.close()


def test_an_unsure_reading_is_a_question_and_changes_nothing(campus: EmbeddedNetwork,
                                                             tmp_path: Path) -> None:
    p = _platform(campus, tmp_path / "agent")
    try:
        before = p.read_configs()
        # at the default threshold the same paraphrase is a question quoting the guess
        run = p.submit(PARAPHRASE)
        assert run.outcome == "refused"
        assert "Did you mean: block telnet from group guests to group servers" in \
            run.state["reason"], run.state["reason"]
        run = p.submit("the quick brown fox jumps over the lazy dog")
        assert run.outcome == "refused"
        assert "fox" in run.state["reason"]
        assert "Say what must hold" in run.state["reason"] or "Did you mean" in \
            run.state["reason"]
        assert p.read_configs() == before
    finally:
        p.close()
