"""Intent benchmark: NetConfEval step 1, a held-out paraphrase set, and intent -> verified time.

    .venv/bin/python benchmarks/intents.py --json OUT [--rounds N]

NetConfEval: every batch of step_1_spec_translation.jsonl through the controlled-language parser
and the NetConfEval exporter, scored with NetConfEval's metric (mean per-batch share of expected
requirements present). Paraphrases: benchmarks/data/paraphrases.jsonl, written before the parser
was tuned and not used to tune it; an item counts when the parsed expectations equal the expected
ones exactly (as a multiset) and the priority matches, or, for bad input, when the parser refuses.

Intent -> verified: :data:`DEPLOY_INTENTS` (every kind that compiles to device config) submitted
one after another to an :class:`IntentPlatform` over ``abilene`` running in-process on loopback
(steady diurnal traffic at 50 % peak utilization), routing changes pre-approved. A sample is the
wall time of ``platform.submit``: parse, conflict check, compile, twin verification, policy,
confirmed commit over NETCONF, read-back and live verification. Every intent must end
``deployed``; any other outcome is counted and listed, not timed. Each intent is measured on its
own: before it (untimed) the devices get their day-0 configs back and a fresh platform starts with
an empty intent store, so intents do not meet one another (their interplay is the conflict
checker's business, tested elsewhere). Before the latency intent an operator's change raises one
IGP cost so that the fastest NYCMng -> LOSAng path is not the shortest. The platform runs as a
long-running one does: its background telemetry (SNMP polls every 0.5 s) and its NETCONF read
sessions are started untimed before the intent, so kinds that need the current traffic
(bandwidth, utilization, latency) plan with rates at most 1.25 s old instead of sampling the
network inside the run, and reads pay no SSH handshake. Applies still open their own sessions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netgpt.agents.platform import IntentPlatform  # noqa: E402
from netgpt.device_config import DeviceConfig  # noqa: E402
from netgpt.errors import IntentParseError  # noqa: E402
from netgpt.intents import netconfeval as nce  # noqa: E402
from netgpt.intents.model import Expectation  # noqa: E402
from netgpt.intents.names import NameTable  # noqa: E402
from netgpt.intents.parser import parse_intent  # noqa: E402
from netgpt.inventory import Inventory  # noqa: E402
from netgpt.sim_networks.runtime import EmbeddedNetwork, free_port_base  # noqa: E402
from netgpt.sim_networks.topology import build_topology  # noqa: E402
from netgpt.sim_networks.traffic import traffic_model  # noqa: E402
from netgpt.tools.applier import apply_changes  # noqa: E402
from netgpt.tools.netconf import netconf_drivers  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "intents" / "netconfeval" / "step_1_spec_translation.jsonl"
PARAPHRASES = Path(__file__).parent / "data" / "paraphrases.jsonl"
_EXPECTATION: TypeAdapter[Any] = TypeAdapter(Expectation)


def _endpoint(short: str) -> dict[str, Any]:
    if short == "any":
        return {"kind": "any"}
    kind, _, name = short.partition(":")
    return {"kind": kind, "prefix": name} if kind == "prefix" else {"kind": kind, "name": name}


def expand(raw: dict[str, Any]) -> Any:
    """A paraphrase-file expectation (short endpoints 'group:x', ports '23') as the model."""
    out = dict(raw)
    for key in ("source", "destination", "scope"):
        if isinstance(out.get(key), str):
            out[key] = _endpoint(out[key])
    if "traffic" in out:
        traffic = dict(out["traffic"])
        for key in ("source", "destination"):
            traffic[key] = _endpoint(traffic.get(key, "any"))
        if "ports" in traffic:
            lo, _, hi = str(traffic["ports"]).partition("-")
            traffic["ports"] = {"lower": int(lo), "upper": int(hi or lo)}
        out["traffic"] = traffic
    return _EXPECTATION.validate_python(out)


def netconfeval(path: Path) -> dict[str, Any]:
    rows = nce.load_step1(path)
    names = nce.name_table(r.expected for r in rows)
    scores, times, refused = [], [], 0
    for r in rows:
        start = time.perf_counter()
        try:
            predicted = nce.translate_step1(r.human_language, names)
        except IntentParseError:
            refused += 1
            predicted = {}
        times.append(time.perf_counter() - start)
        scores.append(nce.score_step1(r.expected, predicted))
    return {
        "batches": len(rows),
        "accuracy": statistics.fmean(s.accuracy for s in scores),
        "requirements": sum(s.expected for s in scores),
        "wrong": sum(s.wrong for s in scores),
        "refused_batches": refused,
        "sentences": sum(r.human_language.count(".") for r in rows),
        "batch_p50_ms": statistics.median(times) * 1000,
    }


def paraphrases(path: Path) -> dict[str, Any]:
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tables: dict[str, NameTable] = {}
    if DATA.exists():
        tables["netconfeval"] = nce.name_table(r.expected for r in nce.load_step1(DATA))
    failures, correct, times = [], 0, []
    for item in items:
        topo = item["topology"]
        if topo not in tables:
            tables[topo] = NameTable.from_topology(build_topology(topo))
        start = time.perf_counter()
        try:
            intent = parse_intent(item["text"], tables[topo])
            got: Any = intent
        except IntentParseError as exc:
            got = exc
        times.append(time.perf_counter() - start)
        if item.get("expected_error"):
            ok = isinstance(got, IntentParseError)
        elif isinstance(got, IntentParseError):
            ok = False
        else:
            want = sorted(e.model_dump_json() for e in map(expand, item["expected"]))
            have = sorted(e.model_dump_json() for e in got.expectations)
            ok = want == have and got.priority == item.get("priority", 5)
        correct += ok
        if not ok:
            failures.append({"id": item["id"], "text": item["text"],
                             "got": str(got) if isinstance(got, IntentParseError)
                             else [e.model_dump(mode="json") for e in got.expectations]})
    return {"items": len(items), "correct": correct, "accuracy": correct / len(items),
            "failures": failures, "per_text_p50_ms": statistics.median(times) * 1000}


def sentence_p50_ms(path: Path) -> float:
    rows = nce.load_step1(path)
    names = nce.name_table(r.expected for r in rows)
    sentences = [s for r in rows[:300] for s in r.human_language.split(". ") if s]
    times = []
    for s in sentences:
        start = time.perf_counter()
        with contextlib.suppress(IntentParseError):
            parse_intent(s, names)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# (kind, text): each compiles to a device change on day-0 abilene and must end deployed
DEPLOY_INTENTS: tuple[tuple[str, str], ...] = (
    ("access", "block tcp port 23 from NYCMng to LOSAng"),
    ("access", "block ssh from CHINng to SNVAng"),
    ("access", "deny udp 5000-5010 from WASHng to DNVRng"),
    ("access", "block telnet from site Seattle to site Houston"),
    ("access", "block http from KSCYng to ATLAM5"),
    ("access", "block tcp port 3389 from 10.6.0.0/16 to HSTNng"),
    ("reachability", "STTLng cannot reach 10.2.0.0/16"),
    ("reachability", "isolate ATLAM5 from DNVRng"),
    ("reachability", "IPLSng must not reach SNVAng"),
    ("utilization_ceiling", "keep links at KSCYng under 30% utilization"),
    ("waypoint", "traffic from SNVAng to WASHng must go through HSTNng"),
    ("waypoint", "traffic from STTLng to ATLAng must go through HSTNng"),
    ("waypoint", "traffic from CHINng to LOSAng must go through HSTNng"),
    ("load_balancing", "split traffic from WASHng to SNVAng across 2 paths"),
    ("load_balancing", "balance DNVRng to ATLAng over 2 paths"),
    ("load_balancing", "balance HSTNng to CHINng over 2 paths"),
    ("latency", "keep latency from NYCMng to LOSAng below 24 ms"),
    ("bandwidth", "cap traffic to IPLSng at 50 Mbps"),
    ("bandwidth", "cap NYCMng at 100 Mbps"),
    ("bandwidth", "throttle SNVAng at 200 Mbps"),
)
# an operator's earlier change (untimed), so that the latency intent has something to fix
_SLOW_DEVICE, _SLOW_INTERFACE, _SLOW_COST = "NYCMng", "eth2", 100


@dataclass
class DeployRun:
    """One submitted intent: how it ended, in how long, and on how many devices."""

    kind: str
    text: str
    outcome: str
    seconds: float
    devices: int
    reason: str
    steps: list[tuple[str, float]]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank); the other benchmarks use it too."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


_TELEMETRY_INTERVAL_S = 0.5

def set_configs(inventory: Inventory, configs: dict[str, DeviceConfig]) -> None:
    """Commit ``configs`` over NETCONF (all or nothing); raise if they do not take."""
    result = apply_changes(configs, netconf_drivers(inventory), dry_run=False)
    if result.outcome not in ("applied", "no_change"):
        raise RuntimeError(f"could not set configs: {result.summary()}")


def _slowed(config: DeviceConfig) -> DeviceConfig:
    itf = config.interface(_SLOW_INTERFACE).model_copy(update={"igp_cost": _SLOW_COST})
    return config.with_interface(itf)


def _deploy_one(
    network: EmbeddedNetwork, day0: dict[str, DeviceConfig], state_dir: Path, kind: str, text: str
) -> DeployRun:
    """Submit one intent to a fresh platform over the day-0 network (the set-up is untimed)."""
    assert network.inventory is not None
    configs = dict(day0)
    if kind == "latency":
        configs[_SLOW_DEVICE] = _slowed(day0[_SLOW_DEVICE])
    set_configs(network.inventory, configs)
    platform = IntentPlatform(network.inventory, state_dir, topology=network.topology)
    try:
        # a running platform polls telemetry continuously and holds its NETCONF read sessions;
        # both are set up here, untimed
        platform.start_telemetry(_TELEMETRY_INTERVAL_S)
        platform.read_configs()
        start = time.perf_counter()
        run = platform.submit(text, actor="bench", approved=True)
        seconds = time.perf_counter() - start
    finally:
        platform.close()
    plan = run.state.get("plan") or {}
    return DeployRun(
        kind=kind, text=text, outcome=run.outcome, seconds=seconds,
        devices=len(plan.get("changes") or {}), reason=str(run.state.get("reason", "")),
        steps=[(str(s), float(t)) for s, t in run.state.get("timings", [])],
    )


def intent_to_verified(rounds: int) -> dict[str, Any]:
    """Submit each of :data:`DEPLOY_INTENTS` ``rounds`` times on abilene; time it to deployed."""
    topo = build_topology("abilene")
    n = len(topo.devices)
    runs: list[DeployRun] = []
    with tempfile.TemporaryDirectory(prefix="netgpt-bench-intents-") as tmp:
        network = EmbeddedNetwork(
            topo,
            Path(tmp) / "net",
            traffic=traffic_model(
                "diurnal", topo, peak_utilization=0.5, noise=0.0, burst_rate_per_hour=0.0,
                night_level=1.0,
            ),
            netconf_port_base=free_port_base(n, start=26000),
            snmp_port_base=free_port_base(n, start=27000, kind=socket.SOCK_DGRAM),
        )
        inventory = network.start()
        try:
            day0 = dict(network.live.configs())
            for r in range(rounds):
                for i, (kind, text) in enumerate(DEPLOY_INTENTS):
                    where = Path(tmp) / f"agent-{r}-{i}"
                    runs.append(_deploy_one(network, day0, where, kind, text))
            set_configs(inventory, day0)
        finally:
            network.stop()
    ok = [r for r in runs if r.outcome == "deployed"]
    times = [r.seconds for r in ok]
    kinds = sorted({r.kind for r in runs})
    steps = sorted({s for r in ok for s, _ in r.steps})
    return {
        "intent_to_verified_p50_s": statistics.median(times) if times else None,
        "intent_to_verified_p95_s": percentile(times, 0.95) if times else None,
        "intent_to_verified_max_s": max(times) if times else None,
        "intent_to_verified_runs": len(runs),
        "intent_to_verified_deployed": len(ok),
        "intent_to_verified_goal_s": 1.0,
        "intent_to_verified_telemetry": f"background SNMP polls every {_TELEMETRY_INTERVAL_S} s",
        "intent_to_verified_by_kind_p50_s": {
            k: statistics.median([r.seconds for r in ok if r.kind == k]) for k in kinds
            if any(r.kind == k for r in ok)
        },
        "intent_to_verified_step_p50_s": {
            s: statistics.median([t for r in ok for n_, t in r.steps if n_ == s]) for s in steps
        },
        "intent_to_verified_devices_changed_p50": (
            statistics.median([r.devices for r in ok]) if ok else None
        ),
        "intent_to_verified_failures": [
            {"kind": r.kind, "text": r.text, "outcome": r.outcome, "reason": r.reason}
            for r in runs if r.outcome != "deployed"
        ],
        "intent_to_verified_no_change": sorted({r.text for r in ok if r.devices == 0}),
        "intent_to_verified_samples": [
            {"kind": r.kind, "text": r.text, "outcome": r.outcome, "seconds": round(r.seconds, 4),
             "devices": r.devices, "steps": {s: round(t, 4) for s, t in r.steps}}
            for r in runs
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=2,
                        help="times the deploy set is submitted (day-0 configs each time)")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "netconfeval_accuracy": None,
        "paraphrase_accuracy": None,
        "parse_p50_ms": None,
    }
    if args.data.exists():
        nce_result = netconfeval(args.data)
        result["netconfeval_accuracy"] = nce_result["accuracy"]
        result["netconfeval"] = nce_result
        result["parse_p50_ms"] = sentence_p50_ms(args.data)
    else:
        result["netconfeval_note"] = f"{args.data} not found"
    para = paraphrases(PARAPHRASES)
    result["paraphrase_accuracy"] = para["accuracy"]
    result["paraphrases"] = para
    result.update(intent_to_verified(args.rounds))
    rows = [
        ("NetConfEval step-1 accuracy (own metric)", result["netconfeval_accuracy"]),
        ("paraphrase accuracy (held out)", result["paraphrase_accuracy"]),
        ("parse p50 per sentence (ms)", result["parse_p50_ms"]),
        ("intent -> verified p50 (s), abilene", result["intent_to_verified_p50_s"]),
        ("intent -> verified p95 (s), abilene", result["intent_to_verified_p95_s"]),
        ("intents deployed / submitted",
         f"{result['intent_to_verified_deployed']} / {result['intent_to_verified_runs']}"),
    ]
    rows += [(f"  p50 (s) {kind}", value)
             for kind, value in result["intent_to_verified_by_kind_p50_s"].items()]
    rows += [(f"  p50 (s) step {step}", value)
             for step, value in result["intent_to_verified_step_p50_s"].items()]
    for name, value in rows:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{name:<45} {shown}")
    for f in para["failures"]:
        print(f"  paraphrase miss {f['id']}: {f['text']}")
    for f in result["intent_to_verified_failures"]:
        print(f"  not deployed ({f['outcome']}): {f['text']}: {f['reason']}")
    for text in result["intent_to_verified_no_change"]:
        print(f"  deployed without a device change: {text}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
