"""A compositional paraphrase generator for the edge intent model: text -> intent draft.

Every sample is composed, not copied from a whole-sentence template: a *meaning* is drawn first
(the expectation kind, endpoints, numbers, windows, priority), then a syntactic **frame** for
that meaning (active, passive, fronted destination, imperative, question, ``X -> Y`` shorthand,
telegraphic) whose placeholders are filled from **lexical slot lists** (verbs per meaning,
modals, negations, lead-ins, fillers, connectors, priority phrasings, endpoint keyword forms).
Surface noise follows: name case changes, occasional typos in names (one edit, few samples),
one-letter misspellings of other words, casing and punctuation variants. For training, a share
of the lexical entries drawn can be written as :data:`NOVEL_WORD` placeholders (``novel_share``):
a known frame with words the reader never learnt, which is what a held-out phrasing looks like
to it.

Held-out partition: every frame list and every lexical slot list is split by a stable hash of
each entry (sha256, not Python's ``hash``) into about 75% ``train`` and 25% ``heldout``; a list
with four or more entries always has entries on both sides. ``split="train"`` samples use only
train entries, ``split="heldout"`` samples only heldout entries. Names, numbers and the spellings
of values (units, times, days, ports: a deterministic tagger reads those) are shared.

Labels come from the slots (the generator knows the meaning it rendered), are validated with
:func:`~netgpt.cloud_models.intent_draft.intent_from_draft` and written in canonical draft form;
a sample is dropped when the draft does not validate, when the controlled parser reads the text
as a *different* draft (a bad frame), or when the normalized text is one of the benchmark's
hand-written held-out texts. Pure and seeded: the same arguments give the same output.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from netgpt.cloud_models.corpus import corpus_name_tables, held_out_texts, normalized
from netgpt.cloud_models.intent_draft import (
    DraftError,
    draft_from_intent,
    draft_json,
    intent_from_draft,
)
from netgpt.errors import NetGPTError
from netgpt.intents.names import NameTable, name_words
from netgpt.intents.parser import parse_intent

__all__ = ["LabeledRequest", "generate_requests", "lexicon_report"]

Split = Literal["train", "heldout"]
Source = Literal["generated", "jargon"]
_SPLITS: tuple[Split, ...] = ("train", "heldout")
_HELDOUT_SHARE = 4  # one entry in this many (by hash) goes to heldout


@dataclass(frozen=True)
class LabeledRequest:
    """One sample: the operator's text and the intent draft it means."""

    text: str
    draft: dict[str, Any]
    topology: str
    split: Split
    source: Source


# ------------------------------------------------------------------------------------------
# the grammar: frame lists ("frame.*") and lexical slot lists ("lex.*", "np.*")
#
# A template names placeholders in braces. Upper-case placeholders are the sample's values
# (endpoints, numbers, windows; set per sample); lower-case ones name another list of this
# grammar, whose entry is drawn from the same split. A frame starting with "!" is imperative
# (it may take an imperative lead-in such as "please" or "could you").

_GRAMMAR: dict[str, tuple[str, ...]] = {
    # ---------------------------------------------------------------- reachability
    "frame.reach.pos": (
        "{S} {modal} {reach} {D}",
        "{S} {modal} be able to {reach} {D}",
        "{D} {modal} be {reachable} from {S}",
        "!{ensure} {S} can {reach} {D}",
        "{S} {need} {conn_noun} to {D}",
        "{S}{arrow}{D} {reach_ok}",
        "!{let} {S} {reach} {D}",
        "{want} {S} to be able to {reach} {D}",
        "{q_ensure} {S} can {reach} {D}?",
        "{conn_noun} from {S} to {D} is required",
        "!give {S} {conn_noun} to {D}",
        "{D} {modal} stay {reachable} for {S}",
        "!keep {S} connected to {D}",
        "there {modal} be {conn_noun} from {S} to {D}",
        "{S} to {D}: {reach_ok}",
        "!{ensure} {D} is {reachable} from {S}",
    ),
    "frame.reach.neg": (
        "{S} {neg_modal} {reach} {D}",
        "{D} {neg_modal} be {reachable} from {S}",
        "!{isolate} {S} from {D}",
        "!{ensure} {S} {neg_can} {reach} {D}",
        "!{prevent} {S} from {reaching} {D}",
        "no {conn_mass} from {S} to {D}",
        "{S}{arrow}{D} {reach_no}",
        "{q_ensure} {S} {neg_can} {reach} {D}?",
        "{want} {S} to never {reach} {D}",
        "{S} {modal} be {isolated} from {D}",
        "do not let {S} {reach} {D}",
        "{S} {modal} have no {conn_mass} to {D}",
        "{S} to {D}: {reach_no}",
        "!keep {S} away from {D}",
        "{D} {modal} be unreachable from {S}",
        "there {modal} be no {conn_mass} between {S} and {D}",
    ),
    "lex.reach": (
        "reach", "connect to", "talk to", "get to", "access", "communicate with", "contact",
        "reach out to", "open connections to", "send traffic to", "establish connections to",
        "get through to", "hit", "see",
    ),
    "lex.reaching": (
        "reaching", "connecting to", "talking to", "getting to", "accessing",
        "communicating with", "contacting", "sending traffic to", "opening connections to",
        "hitting",
    ),
    "lex.reachable": (
        "reachable", "accessible", "reachable at all", "contactable", "routable", "visible",
    ),
    "lex.modal": ("must", "should", "shall", "will", "must always", "should always", "has to",
                  "needs to"),
    "lex.neg_modal": (
        "must not", "mustn't", "should not", "shouldn't", "must never", "should never",
        "cannot", "can't", "may not", "shall not", "will not", "won't", "must no longer",
        "should no longer", "can never", "must not be able to", "should not be able to",
        "are not allowed to",
    ),
    "lex.neg_can": ("cannot", "can't", "can not", "is unable to", "won't be able to",
                    "never can"),
    "lex.isolate": ("isolate", "cut off", "segregate", "separate", "wall off", "fence off",
                    "shield", "disconnect"),
    "lex.isolated": ("isolated", "cut off", "segregated", "separated", "walled off",
                     "fenced off", "kept apart"),
    "lex.prevent": ("prevent", "keep", "bar", "stop", "restrict"),
    "lex.ensure": ("make sure", "ensure", "make sure that", "ensure that", "see to it that",
                   "be sure that"),
    "lex.q_ensure": ("can we make sure", "could you make sure", "can you ensure",
                     "is it possible to make sure", "would you make sure", "can we ensure",
                     "could we make sure"),
    "lex.want": ("I want", "we need", "I need", "we want", "I'd like", "we'd like",
                 "management wants", "the team wants"),
    "lex.let": ("let", "help", "have", "just let", "simply let"),
    "lex.need": ("needs", "requires", "must have", "should have", "needs to have", "need",
                 "require", "wants"),
    "lex.conn_noun": ("connectivity", "access", "a path", "a route", "reachability",
                      "network access", "a connection", "a working path", "IP connectivity"),
    "lex.conn_mass": ("connectivity", "access", "path", "route", "reachability",
                      "network access", "connection", "IP connectivity", "way through"),
    "lex.reach_ok": ("must work", "reachable", "should be reachable", "connectivity required",
                     "must connect", "needs to work", "has to be reachable"),
    "lex.reach_no": ("unreachable", "no access", "no connectivity", "not reachable",
                     "isolated", "must be unreachable", "no reachability"),
    "lex.arrow": ("->", " -> ", " => ", "=>", " --> ", " → "),
    # ---------------------------------------------------------------- access
    "frame.access.block": (
        "!{block} {WHAT} {from_s}{to_d}{WIN}",
        "{WHAT} {from_s}{to_d} {blocked}{WIN}",
        "{S} {neg_modal} {use} {WHAT}{to_d}{WIN}",
        "{S}{arrow}{D} no {WHAT}{WIN}",
        "{WHAT} {S}{arrow}{D}: {block_short}{WIN}",
        "{q_do} {block} {WHAT} {from_s}{to_d}{WIN}?",
        "for {S}, {block} {WHAT}{to_d}{WIN}",
        "{D} {neg_modal} receive {WHAT} from {S}{WIN}",
        "{want} {WHAT} {from_s}{to_d} {blocked}{WIN}",
        "no {WHAT} {from_s}{to_d}{WIN}",
        "!{block} {S}'s {WHAT}{to_d}{WIN}",
        "{S} {modal} not be allowed to {use} {WHAT}{to_d}{WIN}",
        "{WHAT} between {S} and {D}: {block_short}{WIN}",
        "!make sure {WHAT} {from_s}{to_d} is {blocked_adj}{WIN}",
    ),
    "frame.access.allow": (
        "!{allow} {WHAT} {from_s}{to_d}{WIN}",
        "{WHAT} {from_s}{to_d} {allowed}{WIN}",
        "{S} {may} {use} {WHAT}{to_d}{WIN}",
        "{S}{arrow}{D} {WHAT} {allow_short}{WIN}",
        "{WHAT} {S}{arrow}{D}: {allow_short}{WIN}",
        "{q_do} {allow} {WHAT} {from_s}{to_d}{WIN}?",
        "for {S}, {allow} {WHAT}{to_d}{WIN}",
        "{D} {may} accept {WHAT} from {S}{WIN}",
        "{want} {WHAT} {from_s}{to_d} {allowed}{WIN}",
        "!{allow} {S}'s {WHAT}{to_d}{WIN}",
        "{S} {modal} be allowed to {use} {WHAT}{to_d}{WIN}",
        "!make sure {WHAT} {from_s}{to_d} is {allowed_adj}{WIN}",
    ),
    "lex.block": ("block", "deny", "drop", "reject", "forbid", "filter", "prohibit",
                  "disallow", "stop", "refuse", "ban", "blackhole", "cut", "firewall"),
    "lex.blocked": ("must be blocked", "should be blocked", "is blocked", "must be denied",
                    "should be dropped", "is not allowed", "is forbidden", "must be rejected",
                    "is prohibited", "should be filtered", "must be filtered out",
                    "has to be blocked", "is banned", "needs to be blocked",
                    "must not be permitted", "should not be allowed", "isn't allowed",
                    "gets dropped"),
    "lex.blocked_adj": ("blocked", "denied", "dropped", "filtered", "rejected", "forbidden"),
    "lex.block_short": ("deny", "drop", "block", "blocked", "denied", "no", "not allowed",
                        "forbidden", "nope"),
    "lex.allow": ("allow", "permit", "accept", "let through", "enable", "whitelist", "open up",
                  "unblock", "admit", "open"),
    "lex.allowed": ("is allowed", "should be allowed", "must be permitted", "is permitted",
                    "should be accepted", "is ok", "is fine", "must be let through",
                    "needs to be opened", "should be whitelisted", "must be open",
                    "has to be allowed", "is acceptable"),
    "lex.allowed_adj": ("allowed", "permitted", "accepted", "open", "let through",
                        "whitelisted"),
    "lex.allow_short": ("ok", "allow", "allowed", "permit", "yes", "fine", "open", "permitted"),
    "lex.use": ("use", "send", "run", "open", "initiate", "make"),
    "lex.may": ("may", "can", "is allowed to", "should be able to", "must be able to",
                "is permitted to", "may always"),
    "lex.q_do": ("could you", "can you", "can we", "would you", "could we", "is it possible to",
                 "would you please"),
    "lex.from_s": ("from {S}", "coming from {S}", "originating from {S}", "sourced from {S}",
                   "out of {S}", "that comes from {S}", "sent by {S}"),
    "lex.to_d": (" to {D}", " towards {D}", " into {D}", " destined for {D}", " going to {D}",
                 " headed for {D}", " bound for {D}", " toward {D}", " aimed at {D}"),
    "np.svc": ("{SVC}", "{SVC} traffic", "the {SVC} service", "{SVC} sessions",
               "{SVC} connections", "any {SVC}", "all {SVC} traffic", "{SVC} flows",
               "{SVC} packets"),
    "np.all": ("all traffic", "any traffic", "all packets", "every flow", "all connections",
               "any packets", "all flows"),
    # ---------------------------------------------------------------- waypoint
    "frame.waypoint": (
        "!{route} {S} to {D} traffic {via} {V}",
        "traffic from {S} to {D} {modal} {pass} {V}",
        "{S}{arrow}{D} via {V}",
        "{V} {modal} be on the path from {S} to {D}",
        "the path from {S} to {D} {modal} include {V}",
        "{q_do} {route} traffic from {S} to {D} {via} {V}?",
        "!{route} everything from {S} to {D} {via} {V}",
        "{S} to {D} {modal} {pass} {V}",
        "{want} {S} to {D} traffic to {pass} {V}",
        "!make flows from {S} to {D} {pass} {V}",
        "packets from {S} to {D} {modal} {pass} {V}",
        "for {S} to {D} traffic: {via} {V}",
    ),
    "lex.route": ("route", "send", "steer", "force", "push", "pin", "direct", "forward",
                  "redirect", "path"),
    "lex.via": ("via", "through", "by way of", "over", "by going through", "across"),
    "lex.pass": ("go through", "pass through", "traverse", "transit", "go via", "cross",
                 "flow through", "be routed via", "be steered through", "hop through",
                 "pass via", "be forwarded through", "run through"),
    # ---------------------------------------------------------------- load balancing
    "frame.lb": (
        "!{lb} {S} to {D} traffic {over} {N} {paths}",
        "!{lb} traffic from {S} to {D} {over} {N} {paths}",
        "{S}{arrow}{D} over {N} {paths}",
        "!use {N} {paths} from {S} to {D}",
        "{S} to {D} {modal} be {lbed} {over} {N} {paths}",
        "{q_do} {lb} {S} to {D} traffic {over} {N} {paths}?",
        "traffic from {S} to {D} {modal} use {N} {paths}",
        "{want} {S} to {D} traffic {lbed} {over} {N} {paths}",
        "!{lb} the {S} to {D} flows {over} {N} {paths}",
        "{N} {paths} for {S} to {D}",
        "{S} to {D}: {N} {paths}",
        "!{lb} {S}{arrow}{D} traffic {N} ways",
    ),
    "lex.lb": ("split", "spread", "distribute", "load balance", "balance", "load-balance",
               "load-share", "share", "spray", "ecmp", "multipath"),
    "lex.lbed": ("split", "spread", "distributed", "load balanced", "balanced",
                 "load-shared", "shared", "sprayed", "multipathed"),
    "lex.over": ("over", "across", "among", "on", "between", "onto"),
    "lex.paths": ("paths", "routes", "equal-cost paths", "parallel paths", "different paths",
                  "separate routes", "distinct paths", "ecmp paths", "links"),
    # ---------------------------------------------------------------- bandwidth
    "frame.bw.cap": (
        "!{cap} {TRAFFIC} {to_at} {RATE}",
        "{TRAFFIC} {neg_modal} exceed {RATE}",
        "{TRAFFIC} {may} use at most {RATE}",
        "no more than {RATE} for {TRAFFIC}",
        "{S}{arrow}{D}{SVC_SP} max {RATE}",
        "!keep {TRAFFIC} {below} {RATE}",
        "!put a {RATE} cap on {TRAFFIC}",
        "{q_do} {cap} {TRAFFIC} {to_at} {RATE}?",
        "{TRAFFIC} {modal} be {capped} {to_at} {RATE}",
        "{want} {TRAFFIC} {capped} {to_at} {RATE}",
        "{RATE} {max_word} for {TRAFFIC}",
        "{TRAFFIC}: {max_word} {RATE}",
    ),
    "frame.bw.guar": (
        "!{guar} {RATE} for {TRAFFIC}",
        "{TRAFFIC} {need} {at_least} {RATE}",
        "!give {TRAFFIC} {at_least} {RATE}",
        "{S}{arrow}{D}{SVC_SP} min {RATE}",
        "{TRAFFIC} {modal} get {at_least} {RATE}",
        "{q_do} {guar} {RATE} for {TRAFFIC}?",
        "{TRAFFIC} {modal} be {guaranteed} {RATE}",
        "{want} {at_least} {RATE} {guaranteed_for} {TRAFFIC}",
        "{at_least} {RATE} for {TRAFFIC}",
        "{TRAFFIC}: {at_least} {RATE}",
        "!make sure {TRAFFIC} gets {at_least} {RATE}",
        "{RATE} {guaranteed_for} {TRAFFIC}",
    ),
    "lex.cap": ("cap", "limit", "throttle", "rate-limit", "police", "shape", "restrict",
                "clamp", "rate limit"),
    "lex.capped": ("capped", "limited", "throttled", "rate-limited", "policed", "shaped",
                   "restricted", "clamped"),
    "lex.to_at": ("to", "at", "at a max of", "down to", "at no more than"),
    "lex.below": ("below", "under", "beneath", "at or below", "lower than", "within"),
    "lex.max_word": ("max", "maximum", "at most", "tops", "ceiling", "upper limit"),
    "lex.guar": ("guarantee", "reserve", "assure", "set aside", "dedicate", "provision",
                 "earmark", "commit"),
    "lex.guaranteed": ("guaranteed", "assured", "reserved", "promised", "given"),
    "lex.guaranteed_for": ("guaranteed for", "reserved for", "set aside for",
                           "dedicated to", "committed to", "earmarked for"),
    "lex.at_least": ("at least", "a minimum of", "no less than", "minimum", "not less than",
                     "a guaranteed", "a floor of"),
    "np.traffic": (
        "traffic from {S}{to_d}", "{S}{to_d} traffic", "{S}'s traffic{to_d}",
        "flows from {S}{to_d}", "everything from {S}{to_d}", "bandwidth from {S}{to_d}",
        "the traffic sent by {S}{to_d}", "data from {S}{to_d}",
    ),
    "np.traffic_svc": (
        "{SVC} traffic from {S}{to_d}", "{SVC} from {S}{to_d}", "{S}'s {SVC} traffic{to_d}",
        "the {SVC} flows from {S}{to_d}", "{SVC} sessions from {S}{to_d}",
        "{SVC} traffic that comes from {S}{to_d}",
    ),
    # ---------------------------------------------------------------- utilization
    "frame.util.path": (
        "utilization between {S} and {D} {modal} {stay} {below} {PCT}",
        "!keep links between {S} and {D} {below} {PCTX} {util}",
        "the path from {S} to {D} {modal} {stay} {below} {PCTX} {util}",
        "no link between {S} and {D} above {PCTX} {util}",
        "{q_do} keep {util} from {S} to {D} {below} {PCT}?",
        "{S}{arrow}{D} {util} {below} {PCT}",
        "{util} on the path from {S} to {D}: {below} {PCT}",
        "links from {S} to {D} {neg_modal} exceed {PCTX} {util}",
    ),
    "frame.util.region": (
        "!keep links in {R} {below} {PCTX} {util}",
        "links in {R} {modal} {stay} {below} {PCTX} {util}",
        "{util} in {R} {modal} {stay} {below} {PCT}",
        "no link in {R} {modal} go above {PCTX} {util}",
        "{q_do} keep {util} in {R} {below} {PCT}?",
        "{R} links: {util} {below} {PCT}",
        "links at {R} {neg_modal} exceed {PCTX} {util}",
        "{util} across {R} {modal} not exceed {PCT}",
    ),
    "frame.util.all": (
        "no link {modal} exceed {PCTX} {util}",
        "!keep all links {below} {PCTX} {util}",
        "link {util} {modal} {stay} {below} {PCT} everywhere",
        "every link {modal} {stay} {below} {PCTX} {util}",
        "{q_do} keep every link {below} {PCTX} {util}?",
        "network-wide {util} {below} {PCT}",
        "max link {util} {PCT}",
        "{util} on all links {modal} {stay} {below} {PCT}",
    ),
    "lex.util": ("utilization", "utilisation", "load", "usage", "link load", "link utilization"),
    "lex.stay": ("stay", "remain", "be kept", "be", "sit", "hold"),
    # ---------------------------------------------------------------- latency
    "frame.latency": (
        "{PCTL}{SVC_} latency from {S} to {D} {modal} {stay} {below} {MS}",
        "!keep {PCTL}{delay}{OF_SVC} from {S} to {D} {below} {MS}",
        "{SVC_} traffic from {S} to {D} {need} {PCTL}{delay} {below} {MS}",
        "the {PCTL}{delay}{OF_SVC} from {S} to {D} {neg_modal} exceed {MS}",
        "{S}{arrow}{D}{SVC_SP} {PCTL}{delay} {below} {MS}",
        "{q_do} keep {PCTL}{delay}{OF_SVC} between {S} and {D} {below} {MS}?",
        "{PCTL}{delay}{OF_SVC} between {S} and {D}: {below} {MS}",
        "{want} {PCTL}{delay}{OF_SVC} from {S} to {D} {below} {MS}",
        "{S} to {D}{SVC_SP} {PCTL}{delay} {modal} be {below} {MS}",
        "!make sure {PCTL}{delay}{OF_SVC} from {S} to {D} is {below} {MS}",
    ),
    "lex.delay": ("latency", "delay", "rtt", "one-way delay", "one-way latency",
                  "network latency", "response time"),
    # ---------------------------------------------------------------- slo
    "frame.slo.lat": (
        "{WL} {PCTW} latency {modal} {stay} {below} {MS}{SCOPE}",
        "!keep {PCTW} latency of {WL} {below} {MS}{SCOPE}",
        "{WL} {modal} answer within {MS} at {PCTW}{SCOPE}",
        "{PCTW} latency of {WL}{SCOPE}: {below} {MS}",
        "{q_do} keep {WL} {PCTW} latency {below} {MS}{SCOPE}?",
        "{want} {WL} to respond within {MS} at {PCTW}{SCOPE}",
    ),
    "frame.slo.avail": (
        "{WL} {modal} be available {AVAIL} of the time{SCOPE}",
        "{WL} availability of {at_least} {AVAIL}{SCOPE}",
        "!keep {WL} availability {above} {AVAIL}{SCOPE}",
        "uptime of {WL} {at_least} {AVAIL}{SCOPE}",
        "{q_do} keep {WL} up {AVAIL} of the time{SCOPE}?",
        "{want} {WL} availability {above} {AVAIL}{SCOPE}",
    ),
    "frame.slo.tput": (
        "{WL} {need} a throughput of {at_least} {RATE}{SCOPE}",
        "{WL} throughput of {RATE} minimum{SCOPE}",
        "throughput of {WL}{SCOPE}: {at_least} {RATE}",
        "!keep {WL} throughput {above} {RATE}{SCOPE}",
        "{q_do} give {WL} a throughput of {at_least} {RATE}{SCOPE}?",
        "{want} {WL} throughput of {at_least} {RATE}{SCOPE}",
    ),
    "lex.above": ("above", "at or above", "over", "at least", "no lower than", "no less than"),
    "np.workload": ("the {WLW} service", "{WLW}", "the {WLW} assistant", "the {WLW} app",
                    "the {WLW} api", "the {WLW} endpoint", "our {WLW} service",
                    "the {WLW} platform"),
    "np.scope": (" for users at {SC}", " for {SC} users", " at {SC}", " in {SC}",
                 " for {SC}", " as seen from {SC}", " for people in {SC}"),
    # ---------------------------------------------------------------- endpoints
    "np.group": ("{X}", "the {X}", "group {X}", "the {X} group", "{X} group",
                 "the {X} network", "{X} users", "the {X} hosts", "{X} hosts",
                 "the {X} department", "{X} subnet", "the {X} vlan", "{X} clients",
                 "the {X} segment", "{X} machines", "all {X} hosts", "the {X} team"),
    "np.device": ("{X}", "router {X}", "device {X}", "node {X}", "switch {X}", "{X} router",
                  "the {X} router", "the {X} switch", "the {X} box", "hosts behind {X}",
                  "the {X} node"),
    "np.site": ("{X}", "site {X}", "the {X} site", "{X} site", "the {X} region",
                "the {X} pop", "the {X} location", "everything at {X}", "the {X} area",
                "the {X} campus"),
    "np.prefix": ("{X}", "prefix {X}", "subnet {X}", "the {X} subnet", "hosts in {X}",
                  "network {X}", "the {X} range", "addresses in {X}", "the {X} netblock",
                  "net {X}"),
    "np.any": ("anywhere", "any host", "everyone", "anyone", "all hosts", "everybody",
               "any hosts"),
    "np.place_device": ("{X}", "router {X}", "node {X}", "device {X}", "switch {X}",
                        "the {X} router"),
    "np.place_site": ("{X}", "site {X}", "the {X} site", "{X} site", "the {X} pop"),
    "lex.via_join": (" and ", " then ", ", ", " & ", " and then ", " followed by "),
    # ---------------------------------------------------------------- framing
    "lex.imp_lead": ("please ", "pls ", "plz ", "could you ", "can you ", "I want you to ",
                     "we need to ", "go ahead and ", "kindly ", "I'd like you to ", "let's ",
                     "you should ", "i need you to ", "would you "),
    "lex.decl_lead": ("hey, ", "hi, ", "ok so ", "fyi: ", "heads up: ", "new rule: ",
                      "policy: ", "request: ", "quick one: ", "note: ", "reminder: ", "so, ",
                      "hello team, ", "change request: ", "hey team - "),
    "lex.tail": (" asap", ", thanks", " thx", ", thanks!", " for now", " going forward",
                 " from now on", " please", ", cheers", " until further notice",
                 " effective immediately", " pls", ", ty", " if possible", " starting today"),
    "lex.join": ("{A}. {B}", "{A}; {B}", "{A}. also {B}", "{A}, and also {B}",
                 "{A}. additionally, {B}", "{A}. plus {B}", "{A}. oh and {B}",
                 "{A}; furthermore {B}", "{A}. on top of that, {B}", "{A}, plus {B}",
                 "first, {A}. second, {B}", "{A}. and {B}", "{A} -- also {B}",
                 "{A}. in addition, {B}"),
    "lex.prio_num": ("priority {PN}", "prio {PN}", "priority: {PN}", "with priority {PN}",
                     "at priority {PN}", "set priority to {PN}", "priority level {PN}",
                     "prio: {PN}"),
    "lex.prio_high": ("high priority", "this is high priority", "priority: high",
                      "treat as high priority", "mark it high priority", "high priority pls"),
    "lex.prio_low": ("low priority", "this is low priority", "priority: low",
                     "treat as low priority", "low priority, no rush", "mark it low priority"),
    "lex.prio_crit": ("critical", "this is critical", "critical priority", "urgent",
                      "this is urgent", "super urgent", "urgent!!", "critical, please"),
    "lex.prio_place": ("{BODY}. {P}", "{P}: {BODY}", "{BODY} ({P})", "{BODY}, {P}",
                       "{BODY} -- {P}", "[{P}] {BODY}", "{P} - {BODY}", "{BODY}; {P}"),
}
_PRIORITY_LISTS = {"lex.prio_high": 8, "lex.prio_low": 3, "lex.prio_crit": 10}
_FIELD = re.compile(r"\{([A-Za-z_]+)\}")
# sample values are wrapped in these marks while rendering, so that noise leaves them alone
_OPEN, _CLOSE = "\x01", "\x02"
NOVEL_WORD = "\u2047"
"""Stands for a word the reader never learnt (``novel_share``): models read it as unknown."""
_NOVEL_WORDS = re.compile(r"(?<![{\w])[A-Za-z][A-Za-z']*(?![\w}])")
# lists whose words carry a value the label states (a priority), never rendered as novel
_KEEP_KNOWN = frozenset({"lex.prio_high", "lex.prio_low", "lex.prio_crit", "lex.prio_num"})


def stable_hash(list_name: str, entry: str) -> int:
    digest = hashlib.sha256(f"{list_name}\x00{entry}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@functools.cache
def _partition() -> dict[str, dict[Split, tuple[str, ...]]]:
    """Each grammar list split into train and heldout entries (deterministic, by hash).

    About one entry in four goes to heldout; a list of four or more entries has at least one
    entry on each side (the entry with the smallest hash moves to heldout if none did).
    """
    out: dict[str, dict[Split, tuple[str, ...]]] = {}
    for name, entries in _GRAMMAR.items():
        unique = tuple(dict.fromkeys(entries))
        hashes = {e: stable_hash(name, e) for e in unique}
        held = [e for e in unique if hashes[e] % _HELDOUT_SHARE == 0]
        if len(unique) >= 4:
            if not held:
                held = [min(unique, key=hashes.__getitem__)]
            if len(held) == len(unique):
                held.remove(max(held, key=hashes.__getitem__))
        train = tuple(e for e in unique if e not in held)
        out[name] = {"train": train, "heldout": tuple(e for e in unique if e in held)}
    return out


def lexicon_report() -> dict[str, dict[str, int]]:
    """Per frame list and lexical slot list: how many entries are train and how many heldout."""
    return {name: {s: len(parts[s]) for s in _SPLITS} for name, parts in _partition().items()}


# ------------------------------------------------------------------------------------------
# values and their (shared) spellings

_DAY_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday",
              "fri": "friday", "sat": "saturday", "sun": "sunday"}
_WEEKDAY_FORMS = ("on weekdays", "weekdays", "monday through friday", "monday to friday",
                  "from monday through friday", "on workdays", "workdays", "mon-fri",
                  "during the week", "on business days", "business days")
_WEEKEND_FORMS = ("on weekends", "weekends", "saturday and sunday", "on saturdays and sundays",
                  "at the weekend", "on sat and sun", "sat/sun", "on the weekend")
_DAILY_FORMS = ("every day", "daily", "all week")
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
_WELL_KNOWN_PORTS = (21, 22, 23, 25, 53, 80, 110, 123, 143, 161, 179, 389, 443, 445, 514, 636,
                     993, 1194, 1433, 1812, 3306, 3389, 5060, 5432, 6379, 8080, 8443, 9090)


def _mark(text: str) -> str:
    return f"{_OPEN}{text}{_CLOSE}"


def _fmt(x: float) -> str:
    return f"{x:g}"


def _rate(rng: random.Random) -> tuple[float, str]:
    """A rate in Mbps and one of its allowed spellings."""
    r = rng.random()
    if r < 0.12:
        kbps = rng.choice([64, 96, 128, 192, 256, 320, 384, 500, 512, 640, 768, 900])
        return kbps / 1000, rng.choice([f"{kbps} kbps", f"{kbps} Kbit/s"])
    if r < 0.35:
        g = rng.choice([1, 1, 2, 2.5, 3, 4, 5, 6, 8, 10, 10, 20, 25, 40, 100, 1.5, 0.5])
        mbps = g * 1000
        forms = [f"{_fmt(g)} Gbps", f"{_fmt(g)} Gbit/s", f"{_fmt(g)} gig",
                 f"{_fmt(g)} gigabits per second", f"{_fmt(mbps)} Mbps"]
        if g == int(g):
            forms.append(f"{_fmt(g)} G")
        return mbps, rng.choice(forms)
    mbps_i = max(1, round(math.exp(rng.uniform(0, math.log(999)))))
    if mbps_i > 100 and rng.random() < 0.6:
        mbps_i = round(mbps_i, -1)
    m = str(mbps_i)
    forms = [f"{m} Mbps", f"{m} mbps", f"{m} Mbit/s", f"{m} Mb/s", f"{m} megabits per second",
             f"{m} megabit/s", f"{m} meg", f"{m} megs", f"{m}Mbps"]
    return float(mbps_i), rng.choice(forms)


def _percent(rng: random.Random, *, fraction: bool) -> tuple[float, str]:
    """A utilization ceiling (fraction) and a spelling; ``0.NN`` only where ``fraction``."""
    p = rng.choice([rng.randint(10, 99), rng.randint(50, 95), rng.choice([70, 75, 80, 85, 90])])
    forms = [f"{p}%", f"{p} percent", f"{p} per cent", f"{p} pct"]
    if fraction:
        forms.append(f"{p / 100:.2f}")
    return p / 100, rng.choice(forms)


def _millis(rng: random.Random, lo: float, hi: float) -> tuple[float, str]:
    ms = max(1, round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
    if ms > 100 and rng.random() < 0.6:
        ms = round(ms, -1)
    return float(ms), rng.choice([f"{ms} ms", f"{ms}ms", f"{ms} msec", f"{ms} milliseconds",
                                  f"{ms} millis"])


def _count(rng: random.Random) -> tuple[int, str]:
    n = rng.choice([2, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, rng.randint(2, 16)])
    if n in _NUMBER_WORDS and rng.random() < 0.5:
        return n, _NUMBER_WORDS[n]
    return n, str(n)


def _clock(rng: random.Random, hour: int, minute: int, style: str) -> str:
    """A time of day in one style: ``24h`` (``HH:MM`` / ``H:MM``) or ``12h`` (``9am``, ``9 am``).

    ``noon`` and ``midnight`` now and then; ``12h`` needs a whole hour (else ``24h``).
    """
    if minute == 0 and hour == 12 and rng.random() < 0.3:
        return "noon"
    if minute == 0 and hour == 0 and rng.random() < 0.3:
        return "midnight"
    if style == "12h" and minute == 0:
        h12, ampm = (hour % 12 or 12), ("am" if hour < 12 else "pm")
        return rng.choice([f"{h12}{ampm}", f"{h12} {ampm}"])
    return rng.choice([f"{hour:02d}:{minute:02d}", f"{hour}:{minute:02d}"])


def _window(rng: random.Random) -> tuple[dict[str, Any], str]:
    """A time window (draft form) and how it is written."""
    r = rng.random()
    days: tuple[str, ...]
    if r < 0.4:
        days, day_text = _DAY_ORDER[:5], rng.choice(_WEEKDAY_FORMS)
    elif r < 0.6:
        days, day_text = _DAY_ORDER[5:], rng.choice(_WEEKEND_FORMS)
    elif r < 0.75:
        days, day_text = _DAY_ORDER, rng.choice(_DAILY_FORMS)
    elif r < 0.9:
        d = rng.choice(_DAY_ORDER)
        days, day_text = (d,), rng.choice([f"on {_DAY_NAMES[d]}", f"on {_DAY_NAMES[d]}s",
                                            f"every {_DAY_NAMES[d]}"])
    else:
        a, b = sorted(rng.sample(range(7), 2))
        days = (_DAY_ORDER[a], _DAY_ORDER[b])
        day_text = f"on {_DAY_NAMES[days[0]]} and {_DAY_NAMES[days[1]]}"
    start_h = rng.randint(0, 23)
    end_h = (start_h + rng.randint(1, 14)) % 24
    start_m, end_m = rng.choice([0, 0, 0, 30, 15]), rng.choice([0, 0, 0, 30, 45])
    style = "12h" if start_m == end_m == 0 and rng.random() < 0.5 else "24h"
    a_text, b_text = _clock(rng, start_h, start_m, style), _clock(rng, end_h, end_m, style)
    span = rng.choice([f"from {a_text} to {b_text}", f"between {a_text} and {b_text}",
                       f"{a_text}-{b_text}", f"from {a_text} until {b_text}",
                       f"{a_text} to {b_text}"])
    text = rng.choice([f"{day_text} {span}", f"{span} {day_text}"])
    window = {"days": list(days), "start": f"{start_h:02d}:{start_m:02d}",
              "end": f"{end_h:02d}:{end_m:02d}"}
    return window, text


def _ports(rng: random.Random) -> tuple[str, str, str]:
    """(protocol, draft ports, spelling) of a port match."""
    proto = rng.choice(["tcp", "tcp", "udp"])
    lo = rng.choice(_WELL_KNOWN_PORTS) if rng.random() < 0.45 else rng.randint(1024, 65000)
    if rng.random() < 0.2:
        hi = min(65535, lo + rng.randint(1, 500))
        text = rng.choice([f"{proto} ports {lo}-{hi}", f"{proto} ports {lo} to {hi}",
                           f"ports {lo}-{hi} over {proto}", f"{proto} traffic on ports {lo}-{hi}"])
        return proto, f"{lo}-{hi}", text
    text = rng.choice([f"{proto} port {lo}", f"{proto}/{lo}", f"{proto} {lo}",
                       f"port {lo} over {proto}", f"{proto} traffic on port {lo}"])
    return proto, str(lo), text


# ------------------------------------------------------------------------------------------
# endpoints


@dataclass(frozen=True)
class _Endpoint:
    """A draft endpoint (``group:guests``) and the name to write (None for ``any``)."""

    label: str
    name: str | None
    kind: str


_TYPO_MIN = 5


def typo(rng: random.Random, word: str) -> str:
    """``word`` with one edit: two letters swapped, one dropped, or one doubled."""
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    if len(letters) < 2:
        return word
    i = rng.choice(letters[:-1])
    op = rng.choice(("swap", "drop", "double"))
    if op == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


@dataclass
class _Sample:
    """Per-sample rendering state: the RNG, the split, what was drawn, the noise budget."""

    rng: random.Random
    split: Split
    jargon: Mapping[str, tuple[str, ...]]
    name_typo: bool = False
    ambiguous: frozenset[str] = frozenset()
    used: list[tuple[str, str]] = field(default_factory=list)
    jargon_used: bool = False
    novel_share: float = 0.0

    def pick(self, list_name: str) -> str:
        entries = _partition()[list_name][self.split]
        entry = self.rng.choice(entries)
        if (self.novel_share and list_name.startswith(("lex.", "np."))
                and list_name not in _KEEP_KNOWN and self.rng.random() < self.novel_share):
            entry = _NOVEL_WORDS.sub(NOVEL_WORD, entry)
        self.used.append((list_name, entry))
        return entry

    def fill(self, template: str, env: Mapping[str, str]) -> str:
        """Render ``template``: values from ``env``, lower-case placeholders from the grammar.

        An ``env`` value starting with ``@`` names a grammar list to draw from.
        """
        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            if key in env:
                value = env[key]
                if value.startswith("@"):
                    return self.fill(self.pick(value[1:]), env)
                return value
            return self.fill(self.pick(_list_of(key)), env)

        return _FIELD.sub(sub, template.removeprefix("!"))

    def name(self, name: str) -> str:
        """A name as written: case changes now and then, a typo once per sample at most."""
        text = name
        r = self.rng.random()
        if r < 0.05:
            text = name.upper()
        elif r < 0.12:
            text = name.title() if name.islower() else name.lower()
        if self.name_typo and len(name) >= _TYPO_MIN and name.isalpha():
            self.name_typo = False
            text = typo(self.rng, text)
        return _mark(text)

    def endpoint(self, ep: _Endpoint, *, use_jargon: bool = False) -> str:
        if use_jargon and ep.name is not None and ep.name in self.jargon:
            self.jargon_used = True
            word = self.rng.choice(self.jargon[ep.name])
            return _mark(word if self.rng.random() < 0.85 else word.title())
        if ep.name is None:
            return self.pick("np.any")
        form = self.pick(f"np.{ep.kind}")
        if form == "{X}" and ep.name in self.ambiguous:
            form = f"{ep.kind} {{X}}"
        return self.fill(form, {"X": self.name(ep.name)})


def _list_of(key: str) -> str:
    for prefix in ("lex.", "np."):
        if prefix + key in _GRAMMAR:
            return prefix + key
    raise KeyError(f"no grammar list for placeholder {key!r}")


# ------------------------------------------------------------------------------------------
# the world of one topology


class _World:
    """The names of one topology and how endpoints are drawn from them."""

    def __init__(self, topology: str, table: NameTable) -> None:
        self.topology = topology
        self.table = table
        self.services = sorted(table.services)
        self.places = sorted({*table.devices, *table.sites})
        self.group_prefixes = sorted({p for ps in table.groups.values() for p in ps})
        self.workload_words = sorted({p for w, ps in table.workloads.items() if w == "generative"
                                      for p in (w, *ps)})
        # names whose bare spelling reads as another kind first: always written with a keyword
        self.ambiguous = frozenset(
            name for kind, names in (("device", table.devices), ("site", table.sites),
                                     ("group", tuple(table.groups)))
            for name in names if table.lookup(name_words(name))[:1] != [(kind, name)])

    def prefix(self, rng: random.Random) -> str:
        if self.topology == "netconfeval":
            return f"100.0.{rng.randint(0, 255)}.0/24"
        if self.group_prefixes and rng.random() < 0.4:
            return rng.choice(self.group_prefixes)
        if rng.random() < 0.5:
            return f"10.{rng.randint(0, 255)}.0.0/16"
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.0/24"

    def endpoint(self, rng: random.Random, *, allow_any: bool = False) -> _Endpoint:
        if self.topology == "netconfeval":
            return self.device(rng)
        if allow_any and rng.random() < 0.06:
            return _Endpoint("any", None, "any")
        weights = {"group": 5.0 if self.table.groups else 0.0, "device": 2.0,
                   "site": 1.5 if self.table.sites else 0.0, "prefix": 1.0}
        kind = rng.choices(list(weights), weights=list(weights.values()))[0]
        if kind == "prefix":
            p = self.prefix(rng)
            return _Endpoint(f"prefix:{p}", p, "prefix")
        pool = {"group": sorted(self.table.groups), "device": list(self.table.devices),
                "site": list(self.table.sites)}[kind]
        name = rng.choice(pool)
        return _Endpoint(f"{kind}:{name}", name, kind)

    def device(self, rng: random.Random) -> _Endpoint:
        name = rng.choice(list(self.table.devices))
        return _Endpoint(f"device:{name}", name, "device")

    def pair(self, rng: random.Random, *, allow_any: bool = False) -> tuple[_Endpoint, _Endpoint]:
        """Source and destination, different (netconfeval: a device to a prefix)."""
        if self.topology == "netconfeval":
            src = self.device(rng)
            p = self.prefix(rng)
            return src, _Endpoint(f"prefix:{p}", p, "prefix")
        src = self.endpoint(rng, allow_any=allow_any)
        dst = self.endpoint(rng, allow_any=allow_any and src.name is not None)
        while dst.label == src.label:
            dst = self.endpoint(rng)
        return src, dst

    def jargon_endpoint(self, rng: random.Random,
                        jargon: Mapping[str, tuple[str, ...]]) -> _Endpoint | None:
        names = sorted(n for n in jargon if jargon[n] and self.table.lookup(name_words(n)))
        if not names:
            return None
        name = rng.choice(names)
        kind, canonical = self.table.lookup(name_words(name))[0]
        if kind not in ("device", "group", "site"):
            return None
        return _Endpoint(f"{kind}:{canonical}", name, kind)


# ------------------------------------------------------------------------------------------
# one requirement per kind: (expectation in draft form, text)

_Built = tuple[dict[str, Any], str]


@dataclass
class _Ctx:
    """What a kind builder needs: the world, the sample state, the endpoints to use."""

    world: _World
    s: _Sample
    src: _Endpoint
    dst: _Endpoint
    jargon_side: str | None  # "src" / "dst": which endpoint is written in the site's words

    @property
    def rng(self) -> random.Random:
        return self.s.rng

    def ends(self) -> dict[str, str]:
        return {"S": self.s.endpoint(self.src, use_jargon=self.jargon_side == "src"),
                "D": self.s.endpoint(self.dst, use_jargon=self.jargon_side == "dst")}


def _reachability(c: _Ctx) -> _Built:
    positive = c.rng.random() < 0.5
    env = c.ends()
    text = c.s.fill(c.s.pick("frame.reach.pos" if positive else "frame.reach.neg"), env)
    exp = {"kind": "reachability", "source": c.src.label, "destination": c.dst.label,
           "reachable": positive}
    return exp, text


def _service_env(c: _Ctx, env: dict[str, str]) -> dict[str, Any]:
    """Fill the traffic object ``WHAT`` of an access requirement; return the traffic fields."""
    r = c.rng.random()
    if c.world.services and r < 0.6:
        svc = c.rng.choice(c.world.services)
        env["SVC"] = c.s.name(svc)
        env["WHAT"] = "@np.svc"
        return {"service": svc}
    if r < 0.85:
        proto, ports, text = _ports(c.rng)
        env["WHAT"] = _mark(text)
        return {"protocol": proto, "ports": ports}
    env["WHAT"] = "@np.all"
    return {}


def _access(c: _Ctx) -> _Built:
    allow = c.rng.random() < 0.35
    env = c.ends()
    traffic: dict[str, Any] = {"source": c.src.label, "destination": c.dst.label}
    traffic.update(_service_env(c, env))
    env["from_s"] = "@lex.from_s"
    env["to_d"] = "@lex.to_d" if c.dst.name is not None or c.rng.random() < 0.5 else ""
    exp: dict[str, Any] = {"kind": "access", "action": "allow" if allow else "block",
                           "traffic": traffic}
    env["WIN"] = ""
    if c.rng.random() < 0.2:
        window, win_text = _window(c.rng)
        exp["window"] = window
        env["WIN"] = " " + _mark(win_text)
    text = c.s.fill(c.s.pick("frame.access.allow" if allow else "frame.access.block"), env)
    return exp, text


def _via_text(c: _Ctx, via: Sequence[str]) -> str:
    parts = []
    for v in via:
        readings = c.world.table.lookup(name_words(v))
        kind = readings[0][0] if readings else "device"
        parts.append(c.s.fill(c.s.pick(f"np.place_{'site' if kind == 'site' else 'device'}"),
                              {"X": c.s.name(v)}))
    if len(parts) == 1:
        return parts[0]
    joiner = c.s.pick("lex.via_join")
    return joiner.join(parts)


def _waypoint(c: _Ctx) -> _Built:
    taken = {c.src.name, c.dst.name}
    pool = [p for p in (c.world.table.devices if c.world.topology == "netconfeval"
                        else c.world.places) if p not in taken]
    via = c.rng.sample(pool, c.rng.choice([1, 1, 1, 2, 2, 3]))
    env = c.ends()
    env["V"] = _via_text(c, via)
    text = c.s.fill(c.s.pick("frame.waypoint"), env)
    exp = {"kind": "waypoint", "source": c.src.label, "destination": c.dst.label,
           "via": list(via)}
    return exp, text


def _load_balancing(c: _Ctx) -> _Built:
    n, n_text = _count(c.rng)
    env = c.ends()
    env["N"] = _mark(n_text)
    text = c.s.fill(c.s.pick("frame.lb"), env)
    exp = {"kind": "load_balancing", "source": c.src.label, "destination": c.dst.label,
           "paths": n}
    return exp, text


def _bandwidth(c: _Ctx) -> _Built:
    guarantee = c.rng.random() < 0.45
    rate, rate_text = _rate(c.rng)
    env = c.ends()
    env["RATE"] = _mark(rate_text)
    traffic: dict[str, Any] = {"source": c.src.label, "destination": c.dst.label}
    env["to_d"] = "@lex.to_d" if c.dst.name is not None else ""
    env["SVC_SP"] = ""
    if c.world.services and c.rng.random() < 0.35:
        svc = c.rng.choice(c.world.services)
        traffic["service"] = svc
        env["SVC"] = c.s.name(svc)
        env["SVC_SP"] = " " + env["SVC"]
        env["TRAFFIC"] = "@np.traffic_svc"
    else:
        env["TRAFFIC"] = "@np.traffic"
    text = c.s.fill(c.s.pick("frame.bw.guar" if guarantee else "frame.bw.cap"), env)
    exp = {"kind": "bandwidth", "mode": "guarantee" if guarantee else "cap",
           "traffic": traffic, "rate_mbps": rate}
    return exp, text


def _utilization(c: _Ctx) -> _Built:
    frac, pct_text = _percent(c.rng, fraction=True)
    env: dict[str, str] = {"PCT": _mark(pct_text)}
    env["PCTX"] = _mark(pct_text) if not re.fullmatch(r"0\.\d+", pct_text) else _mark(
        f"{round(frac * 100)}%")
    exp: dict[str, Any] = {"kind": "utilization_ceiling", "max_utilization": frac}
    mode = "path" if c.jargon_side else c.rng.choice(["path", "region", "region", "all"])
    if mode == "path":
        env.update(c.ends())
        exp["source"], exp["destination"] = c.src.label, c.dst.label
        frame = "frame.util.path"
    elif mode == "region":
        pool = c.world.places
        region = c.rng.sample(pool, c.rng.choice([1, 1, 2, 3]))
        env["R"] = _via_text(c, region) if len(region) > 1 else c.s.name(region[0])
        exp["region"] = region
        frame = "frame.util.region"
    else:
        frame = "frame.util.all"
    text = c.s.fill(c.s.pick(frame), env)
    return exp, text


def _latency(c: _Ctx) -> _Built:
    ms, ms_text = _millis(c.rng, 1, 500)
    env = c.ends()
    env["MS"] = _mark(ms_text)
    exp: dict[str, Any] = {"kind": "latency", "source": c.src.label,
                           "destination": c.dst.label, "max_ms": ms}
    env["PCTL"] = ""
    if c.rng.random() < 0.35:
        pct = c.rng.choice([50, 90, 95, 99, 99, 75])
        exp["percentile"] = pct
        env["PCTL"] = _mark(c.rng.choice([f"p{pct}", f"{pct}th percentile"])) + " "
    env["SVC_"] = env["OF_SVC"] = env["SVC_SP"] = ""
    if c.world.services and c.rng.random() < 0.3:
        svc = c.rng.choice(c.world.services)
        exp["service"] = svc
        name = c.s.name(svc)
        env["SVC_"], env["OF_SVC"], env["SVC_SP"] = name, f" of {name}", f" {name}"
    text = c.s.fill(c.s.pick("frame.latency"), env)
    return exp, text


def _slo(c: _Ctx) -> _Built:
    env: dict[str, str] = {"WLW": _mark(c.rng.choice(c.world.workload_words)),
                           "WL": "@np.workload", "SCOPE": ""}
    exp: dict[str, Any] = {"kind": "slo", "workload": "generative"}
    scopes = [*[("site", s) for s in c.world.table.sites],
              *[("group", g) for g in sorted(c.world.table.groups)]]
    if scopes and c.rng.random() < 0.5:
        kind, name = c.rng.choice(scopes)
        exp["scope"] = f"{kind}:{name}"
        env["SC"] = c.s.name(name)
        env["SCOPE"] = "@np.scope"
    metric = c.rng.choice(["p95", "p50", "availability", "throughput"])
    if metric in ("p95", "p50"):
        ms, ms_text = _millis(c.rng, 20, 5000)
        env["MS"] = _mark(ms_text)
        words = ["p95", "95th percentile"] if metric == "p95" else [
            "p50", "median", "50th percentile"]
        env["PCTW"] = _mark(c.rng.choice(words))
        exp["metric"], exp["target"] = f"latency_{metric}_ms", ms
        frame = "frame.slo.lat"
    elif metric == "availability":
        av = c.rng.choice([90, 95, 97.5, 98, 99, 99.5, 99.9, 99.95, 99.99, 99.999])
        env["AVAIL"] = _mark(c.rng.choice([f"{_fmt(av)}%", f"{_fmt(av)} percent",
                                           f"{_fmt(av)} per cent", f"{_fmt(av)} pct"]))
        exp["metric"], exp["target"] = "availability", round(av / 100, 6)
        frame = "frame.slo.avail"
    else:
        rate, rate_text = _rate(c.rng)
        env["RATE"] = _mark(rate_text)
        exp["metric"], exp["target"] = "throughput_mbps", rate
        frame = "frame.slo.tput"
    text = c.s.fill(c.s.pick(frame), env)
    return exp, text


_KINDS: dict[str, tuple[Callable[[_Ctx], _Built], float]] = {
    "reachability": (_reachability, 3.0),
    "access": (_access, 3.0),
    "waypoint": (_waypoint, 1.5),
    "load_balancing": (_load_balancing, 1.5),
    "bandwidth": (_bandwidth, 2.0),
    "utilization_ceiling": (_utilization, 1.5),
    "latency": (_latency, 1.5),
    "slo": (_slo, 1.0),
}
_NETCONFEVAL_KINDS = {"reachability": 3.0, "waypoint": 2.0, "load_balancing": 2.0}
_JARGON_KINDS = ("reachability", "access", "waypoint", "load_balancing", "bandwidth",
                 "utilization_ceiling", "latency")
_ANY_OK = frozenset({"reachability", "access", "bandwidth"})


# ------------------------------------------------------------------------------------------
# noise


_WORD_RE = re.compile(r"[A-Za-z]{4,}")


def _misspell(rng: random.Random, text: str) -> str:
    """One word outside marked values with one edit (swap, drop, double or replace a letter)."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == _OPEN:
            if depth == 0:
                spans.extend((m.start() + start, m.end() + start)
                             for m in _WORD_RE.finditer(text[start:i]))
            depth += 1
        elif ch == _CLOSE:
            depth -= 1
            start = i + 1
    spans.extend((m.start() + start, m.end() + start) for m in _WORD_RE.finditer(text[start:]))
    if not spans:
        return text
    a, b = rng.choice(spans)
    word = text[a:b]
    if rng.random() < 0.25:
        i = rng.randrange(1, len(word))
        letter = rng.choice("aeioustnrl")
        edited = word[:i] + letter + word[i + 1:]
    else:
        edited = typo(rng, word)
    return text[:a] + edited + text[b:]


def _clean(text: str) -> str:
    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,;:.?!])", r"\1", text)
    text = re.sub(r"\?[.,;]", "?", text)
    text = re.sub(r"(?<=s)'s\b", "'", text)
    return text.replace("..", ".")


def _shout(text: str) -> str:
    """Upper case outside marked values (units and numbers keep their spelling)."""
    return re.sub(rf"[^{_OPEN}{_CLOSE}]+(?={_OPEN}|$)", lambda m: m.group(0).upper(), text)


def _finish(rng: random.Random, text: str) -> str:
    """Casing and end punctuation variants."""
    r = rng.random()
    if r < 0.45:
        text = text[0].upper() + text[1:]
    if text.endswith("?"):
        return text
    if re.match(r"(?i)(could|can|would) (you|we)\b", text) and rng.random() < 0.6:
        return text.rstrip(".!") + "?"
    end = rng.choices(["", ".", "!", "..."], weights=[5, 5, 1, 0.5])[0]
    return text + end if text[-1].isalnum() or text[-1] in ")%" else text


# ------------------------------------------------------------------------------------------
# samples


@dataclass
class _Generator:
    """Draws samples for one topology and split."""

    world: _World
    split: Split
    jargon: Mapping[str, tuple[str, ...]]
    held_out: frozenset[str]
    dropped: dict[str, int] = field(default_factory=dict)
    novel_share: float = 0.0

    def _kind(self, rng: random.Random) -> str:
        if self.world.topology == "netconfeval":
            weights = _NETCONFEVAL_KINDS
        elif self.jargon:
            weights = {k: _KINDS[k][1] for k in _JARGON_KINDS}
        else:
            weights = {k: v[1] for k, v in _KINDS.items()}
        return rng.choices(list(weights), weights=list(weights.values()))[0]

    def _requirement(self, s: _Sample, *, with_jargon: bool) -> tuple[dict[str, Any], str]:
        rng = s.rng
        kind = self._kind(rng)
        src, dst = self.world.pair(rng, allow_any=kind in _ANY_OK and not with_jargon)
        side: str | None = None
        if with_jargon:
            ep = self.world.jargon_endpoint(rng, self.jargon)
            if ep is not None:
                side = rng.choice(["src", "dst"])
                other = dst if side == "src" else src
                while other.label == ep.label:
                    other = self.world.endpoint(rng)
                src, dst = (ep, other) if side == "src" else (other, ep)
        return _KINDS[kind][0](_Ctx(self.world, s, src, dst, side))

    def one(self, rng: random.Random) -> tuple[LabeledRequest, list[tuple[str, str]]] | None:
        s = _Sample(rng=rng, split=self.split, jargon=self.jargon,
                    name_typo=rng.random() < 0.05, ambiguous=self.world.ambiguous,
                    novel_share=self.novel_share)
        with_jargon = bool(self.jargon)
        exp, text = self._requirement(s, with_jargon=with_jargon)
        imperative = _imperative(s.used)
        exps = [exp]
        if rng.random() < 0.12:
            exp2, text2 = self._requirement(s, with_jargon=False)
            exps.append(exp2)
            text = s.fill(s.pick("lex.join"), {"A": text, "B": text2})
        if rng.random() < 0.3:
            lead = "lex.imp_lead" if imperative and rng.random() < 0.6 else "lex.decl_lead"
            text = s.pick(lead) + text
        if rng.random() < 0.2:
            tail = s.pick("lex.tail")
            text = text[:-1] + tail + "?" if text.endswith("?") else text + tail
        priority = 5
        if rng.random() < 0.1:
            r = rng.random()
            if r < 0.45:
                priority = rng.randint(1, 10)
                p_text = s.fill(s.pick("lex.prio_num"), {"PN": str(priority)})
            else:
                plist = rng.choice(sorted(_PRIORITY_LISTS))
                priority = _PRIORITY_LISTS[plist]
                p_text = s.pick(plist)
            text = s.fill(s.pick("lex.prio_place"), {"BODY": text, "P": _mark(p_text)})
        if rng.random() < 0.1:
            text = _misspell(rng, text)
        if rng.random() < 0.03:
            text = _shout(text)
        text = _finish(rng, _clean(text))
        if with_jargon and not s.jargon_used:
            self._drop("no-jargon")
            return None
        draft = self._label(exps, priority)
        if draft is None:
            self._drop("invalid-draft")
            return None
        if normalized(text) in self.held_out:
            self._drop("held-out")
            return None
        if self._parser_disagrees(text, draft):
            self._drop("parser-disagrees")
            return None
        request = LabeledRequest(text=text, draft=draft, topology=self.world.topology,
                                 split=self.split, source="jargon" if with_jargon else "generated")
        return request, s.used

    def _label(self, exps: list[dict[str, Any]], priority: int) -> dict[str, Any] | None:
        try:
            intent = intent_from_draft({"expectations": exps, "priority": priority},
                                       self.world.table)
        except DraftError:
            return None
        if len(intent.expectations) != len(exps):
            return None
        return draft_from_intent(intent)

    def _parser_disagrees(self, text: str, draft: dict[str, Any]) -> bool:
        try:
            parsed = draft_from_intent(parse_intent(text, self.world.table))
        except (NetGPTError, ValueError):
            return False
        return draft_json(parsed) != draft_json(draft)

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return None


def _imperative(used: list[tuple[str, str]]) -> bool:
    """Whether the first frame drawn for the sample is imperative."""
    for name, entry in used:
        if name.startswith("frame."):
            return entry.startswith("!")
    return False


@functools.cache
def _held_out() -> frozenset[str]:
    return held_out_texts()


@functools.cache
def _default_tables() -> dict[str, NameTable]:
    return corpus_name_tables()


def _generate(
    topology: str, n: int, *, split: Split, seed: int, table: NameTable | None,
    jargon: Mapping[str, tuple[str, ...]] | None, novel_share: float = 0.0,
) -> tuple[list[tuple[LabeledRequest, list[tuple[str, str]]]], dict[str, int]]:
    """Samples with the grammar entries each one used, and the drop counts by reason."""
    if split not in _SPLITS:
        raise ValueError(f"split {split!r} must be 'train' or 'heldout'")
    if n < 0:
        raise ValueError(f"n {n} must be >= 0")
    if not 0.0 <= novel_share < 1.0:
        raise ValueError(f"novel_share {novel_share} must be in [0, 1)")
    if table is None:
        tables = _default_tables()
        if topology not in tables:
            raise ValueError(f"no name table for topology {topology!r}; known: {sorted(tables)}")
        table = tables[topology]
    if not table.devices:
        raise ValueError(f"topology {topology!r}: the name table has no devices")
    gen = _Generator(_World(topology, table), split, dict(jargon or {}), _held_out(),
                     novel_share=novel_share)
    if jargon is not None and gen.world.jargon_endpoint(random.Random(0), gen.jargon) is None:
        raise ValueError("none of the jargon's canonical names is in the name table")
    seed_text = f"{topology}|{split}|{seed}|{bool(jargon)}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(seed_text).digest()[:8], "big"))
    out: list[tuple[LabeledRequest, list[tuple[str, str]]]] = []
    attempts = 0
    while len(out) < n and attempts < 20 * n + 100:
        attempts += 1
        got = gen.one(random.Random(rng.getrandbits(64)))
        if got is not None:
            out.append(got)
    return out, gen.dropped


def generate_requests(
    topology: str,
    n: int,
    *,
    split: Split,
    seed: int,
    table: NameTable | None = None,
    jargon: Mapping[str, tuple[str, ...]] | None = None,
    novel_share: float = 0.0,
) -> list[LabeledRequest]:
    """``n`` labeled requests for ``topology`` drawn only from ``split``'s grammar entries.

    ``table`` defaults to the corpus name table of ``topology`` (campus, abilene, netconfeval).
    With ``jargon`` (canonical name -> the site's words for it) at least one endpoint of each
    sample is written in the site's words (``source="jargon"``) while the draft keeps the real
    name. With ``novel_share``, that share of the lexical entries drawn (not frames, not
    priorities) is written with every word as :data:`NOVEL_WORD`: the request as a reader sees
    it when those words are ones it never learnt. Every draft validates against ``table``; the
    same arguments give the same list (fewer than ``n`` only if almost every candidate was
    dropped).
    """
    samples, _ = _generate(topology, n, split=split, seed=seed, table=table, jargon=jargon,
                           novel_share=novel_share)
    return [request for request, _ in samples]
