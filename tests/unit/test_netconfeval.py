from __future__ import annotations

from pathlib import Path

import pytest

from netgpt.errors import ConfigError
from netgpt.intents.model import Intent, LatencyExpectation, SiteEndpoint
from netgpt.intents.netconfeval import (
    from_netconfeval,
    load_step1,
    name_table,
    score_step1,
    to_netconfeval,
    translate_step1,
)

pytestmark = pytest.mark.unit

DATA = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "intents"
        / "netconfeval" / "step_1_spec_translation.jsonl")
SPEC = {
    "reachability": {"milan": ["100.0.1.0/24"], "paris": ["100.0.2.0/24", "100.0.3.0/24"]},
    "waypoint": {"(milan,100.0.1.0/24)": ["zurich"]},
    "loadbalancing": {"(milan,100.0.1.0/24)": 2},
}


def test_round_trip() -> None:
    assert to_netconfeval(from_netconfeval(SPEC)) == SPEC


def test_export_refuses_other_kinds() -> None:
    intent = Intent(expectations=(LatencyExpectation(
        source=SiteEndpoint(name="a"), destination=SiteEndpoint(name="b"), max_ms=3),))
    with pytest.raises(ConfigError):
        to_netconfeval(intent)


def test_metric() -> None:
    assert score_step1(SPEC, SPEC).accuracy == 1.0
    partial = {"reachability": {"paris": ["100.0.2.0/24"]},
               "waypoint": {"(milan, 100.0.1.0/24)": ["basel"]},
               "loadbalancing": {"(milan,100.0.1.0/24)": 2}}
    score = score_step1(SPEC, partial)
    assert (score.expected, score.success, score.wrong) == (5, 2, 1)
    assert score_step1(SPEC, partial, lenient_waypoints=True).success == 3
    assert score_step1(SPEC, {}).accuracy == 0.0


@pytest.fixture(scope="module")
def rows() -> list:
    if not DATA.exists():
        pytest.skip(f"NetConfEval data not found at {DATA}")
    return load_step1(DATA)


def test_real_rows(rows: list) -> None:
    assert len(rows) == 1665
    names = name_table(r.expected for r in rows)
    picked = [r for r in rows if r.n_policy_types == 3][:5] + rows[:5]
    for r in picked:
        assert score_step1(r.expected, translate_step1(r.human_language, names)).accuracy == 1.0
        assert to_netconfeval(from_netconfeval(r.expected)) == r.expected
