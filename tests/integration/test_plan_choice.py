"""Choosing between alternative plans, on the embedded Abilene network.

The waypoint "SNVAng -> NYCMng through HSTNng" has two plans: a static route on SNVAng (via
LOSAng) or routes on KSCYng and ATLAng (via DNVRng). Both pass the twin and the policies, so a
model chooses; its reason is kept in the run and the audit, and the devices run the chosen plan.
The model is a real OpenAI-compatible HTTP server on loopback answering from a script (the
served model's own answers are in ``test_llm_vllm.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netgpt import cli
from netgpt.agents.platform import IntentPlatform
from netgpt.cloud_models.openai_compat import OpenAICompatModel, OpenAICompatSettings
from netgpt.device_config import DeviceConfig
from netgpt.sim_networks.runtime import EmbeddedNetwork
from tests.integration.networks import start_network
from tests.unit.test_llm_failures import ScriptedServer, completion

pytestmark = pytest.mark.integration

WAYPOINT = "traffic from SNVAng to NYCMng must go through HSTNng"


@pytest.fixture
def abilene(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    net = start_network("abilene", tmp_path / "net", start=56000)
    yield net
    net.stop()


def _platform(net: EmbeddedNetwork, where: Path, llm: Any) -> IntentPlatform:
    assert net.inventory is not None
    return IntentPlatform(net.inventory, where, topology=net.topology, llm=llm)


def _running_plan(p: IntentPlatform, plan: dict[str, Any]) -> bool:
    live = p.read_configs()
    return all(live[d] == DeviceConfig.model_validate(c["candidate"])
               for d, c in plan["changes"].items())


def _choose_record(p: IntentPlatform, run_id: str) -> Any:
    (record,) = [r for r in p.audit.records(run_id) if r.step == "choose"]
    return record


def test_the_model_chooses_a_plan_and_its_reason_is_kept(abilene: EmbeddedNetwork,
                                                          tmp_path: Path):
    reason = "Option 1 keeps SNVAng's own routing untouched."
    with ScriptedServer([(200, completion(json.dumps({"index": 1, "reason": reason})))]) as srv:
        llm = OpenAICompatModel(OpenAICompatSettings(base_url=srv.base_url, timeout_s=5))
        p = _platform(abilene, tmp_path / "agent", llm)
        try:
            run = p.submit(WAYPOINT, approved=True)
            assert run.outcome == "deployed", run.state.get("reason")
            plans, choice = run.state["plans"], run.state["plan_choice"]
            assert len(plans) >= 2 and all(o["passes"] for o in choice["options"][:2])
            assert choice == {**choice, "chosen": 1, "reason": reason, "by": "openai_compat",
                              "adapter": None}  # the scripted server serves no plans adapter
            assert run.state["plan"] == plans[1]
            assert _running_plan(p, plans[1]) and not _running_plan(p, plans[0])
            # the model saw every passing option, with what each changes
            sent = srv.requests[0]["messages"][-1]["content"]
            assert "0: 1 devices changed (SNVAng)" in sent and "1: 2 devices changed" in sent
            record = _choose_record(p, run.run_id)
            assert record.detail["reason"] == reason and record.detail["by"] == "openai_compat"
            steps = [r.step for r in p.audit.records(run.run_id)]
            # the chosen plan is still judged by the twin and the policies
            assert steps.index("choose") < steps.index("verify_twin") < steps.index("policy")
            assert p.audit.verify()[0]
        finally:
            p.close()
            llm.close()


def test_a_model_that_answers_out_of_range_leaves_the_planner_s_choice(
    abilene: EmbeddedNetwork, tmp_path: Path
):
    bad = json.dumps({"index": 7, "reason": "the seventh option is best"})
    with ScriptedServer([(200, completion(bad))]) as srv:
        llm = OpenAICompatModel(OpenAICompatSettings(base_url=srv.base_url, timeout_s=5))
        p = _platform(abilene, tmp_path / "agent", llm)
        try:
            run = p.submit(WAYPOINT, approved=True)
            assert run.outcome == "deployed", run.state.get("reason")
            choice = run.state["plan_choice"]
            assert choice["chosen"] == 0 and choice["by"] == "planner"
            assert choice["reason"].startswith("Option 0 changes the fewest devices (1)")
            assert "the model failed" in choice["reason"] and "7" in choice["reason"]
            assert len(srv.requests) == 2  # one retry with the schema restated, then no more
            assert _running_plan(p, run.state["plans"][0])
        finally:
            p.close()
            llm.close()


def test_without_a_model_the_planner_s_first_plan_is_kept_and_recorded(
    abilene: EmbeddedNetwork, tmp_path: Path
):
    p = _platform(abilene, tmp_path / "agent", "embedded")
    try:
        run = p.submit(WAYPOINT, approved=True)
        assert run.outcome == "deployed", run.state.get("reason")
        choice = run.state["plan_choice"]
        assert choice["chosen"] == 0 and choice["by"] == "planner"
        assert choice["reason"] == ("Option 0 changes the fewest devices (1). (no language model "
                                    "is configured)")
        assert _running_plan(p, run.state["plans"][0])
        assert _choose_record(p, run.run_id).detail["chosen"] == 0
        # the CLI shows every option and who chose, and why
        with cli.console.capture() as shown:
            cli._show_run(run)
        text = " ".join(shown.get().split())
        assert "option 0 (chosen): 1 devices changed (SNVAng), 5 links steered" in text
        assert "option 1 (passes): 2 devices changed" in text
        assert "chosen by planner: Option 0 changes the fewest devices (1)." in text
    finally:
        p.close()


def test_a_plan_the_policies_refuse_is_no_option_and_the_other_is_deployed(
    abilene: EmbeddedNetwork, tmp_path: Path
):
    from netgpt.policies.base import ProtectedDevice
    from netgpt.policies.guardrails import default_policies

    # SNVAng is frozen: the planner's preferred plan (a route on SNVAng) may not touch it
    policies = default_policies().model_copy(update={"protected_devices": (
        ProtectedDevice(id="freeze-snva", devices=("SNVAng",)),)})
    assert abilene.inventory is not None
    p = IntentPlatform(abilene.inventory, tmp_path / "agent", topology=abilene.topology,
                       policies=policies)
    try:
        before = p.read_configs()
        run = p.submit(WAYPOINT, approved=True)
        assert run.outcome == "deployed", run.state.get("reason")
        choice = run.state["plan_choice"]
        first, second = choice["options"][:2]
        assert not first["passes"] and "freeze-snva" in first["failed_on"]
        assert second["passes"] and choice["chosen"] == 1 and choice["by"] == "planner"
        assert choice["reason"] == "the only plan that passes the twin and the policies"
        assert _running_plan(p, run.state["plans"][1])
        assert p.read_configs()["SNVAng"] == before["SNVAng"]  # the frozen device is untouched
    finally:
        p.close()
