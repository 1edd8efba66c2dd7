"""Mininet lab benchmark (as root): start time, intent-to-verified time, OSPF reconvergence.

Usage: python benchmarks/lab.py [--json OUT] [--runs N]

Keys written: lab_start_abilene_s (build, daemons, agents and OSPF convergence of Abilene),
ospf_converge_s (the convergence part of it), intent_to_verified_s (median: from starting
``netgpt intent "block traffic from NYCMng to LOSAng" --yes`` to pings between the two hosts
failing on the data plane), ospf_reconverge_s (median: from a NETCONF commit that raises an IGP
cost on NYCMng's path to LOSAng until the NYCMng namespace's kernel route takes the new next hop),
plus p95s, run counts and the machine's core count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.intents import percentile, set_configs
from netgpt.device_config import DeviceConfig
from netgpt.sim_networks.lab import MininetLab, lab_requirements
from netgpt.sim_networks.topology import build_topology
from netgpt.tools.applier import apply_changes
from netgpt.tools.netconf import netconf_drivers

NETGPT = Path(sys.executable).with_name("netgpt")


def _route(lab: MininetLab, router: str, address: str) -> tuple[str, str]:
    """(interface, gateway) the router's kernel uses toward ``address``."""
    out = lab.run_in(router, ["ip", "-j", "route", "get", address]).stdout
    entry = json.loads(out)[0]
    return str(entry.get("dev", "")), str(entry.get("gateway", ""))


def _restore(lab: MininetLab, day0: dict[str, DeviceConfig]) -> None:
    assert lab.inventory is not None
    set_configs(lab.inventory, day0)
    lab.wait_converged(30)


def bench_intent(lab: MininetLab, runs: int, day0: dict[str, DeviceConfig]) -> list[float]:
    """Seconds from running ``netgpt intent`` to the block holding on the data plane."""
    times = []
    for _ in range(runs):
        if not lab.ping("NYCMng", "LOSAng", count=1):
            raise SystemExit("NYCMng cannot reach LOSAng before the intent; the lab is broken")
        started = time.perf_counter()
        done = subprocess.run(
            [str(NETGPT), "intent", "block traffic from NYCMng to LOSAng", "--yes",
             "--state-dir", str(lab.files.state_dir)],
            capture_output=True, text=True, check=False, timeout=300,
        )
        if done.returncode != 0:
            raise SystemExit(f"netgpt intent failed: {done.stdout[-800:]}{done.stderr[-800:]}")
        while lab.ping("NYCMng", "LOSAng", count=1):
            if time.perf_counter() - started > 60:
                raise SystemExit("the block never held on the data plane")
        times.append(time.perf_counter() - started)
        _restore(lab, day0)
    return times


def bench_reconverge(lab: MininetLab, runs: int, day0: dict[str, DeviceConfig]) -> list[float]:
    """Seconds from a committed IGP cost change to the kernel route following it."""
    assert lab.inventory is not None
    target = lab.host("LOSAng").ip
    times = []
    for _ in range(runs):
        before = _route(lab, "NYCMng", target)
        itf = before[0]
        slow = day0["NYCMng"].with_interface(
            day0["NYCMng"].interface(itf).model_copy(update={"igp_cost": 60000})
        )
        started = time.perf_counter()
        result = apply_changes({"NYCMng": slow}, netconf_drivers(lab.inventory), dry_run=False)
        if result.outcome != "applied":
            raise SystemExit(f"cost change failed: {result.summary()}")
        while _route(lab, "NYCMng", target) == before:
            if time.perf_counter() - started > 30:
                raise SystemExit("the route never moved after the cost change")
            time.sleep(0.01)
        times.append(time.perf_counter() - started)
        _restore(lab, day0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    missing = lab_requirements()
    if missing:
        print("cannot run the lab benchmark here; missing: " + "; ".join(missing))
        return 2
    with tempfile.TemporaryDirectory(prefix="netgpt-lab-bench-") as tmp:
        topo = build_topology("abilene")
        lab = MininetLab(topo, Path(tmp))
        started = time.perf_counter()
        lab.up()
        start_s = time.perf_counter() - started
        try:
            day0 = {d: topo.initial_config(d) for d in topo.devices}
            intent = bench_intent(lab, args.runs, day0)
            reconverge = bench_reconverge(lab, args.runs, day0)
        finally:
            lab.down()
    results = {
        "lab_start_abilene_s": round(start_s, 3),
        "ospf_converge_s": round(lab.timings["converge_s"], 3),
        "intent_to_verified_s": round(statistics.median(intent), 3),
        "intent_to_verified_p95_s": round(percentile(intent, 0.95), 3),
        "ospf_reconverge_s": round(statistics.median(reconverge), 3),
        "ospf_reconverge_p95_s": round(percentile(reconverge, 0.95), 3),
        "runs": args.runs,
        "cpu_cores": os.cpu_count(),
    }
    print(f"{'metric':28} {'value':>10}")
    for key, value in results.items():
        print(f"{key:28} {value:>10}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
