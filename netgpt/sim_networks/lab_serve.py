"""Entry point of the background lab process (``python -m netgpt.sim_networks.lab_serve``).

Started by ``netgpt lab up`` (as root); holds the Mininet lab until SIGTERM/SIGINT, then takes
down everything it started. Errors are printed as one ``error: ...`` line, which ``lab up``
shows to the operator. :func:`start_lab` and :func:`stop_lab` are what the CLI calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from netgpt.errors import ConfigError, NetGPTError
from netgpt.inventory import Inventory
from netgpt.sim_networks.lab import LabFiles, MininetLab, lab_requirements, teardown_recorded
from netgpt.sim_networks.lab_plan import LabSettings, plan_lab
from netgpt.sim_networks.runtime import end_pid_file, pid_alive, run_detached, start_daemon
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model

__all__ = ["lab_status", "start_lab", "stop_lab"]


def start_lab(
    topology_spec: str,
    state_dir: Path,
    *,
    traffic: str = "none",
    mgmt_prefix: str = LabSettings.mgmt_prefix,
    capacity_scale: float = LabSettings.capacity_scale,
    service_port: int = 0,
    service_llm: str = "",
    timeout_s: float = 180.0,
) -> tuple[Inventory, dict[str, float]]:
    """Start a lab in the background; its inventory and start-up timings once it is up.

    ``service_port`` (0: none) also deploys the generative service on the lab (its cloud
    instance and edge traffic in the hosts, :func:`~netgpt.generative.lab_leg.lab_service`),
    its endpoint on 127.0.0.1 at that port, recorded in ``service.json``.
    """
    # fail fast, in this process, on bad values; then on what the machine lacks
    plan_lab(build_topology(topology_spec),
             LabSettings(mgmt_prefix=mgmt_prefix, capacity_scale=capacity_scale))
    missing = lab_requirements()
    if missing:
        raise ConfigError("cannot start a lab here; missing: " + "; ".join(missing))
    files = LabFiles(state_dir)
    if (state_dir / "network.pid").is_file():
        raise ConfigError(
            f"{state_dir} belongs to an embedded network; stop it with 'netgpt net down' or "
            "give the lab another --state-dir"
        )
    cmd = [
        sys.executable, "-m", "netgpt.sim_networks.lab_serve", "--topo", topology_spec,
        "--state-dir", str(state_dir), "--traffic", traffic, "--mgmt-prefix", mgmt_prefix,
        "--capacity-scale", str(capacity_scale), "--service-port", str(service_port),
        "--service-llm", service_llm,
    ]
    run_detached(
        cmd, pid_file=files.pid, ready_file=files.ready, log_file=files.log,
        timeout_s=timeout_s, what="lab", down_command="netgpt lab down",
    )
    timings = json.loads(files.ready.read_text())
    return Inventory.load(files.inventory), timings


def stop_lab(state_dir: Path, *, timeout_s: float = 60.0) -> tuple[int | None, list[str]]:
    """End the lab of ``state_dir``: its process by PID, then whatever its record still lists.

    Returns the lab process's PID (``None`` if none ran) and what the record sweep removed (empty
    when the lab process took everything down itself).
    """
    files = LabFiles(state_dir)
    pid = end_pid_file(files.pid, timeout_s=timeout_s)
    files.ready.unlink(missing_ok=True)
    return pid, teardown_recorded(state_dir)


def lab_status(state_dir: Path) -> dict[str, object]:
    """Whether a lab runs from ``state_dir``, its PID and start-up timings."""
    files = LabFiles(state_dir)
    try:
        pid: int | None = int(files.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        pid = None
    running = pid is not None and pid_alive(pid)
    out: dict[str, object] = {"state_dir": str(state_dir), "pid": pid, "running": running}
    if running and files.ready.is_file():
        out.update(json.loads(files.ready.read_text()))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run a lab until a termination signal."""
    parser = argparse.ArgumentParser(prog="netgpt-lab")
    parser.add_argument("--topo", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--traffic", default="none", help="none or a traffic model name")
    parser.add_argument("--mgmt-prefix", default=LabSettings.mgmt_prefix)
    parser.add_argument("--capacity-scale", type=float, default=LabSettings.capacity_scale)
    parser.add_argument("--service-port", type=int, default=0,
                        help="serve the generative service on this port (0: no service)")
    parser.add_argument("--service-llm", default="",
                        help="the service's cloud model backend ('': grounded answers)")
    parser.add_argument("--detach", action="store_true")
    args = parser.parse_args(argv)
    files = LabFiles(args.state_dir)
    stop = start_daemon(files.pid, detach=args.detach)
    lab: MininetLab | None = None
    try:
        topology = build_topology(args.topo)
        settings = LabSettings(mgmt_prefix=args.mgmt_prefix, capacity_scale=args.capacity_scale)
        lab = MininetLab(topology, args.state_dir, settings=settings)
        lab.up()
        flows = 0
        if args.traffic != "none":
            model = traffic_model(args.traffic, topology)
            flows = len(lab.start_matrix(model.matrix_at(12 * 3600.0)))
        service = None
        if args.service_port:
            from netgpt.generative.deploy import serve_service
            from netgpt.generative.lab_leg import lab_service

            service = serve_service(args.state_dir, args.service_port,
                                    lambda store, cloud: lab_service(lab, store=store,
                                                                     cloud=cloud),
                                    llm=args.service_llm)
            print(f"generative service on {service.server.url}: cloud instance in the host "
                  f"behind {service.service.placement.cloud_device}", flush=True)
    except NetGPTError as exc:
        print(f"error: {exc}", flush=True)
        if lab is not None:
            lab.down()  # idempotent: a lab that failed to come up has taken itself down
        return 2
    files.ready.write_text(json.dumps({
        "topology": topology.name,
        "devices": len(topology.devices),
        "flows": flows,
        **{k: round(v, 3) for k, v in lab.timings.items()},
    }))
    print(f"lab {topology.name} up: {len(topology.devices)} routers", flush=True)
    try:
        stop.wait()
    finally:
        if service is not None:
            service.stop()
        lab.down()
        files.ready.unlink(missing_ok=True)
    print("lab stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
