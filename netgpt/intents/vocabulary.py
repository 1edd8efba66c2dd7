"""The words of the controlled intent language (see ``docs/intent-language.md``).

Pure data: cue words per expectation kind, role markers, units, numbers in words, weekdays,
well-known services and the filler words the parser may skip. Everything is lower case.
"""

from __future__ import annotations

from datetime import time

__all__ = [
    "ACCESS_ALLOW",
    "ACCESS_BLOCK",
    "ANY_WORDS",
    "BANDWIDTH_CAP",
    "BANDWIDTH_GUARANTEE",
    "CLAUSE_STARTERS",
    "DAY_GROUPS",
    "FILLER",
    "ISOLATE",
    "LATENCY",
    "LB",
    "LIST_JOINERS",
    "NEGATION",
    "NUMBER_WORDS",
    "PATH_WORDS",
    "PRIORITY_WORDS",
    "RATE_UNITS",
    "REACH",
    "REFUSAL_PATTERNS",
    "SLO_AVAILABILITY",
    "SLO_THROUGHPUT",
    "THRESHOLD",
    "TIME_UNITS",
    "UTILIZATION",
    "WAYPOINT",
    "WEEKDAYS",
    "WELL_KNOWN_SERVICES",
    "WHOLE_DAY_END",
    "WORKLOADS",
]

# instructions aimed at the system rather than the network: refused, never parsed
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\b(ignore|override|overrule|bypass|circumvent|disable|skip|forget|turn\s+off|suspend)\b"
    r".*\b(polic(y|ies)|guardrails?|rules?|approvals?|instructions?|safety|checks?|limits?)\b",
    r"\b(shut(\s*down)?|shutdown|disable|turn\s+off|take\s+down|bring\s+down)\b.*"
    r"\b(every|all|each|whole|entire)\b.*\b(interfaces?|ports?|links?|devices?|routers?|"
    r"switches?|network|nodes?)\b",
    r"\b(delete|erase|wipe|remove|reset|destroy|purge|clear)\b.*\b(config(uration)?s?|"
    r"running|startup|everything|all\s+devices)\b",
    r"\b(factory[\s-]reset|reboot\s+(every|all)|reload\s+(every|all)|format\s+)",
    r"\b(you\s+are\s+now|act\s+as|pretend|jailbreak|system\s+prompt)\b",
)

NEGATION = frozenset(
    {
        "not", "no", "never", "cannot", "can't", "cant", "mustn't", "shouldn't", "don't",
        "doesn't", "won't", "isn't", "aren't", "nobody", "none", "without", "unable",
    }
)
ISOLATE = frozenset(
    {"isolate", "isolated", "separate", "separated", "segregate", "segregated", "away", "cut"}
)
REACH = frozenset(
    {
        "reach", "reaches", "reaching", "reachable", "reached", "accessible", "access",
        "connectivity", "connect", "connected", "connects", "communicate", "communicates",
        "talk", "talks", "contact", "route", "path", "get",
    }
)
ACCESS_ALLOW = frozenset(
    {"allow", "allows", "allowed", "permit", "permits", "permitted", "accept", "accepted"}
)
ACCESS_BLOCK = frozenset(
    {
        "block", "blocks", "blocked", "deny", "denies", "denied", "drop", "drops", "dropped",
        "forbid", "forbids", "forbidden", "reject", "rejects", "rejected", "prevent", "disallow",
        "disallowed", "filter", "filtered", "prohibit", "prohibited", "stop",
    }
)
WAYPOINT = frozenset(
    {
        "through", "via", "traverse", "traverses", "traversing", "transit", "transits",
        "waypoint", "waypoints", "involves", "involve", "includes", "include", "passes", "pass",
        "passing", "crosses", "cross",
    }
)
LB = frozenset(
    {
        "balance", "balanced", "balancing", "load-balance", "load-balanced", "load-balancing",
        "split", "splits", "spread", "distribute", "distributed", "ecmp", "multipath",
        "load-share", "load-shared", "share",
    }
)
PATH_WORDS = frozenset({"path", "paths", "route", "routes", "ways"})
UTILIZATION = frozenset(
    {"utilization", "utilisation", "utilized", "utilised", "load", "loaded", "usage"}
)
LATENCY = frozenset({"latency", "delay", "rtt", "latencies", "delays"})
SLO_AVAILABILITY = frozenset({"availability", "available", "uptime"})
SLO_THROUGHPUT = frozenset({"throughput"})
BANDWIDTH_CAP = frozenset(
    {
        "cap", "capped", "limit", "limited", "throttle", "throttled", "police", "policed",
        "most", "max", "maximum", "shape", "shaped", "exceed",
    }
)
BANDWIDTH_GUARANTEE = frozenset(
    {"guarantee", "guaranteed", "reserve", "reserved", "least", "minimum", "min", "assure"}
)
# threshold words consumed around numbers ("under 70%", "no more than 30 ms")
THRESHOLD = frozenset(
    {
        "under", "below", "beneath", "less", "than", "within", "most", "max", "maximum",
        "exceed", "exceeds", "above", "over", "more", "beyond", "lower", "up", "<", "<=",
        "ceiling", "threshold", "stay", "stays", "remain", "remains", "go", "goes",
    }
)
RATE_UNITS: dict[tuple[str, ...], float] = {
    ("bps",): 1e-6,
    ("kbps",): 1e-3,
    ("kbit", "/", "s"): 1e-3,
    ("kb", "/", "s"): 1e-3,
    ("kbits", "per", "second"): 1e-3,
    ("kilobits", "per", "second"): 1e-3,
    ("mbps",): 1.0,
    ("mbit", "/", "s"): 1.0,
    ("mb", "/", "s"): 1.0,
    ("mbits", "per", "second"): 1.0,
    ("mbit",): 1.0,
    ("megabits", "per", "second"): 1.0,
    ("megabit", "per", "second"): 1.0,
    ("megabits",): 1.0,
    ("gbps",): 1000.0,
    ("gbit", "/", "s"): 1000.0,
    ("gb", "/", "s"): 1000.0,
    ("gbit",): 1000.0,
    ("gigabits", "per", "second"): 1000.0,
    ("gigabit", "per", "second"): 1000.0,
    ("gigabits",): 1000.0,
    ("tbps",): 1e6,
}
TIME_UNITS: dict[tuple[str, ...], float] = {
    ("ms",): 1.0,
    ("msec",): 1.0,
    ("millisecond",): 1.0,
    ("milliseconds",): 1.0,
    ("s",): 1000.0,
    ("sec",): 1000.0,
    ("second",): 1000.0,
    ("seconds",): 1000.0,
    ("us",): 1e-3,
    ("µs",): 1e-3,
    ("microseconds",): 1e-3,
}
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "sixteen": 16, "twenty": 20,
    "zero": 0, "single": 1, "a couple of": 2,
}
PRIORITY_WORDS = {
    "lowest": 1, "low": 3, "normal": 5, "medium": 5, "default": 5, "high": 8, "highest": 10,
    "critical": 10, "urgent": 10, "top": 10,
}
WEEKDAYS = {
    "monday": "mon", "mon": "mon", "tuesday": "tue", "tue": "tue", "tues": "tue",
    "wednesday": "wed", "wed": "wed", "thursday": "thu", "thu": "thu", "thur": "thu",
    "thurs": "thu", "friday": "fri", "fri": "fri", "saturday": "sat", "sat": "sat",
    "sunday": "sun", "sun": "sun",
    "mondays": "mon", "tuesdays": "tue", "wednesdays": "wed", "thursdays": "thu",
    "fridays": "fri", "saturdays": "sat", "sundays": "sun",
}
DAY_GROUPS: dict[str, tuple[str, ...]] = {
    "weekdays": ("mon", "tue", "wed", "thu", "fri"),
    "weekday": ("mon", "tue", "wed", "thu", "fri"),
    "workdays": ("mon", "tue", "wed", "thu", "fri"),
    "weekends": ("sat", "sun"),
    "weekend": ("sat", "sun"),
    "daily": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
}
WHOLE_DAY_END = time.max

# well-known services used when the topology does not name them: (protocol, port)
WELL_KNOWN_SERVICES: dict[str, tuple[str, int]] = {
    "ssh": ("tcp", 22),
    "telnet": ("tcp", 23),
    "smtp": ("tcp", 25),
    "dns": ("udp", 53),
    "http": ("tcp", 80),
    "https": ("tcp", 443),
    "ntp": ("udp", 123),
    "snmp": ("udp", 161),
    "bgp": ("tcp", 179),
    "ldap": ("tcp", 389),
    "rdp": ("tcp", 3389),
    "sip": ("udp", 5060),
    "ftp": ("tcp", 21),
}

# managed workloads an SLO can name: canonical -> phrases
WORKLOADS: dict[str, tuple[str, ...]] = {
    "generative": ("generative", "genai", "gen-ai", "llm", "generative ai"),
}

ANY_WORDS: tuple[tuple[str, ...], ...] = (
    ("anywhere",), ("anyone",), ("everyone",), ("everybody",), ("any", "host"),
    ("any", "hosts"), ("all", "hosts"), ("any", "source"), ("any", "destination"),
)

LIST_JOINERS = frozenset({",", "and", "or", "&", "then", "plus", "as", "well"})
CLAUSE_STARTERS = frozenset(
    {
        "allow", "permit", "block", "deny", "drop", "forbid", "reject", "guarantee", "reserve",
        "cap", "limit", "throttle", "keep", "balance", "split", "spread", "traffic", "it",
        "this", "be", "must", "should", "ensure",
    }
)

# words the parser may skip: grammar, politeness, and nouns that carry no extra meaning here
FILLER = frozenset(
    """
    a an the this that these those it its their there here of on in at by for with to from
    as is are be been being was were will would shall should must may might can could ought
    need needs needed has have had do does did done make makes sure ensure ensures keep kept
    let lets please always also only all every each any some both either neither so such
    than then which who whom whose what when while if and or but nor into onto toward
    towards between among across over along behind within via per up down out off traffic
    packets packet flows flow hosts host users user clients client machines devices device
    nodes node routers router switches switch network networks subnet subnets prefix
    prefixes segment segments department departments team teams side location locations site
    sites group groups service services link links backbone region regions zone zones area
    data stream streams connection connections able possible enough going goes go heading
    headed coming originating originate originates sent send sending sends destined bound
    use used uses using get gets getting take takes taking carry carried stay stays remain
    remains established establish set configured directed steer steered forced forward
    forwarded routed routing evenly equally equal-cost equal different distinct disjoint
    parallel separate independent number should-be always at-all times time hours
    """.split()  # noqa: SIM905
)
