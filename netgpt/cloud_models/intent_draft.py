"""The intent *draft*: the compact JSON a language model writes for a formal intent.

A model does not write a whole :class:`~netgpt.intents.model.Intent` (ids, lifecycle, history,
timestamps are the platform's business); it writes a draft::

    {"expectations": [{"kind": "access", "action": "block",
                       "traffic": {"source": "group:guests", "destination": "group:servers",
                                   "service": "telnet"}}],
     "priority": 5}

Endpoints are short strings (``any``, ``device:NAME``, ``group:NAME``, ``site:NAME``,
``prefix:10.1.0.0/16``), ports are ``"23"`` or ``"5000-5010"``, times ``"HH:MM"``, and fields at
their default are left out. :func:`intent_draft_schema` derives the draft's JSON schema from the
pydantic expectation models (so it follows them) and narrows every name to the
:class:`~netgpt.intents.names.NameTable` in use: a schema-constrained decoder cannot write a name
the network does not have. :func:`draft_from_intent` is the inverse mapping (training targets,
the embedded backend); :func:`intent_from_draft` validates a draft through pydantic and the name
table and builds the :class:`Intent`. :func:`ungrounded_names` lists the names a reading uses that
its text never mentions (a model that guessed). Pure functions, no I/O.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from netgpt.device_config import PortRange
from netgpt.intents.model import (
    AnyEndpoint,
    DeviceEndpoint,
    Expectation,
    GroupEndpoint,
    Intent,
    PrefixEndpoint,
    SiteEndpoint,
)
from netgpt.intents.names import NameKind, NameTable, name_words
from netgpt.intents.vocabulary import WHOLE_DAY_END

__all__ = [
    "DRAFT_TITLE",
    "DraftError",
    "draft_from_intent",
    "draft_json",
    "endpoint_label",
    "intent_draft_schema",
    "intent_from_draft",
    "ungrounded_names",
]

DRAFT_TITLE = "IntentDraft"
MAX_EXPECTATIONS = 8
_EXPECTATION: TypeAdapter[Any] = TypeAdapter(Expectation)
_ENDPOINT_DEFS = frozenset(
    {"DeviceEndpoint", "GroupEndpoint", "SiteEndpoint", "PrefixEndpoint", "AnyEndpoint"}
)
_ENDPOINT_MODELS = (DeviceEndpoint, GroupEndpoint, SiteEndpoint, PrefixEndpoint, AnyEndpoint)
_DROP_KEYS = frozenset({"title", "description", "default", "discriminator"})
# properties that hold names, by property name: which name kinds they may take
_NAME_PROPERTIES: dict[str, str] = {
    "service": "service",
    "workload": "workload",
    "via": "place",
    "region": "place",
}
_OCTET = r"(25[0-5]|2[0-4]\d|1?\d?\d)"
_PREFIX_PATTERN = rf"^prefix:{_OCTET}(\.{_OCTET}){{3}}/(3[0-2]|[12]?\d)$"
_PORTS_PATTERN = r"^\d{1,5}(-\d{1,5})?$"
# "24:00" is the end of the day (a window's end that covers the whole last minute)
_TIME_PATTERN = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"
_ENDPOINT_KINDS: tuple[NameKind, ...] = ("device", "group", "site")


class DraftError(ValueError):
    """A draft that does not fit the schema, the expectation models or the name table."""


# ------------------------------------------------------------------------------------------
# schema


@functools.cache
def _expectation_schema() -> dict[str, Any]:
    return _EXPECTATION.json_schema(mode="validation")


def _is_endpoint_union(node: dict[str, Any]) -> bool:
    members = node.get("oneOf") or node.get("anyOf")
    if not isinstance(members, list) or not members:
        return False
    refs = [m.get("$ref", "") for m in members if isinstance(m, dict)]
    return len(refs) == len(members) and all(r.rsplit("/", 1)[-1] in _ENDPOINT_DEFS for r in refs)


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, null]`` (an optional field) as ``X``: the draft leaves such fields out."""
    members = node.get("anyOf")
    if isinstance(members, list):
        kept = [m for m in members if m != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(members):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return {**rest, **kept[0]}
    return node


def _transform(node: Any, name_hint: str | None = None) -> Any:
    if isinstance(node, list):
        return [_transform(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = _without_null(node)
    if _is_endpoint_union(node) or node.get("$ref", "").rsplit("/", 1)[-1] in _ENDPOINT_DEFS:
        return {"$ref": "#/$defs/endpoint"}
    if node.get("$ref") == "#/$defs/PortRange":
        return {"$ref": "#/$defs/ports"}
    if name_hint is not None and node.get("type") == "string":
        return {"$ref": f"#/$defs/{_NAME_PROPERTIES[name_hint]}"}
    if name_hint is not None and node.get("type") == "array":
        array = {k: _transform(v) for k, v in node.items() if k not in _DROP_KEYS | {"items"}}
        array["items"] = {"$ref": f"#/$defs/{_NAME_PROPERTIES[name_hint]}"}
        return array
    if node.get("format") == "time":
        return {"type": "string", "pattern": _TIME_PATTERN}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out[key] = {
                prop: _transform(sub, prop if prop in _NAME_PROPERTIES else None)
                for prop, sub in value.items()
                if prop != "timezone"  # drafts use UTC windows; the platform sets zones
            }
        else:
            out[key] = _transform(value)
    props = out.get("properties", {})
    if "kind" in props and "const" in props["kind"]:
        out["required"] = ["kind", *[r for r in out.get("required", []) if r != "kind"]]
    return out


def _names_of(names: NameTable, kind: NameKind) -> list[str]:
    if kind == "device":
        return list(names.devices)
    if kind == "site":
        return list(names.sites)
    if kind == "group":
        return list(names.groups)
    if kind == "service":
        return list(names.services)
    return list(names.workloads)


def intent_draft_schema(names: NameTable, *, max_expectations: int = MAX_EXPECTATIONS) -> dict[
    str, Any
]:
    """The JSON schema of an intent draft whose names all come from ``names``.

    Derived from the pydantic expectation models: endpoints become ``kind:name`` strings drawn
    from the table (or a ``prefix:`` pattern, or ``any``), service / workload / waypoint / region
    names become enums of the table's names, port ranges ``"lo-hi"`` strings; titles,
    descriptions and defaults are dropped (a model leaves default fields out). Properties keep
    the models' order, so a decoder that follows schema order writes fields in that order.
    """
    if not 1 <= max_expectations <= 100:
        raise ValueError(f"max_expectations {max_expectations} must be 1-100")
    base = _expectation_schema()
    defs = {k: _transform(v) for k, v in base["$defs"].items()
            if k not in _ENDPOINT_DEFS and k != "PortRange"}
    union = _transform({k: v for k, v in base.items() if k != "$defs"})
    endpoint_enum = ["any"] + [f"{kind}:{n}" for kind in _ENDPOINT_KINDS
                               for n in _names_of(names, kind)]
    defs["endpoint"] = {"anyOf": [
        {"type": "string", "enum": endpoint_enum},
        {"type": "string", "pattern": _PREFIX_PATTERN},
    ]}
    defs["ports"] = {"type": "string", "pattern": _PORTS_PATTERN}
    places = list(dict.fromkeys([*names.devices, *names.sites]))
    defs["place"] = {"type": "string", "enum": places or ["-"]}
    defs["service"] = {"type": "string", "enum": _names_of(names, "service") or ["-"]}
    defs["workload"] = {"type": "string", "enum": _names_of(names, "workload") or ["-"]}
    members = union.get("oneOf") or union.get("anyOf")
    return {
        "title": DRAFT_TITLE,
        "type": "object",
        "properties": {
            "expectations": {
                "type": "array",
                "items": {"anyOf": members},
                "minItems": 1,
                "maxItems": max_expectations,
            },
            "priority": {"type": "integer", "minimum": 1, "maximum": 10},
        },
        "required": ["expectations", "priority"],
        "additionalProperties": False,
        "$defs": defs,
    }


# ------------------------------------------------------------------------------------------
# intent -> draft


def endpoint_label(endpoint: Any) -> str:
    """An endpoint (model or its JSON dump) as a draft string: ``group:guests``, ``any``..."""
    data = endpoint if isinstance(endpoint, dict) else endpoint.model_dump(mode="json")
    kind = data.get("kind", "any")
    if kind == "any":
        return "any"
    if kind == "prefix":
        return f"prefix:{data['prefix']}"
    return f"{kind}:{data['name']}"


def _short(value: Any) -> Any:
    """A model value in draft form: endpoints and ports as strings, defaults left out."""
    if isinstance(value, BaseModel):
        if isinstance(value, _ENDPOINT_MODELS):
            return endpoint_label(value)
        if isinstance(value, PortRange):
            return str(value)
        out: dict[str, Any] = {}
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            if name == "timezone" or (name != "kind" and not info.is_required()
                                      and item == info.get_default(call_default_factory=True)):
                continue
            out[name] = _short(item)
        return out
    if isinstance(value, tuple | list):
        return [_short(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, time):
        return "24:00" if value == WHOLE_DAY_END else value.strftime("%H:%M")
    return value


def draft_from_intent(intent: Intent) -> dict[str, Any]:
    """The draft a perfect model would write for ``intent`` (defaults left out, kind first)."""
    return {"expectations": [_short(e) for e in intent.expectations], "priority": intent.priority}


def draft_json(draft: dict[str, Any]) -> str:
    """A draft as compact JSON (the form the project's model is trained to write)."""
    return json.dumps(draft, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------------------------------
# draft -> intent


def _resolve_name(names: NameTable, kind: NameKind, name: str, where: str) -> str:
    readings = names.lookup(name_words(name))
    for k, canonical in readings:
        if k == kind:
            return canonical
    known = _names_of(names, kind)
    raise DraftError(f"{where}: unknown {kind} {name!r}; known {kind}s: {known[:20]}")


def _endpoint(value: Any, names: NameTable, where: str) -> dict[str, Any]:
    if not isinstance(value, str):
        raise DraftError(f"{where}: an endpoint is a string such as 'group:guests', not "
                         f"{value!r}")
    if value == "any":
        return {"kind": "any"}
    kind, sep, name = value.partition(":")
    if not sep or not name:
        raise DraftError(f"{where}: endpoint {value!r} must read KIND:NAME (device, group, site, "
                         "prefix) or 'any'")
    if kind == "prefix":
        return {"kind": "prefix", "prefix": name}
    if kind not in _ENDPOINT_KINDS:
        raise DraftError(f"{where}: endpoint kind {kind!r} must be device, group, site or prefix")
    return {"kind": kind, "name": _resolve_name(names, kind, name, where)}


def _ports(value: Any, where: str) -> dict[str, int]:
    text = str(value)
    if not re.fullmatch(_PORTS_PATTERN, text):
        raise DraftError(f"{where}: ports {value!r} must read '23' or '5000-5010'")
    lo, _, hi = text.partition("-")
    return {"lower": int(lo), "upper": int(hi or lo)}


def _place(names: NameTable, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DraftError(f"{where}: expected a device or site name, got {value!r}")
    for k, canonical in names.lookup(name_words(value)):
        if k in ("device", "site"):
            return canonical
    raise DraftError(f"{where}: unknown device or site {value!r}; known: "
                     f"{[*names.devices, *names.sites][:20]}")


def _expand(raw: Any, names: NameTable, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DraftError(f"{where}: an expectation is an object, not {type(raw).__name__}")
    out = dict(raw)
    for key in ("source", "destination", "scope"):
        if key in out:
            out[key] = _endpoint(out[key], names, f"{where}.{key}")
    if "traffic" in out:
        traffic = out["traffic"]
        if not isinstance(traffic, dict):
            raise DraftError(f"{where}.traffic: must be an object")
        traffic = dict(traffic)
        for key in ("source", "destination"):
            if key in traffic:
                traffic[key] = _endpoint(traffic[key], names, f"{where}.traffic.{key}")
        if "ports" in traffic:
            traffic["ports"] = _ports(traffic["ports"], f"{where}.traffic.ports")
        if "service" in traffic:
            traffic["service"] = _service(names, traffic["service"], f"{where}.traffic.service")
        out["traffic"] = traffic
    if isinstance(out.get("window"), dict):
        out["window"] = {k: (WHOLE_DAY_END.isoformat() if v == "24:00" else v)
                         for k, v in out["window"].items()}
    if "service" in out:
        out["service"] = _service(names, out["service"], f"{where}.service")
    if "workload" in out:
        out["workload"] = _resolve_name(names, "workload", str(out["workload"]),
                                        f"{where}.workload")
    for key in ("via", "region"):
        if key in out:
            if not isinstance(out[key], list):
                raise DraftError(f"{where}.{key}: must be a list of device or site names")
            out[key] = [_place(names, v, f"{where}.{key}[{i}]") for i, v in enumerate(out[key])]
    return out


def _service(names: NameTable, value: Any, where: str) -> str:
    return _resolve_name(names, "service", str(value), where)


def intent_from_draft(
    draft: Any, names: NameTable, *, text: str = "", owner: str = "operator"
) -> Intent:
    """Build the :class:`Intent` a draft describes; :class:`DraftError` says what does not fit.

    Every name must resolve in ``names`` with the kind the draft gives it (case-insensitive; the
    intent holds the canonical spelling), every expectation must validate against its pydantic
    model, and there must be 1 to 100 of them.
    """
    if not isinstance(draft, dict):
        raise DraftError(f"the draft must be a JSON object, not {type(draft).__name__}")
    extra = sorted(set(draft) - {"expectations", "priority"})
    if extra:
        raise DraftError(f"unexpected field(s) {extra}; a draft has expectations and priority")
    raw = draft.get("expectations")
    if not isinstance(raw, list) or not raw:
        raise DraftError("'expectations' must be a non-empty list")
    priority = draft.get("priority", 5)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 10:
        raise DraftError(f"priority {priority!r} must be an integer 1-10")
    expectations = []
    for i, item in enumerate(raw):
        where = f"expectations[{i}]"
        expanded = _expand(item, names, where)
        try:
            expectations.append(_EXPECTATION.validate_python(expanded))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise DraftError(f"{where}: {first['msg']} (at {loc or 'the expectation'})") from exc
    unique = list(dict.fromkeys(expectations))
    try:
        return Intent(text=text[:4000], expectations=tuple(unique), priority=priority, owner=owner)
    except ValidationError as exc:
        raise DraftError(f"the draft does not make an intent: {exc.errors()[0]['msg']}") from exc



# ------------------------------------------------------------------------------------------
# grounding


def _named(value: Any, out: list[tuple[str, str]]) -> None:
    """Collect ``(kind, name)`` for every name in an expectation's JSON dump."""
    if isinstance(value, list):
        for v in value:
            _named(v, out)
        return
    if not isinstance(value, dict):
        return
    kind = value.get("kind")
    if kind in _ENDPOINT_KINDS and isinstance(value.get("name"), str):
        out.append((kind, value["name"]))
    elif kind == "prefix" and isinstance(value.get("prefix"), str):
        out.append(("prefix", value["prefix"]))
    for key, item in value.items():
        if key in ("service", "workload") and isinstance(item, str):
            out.append((key, item))
        elif key in ("via", "region") and isinstance(item, list):
            out.extend(("place", str(v)) for v in item)
        else:
            _named(item, out)


def ungrounded_names(intent: Intent, text: str, names: NameTable) -> list[str]:
    """The names ``intent`` uses that ``text`` never mentions (an empty list: all grounded).

    A name is mentioned when some run of the text's words is that name or one of its aliases in
    ``names`` (with the same kind; a device or a site for waypoints and regions); a prefix when
    its address appears in the text. A schema-constrained model always writes *some* known name,
    so a reading of text that names nothing (or something else) shows up here.
    """
    words = name_words(text)
    mentioned: set[tuple[str, str]] = set()
    for n in range(1, names.longest + 1):
        for i in range(len(words) - n + 1):
            mentioned.update(names.lookup(words[i:i + n]))
    lowered = text.lower()
    used: list[tuple[str, str]] = []
    for e in intent.expectations:
        _named(e.model_dump(mode="json"), used)
    missing = []
    for kind, name in dict.fromkeys(used):
        if kind == "prefix":
            grounded = name.split("/", 1)[0] in lowered
        elif kind == "place":
            grounded = any((k, name) in mentioned for k in ("device", "site"))
        else:
            grounded = (kind, name) in mentioned
        if not grounded:
            missing.append(f"{kind}:{name}")
    return missing
