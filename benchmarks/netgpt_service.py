"""The generative service, cloud-only against edge+cloud, under several link delays and loads.

    .venv/bin/python benchmarks/netgpt_service.py --json OUT [--n N] [--delays 1,4,16]
                                                  [--loads 0,0.5,0.9,1.1]

The service runs on the Abilene network's live state (in process: the twin and its loads, no
device agents): edge instances at the sites, the cloud instance in Kansas City
(:func:`netgpt.generative.service.default_placement`). For each condition, ``N`` held-out
requests of :func:`netgpt.edge_models.prompt_corpus.personalization_set` (phrasings and site
words the edge model never trained on; one in four in the sites' own words) plus the
hand-written benchmark requests are served in both modes:

* **edge+cloud**: the site's edge model (GPT-2 + the site's LoRA adapter) completes the request;
  the completed prompt crosses the WAN; the cloud model answers.
* **cloud-only**: the request and the site's whole context cross the WAN; the cloud completes it
  with the global model (site adapters live at the edge) and answers.

Conditions: every link's delay times each ``--delays`` factor (1 is Abilene's real fibre
delays), and background traffic (a gravity matrix at its daily peak) scaled so the busiest link
on the service's edge-cloud paths runs at each ``--loads`` utilization (0: idle; past 1 that link
drops the excess). Requests are served grouped by site, as one instance per site would serve
them (its adapter stays active). Per condition and mode:

* ``latency_p50_ms`` / ``latency_p95_ms``: edge + network + cloud time per request (the network
  time from :mod:`netgpt.sim_networks.flow_timing`: delays, queues, losses on the path taken;
  the service is run without sleeping it, so the table takes minutes, not hours);
* ``edge_ms_p50``, ``network_ms_p50`` / ``_p95``, ``cloud_ms_p50``: where the time went;
* ``wan_bytes_up`` / ``wan_bytes_down``: mean application bytes per request over the WAN;
* ``personalization``: the share of answers that use the correct local context: the answer
  names the user's site and local time, and exactly the local services the request needs.

The cloud model is the service's default (answers grounded on the prompt's context, no model
server), so personalization measures what context reached the cloud. ``--check`` also serves one
condition with the network time slept, to show the measured wall-clock total matches.

JSON: ``{"conditions": [{"delay_scale", "load", "mode", "latency_p50_ms", "latency_p95_ms",
"wan_bytes_up", "wan_bytes_down", "personalization", "requests", "failed"}, ...],
"summary": {mode: {...means over conditions}}, "setup": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netgpt.edge_models.prompt_corpus import PromptExample, personalization_set  # noqa: E402
from netgpt.edge_models.prompt_model import EdgePromptModel  # noqa: E402
from netgpt.generative.base import ServiceMode  # noqa: E402
from netgpt.generative.deploy import embedded_service  # noqa: E402
from netgpt.generative.service import (  # noqa: E402
    GenerativeService,
    ModelledLeg,
    ServiceAnswer,
    default_placement,
)
from netgpt.intents.model import WorkloadPlacement  # noqa: E402
from netgpt.sim_networks.live import LiveNetwork  # noqa: E402
from netgpt.sim_networks.topology import Topology, abilene  # noqa: E402
from netgpt.sim_networks.traffic import DiurnalTraffic  # noqa: E402
from netgpt.telemetry.views import nearest_rank  # noqa: E402

MODES: tuple[ServiceMode, ...] = ("edge+cloud", "cloud-only")
PEAK_S = 15 * 3600.0  # the diurnal model's daily peak


@dataclass(frozen=True)
class Outcome:
    """One served request: its times and bytes, and whether it used the right context."""

    total_ms: float
    edge_ms: float
    network_ms: float
    cloud_ms: float
    up: int
    down: int
    personalized: bool


def scaled_delays(topology: Topology, factor: float) -> Topology:
    """``topology`` with every link's delay multiplied by ``factor``."""
    g = nx.Graph(topology.graph)
    for _, _, attrs in g.edges(data=True):
        attrs["delay_ms"] = float(attrs["delay_ms"]) * factor
    return Topology(topology.name, g, dict(topology.groups), dict(topology.services))


def service_links(live: LiveNetwork, placement: WorkloadPlacement) -> set[tuple[str, str]]:
    """Link directions the edge-cloud exchanges cross, both ways, on the network as it is."""
    twin = live.twin()
    out: set[tuple[str, str]] = set()
    for edge in placement.edges.values():
        for a, b in ((edge, placement.cloud_device), (placement.cloud_device, edge)):
            for tr in twin.paths(a, twin.default_address(b)):
                out.update(zip(tr.devices, tr.devices[1:], strict=False))
    return out


def loaded_network(topology: Topology, load: float) -> LiveNetwork:
    """The network with background traffic at ``load`` on the service's paths (0: idle).

    The traffic is a gravity matrix at its daily peak, scaled so the busiest link on the
    edge-cloud paths runs at ``load``.
    """
    live = LiveNetwork(topology, None)
    if load > 0:
        matrix = DiurnalTraffic(topology, peak_utilization=0.5, noise=0.0,
                                burst_rate_per_hour=0.0).matrix_at(PEAK_S)
        links = service_links(live, default_placement(topology))
        report = live.twin().evaluate(matrix)
        busiest = max(report.link(a, b).utilization for a, b in links)
        live.inject(matrix.scaled(load / busiest).demands)
    return live


def personalized(answer: ServiceAnswer, example: PromptExample, site_services: set[str],
                 local_time: str) -> bool:
    """Whether the answer names the site, the local time, and exactly the needed services."""
    text = answer.text
    named = {s for s in site_services if s in text}
    return (example.site in text and local_time in text
            and named == set(example.services))


def serve(service: GenerativeService, examples: list[PromptExample], mode: ServiceMode
          ) -> list[Outcome]:
    """Each example through ``service`` in ``mode``."""
    out = []
    for i, ex in enumerate(examples):
        answer = service.ask(ex.site, ex.request, mode=mode, request_id=f"{mode}-{i}")
        context, s = answer.context, answer.sample
        waited = isinstance(service.leg, ModelledLeg) and service.leg.wait_network
        total = s.total_ms if waited else s.edge_ms + s.network_ms + s.cloud_ms
        out.append(Outcome(total, s.edge_ms, s.network_ms, s.cloud_ms, s.wan_bytes_up,
                           s.wan_bytes_down,
                           personalized(answer, ex, {x.name for x in context.services},
                                        context.local_time)))
    return out


def row(delay: float, load: float, mode: str, outcomes: list[Outcome], failed: int
        ) -> dict[str, Any]:
    """One line of the table."""
    totals = [o.total_ms for o in outcomes]
    return {"delay_scale": delay, "load": load, "mode": mode,
            "latency_p50_ms": round(nearest_rank(totals, 50), 2),
            "latency_p95_ms": round(nearest_rank(totals, 95), 2),
            "edge_ms_p50": round(nearest_rank([o.edge_ms for o in outcomes], 50), 2),
            "network_ms_p50": round(nearest_rank([o.network_ms for o in outcomes], 50), 2),
            "network_ms_p95": round(nearest_rank([o.network_ms for o in outcomes], 95), 2),
            "cloud_ms_p50": round(nearest_rank([o.cloud_ms for o in outcomes], 50), 2),
            "wan_bytes_up": round(float(np.mean([o.up for o in outcomes])), 1),
            "wan_bytes_down": round(float(np.mean([o.down for o in outcomes])), 1),
            "personalization": round(float(np.mean([o.personalized for o in outcomes])), 4),
            "requests": len(outcomes), "failed": failed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--n", type=int, default=120, help="held-out requests per condition")
    parser.add_argument("--delays", default="1,4,16")
    parser.add_argument("--loads", default="0,0.5,0.9,1.1")
    parser.add_argument("--check", action="store_true",
                        help="also serve the first condition with the network time slept")
    args = parser.parse_args(argv)
    delays = [float(x) for x in args.delays.split(",")]
    loads = [float(x) for x in args.loads.split(",")]
    base = abilene()
    examples = (personalization_set("abilene", split="heldout", n=args.n, seed=7)
                + personalization_set("abilene", split="benchmark", n=1000))
    # grouped by site: one process serves every site's edge here, and in a deployment each
    # site's instance keeps its own adapter active (no switch per request)
    examples.sort(key=lambda e: e.site)
    completer = EdgePromptModel.load()
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for delay in delays:
        topo = scaled_delays(base, delay)
        for load in loads:
            live = loaded_network(topo, load)
            busiest = live.report.max_utilization
            service = embedded_service(live, completer=completer, wait_network=False)
            for mode in MODES:
                outcomes = serve(service, examples, mode)
                r = row(delay, load, mode, outcomes, 0)
                r["busiest_link_utilization"] = round(busiest, 3)
                rows.append(r)
                print(f"delay x{delay:<4g} load {load:<4g} {mode:10} p50 "
                      f"{r['latency_p50_ms']:8.1f} ms  p95 {r['latency_p95_ms']:8.1f} ms  up "
                      f"{r['wan_bytes_up']:7.0f} B  down {r['wan_bytes_down']:6.0f} B  "
                      f"personalized {r['personalization']:.1%}", flush=True)
    check: dict[str, Any] = {}
    if args.check:
        live = loaded_network(scaled_delays(base, delays[0]), loads[0])
        service = embedded_service(live, completer=completer, wait_network=True)
        for mode in MODES:
            outcomes = serve(service, examples[:40], mode)
            check[mode] = row(delays[0], loads[0], mode, outcomes, 0)
    summary = {mode: {key: round(float(np.mean([r[key] for r in rows if r["mode"] == mode])), 3)
                      for key in ("latency_p50_ms", "latency_p95_ms", "wan_bytes_up",
                                  "wan_bytes_down", "personalization")} for mode in MODES}
    results = {
        "conditions": rows, "summary": summary, "check_with_network_slept": check,
        "setup": {"topology": "abilene", "requests_per_condition": len(examples),
                  "heldout": args.n, "benchmark_requests": len(examples) - args.n,
                  "edge_model": str(completer.root), "cloud_model": "grounded-context",
                  "cloud_device": default_placement(base).cloud_device,
                  "seconds": round(time.perf_counter() - started, 1)},
    }
    for mode, values in summary.items():
        print(f"{mode:10} mean over conditions: {values}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
