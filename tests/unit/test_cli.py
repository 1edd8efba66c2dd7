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
