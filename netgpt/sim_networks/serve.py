"""Entry point of the background network process (``python -m netgpt.sim_networks.serve``).

Started by ``netgpt net up``; runs until SIGTERM/SIGINT, then stops every agent it started.
Errors are printed as one ``error: ...`` line, which ``net up`` shows to the operator.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from netgpt.errors import NetGPTError
from netgpt.sim_networks.runtime import EmbeddedNetwork, NetworkFiles, start_daemon
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model

if TYPE_CHECKING:
    from netgpt.generative.deploy import ServiceFront


def _start_service(network: EmbeddedNetwork, state_dir: Path, port: int,
                   llm: str = "") -> ServiceFront | None:
    """The generative service on this network (``port`` 0: none), written to service.json."""
    if not port:
        return None
    from netgpt.generative.deploy import embedded_service, serve_service

    front = serve_service(state_dir, port,
                          lambda store, cloud: embedded_service(network.live, store=store,
                                                                cloud=cloud), llm=llm)
    placement = front.service.placement
    print(f"generative service on {front.server.url}: cloud at {placement.cloud_device}, "
          f"edges at {len(placement.edges)} sites", flush=True)
    return front


def main(argv: list[str] | None = None) -> int:
    """Run the network until a termination signal."""
    parser = argparse.ArgumentParser(prog="netgpt-network")
    parser.add_argument("--topo", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--netconf-port-base", type=int, default=8300)
    parser.add_argument("--snmp-port-base", type=int, default=16100)
    parser.add_argument("--traffic", default="diurnal")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--peak-utilization", type=float, default=0.5)
    parser.add_argument("--service-port", type=int, default=0,
                        help="serve the generative service on this port (0: no service)")
    parser.add_argument("--service-llm", default="",
                        help="the service's cloud model backend ('': grounded answers)")
    parser.add_argument(
        "--detach", action="store_true", help="fork into the background; write the PID file"
    )
    args = parser.parse_args(argv)
    files = NetworkFiles(args.state_dir)
    stop = start_daemon(files.pid, detach=args.detach)
    # NETCONF sessions, SNMP agents and the twin share one interpreter: hand the GIL over often
    # so a twin recompute does not hold an RPC reply for the default 5 ms switch interval.
    sys.setswitchinterval(0.0005)
    started = time.perf_counter()
    try:
        topology = build_topology(args.topo)
        options: dict[str, float] = {"time_scale": args.time_scale}
        if args.traffic == "diurnal":
            options["peak_utilization"] = args.peak_utilization
        traffic = traffic_model(args.traffic, topology, **options)
        network = EmbeddedNetwork(
            topology,
            args.state_dir,
            traffic=traffic,
            netconf_port_base=args.netconf_port_base,
            snmp_port_base=args.snmp_port_base,
        )
        network.start()
        service = _start_service(network, args.state_dir, args.service_port, args.service_llm)
    except NetGPTError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    files.ready.write_text(
        json.dumps(
            {
                "topology": topology.name,
                "devices": len(topology.devices),
                "startup_s": round(time.perf_counter() - started, 3),
            }
        )
    )
    print(f"network {topology.name} up: {len(topology.devices)} devices", flush=True)
    try:
        stop.wait()
    finally:
        if service is not None:
            service.stop()
        network.stop()
        files.ready.unlink(missing_ok=True)
    print("network stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
