"""Load: 100 intents submitted at once over the REST API; 200 devices polled every 10 s.

Usage: python benchmarks/load.py [--json OUT] [--intents N] [--devices N] [--rounds N]

Part 1 serves the API (uvicorn on loopback) over the embedded Abilene network and POSTs
``--intents`` distinct intents ("block tcp port P from A to B") concurrently, as many operators
would. The API runs changes one at a time (a change board); this measures what that costs: each
request's latency (p50/p95/p99), the wall time and intents per second, the outcomes, whether the
audit chain verifies, and whether the devices hold exactly one ACL rule per deployed intent.

Part 2 starts an embedded network of ``--devices`` devices (``linear,N``) in its own process
(as ``netgpt net up`` does) and runs the telemetry poller every 10 s for ``--rounds`` rounds:
round duration p50/p95/max, late rounds (longer than the interval) and devices that failed to
answer.

Keys: intents, intents_wall_s, intents_per_s, intent_latency_p50_s, intent_latency_p95_s,
intent_latency_p99_s, intent_outcomes, audit_ok, acl_rules_match, poll_devices, poll_interval_s,
poll_rounds, poll_round_p50_s, poll_round_p95_s, poll_round_max_s, poll_rounds_late,
poll_failures, poll_rates_per_round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.intents import percentile
from netgpt.api.server import serving
from netgpt.sim_networks.runtime import (
    EmbeddedNetwork,
    free_port_base,
    start_background,
    stop_background,
)
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model
from netgpt.telemetry.poller import PollRound, TelemetryPoller
from netgpt.tools.netconf import netconf_drivers

PAIRS = [("STTLng", "WASHng"), ("SNVAng", "CHINng"), ("LOSAng", "ATLAng"),
         ("DNVRng", "IPLSng"), ("HSTNng", "KSCYng")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _network(name: str, where: Path, start: int) -> EmbeddedNetwork:
    topo = build_topology(name)
    net = EmbeddedNetwork.on_free_ports(
        topo, where,
        traffic=traffic_model("diurnal", topo, noise=0.0, burst_rate_per_hour=0.0),
        netconf_start=start, snmp_start=start + 2000, tick_s=1.0,
    )
    net.start()
    return net


def bench_intents(n: int, work: Path) -> dict[str, Any]:
    net = _network("abilene", work / "abilene", 32000)
    try:
        assert net.inventory is not None
        with serving(net.inventory, work / "api", topology=net.topology, port=_free_port(),
                     watch_interval_s=10.0, telemetry_interval_s=1.0) as running:
            raw = json.loads(running.tokens_file.read_text())
            token = next(u["token"] for u in raw["users"] if u["name"] == "operator")
            texts = [
                f"block tcp port {2000 + i} from {PAIRS[i % len(PAIRS)][0]} to "
                f"{PAIRS[i % len(PAIRS)][1]}"
                for i in range(n)
            ]

            async def fire() -> list[tuple[float, int, str]]:
                headers = {"Authorization": f"Bearer {token}"}
                limits = httpx.Limits(max_connections=n)
                async with httpx.AsyncClient(base_url=running.server.url, timeout=3600,
                                             headers=headers, limits=limits) as client:
                    async def one(text: str) -> tuple[float, int, str]:
                        t0 = time.perf_counter()
                        r = await client.post("/api/intents", json={"text": text})
                        outcome = r.json().get("outcome", f"http {r.status_code}") \
                            if r.headers.get("content-type", "").startswith("application/json") \
                            else f"http {r.status_code}"
                        return time.perf_counter() - t0, r.status_code, str(outcome)
                    return list(await asyncio.gather(*(one(t) for t in texts)))

            started = time.perf_counter()
            results = asyncio.run(fire())
            wall = time.perf_counter() - started
            with httpx.Client(base_url=running.server.url, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                audit = client.get("/api/audit/verify").json()
        latencies = [r[0] for r in results]
        outcomes = Counter(r[2] for r in results)
        rules = 0
        drivers = netconf_drivers(net.inventory)
        for device in {src for src, _ in PAIRS}:
            driver = drivers(device)
            driver.open()
            try:
                config = driver.get_config()
            finally:
                driver.close()
            rules += sum(len(a.rules) for a in config.acls if a.name.startswith("intent-"))
    finally:
        net.stop()
    return {
        "intents": n,
        "intents_wall_s": round(wall, 2),
        "intents_per_s": round(n / wall, 2),
        "intent_latency_p50_s": round(percentile(latencies, 0.50), 2),
        "intent_latency_p95_s": round(percentile(latencies, 0.95), 2),
        "intent_latency_p99_s": round(percentile(latencies, 0.99), 2),
        "intent_outcomes": dict(outcomes),
        "audit_ok": bool(audit.get("ok")),
        "acl_rules": rules,
        "acl_rules_match": rules == outcomes.get("deployed", 0),
    }


def bench_polling(
    devices: int, rounds: int, interval_s: float, work: Path, *, concurrency: int = 16,
    timeout_s: float = 2.0,
) -> dict[str, Any]:
    """Poll a ``linear,N`` network running in its own process, as ``netgpt net up`` runs it."""
    t0 = time.perf_counter()
    inventory = start_background(
        f"linear,{devices}", work / "big",
        netconf_port_base=free_port_base(devices, start=22000),
        snmp_port_base=free_port_base(devices, start=24000, kind=socket.SOCK_DGRAM),
        timeout_s=120,
    )
    up_s = time.perf_counter() - t0
    done: list[PollRound] = []
    try:
        async def poll() -> None:
            poller = TelemetryPoller(inventory, None, interval_s=interval_s,
                                     max_concurrency=concurrency, timeout_s=timeout_s)
            try:
                await poller.run(rounds=rounds, on_round=done.append)
            finally:
                await poller.aclose()

        asyncio.run(poll())
    finally:
        stop_background(work / "big")
    durations = [r.duration_s for r in done]
    return {
        "poll_devices": devices,
        "poll_network_up_s": round(up_s, 2),
        "poll_interval_s": interval_s,
        "poll_concurrency": concurrency,
        "poll_timeout_s": timeout_s,
        "poll_rounds": len(done),
        "poll_round_p50_s": round(statistics.median(durations), 3),
        "poll_round_p95_s": round(percentile(durations, 0.95), 3),
        "poll_round_max_s": round(max(durations), 3),
        "poll_rounds_late": sum(d > interval_s for d in durations),
        "poll_failures": sum(len(r.failed) for r in done),
        "poll_rates_per_round": [len(r.rates) for r in done],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--intents", type=int, default=100)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--poll-concurrency", type=int, default=16)
    parser.add_argument("--poll-timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netgpt-load-") as tmp:
        results = bench_intents(args.intents, Path(tmp))
        print(json.dumps(results, indent=1), flush=True)
        results.update(bench_polling(args.devices, args.rounds, args.interval, Path(tmp),
                                     concurrency=args.poll_concurrency,
                                     timeout_s=args.poll_timeout))
    for key, value in results.items():
        print(f"{key:24} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
