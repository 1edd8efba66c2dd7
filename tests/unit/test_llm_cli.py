"""``netgpt llm``: help, status/stop without a server, ask, and a tiny training run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from netgpt.cli import app
from netgpt.cloud_models.training import ModelCard, load_card, shipped_adapters

pytestmark = pytest.mark.unit

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["train"], ["serve"], ["stop"], ["status"], ["ask"]])
def test_help_everywhere(args):
    got = runner.invoke(app, ["llm", *args, "--help"])
    assert got.exit_code == 0, got.output
    assert "Usage" in got.output


def test_status_and_stop_without_a_server(tmp_path):
    got = runner.invoke(app, ["llm", "status", "--state-dir", str(tmp_path)])
    assert got.exit_code == 1
    assert "no vLLM server is running" in got.output
    got = runner.invoke(app, ["llm", "stop", "--state-dir", str(tmp_path)])
    assert got.exit_code == 0 and "no vLLM server is running" in got.output


def test_stale_pid_file_is_not_signalled(tmp_path):
    # a PID that is alive but is not a vLLM server (this test process) must not be touched
    import os

    (tmp_path / "vllm.pid").write_text(f"{os.getpid()}\n")
    got = runner.invoke(app, ["llm", "stop", "--state-dir", str(tmp_path)])
    assert got.exit_code == 0, got.output
    assert not (tmp_path / "vllm.pid").exists()


def test_ask_with_the_embedded_backend_prints_the_intent():
    got = runner.invoke(app, ["llm", "ask", "block telnet from guests to servers",
                              "--topo", "campus"])
    assert got.exit_code == 0, got.output
    assert '"service": "telnet"' in got.output
    assert "read by embedded" in got.output and "A proposal" in got.output


def test_ask_reports_errors_as_one_line():
    got = runner.invoke(app, ["llm", "ask", "the quick brown fox", "--topo", "campus"])
    assert got.exit_code == 2
    assert "error:" in got.output and "Traceback" not in got.output
    got = runner.invoke(app, ["llm", "ask", "x", "--backend", "openai_compat", "--state-dir",
                              "/nonexistent/netgpt-llm-state"])
    assert got.exit_code == 2 and "netgpt llm serve" in got.output


def test_train_tiny_writes_a_loadable_model_and_adapter(tmp_path):
    out = tmp_path / "weights"
    got = runner.invoke(app, ["llm", "train", "--out", str(out), "--tiny", "--threads", "1"])
    assert got.exit_code == 0, got.output
    model_dir = out / "intent-llama"
    card = load_card(model_dir)
    assert isinstance(card, ModelCard)
    assert card.parameters > 0 and card.corpus_pairs > 0 and card.held_out_excluded >= 0
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json"):
        assert (model_dir / name).is_file(), name
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    adapters = shipped_adapters(out)
    assert list(adapters) == ["campus", "plans"]
    adapter_config = json.loads((adapters["campus"] / "adapter_config.json").read_text())
    assert sorted(adapter_config["target_modules"]) == ["q_proj", "v_proj"]
    # the plan-choice task adapter: every linear layer, its task and accuracy on the card
    plans_config = json.loads((adapters["plans"] / "adapter_config.json").read_text())
    assert "down_proj" in plans_config["target_modules"]
    assert card.tasks == ["read_intent", "choose_plan"]
    (plans_card,) = [a for a in card.adapters if a.name == "plans"]
    assert plans_card.task == "choose_plan" and plans_card.pairs > 0
    # --plans-only retrains just that adapter on the model in --out
    again = runner.invoke(app, ["llm", "train", "--out", str(out), "--tiny", "--plans-only"])
    assert again.exit_code == 0, again.output
    assert "plan choice accuracy" in again.output
    reloaded = load_card(model_dir)
    assert reloaded is not None and [a.name for a in reloaded.adapters] == ["campus", "plans"]
    # the tiny model loads in the local backend, adapter included, and answers in-schema
    from netgpt.cloud_models import llm_from_config, read_intent
    from netgpt.errors import LLMOutputError
    from netgpt.intents.names import NameTable
    from netgpt.sim_networks.topology import build_topology

    llm = llm_from_config("transformers_local", environ={}, model_dir=model_dir, threads=1)
    assert llm.health().ok
    names = NameTable.from_topology(build_topology("campus"))
    try:
        reading = read_intent(llm, "guests must reach servers", names, adapter="campus")
        assert reading.backend == "transformers_local"
    except LLMOutputError:  # a tiny, barely trained model may miss; it must fail cleanly
        pass
