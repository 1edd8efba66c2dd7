"""The ``netgpt`` command: a thin layer over the library.

Every error the project raises is shown as one clear line (exit code 2), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from netgpt.cli_errors import friendly
from netgpt.errors import ConfigError, NetGPTError
from netgpt.inventory import Inventory, default_state_dir

app = typer.Typer(
    help="NetGPT: intent-based network management over NETCONF and SNMP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
net_app = typer.Typer(help="The embedded emulated network (no root needed).", no_args_is_help=True)
telemetry_app = typer.Typer(help="Interface telemetry over SNMP.", no_args_is_help=True)
lab_app = typer.Typer(
    help="The Mininet lab: FRR routers, snmpd and a NETCONF agent per router (needs root).",
    no_args_is_help=True,
)
app.add_typer(net_app, name="net")
app.add_typer(lab_app, name="lab")
app.add_typer(telemetry_app, name="telemetry")

console = Console()


StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where the network keeps inventory and keys "
        "[default: $NETGPT_STATE_DIR or ./.netgpt].",
    ),
]
InventoryOpt = Annotated[
    Path | None,
    typer.Option("--inventory", "-i", help="Inventory YAML [default: STATE_DIR/inventory.yaml]."),
]


def _state_dir(value: Path | None) -> Path:
    return (value or default_state_dir()).resolve()


def _inventory(inventory: Path | None, state_dir: Path | None) -> Inventory:
    path = inventory or (_state_dir(state_dir) / "inventory.yaml")
    return Inventory.load(path)


# ------------------------------------------------------------------------------------------
# net


def _check_service_options(service_port: int, service_llm: str) -> None:
    if not 0 <= service_port <= 65535:
        raise typer.BadParameter(f"--service-port {service_port} must be 1-65535, or 0 for none")
    if service_llm:
        from netgpt.cloud_models.registry import BACKENDS

        if not service_port:
            raise typer.BadParameter("--service-llm needs --service-port (the service to run)")
        if service_llm not in BACKENDS:
            raise typer.BadParameter(f"--service-llm {service_llm!r} is not a backend; choose "
                                     f"one of {', '.join(BACKENDS)}")


def _print_deployment(state_dir: Path) -> None:
    from netgpt.generative.deploy import read_deployment

    deployment = read_deployment(state_dir)
    if deployment is not None:
        console.print(f"generative service: {deployment.url}/v1/chat/completions (cloud at "
                      f"{deployment.placement.cloud_device}; sites: "
                      f"{', '.join(sorted(deployment.placement.edges))})")


@net_app.command("up")
@friendly
def net_up(
    topo: Annotated[
        str,
        typer.Option(
            "--topo", "-t", help="abilene, campus, linear,N, tree,D,F, or a .json/.graphml file."
        ),
    ] = "abilene",
    state_dir: StateDir = None,
    netconf_port_base: Annotated[
        int, typer.Option(help="NETCONF port of the first device; the others follow.")
    ] = 8300,
    snmp_port_base: Annotated[
        int, typer.Option(help="SNMP (UDP) port of the first device.")
    ] = 16100,
    traffic: Annotated[str, typer.Option(help="diurnal or abilene-replay.")] = "diurnal",
    time_scale: Annotated[
        float, typer.Option(help="Simulated seconds per wall-clock second.")
    ] = 1.0,
    peak_utilization: Annotated[
        float, typer.Option(help="Busiest link's load at the diurnal peak (diurnal traffic).")
    ] = 0.5,
    service_port: Annotated[
        int, typer.Option(help="Also run the generative service (edge instances at the sites, "
                          "the cloud in the server farm or the most central device), its "
                          "OpenAI-compatible endpoint on this port; 0: no service.")
    ] = 0,
    service_llm: Annotated[
        str, typer.Option(help="The service's cloud model: a backend name (openai_compat, "
                          "transformers_local; settings from NETGPT_LLM_*), or empty for "
                          "answers grounded on the prompt's context.")
    ] = "",
) -> None:
    """Start the emulated network in the background: NETCONF + SNMP per device on 127.0.0.1."""
    from netgpt.sim_networks.runtime import start_background
    from netgpt.sim_networks.topology import build_topology

    build_topology(topo)  # fail fast, in this process, with the topology's own message
    if not 1 <= netconf_port_base <= 65535 - 1 or not 1 <= snmp_port_base <= 65535 - 1:
        raise typer.BadParameter("port bases must be between 1 and 65534")
    _check_service_options(service_port, service_llm)
    sd = _state_dir(state_dir)
    inv = start_background(
        topo,
        sd,
        netconf_port_base=netconf_port_base,
        snmp_port_base=snmp_port_base,
        traffic=traffic,
        time_scale=time_scale,
        peak_utilization=peak_utilization,
        service_port=service_port,
        service_llm=service_llm,
    )
    table = Table(title=f"network {inv.network}: {len(inv.devices)} devices up")
    for col in ("device", "role", "site", "NETCONF", "SNMP"):
        table.add_column(col)
    for d in inv.devices:
        table.add_row(
            d.name, d.role, d.site, f"{d.host}:{d.netconf_port}", f"{d.host}:{d.snmp_port}/udp"
        )
    console.print(table)
    console.print(f"inventory: {sd / 'inventory.yaml'}   stop with: netgpt net down")
    if service_port:
        _print_deployment(sd)


@net_app.command("down")
@friendly
def net_down(state_dir: StateDir = None) -> None:
    """Stop the network started from STATE_DIR (only its own process, by PID)."""
    from netgpt.sim_networks.runtime import stop_background

    sd = _state_dir(state_dir)
    pid = stop_background(sd)
    if pid is None:
        console.print(f"no network is running from {sd}")
    else:
        console.print(f"network stopped (pid {pid}); its ports are free")


@net_app.command("status")
@friendly
def net_status(state_dir: StateDir = None) -> None:
    """Show whether the network runs and whether each device answers NETCONF and SNMP."""
    from netgpt.sim_networks.runtime import network_status
    from netgpt.tools.snmp import inventory_client

    sd = _state_dir(state_dir)
    status = network_status(sd)
    if not status["running"]:
        console.print(f"no network is running from {sd}")
        raise typer.Exit(1)
    inv = Inventory.load(sd / "inventory.yaml")

    async def probe() -> list[tuple[str, bool, str]]:
        async def one(d: Any) -> tuple[str, bool, str]:
            client = inventory_client(inv, d.name, timeout_s=1.0)
            try:
                info = await client.system()
                return d.name, True, f"up {info.uptime_s:.0f} s"
            except NetGPTError as exc:
                return d.name, False, str(exc)
            finally:
                await client.aclose()

        return list(await asyncio.gather(*(one(d) for d in inv.devices)))

    snmp = {name: (ok, text) for name, ok, text in asyncio.run(probe())}
    table = Table(title=f"network {inv.network} (pid {status['pid']})")
    for col in ("device", "NETCONF port", "SNMP"):
        table.add_column(col)
    for d in inv.devices:
        with socket.socket() as s:
            s.settimeout(0.5)
            nc_ok = s.connect_ex((d.host, d.netconf_port)) == 0
        ok, text = snmp[d.name]
        table.add_row(
            d.name,
            f"{d.netconf_port} {'listening' if nc_ok else 'CLOSED'}",
            f"{'ok' if ok else 'FAIL'} {text}",
        )
    console.print(table)


# ------------------------------------------------------------------------------------------
# lab


@lab_app.command("up")
@friendly
def lab_up(
    topo: Annotated[
        str, typer.Option("--topo", "-t", help="abilene, campus, linear,N or a .json file.")
    ] = "abilene",
    state_dir: StateDir = None,
    traffic: Annotated[
        str, typer.Option(help="none, or diurnal / abilene-replay for iperf3 flows shaped "
                          "like that model's matrix.")
    ] = "none",
    mgmt_prefix: Annotated[
        str, typer.Option(help="Management network joining the routers to this machine.")
    ] = "192.168.254.0/24",
    capacity_scale: Annotated[
        float, typer.Option(help="Lab link capacity = topology capacity x this (HTB-shaped).")
    ] = 0.01,
    service_port: Annotated[
        int, typer.Option(help="Also run the generative service: its cloud instance listens in "
                          "the host behind the cloud device, edge requests leave from the "
                          "sites' hosts; its OpenAI-compatible endpoint on 127.0.0.1 at this "
                          "port; 0: no service.")
    ] = 0,
    service_llm: Annotated[
        str, typer.Option(help="The service's cloud model (as for 'net up').")
    ] = "",
) -> None:
    """Start the topology in Mininet (as root): FRR/OSPF routers, snmpd and NETCONF per router."""
    from netgpt.sim_networks.lab_serve import start_lab

    _check_service_options(service_port, service_llm)
    sd = _state_dir(state_dir)
    inv, timings = start_lab(
        topo, sd, traffic=traffic, mgmt_prefix=mgmt_prefix, capacity_scale=capacity_scale,
        service_port=service_port, service_llm=service_llm,
    )
    table = Table(title=f"lab {inv.network}: {len(inv.devices)} routers up "
                  f"in {timings.get('up_s', 0):.1f} s (OSPF converged in "
                  f"{timings.get('converge_s', 0):.1f} s)")
    for col in ("router", "site", "NETCONF", "SNMP"):
        table.add_column(col)
    for d in inv.devices:
        table.add_row(d.name, d.site, f"{d.host}:{d.netconf_port}", f"{d.host}:{d.snmp_port}/udp")
    console.print(table)
    console.print(f"inventory: {sd / 'inventory.yaml'}   stop with: netgpt lab down")
    if service_port:
        _print_deployment(sd)


@lab_app.command("down")
@friendly
def lab_down(state_dir: StateDir = None) -> None:
    """Take down the lab of STATE_DIR: only what it created (by PID and by recorded name)."""
    from netgpt.sim_networks.lab_serve import stop_lab

    sd = _state_dir(state_dir)
    pid, swept = stop_lab(sd)
    if pid is None and not swept:
        console.print(f"no lab is running from {sd}")
        return
    if pid is not None:
        console.print(f"lab stopped (pid {pid})")
    if swept:
        console.print("removed what a killed lab left behind: " + ", ".join(swept))


@lab_app.command("status")
@friendly
def lab_status_cmd(state_dir: StateDir = None) -> None:
    """Show whether a lab runs from STATE_DIR and how long it took to start."""
    from netgpt.sim_networks.lab_serve import lab_status

    sd = _state_dir(state_dir)
    status = lab_status(sd)
    if not status["running"]:
        console.print(f"no lab is running from {sd}")
        raise typer.Exit(1)
    console.print_json(data=status)


# ------------------------------------------------------------------------------------------
# telemetry


@telemetry_app.command("watch")
@friendly
def telemetry_watch(
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    rounds: Annotated[int, typer.Option(help="Stop after this many polls (0: until Ctrl-C).")] = 0,
    store: Annotated[
        Path | None, typer.Option(help="SQLite store [default: STATE_DIR/telemetry.sqlite].")
    ] = None,
) -> None:
    """Poll every device's counters over SNMP and show live link utilization."""
    from netgpt.render import utilization_table
    from netgpt.telemetry.poller import PollRound, TelemetryPoller
    from netgpt.telemetry.store import SqliteTelemetryStore
    from netgpt.telemetry.views import link_utilizations

    if interval <= 0:
        raise typer.BadParameter(f"--interval must be positive, got {interval}")
    inv = _inventory(inventory, state_dir)
    db = SqliteTelemetryStore(store or (_state_dir(state_dir) / "telemetry.sqlite"))
    latest: dict[tuple[str, str], Any] = {}

    async def main() -> None:
        poller = TelemetryPoller(inv, db, interval_s=interval)
        with Live(
            Table(title="waiting for the second poll..."), console=console, auto_refresh=False
        ) as live:

            def show(r: PollRound) -> None:
                for s in r.rates:
                    latest[(s.device, s.interface)] = s
                failed = f", no answer from {sorted(r.failed)}" if r.failed else ""
                title = (
                    f"{inv.network}: link utilization (poll {r.duration_s * 1000:.0f} ms{failed})"
                )
                live.update(utilization_table(link_utilizations(inv, latest), title), refresh=True)

            try:
                await poller.run(rounds=(rounds + 1) if rounds else None, on_round=show)
            finally:
                await poller.aclose()

    try:
        asyncio.run(main())
    finally:
        db.close()


@telemetry_app.command("poll")
@friendly
def telemetry_poll(
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 10.0,
    rounds: Annotated[int, typer.Option(help="Number of polls.")] = 2,
    store: Annotated[Path | None, typer.Option(help="SQLite store.")] = None,
) -> None:
    """Poll counters ROUNDS times into the store (no display); print a summary."""
    from netgpt.telemetry.poller import TelemetryPoller
    from netgpt.telemetry.store import SqliteTelemetryStore

    if interval <= 0 or rounds <= 0:
        raise typer.BadParameter("--interval and --rounds must be positive")
    inv = _inventory(inventory, state_dir)
    path = store or (_state_dir(state_dir) / "telemetry.sqlite")
    db = SqliteTelemetryStore(path)

    async def main() -> None:
        poller = TelemetryPoller(inv, db, interval_s=interval)
        try:
            await poller.run(
                rounds=rounds,
                on_round=lambda r: console.print(
                    f"poll: {len(r.counters)} counters, {len(r.rates)} rates, "
                    f"{r.duration_s * 1000:.1f} ms"
                    + (f", failed {sorted(r.failed)}" if r.failed else "")
                ),
            )
        finally:
            await poller.aclose()

    try:
        asyncio.run(main())
    finally:
        db.close()
    console.print(f"stored in {path}")


@telemetry_app.command("export")
@friendly
def telemetry_export(
    out: Annotated[Path, typer.Option(help="The .npz file to write (X, t, names).")],
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
    store: Annotated[Path | None, typer.Option(help="SQLite store.")] = None,
    step: Annotated[float | None, typer.Option(help="Seconds per row [median poll].")] = None,
) -> None:
    """Write every recorded link direction's utilization as a dataset for 'forecast eval'."""
    import numpy as np

    from netgpt.edge_models.evaluation import save_series
    from netgpt.edge_models.link_forecast import recorded_links
    from netgpt.telemetry.store import SqliteTelemetryStore

    path = store or (_state_dir(state_dir) / "telemetry.sqlite")
    if not path.is_file():
        raise typer.BadParameter(f"no telemetry store at {path}; run 'netgpt telemetry poll'")
    inv_path = inventory or (_state_dir(state_dir) / "inventory.yaml")
    links = Inventory.load(inv_path).links if inv_path.is_file() else []
    db = SqliteTelemetryStore(path)
    try:
        data = recorded_links(db, links, step_s=step)
    finally:
        db.close()
    written = save_series(data, out)
    observed = int(np.isfinite(data.values).sum())
    console.print(
        f"wrote {written}: {len(data.series)} series x {data.n_time} rows of {data.step_s:g} s "
        f"({observed} observed values); score it with 'netgpt forecast eval --data {written}'")


# ------------------------------------------------------------------------------------------
# forecast (train / eval live in netgpt.forecast_cli; here: a link from the telemetry store)

from netgpt.forecast_cli import forecast_app  # noqa: E402

app.add_typer(forecast_app, name="forecast")

from netgpt.intent_model_cli import intent_model_app  # noqa: E402
from netgpt.llm_cli import llm_app  # noqa: E402
from netgpt.service_cli import service_app  # noqa: E402

app.add_typer(llm_app, name="llm")
app.add_typer(service_app, name="service")
app.add_typer(intent_model_app, name="intent-model")

LinkOpt = Annotated[
    str | None,
    typer.Option("--link", help="DEVICE:INTERFACE or A->B (the direction A sends)."),
]
HorizonOpt = Annotated[int, typer.Option(help="Steps ahead (one step = the polling interval).")]
SiteOpt = Annotated[str | None, typer.Option(help="Use this site's LoRA adapter.")]
Int8Opt = Annotated[bool, typer.Option("--int8", help="Dynamic int8 quantization.")]
WeightsOpt = Annotated[Path | None, typer.Option(help="Forecaster weights (default: shipped).")]
StoreOpt = Annotated[Path | None, typer.Option(help="Telemetry store (default: state dir).")]


def _link_forecast(
    link: str, horizon: int, site: str | None, int8: bool, weights: Path | None,
    store: Path | None, inventory: Path | None, state_dir: Path | None,
) -> Any:
    from netgpt.edge_models.forecasting import load_forecaster
    from netgpt.edge_models.link_forecast import forecast_link, resolve_link
    from netgpt.telemetry.store import SqliteTelemetryStore

    if horizon < 1:
        raise typer.BadParameter(f"--horizon {horizon}: give at least 1 step")
    links = _inventory(inventory, state_dir).links if "->" in link else []
    label, device, interface = resolve_link(link, links)
    path = store or (_state_dir(state_dir) / "telemetry.sqlite")
    if not path.is_file():
        raise typer.BadParameter(f"no telemetry store at {path}; run 'netgpt telemetry poll'")
    db = SqliteTelemetryStore(path)
    try:
        forecaster = load_forecaster(weights, site=site, int8=int8)
        return forecast_link(db, label, device, interface, forecaster, horizon=horizon)
    finally:
        db.close()


@forecast_app.callback(invoke_without_command=True)
@friendly
def forecast_main(
    ctx: typer.Context,
    link: LinkOpt = None,
    horizon: HorizonOpt = 12,
    threshold: Annotated[float, typer.Option(help="Utilization to give P(exceed) for.")] = 0.7,
    site: SiteOpt = None,
    int8: Int8Opt = False,
    weights: WeightsOpt = None,
    store: StoreOpt = None,
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Forecast a link's utilization from the telemetry store (--link), or train / eval."""
    if ctx.invoked_subcommand is not None:
        return
    if link is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    lf = _link_forecast(link, horizon, site, int8, weights, store, inventory, state_dir)
    from rich.table import Table

    f = lf.forecast
    table = Table(title=f"{lf.label}: egress utilization, {f.method}, step {f.step_s:g} s")
    for col in ("step", "q10", "median", "q90"):
        table.add_column(col, justify="right")
    low, mid, high = f.quantile(0.1)[0], f.median[0], f.quantile(0.9)[0]
    for h in range(f.horizon):
        table.add_row(str(h + 1), f"{low[h]:.1%}", f"{mid[h]:.1%}", f"{high[h]:.1%}")
    console.print(table)
    console.print(f"now {lf.history[-1]:.1%}; P(exceeds {threshold:.0%} within {f.horizon} "
                  f"steps) = {lf.probability_above(threshold):.0%}")


@forecast_app.command("plot")
@friendly
def forecast_plot(
    link: LinkOpt = None,
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("netgpt-forecast.png"),
    horizon: HorizonOpt = 12,
    threshold: Annotated[
        float | None, typer.Option(help="Draw this utilization as a dashed line.")
    ] = None,
    history: Annotated[int, typer.Option(help="Measured steps to show.")] = 288,
    site: SiteOpt = None,
    int8: Int8Opt = False,
    weights: WeightsOpt = None,
    store: StoreOpt = None,
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Write a PNG of a link's history, forecast and quantile band."""
    from netgpt.edge_models.plot import plot_forecast

    if link is None:
        raise typer.BadParameter("give --link DEVICE:INTERFACE or --link A->B")
    lf = _link_forecast(link, horizon, site, int8, weights, store, inventory, state_dir)
    keep = slice(-history, None) if history > 0 else slice(None)
    path = plot_forecast(out, lf.times[keep], lf.history[keep], lf.forecast,
                         title=f"{lf.label}: egress utilization forecast", threshold=threshold)
    console.print(f"wrote {path}")


# ------------------------------------------------------------------------------------------
# demo


# ------------------------------------------------------------------------------------------
# intents


intents_app = typer.Typer(help="The intents the platform knows.", no_args_is_help=True)
app.add_typer(intents_app, name="intents")

ActorOpt = Annotated[str, typer.Option("--as", help="Who is acting (recorded in the audit log).")]


def _platform(inventory: Path | None, state_dir: Path | None) -> Any:
    from netgpt.agents.platform import IntentPlatform
    from netgpt.generative.deploy import manage_deployed_service

    inv = _inventory(inventory, state_dir)
    platform = IntentPlatform(inv, _state_dir(state_dir) / "agent")
    manage_deployed_service(platform, _state_dir(state_dir))
    return platform


def _show_run(run: Any) -> None:
    from rich.panel import Panel

    state = run.state
    if "intent" in state:
        console.print(
            Panel(
                json.dumps(state["intent"]["expectations"], indent=1),
                title=f"intent {run.run_id}: {state.get('text', '')!r}",
            )
        )
    for name, change in state.get("plan", {}).get("changes", {}).items():
        console.print(Panel(change["diff"].strip() or "(no change)", title=f"diff on {name}"))
    for note in state.get("plan", {}).get("notes", []):
        console.print(f"plan: {escape(note)}", highlight=False)
    choice = state.get("plan_choice")
    if choice:
        for option in choice["options"]:
            mark = "chosen" if option["index"] == choice["chosen"] else (
                "passes" if option["passes"] else f"fails: {option['failed_on']}")
            console.print(escape(f"option {option['index']} ({mark}): {option['summary']}"),
                          highlight=False)
        console.print(escape(f"chosen by {choice['by']}: {choice['reason']}"), highlight=False)
    for v in run.verdicts:
        colour = "green" if v.passed else "red"
        console.print(
            f"[{colour}]{'PASS' if v.passed else 'FAIL'}[/] "
            + escape(f"[{v.source.value}] {v.rule}: {v.evidence}"),
            highlight=False,
        )
    if run.waiting_for_approval is not None:
        console.print(
            f"[yellow]awaiting approval[/]: {escape(run.waiting_for_approval['why'])}\n"
            f"approve with: netgpt approve {run.run_id}",
            highlight=False,
        )
    else:
        console.print(
            f"[bold]{run.outcome}[/] in {run.seconds * 1000:.0f} ms: "
            + escape(str(state.get("reason", ""))),
            highlight=False,
        )


@app.command("intent")
@friendly
def intent(
    words: Annotated[list[str], typer.Argument(help="The intent in words, or 'parse TEXT'.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and verify; apply nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Approve up front where policy lets a person approve.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="With 'parse': print only the formal intent as JSON.")
    ] = False,
    topo: Annotated[
        str | None,
        typer.Option(
            "--topo",
            help="With 'parse': the topology whose names to use (default: the running network's).",
        ),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option("--site", help="With 'parse': the operator's site (local names, 'here')."),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option("--min-confidence", min=0.0, max=1.0,
                     help="With 'parse': the edge model's confidence needed to act (0-1)."),
    ] = None,
    adapter: Annotated[
        str | None,
        typer.Option("--adapter", help="With 'parse': the edge model's site adapter to use."),
    ] = None,
    actor: ActorOpt = "operator",
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Run an intent: parse, check, compile, verify on the twin, policy, approval, apply.

    'netgpt intent parse --json TEXT' only reads the text (no network needed beyond the
    topology): the parser first, then the edge intent model, then the cloud model when one is
    configured (NETGPT_LLM_BACKEND), else a clarifying question. The JSON says which stage
    answered and how sure it was.
    """
    if words and words[0] == "parse":
        _parse_only(" ".join(words[1:]), topo=topo, site=site, actor=actor, as_json=as_json,
                    min_confidence=min_confidence, adapter=adapter, inventory=inventory,
                    state_dir=state_dir)
        return
    text = " ".join(words)
    platform = _platform(inventory, state_dir)
    try:
        run = platform.submit(text, actor=actor, dry_run=dry_run, approved=yes)
        _show_run(run)
    finally:
        platform.close()
    if run.outcome not in ("deployed", "dry_run", "awaiting_approval"):
        raise typer.Exit(1)


def _parse_only(text: str, *, topo: str | None, site: str | None, actor: str, as_json: bool,
                min_confidence: float | None, adapter: str | None, inventory: Path | None,
                state_dir: Path | None) -> None:
    from netgpt.agents.intent_reading import Clarification, IntentReader
    from netgpt.cloud_models.registry import llm_from_config
    from netgpt.edge_models.intent_model import EdgeIntentModel
    from netgpt.intents.names import NameTable
    from netgpt.sim_networks.topology import build_topology

    if topo is None:
        inv = _inventory(inventory, state_dir)
        topo = inv.topology or inv.network
    names = NameTable.from_topology(build_topology(topo))
    if site is not None and site not in names.sites:
        raise typer.BadParameter(f"--site {site!r} is not a site of {topo}; its sites: "
                                 f"{list(names.sites)}")
    edge = EdgeIntentModel.load_shipped()
    llm = llm_from_config()
    try:
        reader = IntentReader(names, edge=edge, llm=llm, min_confidence=min_confidence)
        try:
            understood = reader.read(text, site=site, owner=actor, adapter=adapter)
        except Clarification as question:
            if as_json:
                typer.echo(json.dumps({"stage": "clarify", "confidence": question.confidence,
                                       "intent": None, "question": question.question,
                                       "detail": question.detail}, indent=2))
            else:
                console.print(f"[yellow]{question.question}[/yellow]")
            raise typer.Exit(3) from None
    finally:
        llm.close()
    if as_json:
        typer.echo(json.dumps(understood.as_json(), indent=2))
    else:
        conf = "" if understood.confidence is None else f", confidence {understood.confidence:.2f}"
        console.print(f"read by the {understood.stage}{conf}")
        assert understood.intent is not None
        console.print(understood.intent.model_dump(mode="json"))


def _decide(
    intent_id: str, decision: str, actor: str, inventory: Path | None, state_dir: Path | None
) -> None:
    platform = _platform(inventory, state_dir)
    try:
        run = platform.resume(intent_id, decision=decision, by=actor)
        _show_run(run)
    finally:
        platform.close()


@app.command("approve")
@friendly
def approve(
    intent_id: str,
    actor: ActorOpt = "approver",
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Approve an intent that waits for a person; the run resumes from its checkpoint."""
    _decide(intent_id, "approve", actor, inventory, state_dir)


@app.command("reject")
@friendly
def reject(
    intent_id: str,
    actor: ActorOpt = "approver",
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Reject an intent that waits for a person; nothing is applied."""
    _decide(intent_id, "reject", actor, inventory, state_dir)


@intents_app.command("list")
@friendly
def intents_list(inventory: InventoryOpt = None, state_dir: StateDir = None) -> None:
    """Every intent with its lifecycle state."""
    platform = _platform(inventory, state_dir)
    try:
        table = Table(title="intents")
        for col in ("id", "state", "owner", "kinds", "text"):
            table.add_column(col)
        for i in platform.store.intents():
            table.add_row(i.id, i.state.value, i.owner, ", ".join(i.kinds), i.text)
        console.print(table)
    finally:
        platform.close()


@intents_app.command("show")
@friendly
def intents_show(
    intent_id: str, inventory: InventoryOpt = None, state_dir: StateDir = None
) -> None:
    """One intent as JSON, with its history."""
    platform = _platform(inventory, state_dir)
    try:
        typer.echo(platform.store.get(intent_id).model_dump_json(indent=2))
    finally:
        platform.close()


@intents_app.command("recover")
@friendly
def intents_recover(
    run_id: Annotated[
        str | None, typer.Argument(help="The run to continue; none: list them.")
    ] = None,
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
) -> None:
    """List runs a crash interrupted, or continue one from its checkpoint."""
    platform = _platform(inventory, state_dir)
    try:
        if run_id is None:
            runs = platform.unfinished_runs()
            console.print("\n".join(runs) if runs else "no interrupted runs")
            return
        _show_run(platform.recover(run_id))
    finally:
        platform.close()


@intents_app.command("withdraw")
@friendly
def intents_withdraw(
    intent_id: str,
    actor: ActorOpt = "operator",
    inventory: InventoryOpt = None,
    state_dir: StateDir = None,
) -> None:
    """Withdraw an intent: revert what it changed on the devices, then mark it withdrawn."""
    platform = _platform(inventory, state_dir)
    try:
        done, result = platform.withdraw(intent_id, by=actor)
        console.print(f"{done.id}: {done.state.value}; {result.summary()}", highlight=False)
    finally:
        platform.close()


@app.command("audit")
@friendly
def audit(
    intent_id: Annotated[str | None, typer.Argument(
        help="Only this intent's records; 'verify' checks the hash chain.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain.")] = False,
    state_dir: StateDir = None,
) -> None:
    """The append-only audit log (who, intent, step, outcome), or its chain check.

    'netgpt audit verify' (or --verify) recomputes every record's hash and link, and exits 1
    naming the first record that was edited or removed.
    """
    from netgpt.agents.audit import AuditLog

    path = _state_dir(state_dir) / "agent" / "audit.sqlite"
    if intent_id == "verify":
        intent_id, verify = None, True
        if not path.is_file():
            raise ConfigError(f"no audit log at {path}; pass the --state-dir the platform uses")
    log = AuditLog(path)
    try:
        if verify:
            ok, why = log.verify()
            console.print(("[green]intact[/]: " if ok else "[red]BROKEN[/]: ") + why)
            if not ok:
                raise typer.Exit(1)
            return
        table = Table(title="audit log")
        for col in ("seq", "at", "actor", "intent", "step", "outcome"):
            table.add_column(col)
        for r in log.records(intent_id):
            table.add_row(str(r.seq), r.at[:19], r.actor, r.intent_id, r.step, r.outcome)
        console.print(table)
    finally:
        log.close()


@app.command("serve")
@friendly
def serve(
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i",
                     help="Serve over this inventory's network instead of an embedded one."),
    ] = None,
    topo: Annotated[
        str, typer.Option("--topo", "-t", help="The embedded network to start (no --inventory).")
    ] = "abilene",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the API and console.")] = 8080,
    tokens: Annotated[
        Path | None,
        typer.Option(help="API token file [default: $NETGPT_API_TOKENS or "
                     "STATE_DIR/api-tokens.json, created with one user per role]."),
    ] = None,
    watch_interval: Annotated[
        float, typer.Option(help="Seconds between closed-loop passes (0: off).")
    ] = 10.0,
    proactive: Annotated[
        bool, typer.Option("--proactive", help="Closed loop also acts on forecast crossings.")
    ] = False,
    forecast_weights: Annotated[
        Path | None, typer.Option(help="Forecaster weights [default: shipped].")
    ] = None,
    forecast_site: Annotated[
        str | None, typer.Option(help="Forecast with this site's adapter ('forecast adapt').")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Serve the REST API, the web console and /metrics (Ctrl-C stops).

    By default over an embedded network started here (no root); with --inventory over that
    network. Link forecasts (API and, with --proactive, the closed loop) use --forecast-weights
    and --forecast-site, checked before anything starts. Ctrl-C or SIGTERM stops it all.
    """
    import faulthandler
    import signal
    import time as _time

    from netgpt.api.server import check_bind_host, serving
    from netgpt.sim_networks.runtime import EmbeddedNetwork
    from netgpt.sim_networks.topology import build_topology
    from netgpt.sim_networks.traffic import traffic_model

    if not 1 <= port <= 65535:
        raise typer.BadParameter(f"port {port} is not between 1 and 65535", param_hint="--port")
    if watch_interval < 0:
        raise typer.BadParameter(f"{watch_interval} is negative; 0 turns the loop off",
                                 param_hint="--watch-interval")
    check_bind_host(host)

    def forecaster() -> Any:  # imported on first use: torch only when a forecast is asked for
        from netgpt.edge_models.forecasting import load_forecaster

        return load_forecaster(forecast_weights, site=forecast_site)

    # loaded before the network starts, so a bad folder or site fails at once
    watch_forecaster = forecaster() if proactive else None
    if watch_forecaster is None and (forecast_weights is not None or forecast_site is not None):
        forecaster()
    # SIGTERM (how service managers stop a server) ends it as Ctrl-C does, cleaning up
    signal.signal(signal.SIGTERM, _interrupt)
    sd = _state_dir(state_dir)
    network = None
    if inventory is not None:
        inv = Inventory.load(inventory)
        topology = None
    else:
        topology = build_topology(topo)
        network = EmbeddedNetwork.on_free_ports(
            topology, sd / "serve-network", traffic=traffic_model("diurnal", topology)
        )
        inv = network.start()
        console.print(f"embedded network {topology.name} up: {len(topology.devices)} devices "
                      "on 127.0.0.1")
    try:
        with serving(inv, sd, topology=topology, host=host, port=port, tokens_file=tokens,
                     watch_interval_s=watch_interval, load_forecaster=forecaster,
                     watch_forecaster=watch_forecaster,
                     say=lambda m: console.print(escape(m), highlight=False)) as running:
            console.print(f"NetGPT API and console on {running.server.url}  (OpenAPI: "
                          f"{running.server.url}/docs, metrics: {running.server.url}/metrics)")
            try:
                while True:
                    _time.sleep(1)
            except KeyboardInterrupt:
                console.print("stopping")
                # a shutdown that stalls prints every thread's stack and exits 1, never hangs
                faulthandler.dump_traceback_later(45, exit=True)
    finally:
        if network is not None:
            network.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@app.command("demo")
@friendly
def demo(
    plot: Annotated[Path, typer.Option(help="Where to write the PNG of link utilization.")] = Path(
        "netgpt-demo-utilization.png"
    ),
    keep_state: Annotated[
        Path | None,
        typer.Option(help="Keep the demo's state directory here instead of a temporary one."),
    ] = None,
) -> None:
    """Run the main job: a scripted operator session of intents on the embedded Abilene network.

    No root and no model server needed.
    """
    from netgpt.demo import run_demo

    ok = run_demo(console=console, state_dir=keep_state, plot=plot)
    if not ok:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(app())
