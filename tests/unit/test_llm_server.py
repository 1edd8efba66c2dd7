"""The vLLM server's guards that need no vLLM: refusals before anything starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from netgpt.cloud_models.training import shipped_model_dir
from netgpt.cloud_models.vllm_server import (
    VllmEnvironment,
    default_vllm_env,
    ensure_vllm_env,
    free_port,
    start_vllm_server,
    stop_vllm_server,
    vllm_server_status,
)
from netgpt.errors import LLMServerError

pytestmark = pytest.mark.unit


def ready_env(tmp_path: Path) -> VllmEnvironment:
    """An environment that claims to be complete (its python is this one)."""
    env = VllmEnvironment(tmp_path / "venv")
    (env.path / "bin").mkdir(parents=True)
    (env.path / "bin" / "python").symlink_to(os.path.realpath("/proc/self/exe"))
    env.marker.write_text(json.dumps({"vllm": "0.32.0", "torch": "2.13.0+cpu"}) + "\n")
    return env


def test_environment_location_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("NETGPT_VLLM_ENV", raising=False)
    assert default_vllm_env().path.name == ".venv-vllm"
    monkeypatch.setenv("NETGPT_VLLM_ENV", str(tmp_path / "elsewhere"))
    assert default_vllm_env().path == tmp_path / "elsewhere"
    assert not default_vllm_env().ready


def test_a_complete_environment_is_reused_as_is(tmp_path):
    env = ready_env(tmp_path)
    assert ensure_vllm_env(env) is env
    assert env.versions() == {"vllm": "0.32.0", "torch": "2.13.0+cpu"}


def test_start_refuses_without_environment_model_or_loopback(tmp_path):
    missing = VllmEnvironment(tmp_path / "none")
    with pytest.raises(LLMServerError, match="netgpt llm serve"):
        start_vllm_server(shipped_model_dir(), env=missing, state_dir=tmp_path / "s")
    env = ready_env(tmp_path)
    with pytest.raises(LLMServerError, match=r"config\.json missing"):
        start_vllm_server(tmp_path, env=env, state_dir=tmp_path / "s")
    with pytest.raises(LLMServerError, match=r"adapter_config\.json"):
        start_vllm_server(shipped_model_dir(), env=env, state_dir=tmp_path / "s",
                          adapters={"x": tmp_path})
    with pytest.raises(LLMServerError, match="loopback"):
        start_vllm_server(shipped_model_dir(), env=env, state_dir=tmp_path / "s",
                          host="0.0.0.0")
    assert not (tmp_path / "s" / "vllm.pid").exists()


def test_status_and_stop_of_nothing(tmp_path):
    assert vllm_server_status(tmp_path)["running"] is False
    assert stop_vllm_server(tmp_path) is None
    assert 1024 <= free_port() <= 65535
