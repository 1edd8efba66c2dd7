"""``netgpt demo``: the main job, end to end, on the embedded network.

Starts Abilene in-process on free loopback ports and runs a scripted operator session through
the intent agent, only over NETCONF and SNMP: a dry run with its diff; an intent deployed and
verified; its opposite refused as a conflict; an intent refused by policy; a routing intent that
waits for a person and is approved; the generative service deployed on the network, answering a
user with the site's context, and its latency objective kept when a flood slows it; a
utilization ceiling that the closed loop keeps true when injected traffic violates it. It ends
with a report of every intent and why, the audit chain check, and a PNG of link utilization
before, during and after the overload. Every step checks its own result; the demo fails loudly
when one does not hold.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from netgpt.agents.platform import IntentPlatform, RunResult
from netgpt.agents.watch import IntentWatcher
from netgpt.render import utilization_table
from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model
from netgpt.sim_networks.twin import Demand
from netgpt.telemetry.views import LinkUtilization, link_utilizations

__all__ = ["run_demo"]


class DemoCheckFailed(AssertionError):
    """A step of the demo did not produce what it must."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoCheckFailed(what)


def run_demo(
    *,
    console: Console | None = None,
    state_dir: Path | None = None,
    plot: Path | None = Path("netgpt-demo-utilization.png"),
) -> bool:
    """Run the demo; return whether every step held. Prints as it goes."""
    out = console or Console()
    with tempfile.TemporaryDirectory(prefix="netgpt-demo-") as tmp:
        where = state_dir or Path(tmp)
        try:
            _run(where, out, plot)
        except DemoCheckFailed as exc:
            out.print(f"[bold red]demo check failed:[/] {exc}")
            return False
    out.print("[bold green]demo finished: every step held[/]")
    return True


def _say(out: Console, text: str) -> None:
    out.print(f"[bold cyan]✓[/] {escape(text)}", highlight=False)


def _operator(out: Console, text: str, *flags: str) -> None:
    line = " ".join((f"netgpt intent {text!r}", *flags))
    out.print(f"\n[bold]operator>[/] {escape(line)}", highlight=False)


def _failed_verdict(run: RunResult) -> str:
    failed = [v for v in run.verdicts if not v.passed]
    return str(failed[0]) if failed else run.state.get("reason", "")


def _run(state_dir: Path, out: Console, plot: Path | None) -> None:
    topo = build_topology("abilene")
    n = len(topo.devices)
    network = EmbeddedNetwork.on_free_ports(
        topo,
        state_dir / "network",
        traffic=traffic_model("diurnal", topo, noise=0.0, burst_rate_per_hour=0.0),
    )
    t0 = time.perf_counter()
    inventory = network.start()
    platform = IntentPlatform(inventory, state_dir / "agent", topology=topo)
    try:
        _say(
            out,
            f"network abilene up in {time.perf_counter() - t0:.2f} s: {n} routers, each "
            "with a NETCONF server and an SNMP agent on 127.0.0.1",
        )
        baseline = link_utilizations(inventory, platform.measure_rates())
        out.print(utilization_table(baseline, "link utilization from SNMP counters", limit=4))

        # 1. dry run, then the real thing
        text = "block telnet from NYCMng to LOSAng"
        _operator(out, text, "--dry-run")
        dry = platform.submit(text, dry_run=True)
        _check(dry.outcome == "dry_run", f"dry run ended {dry.outcome}: {dry.state.get('reason')}")
        ((device, change),) = dry.state["plan"]["changes"].items()
        out.print(Panel(change["diff"].strip(), title=f"dry run: diff on {device}"))
        _say(
            out,
            "dry run: parsed, conflict-checked, compiled, verified on the twin, policy "
            "passed; nothing applied",
        )
        _operator(out, text)
        block = platform.submit(text)
        _check(block.outcome == "deployed", f"block not deployed: {block.state.get('reason')}")
        running = platform.read_configs([device])[device]
        _check(
            any(a.startswith("intent-") for a in running.interface("eth0").acl_ingress),
            "the ACL is not on the device after the commit",
        )
        _say(
            out,
            f"deployed on {device} with a confirmed commit in {block.seconds:.2f} s; read "
            "back over NETCONF and verified before the commit was confirmed",
        )

        # 2. conflict
        _operator(out, "allow telnet from NYCMng to LOSAng")
        clash = platform.submit("allow telnet from NYCMng to LOSAng")
        _check(clash.outcome == "conflict", f"expected a conflict, got {clash.outcome}")
        _check(block.run_id in clash.state["reason"], "the conflict does not name the pair")
        _say(out, f"refused as a conflict: {clash.state['reason']}")

        # 3. policy
        _operator(out, "block all traffic to NYCMng")
        refused = platform.submit("block all traffic to NYCMng")
        _check(refused.outcome == "refused", f"expected a policy refusal, got {refused.outcome}")
        _say(out, f"refused by policy: {_failed_verdict(refused)}")

        # 4. approval
        text = "traffic from SNVAng to NYCMng must go through HSTNng"
        _operator(out, text)
        waiting = platform.submit(text)
        _check(waiting.outcome == "awaiting_approval", f"expected to wait, got {waiting.outcome}")
        assert waiting.waiting_for_approval is not None
        _say(out, f"waiting for a person: {waiting.waiting_for_approval['why']}")
        out.print(f"\n[bold]approver>[/] netgpt approve {waiting.run_id}", highlight=False)
        approved = platform.resume(waiting.run_id, decision="approve", by="approver")
        _check(
            approved.outcome == "deployed",
            f"approved intent not deployed: {approved.state.get('reason')}",
        )
        _say(out, f"approved and deployed on {', '.join(approved.state['plan']['changes'])}")

        # 5. the generative service and its latency objective
        _generative_service(out, network, platform)

        # 6. the closed loop
        text = "keep every link under 60% utilization"
        _operator(out, text)
        ceiling = platform.submit(text)
        _check(
            ceiling.outcome == "deployed", f"ceiling not deployed: {ceiling.state.get('reason')}"
        )
        watcher = IntentWatcher(platform)
        _watch(out, watcher, expect_action="none")
        out.print(
            "\n[bold]world>[/] a 7.5 Gbit/s backup job starts from Chicago to New York",
            highlight=False,
        )
        network.live.inject((Demand("CHINng", "NYCMng", 7500.0),))
        overload = link_utilizations(inventory, platform.measure_rates())
        out.print(utilization_table(overload, "link utilization with the backup job", limit=4))
        _watch(out, watcher, expect_action="repaired")
        time.sleep(0.5)
        _watch(out, watcher, expect_action="none")
        repaired = link_utilizations(inventory, platform.measure_rates())
        out.print(utilization_table(repaired, "link utilization after the repair", limit=4))
        _check(
            max(u.utilization for u in repaired) <= 0.6 + 1e-3,
            "a link is still over the ceiling after the repair",
        )

        _report(out, platform)
        ok, why = platform.audit.verify()
        _check(ok, f"audit chain broken: {why}")
        _say(out, f"audit log: {why} (hash chain verified)")
        if plot is not None:
            _plot(plot, {"before": baseline, "backup job": overload, "after repair": repaired})
            _say(out, f"plot of link utilization written to {plot}")
    finally:
        platform.close()
        network.stop()
        _say(out, "network stopped")


def _generative_service(out: Console, network: EmbeddedNetwork, platform: IntentPlatform) -> None:
    """Deploy the service, ask it something, and keep its latency objective under load."""
    from netgpt.generative.deploy import embedded_service
    from netgpt.telemetry.store import SqliteTelemetryStore

    store = SqliteTelemetryStore(":memory:")
    service = embedded_service(network.live, store=store)
    platform.manage_workload(service.placement, store)
    _say(out, f"generative service deployed: cloud at {service.placement.cloud_device}, edge "
              f"instances at {len(service.placement.edges)} sites")
    out.print("\n[bold]user at New York>[/] need to print my slides", highlight=False)
    answer = service.ask("New York", "need to print my slides")
    _check("New York" in answer.text, "the answer does not carry the user's site")
    s = answer.sample
    out.print(Panel(escape(answer.text), title="answer (edge + cloud)"))
    _say(out, f"edge {s.edge_ms:.1f} ms, network {s.network_ms:.1f} ms over "
              f"{'-'.join(answer.timing.path)}, cloud {s.cloud_ms:.1f} ms; "
              f"{s.wan_bytes_up} B up the WAN")
    text = "keep p95 latency of the generative service under 300 ms for users at New York"
    _operator(out, text)
    slo = platform.submit(text)
    _check(slo.outcome == "deployed", f"objective not deployed: {slo.state.get('reason')}")
    watcher = IntentWatcher(platform)

    asked: list[int] = []

    def users() -> None:
        asks = ("printer?", "video is choppy", "where can I get coffee")
        for i in range(30):
            service.ask("New York", asks[i % 3], request_id=f"demo-{len(asked)}")
            asked.append(i)

    def judge(expect: str) -> None:
        users()
        (event,) = [e for e in watcher.check_once() if e.intent_id == slo.run_id]
        measured = event.report.results[0].measurement
        _check(event.action == expect,
               f"service objective: expected {expect}, got {event.action} ({measured})")
        _say(out, f"closed loop: {event.action} ({measured})")

    judge("none")
    out.print("\n[bold]world>[/] an 11 Gbit/s backup from Chicago to Kansas City floods the "
              "service's path", highlight=False)
    network.live.inject((Demand("CHINng", "KSCYng", 11_000.0),))
    judge("repaired")
    judge("none")
    network.live.inject(())


def _watch(out: Console, watcher: IntentWatcher, *, expect_action: str) -> None:
    events = watcher.check_once()
    ceiling = [e for e in events if "utilization" in e.report.results[0].measurement]
    _check(bool(ceiling), "the watcher did not judge the ceiling intent")
    event = ceiling[0]
    measured = event.report.results[0].measurement
    _check(
        event.action == expect_action,
        f"closed loop: expected {expect_action}, got {event.action} ({event.detail})",
    )
    if event.action == "repaired":
        _say(
            out,
            f"closed loop: violated ({measured}); re-planned through the same checks and applied",
        )
    else:
        _say(out, f"closed loop: {event.state.value} ({measured})")


def _report(out: Console, platform: IntentPlatform) -> None:
    table = Table(title="what happened, and why")
    for col in ("intent", "state", "text", "why"):
        table.add_column(col, overflow="fold")
    for intent in platform.store.intents():
        why = intent.history[-1].reason if intent.history else ""
        if intent.report is not None:
            why = "; ".join(r.measurement for r in intent.report.results)
        table.add_row(intent.id, intent.state.value, intent.text, why[:160])
    out.print(table)


def _plot(path: Path, snapshots: Mapping[str, list[LinkUtilization]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(snapshots.values()))
    names = [f"{u.a}-{u.b}" for u in sorted(first, key=lambda u: (u.a, u.b))]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(snapshots)
    for i, (label, links) in enumerate(snapshots.items()):
        by_name = {f"{u.a}-{u.b}": u.utilization * 100 for u in links}
        xs = [k + i * width for k in range(len(names))]
        ax.bar(xs, [by_name.get(name, 0.0) for name in names], width, label=label)
    ax.axhline(60, color="red", linestyle="--", linewidth=1, label="intent: 60% ceiling")
    ax.set_xticks([k + width for k in range(len(names))], names, rotation=45, ha="right")
    ax.set_ylabel("utilization of the busier direction (%)")
    ax.set_title("Abilene link utilization from SNMP counters")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
