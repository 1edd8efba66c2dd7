"""A lab router's NETCONF agent (``python -m netgpt.sim_networks.lab_agent``).

Started by the lab inside the router's network namespace. It serves NETCONF over SSH on the
router's management address and applies every committed configuration to the namespace through
:class:`~netgpt.sim_networks.linux_backend.LinuxBackend` (the same
:class:`~netgpt.sim_networks.device.Device` datastores, locks and confirmed commits as the
embedded network). Runs until SIGTERM; writes ``agent.ready`` in its router folder once it
listens, or one ``error: ...`` line and exit status 2 when it cannot start.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from netgpt.device_config import DeviceConfig
from netgpt.errors import NetGPTError
from netgpt.inventory import load_credentials
from netgpt.sim_networks.device import Device, SystemGroup
from netgpt.sim_networks.lab_plan import NETCONF_PORT, RouterPlan
from netgpt.sim_networks.linux_backend import LinuxBackend
from netgpt.sim_networks.netconf_agent import NetconfAgent

log = logging.getLogger("netgpt.lab_agent")


def router_from_json(text: str) -> RouterPlan:
    """A :class:`RouterPlan` from the JSON the lab writes (``dataclasses.asdict`` form)."""
    raw = json.loads(text)
    raw["access_addresses"] = tuple(raw["access_addresses"])
    return RouterPlan(**raw)


def main(argv: list[str] | None = None) -> int:
    """Serve one router until SIGTERM."""
    parser = argparse.ArgumentParser(prog="netgpt-lab-agent")
    parser.add_argument("--router-dir", type=Path, required=True)
    parser.add_argument("--credentials", type=Path, required=True)
    parser.add_argument("--host-key", type=Path, required=True)
    parser.add_argument("--port", type=int, default=NETCONF_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ready = args.router_dir / "agent.ready"
    ready.unlink(missing_ok=True)
    try:
        router = router_from_json((args.router_dir / "router.json").read_text())
        initial = DeviceConfig.model_validate_json(
            (args.router_dir / "initial_config.json").read_text()
        )
        creds = load_credentials(args.credentials)["default"]
        backend = LinuxBackend(router)
        device = Device(
            router.name,
            initial,
            backend,
            system=SystemGroup(descr=f"NetGPT lab router {router.name}", location=router.site),
            on_event=lambda dev, msg: log.info("%s: %s", dev, msg),
        )
        agent = NetconfAgent(
            device,
            port=args.port,
            host_key=args.host_key,
            credentials=creds.netconf,
            host=router.mgmt_ip,
        )
        agent.start()
    except (NetGPTError, OSError, ValueError) as exc:
        print(f"error: {exc}", flush=True)
        return 2
    ready.write_text(json.dumps({"router": router.name, "port": args.port}))
    log.info("NETCONF agent of %s listening on %s:%d", router.name, router.mgmt_ip, args.port)
    try:
        stop.wait()
    finally:
        agent.close()
        device.close()
        backend.close()
        ready.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
