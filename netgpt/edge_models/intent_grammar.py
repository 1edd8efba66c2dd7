"""The edge intent model's output language: a grammar over placeholders, and drafts from it.

The model writes a short token sequence, for example::

    reach <e1> <e2> no ; access block <e3> any svc <s1> win weekdays <t1> <t2> prio high <end>

:class:`OutputGrammar` says, after any prefix, which tokens may come next for one
:class:`~netgpt.edge_models.intent_tagging.TaggedRequest`: a pointer only to a mention of the
right kind (a rate where a rate goes, a device or site where a waypoint goes, a number from 2 to
64 for a path count), a kind only when the request has the mentions it needs. Decoding masked by
it can only end in a sequence :func:`build_draft` turns into a draft that
:func:`~netgpt.cloud_models.intent_draft.intent_from_draft` accepts. :func:`align` is the inverse
(draft -> tokens) that makes training targets; it returns ``None`` when a draft's values are not
all in the request's mentions. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netgpt.edge_models.intent_tagging import WELL_KNOWN, Mention, TaggedRequest
from netgpt.intents.vocabulary import PRIORITY_WORDS, WELL_KNOWN_SERVICES

__all__ = [
    "END",
    "GRAMMAR_TOKENS",
    "MAX_EXPECTATIONS",
    "GrammarError",
    "OutputGrammar",
    "align",
    "build_draft",
]

END = "<end>"
MAX_EXPECTATIONS = 4
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_GROUPS = {"weekdays": _DAYS[:5], "weekends": _DAYS[5:], "daily": _DAYS}
_PRIORITY = {"lowest": 1, "low": 3, "high": 8, "critical": 10}
_KINDS = ("reach", "access", "waypoint", "balance", "bandwidth", "util", "latency", "slo")
GRAMMAR_TOKENS: tuple[str, ...] = (
    *_KINDS, "yes", "no", "allow", "block", "any", "svc", "proto", "tcp", "udp", "all", "win",
    *_DAY_GROUPS, *_DAYS, "via", "/", "cap", "guarantee", "path", "region", "pct", "median",
    "p95", "p50", "availability", "throughput", "scope", ";", "prio", *_PRIORITY, END,
)


class GrammarError(ValueError):
    """A token sequence the grammar does not accept (a bug in the caller, not in the input)."""


def _is_int_in(m: Mention, lo: int, hi: int) -> bool:
    v = m.value
    return isinstance(v, (int, float)) and float(v).is_integer() and lo <= v <= hi


class OutputGrammar:
    """Which tokens may follow a prefix, for one tagged request."""

    def __init__(self, request: TaggedRequest) -> None:
        self.request = request
        ents = request.of_kind("endpoint")
        self.endpoints = [m.token for m in ents]
        self.places = [m.token for m in ents
                       if str(m.value).startswith(("site:", "device:"))]
        self.rates = [m.token for m in request.of_kind("rate")]
        self.percents = [m.token for m in request.of_kind("percent")
                         if isinstance(m.value, float) and 0 < m.value <= 1]
        self.ms = [m.token for m in request.of_kind("ms")]
        self.times = [m.token for m in request.of_kind("time")]
        self.ports = [m.token for m in request.of_kind("ports")]
        self.services = [m.token for m in request.of_kind("service")]
        self.workloads = [m.token for m in request.of_kind("workload")]
        numbers = request.of_kind("number")
        self.path_counts = [m.token for m in numbers if _is_int_in(m, 2, 64)]
        self.percentiles = [m.token for m in numbers
                            if isinstance(m.value, (int, float)) and 0 < m.value < 100]
        self.priorities = [m.token for m in numbers if _is_int_in(m, 1, 10)]
        self._follow: list[str] = [END]

    # The grammar as a program: _walk consumes the prefix and returns what may come next.
    def allowed(self, prefix: Sequence[str]) -> list[str]:
        """Tokens that may follow ``prefix`` (empty when the sequence is complete)."""
        return self._walk(list(prefix))

    def _kinds(self) -> list[str]:
        two = len(self.endpoints) >= 2
        out = []
        if two:
            out.append("reach")
        out.append("access")
        if two and self.places:
            out.append("waypoint")
        if two and self.path_counts:
            out.append("balance")
        if self.rates:
            out.append("bandwidth")
        if self.percents:
            out.append("util")
        if two and self.ms:
            out.append("latency")
        if self.workloads and (self.ms or self.percents or self.rates):
            out.append("slo")
        return out

    def _walk(self, toks: list[str]) -> list[str]:
        pos = 0
        n_exp = 0

        def take(options: list[str]) -> str | list[str]:
            nonlocal pos
            if pos >= len(toks):
                return options
            tok = toks[pos]
            if tok not in options and _PEEK in options:
                return _PEEK  # an optional part not taken: the body ends before ``tok``
            if tok not in options:
                raise GrammarError(f"{tok!r} at {pos} is not one of {options}")
            pos += 1
            return tok

        # each step either returns the allowed list (prefix exhausted) or the token taken
        while True:
            kind = take(self._kinds())
            if isinstance(kind, list):
                return kind
            n_exp += 1
            tail = ([";"] if n_exp < MAX_EXPECTATIONS else []) + ["prio", END]
            self._follow = tail
            result = self._expectation(kind, take)
            if result is not None:
                return result
            nxt = take(tail)
            if isinstance(nxt, list):
                return nxt
            if nxt == ";":
                continue
            if nxt == "prio":
                p = take(list(_PRIORITY) + self.priorities)
                if isinstance(p, list):
                    return p
                end = take([END])
                if isinstance(end, list):
                    return end
            if pos < len(toks):
                raise GrammarError(f"tokens after {END}: {toks[pos:]}")
            return []

    def _expectation(self, kind: str, take: Any) -> list[str] | None:
        """Consume one expectation's body; the allowed list when the prefix ends inside it."""
        def seq(*steps: Any) -> list[str] | None:
            for step in steps:
                options = step() if callable(step) else step
                got = take(options)
                if isinstance(got, list):
                    return got
                taken.append(got)
            return None

        taken: list[str] = []
        ep = self.endpoints

        def other() -> list[str]:
            return [e for e in ep if e not in taken]

        def src() -> list[str]:
            return ["any", *ep]

        def dst() -> list[str]:
            return other() if taken[-1] == "any" else ["any", *other()]

        if kind == "reach":
            return seq(src, dst, ["yes", "no"])
        if kind == "waypoint":
            r = seq(src, dst, ["via"])
            if r is not None:
                return r
            via: list[str] = []
            while True:
                more = [p for p in self.places if p not in via]
                if not via:
                    got = take(more)
                    if isinstance(got, list):
                        return got
                    via.append(got)
                    continue
                got = take([*more, "/"])
                if isinstance(got, list):
                    return got
                if got == "/":
                    return None
                via.append(got)
        if kind == "balance":
            return seq(src, dst, self.path_counts)
        if kind == "latency":
            r = seq(src, dst, self.ms)
            if r is not None:
                return r
            return self._optional(take, [("pct", lambda: [*self.percentiles, "median"]),
                                         ("svc", lambda: self.services)])
        if kind in ("access", "bandwidth"):
            first = ["allow", "block"] if kind == "access" else ["cap", "guarantee"]
            r = seq(first, ["any", *ep], lambda: ["any", *other()])
            if r is not None:
                return r
            if kind == "bandwidth":
                opt = self._optional(take, [("svc", lambda: self.services)], final=self.rates)
                return opt
            choices = ["all", "proto"] + (["svc"] if self.services else [])
            what = take(choices)
            if isinstance(what, list):
                return what
            if what == "svc":
                got = take(self.services)
                if isinstance(got, list):
                    return got
            elif what == "proto":
                got = take(["tcp", "udp"])
                if isinstance(got, list):
                    return got
                if self.ports:
                    # ports are optional: the next token is a port or what follows the body
                    return self._access_tail(take, ports=True)
            return self._access_tail(take, ports=False)
        if kind == "util":
            r = seq(self.percents)
            if r is not None:
                return r
            return self._util_tail(take)
        if kind == "slo":
            metrics = ([*(["p95", "p50"] if self.ms else []),
                        *(["availability"] if self.percents else []),
                        *(["throughput"] if self.rates else [])])
            r = seq(self.workloads, metrics)
            if r is not None:
                return r
            value = {"p95": self.ms, "p50": self.ms, "availability": self.percents,
                     "throughput": self.rates}[taken[-1]]
            r = seq(value)
            if r is not None:
                return r
            return self._optional(take, [("scope", lambda: ep)])
        raise GrammarError(f"unknown kind {kind!r}")

    def _optional(self, take: Any, parts: list[tuple[str, Any]],
                  final: list[str] | None = None) -> list[str] | None:
        """Optional ``keyword value`` parts in order; then ``final`` (one required token)."""
        i = 0
        while True:
            open_parts = [k for k, values in parts[i:] if values()]
            got = take(open_parts + final) if final is not None else take([*open_parts, _PEEK])
            if isinstance(got, list):
                return [t for t in got if t != _PEEK] + ([] if final is not None else
                                                          self._follow)
            if got == _PEEK:
                return None
            if final is not None and got in final:
                return None
            i = next(j for j in range(i, len(parts)) if parts[j][0] == got) + 1
            value = take(parts[i - 1][1]())
            if isinstance(value, list):
                return value

    def _access_tail(self, take: Any, *, ports: bool) -> list[str] | None:
        distinct_times = len({self.request.by_token[t].value for t in self.times}) >= 2
        options = (self.ports if ports else []) + (["win"] if distinct_times else [])
        got = take([*options, _PEEK])
        if isinstance(got, list):
            return [t for t in got if t != _PEEK] + self._follow
        if got == _PEEK:
            return None
        if got != "win":
            return self._access_tail(take, ports=False)
        days = take([*_DAY_GROUPS, *_DAYS])
        if isinstance(days, list):
            return days
        if days in _DAYS:
            picked = [days]
            while True:
                more = take([d for d in _DAYS if d not in picked] + ["/"])
                if isinstance(more, list):
                    return more
                if more == "/":
                    break
                picked.append(more)
        start = take(self.times)
        if isinstance(start, list):
            return start
        start_at = self.request.by_token[start].value
        end = take([t for t in self.times if self.request.by_token[t].value != start_at])
        if isinstance(end, list):
            return end
        return None

    def _util_tail(self, take: Any) -> list[str] | None:
        ep = self.endpoints
        opts = ["path", "region", "svc"]
        while True:
            usable = [o for o in opts if (o != "svc" or self.services)
                      and (o != "region" or self.places)]
            got = take([*usable, _PEEK])
            if isinstance(got, list):
                return [t for t in got if t != _PEEK] + self._follow
            if got == _PEEK:
                return None
            # a ceiling is on a path or over a region, never both (the model refuses both)
            opts = [o for o in opts[opts.index(got) + 1:] if not (got == "path" and o == "region")]
            if got == "path":
                a = take(ep)
                if isinstance(a, list):
                    return a
                b = take([e for e in ep if e != a])
                if isinstance(b, list):
                    return b
            elif got == "region":
                picked: list[str] = []
                while True:
                    r = take([p for p in self.places if p not in picked]
                             + (["/"] if picked else []))
                    if isinstance(r, list):
                        return r
                    if r == "/":
                        break
                    picked.append(r)
            else:
                s = take(self.services)
                if isinstance(s, list):
                    return s


# offered with optional parts: "the body may end here"; take() returns it, without consuming,
# when the next token is none of the options (the end of the prefix offers what follows a body)
_PEEK = "\x00end-of-body"


# ------------------------------------------------------------------------------------------
# tokens -> draft


def _value(req: TaggedRequest, token: str) -> Any:
    return req.by_token[token].value


def _service_fields(value: Any) -> dict[str, Any]:
    """A service mention's draft fields: its name, or a well-known one's protocol and port."""
    name = str(value)
    if name.startswith(WELL_KNOWN):
        protocol, port = WELL_KNOWN_SERVICES[name[len(WELL_KNOWN):]]
        return {"protocol": protocol, "ports": str(port)}
    return {"service": name}


def _name(label: str) -> str:
    return label.split(":", 1)[1]


def build_draft(tokens: Sequence[str], req: TaggedRequest) -> dict[str, Any]:
    """The draft a complete, grammar-valid token sequence stands for."""
    toks = [t for t in tokens if t != END]
    exps: list[dict[str, Any]] = []
    priority = 5
    i = 0

    def nxt() -> str:
        nonlocal i
        if i >= len(toks):
            raise GrammarError(f"sequence ends early: {toks}")
        i += 1
        return toks[i - 1]

    def peek() -> str | None:
        return toks[i] if i < len(toks) else None

    def endpoint(tok: str) -> str:
        return "any" if tok == "any" else str(_value(req, tok))

    while i < len(toks):
        kind = nxt()
        if kind == "prio":
            p = nxt()
            priority = _PRIORITY[p] if p in _PRIORITY else int(_value(req, p))
            continue
        if kind == ";":
            continue
        if kind == "reach":
            e: dict[str, Any] = {"kind": "reachability", "source": endpoint(nxt()),
                                 "destination": endpoint(nxt())}
            if nxt() == "no":
                e["reachable"] = False
        elif kind == "waypoint":
            e = {"kind": "waypoint", "source": endpoint(nxt()), "destination": endpoint(nxt())}
            nxt()  # via
            via = []
            while peek() not in (None, "/"):
                via.append(_name(endpoint(nxt())))
            if peek() == "/":
                nxt()
            e["via"] = via
        elif kind == "balance":
            e = {"kind": "load_balancing", "source": endpoint(nxt()),
                 "destination": endpoint(nxt()), "paths": int(_value(req, nxt()))}
        elif kind == "latency":
            e = {"kind": "latency", "source": endpoint(nxt()), "destination": endpoint(nxt()),
                 "max_ms": float(_value(req, nxt()))}
            while peek() in ("pct", "svc"):
                key = nxt()
                v = nxt()
                if key == "pct":
                    e["percentile"] = 50.0 if v == "median" else float(_value(req, v))
                else:
                    e["service"] = _value(req, v)
        elif kind in ("access", "bandwidth"):
            mode = nxt()
            traffic: dict[str, Any] = {}
            src, dst = endpoint(nxt()), endpoint(nxt())
            if src != "any":
                traffic["source"] = src
            if dst != "any":
                traffic["destination"] = dst
            if kind == "access":
                e = {"kind": "access", "action": mode}
                what = nxt()
                if what == "svc":
                    traffic.update(_service_fields(_value(req, nxt())))
                elif what == "proto":
                    traffic["protocol"] = nxt()
                    if peek() is not None and peek() in req.by_token:
                        traffic["ports"] = _value(req, nxt())
                if peek() == "win":
                    nxt()
                    d = nxt()
                    if d in _DAY_GROUPS:
                        days = list(_DAY_GROUPS[d])
                    else:
                        days = [d]
                        while peek() != "/":
                            days.append(nxt())
                        nxt()
                        days = [x for x in _DAYS if x in days]
                    start, end = _value(req, nxt()), _value(req, nxt())
                    e["window"] = {"days": days, "start": start, "end": end}
                e["traffic"] = traffic
            else:
                e = {"kind": "bandwidth", "mode": mode}
                if peek() == "svc":
                    nxt()
                    traffic.update(_service_fields(_value(req, nxt())))
                e["traffic"] = traffic
                e["rate_mbps"] = float(_value(req, nxt()))
        elif kind == "util":
            e = {"kind": "utilization_ceiling", "max_utilization": float(_value(req, nxt()))}
            while peek() in ("path", "region", "svc"):
                key = nxt()
                if key == "path":
                    e["source"], e["destination"] = endpoint(nxt()), endpoint(nxt())
                elif key == "region":
                    region = []
                    while peek() != "/":
                        region.append(_name(endpoint(nxt())))
                    nxt()
                    e["region"] = region
                else:
                    e["service"] = _value(req, nxt())
        elif kind == "slo":
            workload = _value(req, nxt())
            metric = nxt()
            target = float(_value(req, nxt()))
            e = {"kind": "slo", "workload": workload,
                 "metric": {"p95": "latency_p95_ms", "p50": "latency_p50_ms",
                            "availability": "availability",
                            "throughput": "throughput_mbps"}[metric],
                 "target": target}
            if peek() == "scope":
                nxt()
                e["scope"] = endpoint(nxt())
        else:
            raise GrammarError(f"unknown token {kind!r} where a kind goes")
        exps.append(e)
    return {"expectations": exps, "priority": priority}


# ------------------------------------------------------------------------------------------
# draft -> tokens (training targets)


class _Unaligned(Exception):
    pass


def _find(req: TaggedRequest, kind: str, value: Any, *, used: set[str] | None = None) -> str:
    best = None
    for m in req.mentions:
        if m.kind != kind:
            continue
        same = (m.value == value if not isinstance(value, float) or not isinstance(
            m.value, (int, float)) else abs(float(m.value) - value) < 1e-6)
        if same and (used is None or m.token not in used):
            if m.mentioned:
                return m.token
            best = best or m.token
    if best is None:
        raise _Unaligned(f"{kind} {value!r}")
    return best


def _place(req: TaggedRequest, name: str) -> str:
    for kind in ("site", "device"):
        try:
            return _find(req, "endpoint", f"{kind}:{name}")
        except _Unaligned:
            continue
    raise _Unaligned(name)


def align(draft: dict[str, Any], req: TaggedRequest, text: str = "") -> list[str] | None:
    """The token sequence standing for ``draft`` in ``req``'s mentions, or ``None``."""
    try:
        return _align(draft, req, text.lower())
    except (_Unaligned, KeyError, TypeError, ValueError):
        return None


def _well_known(req: TaggedRequest, traffic: dict[str, Any]) -> str | None:
    """The well-known service mention whose protocol and port ``traffic`` has, if any."""
    for m in req.of_kind("service"):
        if str(m.value).startswith(WELL_KNOWN) and _service_fields(m.value) == {
                "protocol": traffic.get("protocol"), "ports": str(traffic.get("ports"))}:
            return m.token
    return None


def _ep(req: TaggedRequest, label: Any) -> str:
    return "any" if label in (None, "any") else _find(req, "endpoint", label)


def _align(draft: dict[str, Any], req: TaggedRequest, text: str) -> list[str]:
    out: list[str] = []
    exps = draft["expectations"]
    if not 1 <= len(exps) <= MAX_EXPECTATIONS:
        raise _Unaligned("expectation count")
    for k, e in enumerate(exps):
        if k:
            out.append(";")
        kind = e["kind"]
        if kind == "reachability":
            out += ["reach", _ep(req, e["source"]), _ep(req, e["destination"]),
                    "yes" if e.get("reachable", True) else "no"]
        elif kind == "waypoint":
            out += ["waypoint", _ep(req, e["source"]), _ep(req, e["destination"]), "via"]
            out += [_place(req, v) for v in e["via"]] + ["/"]
        elif kind == "load_balancing":
            out += ["balance", _ep(req, e["source"]), _ep(req, e["destination"]),
                    _find(req, "number", e["paths"])]
        elif kind == "latency":
            out += ["latency", _ep(req, e["source"]), _ep(req, e["destination"]),
                    _find(req, "ms", float(e["max_ms"]))]
            pct = e.get("percentile")
            if pct is not None and float(pct) != 95.0:
                try:
                    out += ["pct", _find(req, "number", float(pct))]
                except _Unaligned:
                    if float(pct) != 50.0 or "median" not in text:
                        raise
                    out += ["pct", "median"]
            if e.get("service"):
                out += ["svc", _find(req, "service", e["service"])]
        elif kind in ("access", "bandwidth"):
            t = e.get("traffic", {})
            mode = e["action"] if kind == "access" else e["mode"]
            out += [kind, mode, _ep(req, t.get("source")), _ep(req, t.get("destination"))]
            if kind == "access":
                well_known = _well_known(req, t)
                if t.get("service"):
                    out += ["svc", _find(req, "service", t["service"])]
                elif well_known:
                    out += ["svc", well_known]
                elif t.get("protocol") in ("tcp", "udp"):
                    out += ["proto", t["protocol"]]
                    if t.get("ports"):
                        out.append(_find(req, "ports", str(t["ports"])))
                elif t.get("ports"):
                    raise _Unaligned("ports without protocol")
                else:
                    out.append("all")
                w = e.get("window")
                if w:
                    days = [d for d in _DAYS if d in (w.get("days") or _DAYS)]
                    group = next((g for g, ds in _DAY_GROUPS.items() if list(ds) == days), None)
                    out += ["win"] + ([group] if group else [*days, "/"])
                    end = "00:00" if w["end"] == "24:00" else w["end"]
                    out += [_find(req, "time", w["start"]), _find(req, "time", end)]
            else:
                well_known = _well_known(req, t)
                if t.get("service"):
                    out += ["svc", _find(req, "service", t["service"])]
                elif well_known:
                    out += ["svc", well_known]
                out.append(_find(req, "rate", float(e["rate_mbps"])))
        elif kind == "utilization_ceiling":
            out += ["util", _find(req, "percent", float(e["max_utilization"]))]
            if e.get("source") or e.get("destination"):
                out += ["path", _ep(req, e.get("source")), _ep(req, e.get("destination"))]
            if e.get("region"):
                out += ["region", *[_place(req, r) for r in e["region"]], "/"]
            if e.get("service"):
                out += ["svc", _find(req, "service", e["service"])]
        elif kind == "slo":
            metric = {"latency_p95_ms": "p95", "latency_p50_ms": "p50",
                      "availability": "availability", "throughput_mbps": "throughput"}[
                e["metric"]]
            qkind = {"p95": "ms", "p50": "ms", "availability": "percent",
                     "throughput": "rate"}[metric]
            out += ["slo", _find(req, "workload", e["workload"]), metric,
                    _find(req, qkind, float(e["target"]))]
            if e.get("scope") not in (None, "any"):
                out += ["scope", _ep(req, e["scope"])]
        else:
            raise _Unaligned(kind)
    prio = int(draft.get("priority", 5))
    if prio != 5:
        word = next((w for w, v in _PRIORITY.items() if v == prio and w in text), None)
        if word is None:
            word = next((w for w, v in PRIORITY_WORDS.items()
                         if v == prio and w in text and w in _PRIORITY), None)
        if word is None and prio == 10 and any(w in text for w in ("urgent", "top", "highest")):
            word = "critical"
        out += ["prio", word or _find(req, "number", prio)]
    out.append(END)
    return out
