"""``netgpt service``: ask the generative service deployed on the network, and see how it does.

A typer sub-app, mounted by :mod:`netgpt.cli`. The service runs inside the network process
(``netgpt net up --service-port PORT``); these commands find it through the network's
``service.json`` and talk to it over its OpenAI-compatible HTTP endpoint.
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
from netgpt.inventory import default_state_dir

__all__ = ["service_app"]

service_app = typer.Typer(
    help="The generative service (edge prompt completion + cloud answer) on the network.",
    no_args_is_help=True,
)
console = Console()

StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="The network's state directory "
                 "[default: $NETGPT_STATE_DIR or ./.netgpt]."),
]


def _deployment(state_dir: Path | None) -> Any:
    from netgpt.generative.deploy import read_deployment

    sd = (state_dir or default_state_dir()).resolve()
    deployment = read_deployment(sd)
    if deployment is None:
        raise ConfigError(f"no generative service runs on the network of {sd}; start one with "
                          "'netgpt net up --service-port 8800'")
    return deployment


@service_app.command("ask")
@friendly
def ask(
    text: Annotated[str, typer.Argument(help="What the user asks, in their own words.")],
    site: Annotated[str, typer.Option("--site", help="The user's site.")],
    mode: Annotated[str, typer.Option(help="edge+cloud or cloud-only.")] = "edge+cloud",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON.")
                       ] = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Send one request as a user at SITE; print the answer and where its time went."""
    import httpx

    deployment = _deployment(state_dir)
    body = {"model": f"netgpt@{site}", "messages": [{"role": "user", "content": text}],
            "netgpt_mode": mode}
    try:
        reply = httpx.post(f"{deployment.url}/v1/chat/completions", json=body, timeout=60)
    except httpx.HTTPError as exc:
        raise ConfigError(f"the service at {deployment.url} did not answer ({exc}); is the "
                          "network still up? see 'netgpt net status'") from None
    data = reply.json()
    if reply.status_code != 200:
        raise ConfigError(f"the service refused: {data.get('error', {}).get('message', data)}")
    if as_json:
        console.print_json(json.dumps(data))
        return
    m = data["netgpt"]
    console.print(data["choices"][0]["message"]["content"])
    console.print(
        f"[dim]{m['mode']} at {m['site']}: edge {m['edge_ms']:.1f} ms, network "
        f"{m['network_ms']:.1f} ms, cloud {m['cloud_ms']:.1f} ms, total {m['total_ms']:.1f} ms; "
        f"WAN {m['wan_bytes_up']} B up, {m['wan_bytes_down']} B down; path "
        f"{'-'.join(m['path'])}[/dim]")


@service_app.command("status")
@friendly
def status(
    window_s: Annotated[float, typer.Option("--window", help="Seconds of requests to sum up.")
                        ] = 300.0,
    state_dir: StateDirOpt = None,
) -> None:
    """Where the service runs and its latency and availability per site over the window."""
    from netgpt.errors import TelemetryError
    from netgpt.telemetry.store import SqliteTelemetryStore
    from netgpt.telemetry.views import service_level

    deployment = _deployment(state_dir)
    p = deployment.placement
    console.print(f"{p.workload} at {deployment.url}: cloud at {p.cloud_device}")
    store = SqliteTelemetryStore(deployment.store)
    try:
        frame = store.service_frame(workload=p.workload, since=time.time() - window_s)
    finally:
        store.close()
    table = Table(title=f"last {window_s:.0f} s")
    for col in ("site", "edge at", "requests", "p50 ms", "p95 ms", "availability"):
        table.add_column(col)
    for site, device in sorted(p.edges.items()):
        rows = frame[frame["site"] == site]
        try:
            p50 = f"{service_level(rows, 'latency_p50_ms', window_s=window_s).value:.1f}"
            p95 = f"{service_level(rows, 'latency_p95_ms', window_s=window_s).value:.1f}"
            avail = f"{service_level(rows, 'availability', window_s=window_s).value:.1%}"
        except TelemetryError:
            p50 = p95 = avail = "-"
        table.add_row(site, device, str(len(rows)), p50, p95, avail)
    console.print(table)


@service_app.command("train-edge")
@friendly
def train_edge(
    out: Annotated[Path, typer.Option("--out", help="Where to write the edge prompt model.")
                   ] = Path("build/prompt_model"),
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train the edge prompt model and a LoRA adapter per site (about 2 minutes here).

    The shipped model (netgpt/edge_models/prompt_weights) is this command with its defaults.
    """
    from netgpt.edge_models.prompt_training import PromptModelSettings, train_prompt_model

    card = train_prompt_model(out, PromptModelSettings(seed=seed), log=print)
    console.print(f"wrote {out}: {len(card.get('adapters', {}))} site adapters")
