"""Fault matrix: every fault kind, many runs; the network must end wholly old or wholly new.

Usage: python benchmarks/reliability.py [--json OUT] [--runs N] [--faults a,b,...] [--seed S]

Runs the intent platform against the embedded Abilene network (in-process, real NETCONF over SSH
and SNMPv3 on loopback) while a fault is injected (:mod:`netgpt.sim_networks.faults`), then reads
every device's running config back over NETCONF, with no fault, and classifies the run:

- ``old_state``: every device as before; ``new_state``: exactly the devices the intent changes,
  exactly as a fault-free run changes them; ``mixed``: anything else;
- ``state_wrong``: the intent's stored state disagrees with the network (deployed, fulfilled,
  degraded or violated while the network is old, or anything else while it is new);
- ``data_lost``: the audit chain does not verify, or the audit log and the intent store disagree
  on which runs exist (a run audited and not stored, or stored and never audited).

JSON: ``{"rows": [{"fault", "runs", "old_state", "new_state", "mixed", "data_lost",
"state_wrong", "outcomes", "seconds"}], "goal": ...}``. Goal: mixed = 0 and data lost = 0 in
every row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.intents import set_configs
from netgpt.agents.platform import IntentPlatform
from netgpt.cloud_models.openai_compat import OpenAICompatModel, OpenAICompatSettings
from netgpt.device_config import DeviceConfig
from netgpt.errors import NetGPTError
from netgpt.inventory import NetconfCredentials
from netgpt.sim_networks.faults import DeviceFault, FaultPlan
from netgpt.sim_networks.runtime import EmbeddedNetwork
from netgpt.sim_networks.topology import build_topology
from netgpt.sim_networks.traffic import traffic_model
from netgpt.tools.netconf import NetconfDriver, netconf_drivers

MULTI = "balance traffic from NYCMng to LOSAng over 3 paths"  # changes ATLAng and SNVAng
MEASURED = "cap NYCMng at 100 Mbps"  # a bandwidth intent: the platform measures traffic (SNMP)
TARGET = "SNVAng"
CONFIRM_TIMEOUT_S = 3
DEVICE_TIMEOUT_S = 2.0
NEW_STATES = {"deployed", "fulfilled", "degraded", "violated"}
_INTENT_ID = re.compile(r"int-[0-9a-f]{10}")


@dataclass
class Harness:
    """The network under test, its day-0 configs and what each intent makes of them."""

    net: EmbeddedNetwork
    faults: FaultPlan
    work: Path
    day0: dict[str, DeviceConfig] = field(default_factory=dict)
    new: dict[str, dict[str, str]] = field(default_factory=dict)  # intent -> device -> config
    held: list[NetconfDriver] = field(default_factory=list)

    @property
    def inventory(self) -> Any:
        assert self.net.inventory is not None
        return self.net.inventory

    def read(self) -> dict[str, DeviceConfig]:
        drivers = netconf_drivers(self.inventory, timeout_s=10)
        out = {}
        for name in self.net.topology.devices:
            driver = drivers(name)
            driver.open()
            try:
                out[name] = driver.get_config()
            finally:
                driver.close()
        return out

    def restore(self) -> None:
        """Every device back to day 0 (no fault armed)."""
        self.faults.clear()
        set_configs(self.inventory, self.day0)

    def settle(self, timeout_s: float = 20.0) -> None:
        """Wait until no device has a confirmed commit pending (device-side roll-backs done)."""
        deadline = time.monotonic() + timeout_s
        while any(d.confirm_pending for d in self.net.devices.values()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)

    def platform(self, state_dir: Path, **options: Any) -> IntentPlatform:
        return IntentPlatform(
            self.inventory, state_dir, topology=self.net.topology,
            confirm_timeout_s=CONFIRM_TIMEOUT_S, device_timeout_s=DEVICE_TIMEOUT_S, **options,
        )

    def classify(self, text: str) -> str:
        now = self.read()
        changed = {d for d in now if now[d] != self.day0[d]}
        if not changed:
            return "old_state"
        expected = self.new[text]
        if changed == set(expected) and all(_norm(now[d]) == expected[d] for d in changed):
            return "new_state"
        return "mixed"


def _norm(config: DeviceConfig) -> str:
    """A config with intent ids blanked (ACL and policer names carry the run's id)."""
    return _INTENT_ID.sub("int-X", config.model_dump_json())


# ------------------------------------------------------------------------------------------
# fault kinds: (name, intent, arm, disarm, platform options, runner)


def _device(fault: DeviceFault) -> Callable[[Harness], None]:
    def arm(h: Harness) -> None:
        h.faults.devices[TARGET] = fault
    return arm


def _snmp_drop(fraction: float) -> Callable[[Harness], None]:
    def arm(h: Harness) -> None:
        h.faults.snmp_drop = fraction
    return arm


def _wrong_password(h: Harness) -> None:
    h.net.cut_agent(TARGET, credentials=NetconfCredentials(
        username="netgpt", password="not-the-password"))  # type: ignore[arg-type]


def _right_password(h: Harness) -> None:
    h.net.cut_agent(TARGET)


def _hold_lock(h: Harness) -> None:
    driver = netconf_drivers(h.inventory, timeout_s=10)(TARGET)
    driver.open()
    driver.lock("candidate")
    h.held.append(driver)


def _release_lock(h: Harness) -> None:
    while h.held:
        h.held.pop().close()


def _nothing(h: Harness) -> None:
    return None


def _dead_llm() -> dict[str, Any]:
    return {"llm": OpenAICompatModel(OpenAICompatSettings(
        base_url="http://127.0.0.1:9/v1", timeout_s=2.0, connect_timeout_s=1.0))}


@dataclass(frozen=True)
class FaultKind:
    name: str
    intent: str
    arm: Callable[[Harness], None]
    disarm: Callable[[Harness], None] = _nothing
    options: Callable[[], dict[str, Any]] = dict
    killed: bool = False  # the platform process itself is killed mid-graph


FAULTS = [
    FaultKind("candidate_refused", MULTI,
              _device(DeviceFault(refuse_validate="candidate refused: TCAM full"))),
    FaultKind("commit_refused", MULTI,
              _device(DeviceFault(refuse_commit="commit failed: hardware programming error"))),
    FaultKind("netconf_timeout", MULTI, _device(DeviceFault(stall_commit_s=2 * DEVICE_TIMEOUT_S))),
    FaultKind("agent_killed_mid_commit", MULTI, _device(DeviceFault(cut_before_reply=True))),
    FaultKind("agent_killed_after_commit", MULTI, _device(DeviceFault(cut_after_commit=True))),
    FaultKind("ssh_auth_failure", MULTI, _wrong_password, _right_password),
    FaultKind("lock_held", MULTI, _hold_lock, _release_lock),
    FaultKind("snmp_loss_30pct", MEASURED, _snmp_drop(0.3)),
    FaultKind("telemetry_gap", MEASURED, _snmp_drop(1.0)),
    FaultKind("llm_server_down", MULTI, _nothing, options=_dead_llm),
    FaultKind("platform_killed_mid_graph", MULTI, _nothing, killed=True),
]

_CHILD = """
import sys
from pathlib import Path
from netgpt.agents.platform import IntentPlatform
from netgpt.inventory import Inventory
p = IntentPlatform(Inventory.load(Path(sys.argv[1])), Path(sys.argv[2]),
                   confirm_timeout_s={confirm}, device_timeout_s={timeout})
print("ready", flush=True)
p.submit(sys.argv[3], approved=True)
"""


def _checkpointed(state_dir: Path) -> bool:
    db = state_dir / "agent-checkpoints.sqlite"
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return bool(conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0])
    except sqlite3.Error:
        return False


def run_killed(h: Harness, text: str, state_dir: Path, rng: random.Random) -> tuple[str, str]:
    """Run the intent in a child process, SIGKILL it mid-graph, recover from the checkpoint."""
    script = _CHILD.format(confirm=CONFIRM_TIMEOUT_S, timeout=DEVICE_TIMEOUT_S)
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(h.net.files.inventory), str(state_dir), text],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _checkpointed(state_dir) and child.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.6))
    finished_first = child.poll() is not None
    if not finished_first:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    h.settle()  # the killed process's sessions closed: devices roll back unconfirmed commits
    platform = h.platform(state_dir)
    try:
        pending = platform.unfinished_runs()
        # killed before the graph stored its input: nothing was recorded, nothing applied
        outcome = "finished before the kill" if finished_first else "killed before recording"
        for run_id in pending:
            outcome = "recovered: " + platform.recover(run_id).outcome
        runs = [i.id for i in platform.store.intents()]
        run_id = runs[-1] if runs else ""
    finally:
        platform.close()
    return run_id, outcome


def one_run(h: Harness, kind: FaultKind, state_dir: Path, rng: random.Random) -> dict[str, Any]:
    h.restore()
    started = time.perf_counter()
    if kind.killed:
        run_id, outcome = run_killed(h, kind.intent, state_dir, rng)
    else:
        kind.arm(h)
        platform = h.platform(state_dir, **kind.options())
        try:
            result = platform.submit(kind.intent, approved=True)
            run_id, outcome = result.run_id, result.outcome
        except NetGPTError as exc:  # the platform must not raise; recorded as an outcome
            run_id, outcome = "", f"raised {type(exc).__name__}"
        finally:
            kind.disarm(h)
            h.faults.clear()
            platform.close()
    h.settle()
    network = h.classify(kind.intent)
    platform = h.platform(state_dir)
    try:
        lost, claimed = _records(platform, run_id)
    finally:
        platform.close()
    wrong = claimed is not None and (claimed in NEW_STATES) != (network == "new_state")
    return {"network": network, "outcome": outcome, "lost": lost, "wrong": wrong,
            "seconds": time.perf_counter() - started}


def _records(platform: IntentPlatform, run_id: str) -> tuple[bool, str | None]:
    """(data lost?, the run's stored intent state) for one run's state directory.

    Lost: the audit chain does not verify, or the runs the audit log knows and the intents the
    store holds differ (a run audited but not stored, or stored but never audited).
    """
    ok, _ = platform.audit.verify()
    stored = {i.id: i.state.value for i in platform.store.intents()}
    audited = {r.intent_id for r in platform.audit.records() if r.intent_id}
    lost = not ok or set(stored) != audited
    return lost, stored.get(run_id) if run_id else None


def prepare(h: Harness) -> None:
    """Day-0 configs, and what a fault-free run of each intent makes of them."""
    h.day0 = h.read()
    for text in (MULTI, MEASURED):
        platform = h.platform(h.work / f"reference-{len(h.new)}")
        try:
            result = platform.submit(text, approved=True)
        finally:
            platform.close()
        if result.outcome != "deployed":
            raise SystemExit(f"{text!r} does not deploy without faults: "
                             f"{result.state.get('reason')}")
        after = h.read()
        h.new[text] = {d: _norm(after[d]) for d in after if after[d] != h.day0[d]}
        h.restore()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--faults", default="", help="comma-separated subset of fault names")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    chosen = [f for f in FAULTS if not args.faults or f.name in args.faults.split(",")]
    if not chosen:
        print(f"no such faults; choose from {[f.name for f in FAULTS]}")
        return 2
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="netgpt-faults-") as tmp:
        work = Path(tmp)
        topo = build_topology("abilene")
        faults = FaultPlan()
        net = EmbeddedNetwork.on_free_ports(
            topo, work / "net",
            traffic=traffic_model("diurnal", topo, noise=0.0, burst_rate_per_hour=0.0,
                                  peak_utilization=0.5, night_level=1.0),
            netconf_start=36000, snmp_start=37000, tick_s=0.5,
        )
        net.faults = faults
        net.start()
        h = Harness(net, faults, work)
        try:
            prepare(h)
            print(f"{'fault':28} {'runs':>4} {'old':>4} {'new':>4} {'mixed':>5} {'lost':>4} "
                  f"{'wrong':>5} {'s/run':>6}  outcomes")
            for kind in chosen:
                results = [one_run(h, kind, work / f"{kind.name}-{i}", rng)
                           for i in range(args.runs)]
                count = Counter(r["network"] for r in results)
                row = {
                    "fault": kind.name,
                    "runs": len(results),
                    "old_state": count["old_state"],
                    "new_state": count["new_state"],
                    "mixed": count["mixed"],
                    "data_lost": sum(r["lost"] for r in results),
                    "state_wrong": sum(r["wrong"] for r in results),
                    "outcomes": dict(Counter(r["outcome"] for r in results)),
                    "seconds": round(sum(r["seconds"] for r in results) / len(results), 2),
                }
                rows.append(row)
                print(f"{row['fault']:28} {row['runs']:>4} {row['old_state']:>4} "
                      f"{row['new_state']:>4} {row['mixed']:>5} {row['data_lost']:>4} "
                      f"{row['state_wrong']:>5} {row['seconds']:>6}  {row['outcomes']}",
                      flush=True)
        finally:
            net.stop()
    if args.json:
        args.json.write_text(json.dumps({
            "rows": rows,
            "goal": "mixed = 0 and data_lost = 0 in every row",
            "runs_per_fault": args.runs,
            "seed": args.seed,
        }, indent=2) + "\n")
        print(f"wrote {args.json}")
    bad = [r["fault"] for r in rows if r["mixed"] or r["data_lost"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
