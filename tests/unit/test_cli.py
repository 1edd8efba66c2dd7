import pytest
from typer.testing import CliRunner

from netgpt.cli import app

pytestmark = pytest.mark.unit

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["net"],
        ["net", "up"],
        ["net", "down"],
        ["net", "status"],
        ["telemetry"],
        ["telemetry", "watch"],
        ["telemetry", "poll"],
        ["demo"],
    ],
)
def test_help_everywhere(args):
    got = runner.invoke(app, [*args, "--help"])
    assert got.exit_code == 0, got.output
    assert "Usage" in got.output


def test_status_without_network_says_so(tmp_path):
    got = runner.invoke(app, ["net", "status", "--state-dir", str(tmp_path)])
    assert got.exit_code == 1
    assert "no network is running" in got.output


def test_bad_numbers_are_refused_before_anything_starts(tmp_path):
    got = runner.invoke(
        app, ["telemetry", "poll", "--state-dir", str(tmp_path), "--interval", "0"]
    )
    assert got.exit_code == 2
    assert "--interval" in got.output


def test_audit_verify_finds_an_edited_record(tmp_path):
    import sqlite3

    from netgpt.agents.audit import AuditLog

    path = tmp_path / "agent" / "audit.sqlite"
    path.parent.mkdir()
    log = AuditLog(path)
    for step in ("parse", "compile", "apply"):
        log.append(actor="alice", intent_id="int-1", step=step, outcome="ok")
    log.close()
    intact = runner.invoke(app, ["audit", "verify", "--state-dir", str(tmp_path)])
    assert intact.exit_code == 0 and "3 records intact" in intact.output
    with sqlite3.connect(path) as db:  # someone rewrites history: the apply was refused
        db.execute("UPDATE audit SET outcome = 'refused' WHERE step = 'apply'")
    broken = runner.invoke(app, ["audit", "verify", "--state-dir", str(tmp_path)])
    assert broken.exit_code == 1
    assert "BROKEN" in broken.output
    assert "record 3: content does not match its hash" in broken.output
    missing = runner.invoke(app, ["audit", "verify", "--state-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "no audit log at" in missing.output
