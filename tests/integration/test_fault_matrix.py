"""The fault matrix, once per fault kind: the network ends wholly old or wholly new.

Runs ``benchmarks/reliability.py`` itself (one run per fault, fixed seed), so the benchmark and
its fault-injection layer are exercised in CI; the full matrix (20 runs each) is the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = "old_state", "new_state"
EXPECTED = {
    # the fault leaves nothing applied; the platform says the run failed or rolled back
    "candidate_refused": {OLD},
    "commit_refused": {OLD},
    "netconf_timeout": {OLD},
    "agent_killed_mid_commit": {OLD},
    "ssh_auth_failure": {OLD},
    "lock_held": {OLD},
    "telemetry_gap": {OLD},
    # the platform gets through: no model, a crash recovered from its checkpoint
    "llm_server_down": {NEW},
    "platform_killed_mid_graph": {NEW},
    # races by nature: a confirm may beat the cut; six polls may not beat 30 % loss
    "agent_killed_after_commit": {OLD, NEW},
    "snmp_loss_30pct": {OLD, NEW},
}


def test_every_fault_kind_ends_wholly_old_or_wholly_new(tmp_path: Path) -> None:
    out = tmp_path / "reliability.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "reliability.py"), "--runs", "1",
         "--seed", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )
    assert out.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    rows = {r["fault"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == set(EXPECTED)
    assert len(rows) >= 10
    for name, row in rows.items():
        assert row["mixed"] == 0 and row["data_lost"] == 0 and row["state_wrong"] == 0, row
        assert sum(row[end] for end in EXPECTED[name]) == 1, (name, row)
    assert done.returncode == 0, done.stdout[-2000:]
