"""Intent drafts: the schema derived from the pydantic models, and the mapping both ways."""

from __future__ import annotations

import json

import llguidance
import pytest

from netgpt.cloud_models.intent_draft import (
    DraftError,
    draft_from_intent,
    draft_json,
    intent_draft_schema,
    intent_from_draft,
    ungrounded_names,
)
from netgpt.intents.names import NameTable
from netgpt.intents.parser import parse_intent
from netgpt.sim_networks.topology import build_topology

pytestmark = pytest.mark.unit

TABLES = {t: NameTable.from_topology(build_topology(t)) for t in ("campus", "abilene")}

# one text per construct the parser knows; each must survive intent -> draft -> intent
TEXTS = [
    ("campus", "engineering must reach servers"),
    ("campus", "isolate guests from finance"),
    ("campus", "block telnet from guests to servers on weekdays 9:00-17:00"),
    ("campus", "allow only ssh from engineering to servers"),
    ("campus", "block udp 5000-5010 from lab to 10.100.0.0/16 on weekends"),
    ("campus", "between 22:00 and 06:00 every day, deny ssh from students to servers"),
    ("campus", "allow icmp from anywhere to core1"),
    ("campus", "guarantee 20 Mbit/s for video from servers to students"),
    ("campus", "cap guests at 100 Mbps"),
    ("campus", "keep links in north and south under 70% utilization. priority high"),
    ("campus", "keep p95 latency of the generative service under 300 ms for users at site north"),
    ("campus", "availability of the generative service at least 99.9%"),
    ("campus", "traffic from students to servers must go through dist2 and core2"),
    ("abilene", "keep every link under 60% utilization"),
    ("abilene", "keep p99 latency from site Denver to site Houston below 25 ms"),
    ("abilene", "balance DNVRng to ATLAng over 3 paths"),
    ("abilene", "Seattle must reach Houston. traffic from Seattle to Houston goes through Denver"),
    ("abilene", "keep links between Chicago and New York under 70% utilization"),
]


@pytest.mark.parametrize(("topo", "text"), TEXTS)
def test_parser_intents_round_trip_through_drafts(topo, text):
    names = TABLES[topo]
    intent = parse_intent(text, names)
    draft = draft_from_intent(intent)
    assert draft["priority"] == intent.priority
    assert all(next(iter(e)) == "kind" for e in draft["expectations"])  # kind comes first
    back = intent_from_draft(json.loads(draft_json(draft)), names, text=text)
    assert back.expectations == intent.expectations
    assert back.priority == intent.priority and back.text == text


def test_drafts_leave_defaults_out_and_shorten_endpoints():
    intent = parse_intent("block tcp port 23 from students", TABLES["campus"])
    assert draft_json(draft_from_intent(intent)) == (
        '{"expectations":[{"kind":"access","action":"block","traffic":{"source":'
        '"group:students","protocol":"tcp","ports":"23"}}],"priority":5}'
    )


def test_schema_is_derived_and_narrowed_to_the_name_table():
    schema = intent_draft_schema(TABLES["campus"])
    defs = schema["$defs"]
    assert "group:engineering" in defs["endpoint"]["anyOf"][0]["enum"]
    assert "device:NYCMng" not in defs["endpoint"]["anyOf"][0]["enum"]
    assert defs["service"]["enum"] == list(TABLES["campus"].services)
    assert set(defs["place"]["enum"]) == {*TABLES["campus"].devices, *TABLES["campus"].sites}
    kinds = {d["properties"]["kind"]["const"] for d in defs.values()
             if "kind" in d.get("properties", {})}
    assert kinds == {"reachability", "access", "waypoint", "load_balancing", "bandwidth",
                     "utilization_ceiling", "latency", "slo"}
    for d in defs.values():
        if "kind" in d.get("properties", {}):
            assert d["required"][0] == "kind"
            assert d["additionalProperties"] is False
    text = json.dumps(schema)
    assert '"title"' not in text.replace('"title": "IntentDraft"', "")
    assert "timezone" not in text and "discriminator" not in text
    with pytest.raises(ValueError):
        intent_draft_schema(TABLES["campus"], max_expectations=0)


@pytest.mark.parametrize("topo", ["campus", "abilene"])
def test_llguidance_accepts_the_schema_and_every_parser_draft(topo):
    """The constrained decoder's grammar admits exactly what the drafts look like."""
    schema = intent_draft_schema(TABLES[topo])
    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        schema, defaults={"whitespace_flexible": False})
    assert llguidance.LLMatcher.validate_grammar(grammar) == ""
    tokenizer = llguidance.LLTokenizer("byte")  # one token per byte: checks text, not tokens
    for t, text in TEXTS:
        if t != topo:
            continue
        data = draft_json(draft_from_intent(parse_intent(text, TABLES[topo]))).encode()
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        tokens = tokenizer.tokenize_bytes(data)
        assert matcher.consume_tokens(tokens), (text, matcher.get_error())
        assert matcher.is_accepting(), text


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        ({"expectations": [{"kind": "reachability", "source": "group:marketing",
                            "destination": "group:servers"}], "priority": 5},
         "unknown group 'marketing'"),
        ({"expectations": [{"kind": "reachability", "source": "site:engineering",
                            "destination": "group:servers"}], "priority": 5},
         "unknown site 'engineering'"),
        ({"expectations": [{"kind": "reachability", "source": "engineering",
                            "destination": "group:servers"}], "priority": 5}, "KIND:NAME"),
        ({"expectations": [{"kind": "access", "action": "block",
                            "traffic": {"source": "group:lab", "protocol": "tcp",
                                        "ports": "80-ish"}}], "priority": 5}, "ports"),
        ({"expectations": [{"kind": "waypoint", "source": "group:lab",
                            "destination": "group:servers", "via": ["core9"]}], "priority": 5},
         "unknown device or site 'core9'"),
        ({"expectations": [{"kind": "access", "action": "block",
                            "traffic": {"source": "group:lab", "service": "quake"}}],
          "priority": 5}, "unknown service 'quake'"),
        ({"expectations": [], "priority": 5}, "non-empty"),
        ({"expectations": [{"kind": "reachability", "source": "any",
                            "destination": "any"}], "priority": 0}, "priority"),
        ({"expectations": [{"kind": "reachability", "source": "any", "destination": "any"}],
          "priority": 5, "owner": "me"}, "unexpected field"),
        ({"expectations": [{"kind": "latency", "source": "any", "destination": "any",
                            "max_ms": -3}], "priority": 5}, "greater than 0"),
        ("reach servers", "JSON object"),
    ],
)
def test_bad_drafts_are_refused_with_the_reason(draft, message):
    with pytest.raises(DraftError, match=message):
        intent_from_draft(draft, TABLES["campus"])


def test_names_resolve_case_insensitively_to_canonical_spelling():
    intent = intent_from_draft({"expectations": [{"kind": "reachability",
                                                  "source": "site:new york",
                                                  "destination": "device:nycmng"}],
                                "priority": 5}, TABLES["abilene"])
    e = intent.expectations[0]
    assert (e.source.name, e.destination.name) == ("New York", "NYCMng")


@pytest.mark.parametrize(("topo", "text"), TEXTS)
def test_what_the_parser_reads_is_grounded_in_its_text(topo, text):
    names = TABLES[topo]
    assert ungrounded_names(parse_intent(text, names), text, names) == []


@pytest.mark.parametrize(("text", "draft", "missing"), [
    # what the project's model wrote for text that names nothing (seen with the shipped weights)
    ("the quick brown fox",
     {"expectations": [{"kind": "waypoint", "source": "device:core1",
                        "destination": "prefix:10.100.0.0/16", "via": ["core1"]}]},
     ["device:core1", "prefix:10.100.0.0/16", "place:core1"]),
    ("students must reach nowhereland",
     {"expectations": [{"kind": "access", "action": "block", "traffic": {"source": "site:north"}}]},
     ["site:north"]),
    ("Kindly block telnet from the guests to the servers.",
     {"expectations": [{"kind": "access", "action": "block", "traffic": {
         "source": "group:guests", "destination": "group:servers", "service": "ssh"}}]},
     ["service:ssh"]),
    ("Kindly block telnet from the guests to the servers.",
     {"expectations": [{"kind": "access", "action": "block", "traffic": {
         "source": "group:guests", "destination": "group:servers", "service": "telnet"}}]},
     []),
])
def test_names_a_reading_invents_are_reported(text, draft, missing):
    names = TABLES["campus"]
    intent = intent_from_draft({**draft, "priority": 5}, names, text=text)
    assert ungrounded_names(intent, text, names) == missing
