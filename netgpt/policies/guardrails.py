"""Guardrails: judge a change set against the operator's :class:`PolicySet`.

:func:`load_policies` reads a policy YAML file (the only I/O here); :func:`default_policies`
loads the shipped ``default_policy.yaml``. :func:`evaluate_change` compares each device's current
config with its candidate, derives the actions (:func:`change_actions`: interface disabled, ACL
added, route removed, ...) and returns one :class:`Verdict` per rule checked;
:func:`needs_approval` says whether a person must approve first. :class:`Guardrails` bundles both
behind the :class:`~netgpt.policies.base.PolicyEngine` contract.

Besides the rules of the file, one built-in rule always applies: ``intent-scope`` (a change may
touch only the devices and sites of the intent's scope, when the scope names any).

No rule can be switched off by an intent or a model: there is no override argument anywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from netgpt.device_config import AclAction, AclRule, DeviceConfig, InterfaceConfig
from netgpt.errors import ConfigError
from netgpt.intents.model import Intent
from netgpt.intents.plan import ChangeSet, Verdict, VerdictSource
from netgpt.policies.base import (
    ActionKind,
    ConfigAction,
    ForbiddenAction,
    ForbiddenActionKind,
    PolicySet,
    matches_any,
)
from netgpt.sim_networks.topology import Topology

__all__ = [
    "SCOPE_RULE_ID",
    "Guardrails",
    "change_actions",
    "default_policies",
    "evaluate_change",
    "load_policies",
    "needs_approval",
]

SCOPE_RULE_ID = "intent-scope"
_DEFAULT_FILE = "default_policy.yaml"


# ------------------------------------------------------------------------------------------
# loading


def load_policies(path: Path | str) -> PolicySet:
    """Read a policy file; :class:`ConfigError` names the file, line, field and bad value."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"policy file {str(path)!r} cannot be read ({exc})") from exc
    return _parse(text, str(path))


def default_policies() -> PolicySet:
    """The shipped default policy set (``netgpt/policies/default_policy.yaml``)."""
    text = resources.files("netgpt.policies").joinpath(_DEFAULT_FILE).read_text(encoding="utf-8")
    return _parse(text, _DEFAULT_FILE)


def _parse(text: str, where: str) -> PolicySet:
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}{line}: not valid YAML ({problem})") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: the policy file must be a mapping of sections (protected_devices, "
            f"forbidden_actions, ...), got {type(raw).__name__}"
        )
    try:
        return PolicySet.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = _dotted(loc) or "(top level)"
            line_no = _line_of(root, loc)
            at = f" line {line_no}" if line_no else ""
            value = err.get("input")
            problems.append(f"{where}{at}, {field}: {err['msg']} (got {value!r})")
        raise ConfigError("invalid policy file:\n  " + "\n  ".join(problems)) from exc


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one that exists)."""
    if node is None:
        return None
    best = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = value
                    best = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            return best
        node = child
        best = node.start_mark.line + 1
    return best


# ------------------------------------------------------------------------------------------
# what a change does


def change_actions(device: str, current: DeviceConfig | None, candidate: DeviceConfig) -> list[
    ConfigAction
]:
    """The actions that turn ``current`` into ``candidate`` (``None``: a device without config)."""
    old = current if current is not None else DeviceConfig(hostname=candidate.hostname)
    out: list[ConfigAction] = []
    A = ActionKind
    old_itfs = {i.name: i for i in old.interfaces}
    new_itfs = {i.name: i for i in candidate.interfaces}
    for name in old_itfs:
        if name not in new_itfs:
            out.append(ConfigAction(device, A.INTERFACE_REMOVED, name))
    for name, new in new_itfs.items():
        was = old_itfs.get(name)
        if was is None:
            out.append(ConfigAction(device, A.INTERFACE_ADDED, name))
            was = InterfaceConfig(name=name)
            if not new.enabled:
                out.append(ConfigAction(device, A.INTERFACE_DISABLED, name))
        elif was.enabled != new.enabled:
            kind = A.INTERFACE_ENABLED if new.enabled else A.INTERFACE_DISABLED
            out.append(ConfigAction(device, kind, name))
        if was.igp_cost != new.igp_cost:
            out.append(ConfigAction(device, A.IGP_COST_CHANGED, name,
                                    f"{was.igp_cost} -> {new.igp_cost}"))
        if was.rate_limit != new.rate_limit:
            out.append(ConfigAction(device, A.RATE_LIMIT_CHANGED, name,
                                    f"{_rate(was)} -> {_rate(new)}"))
        if was.class_policers != new.class_policers:
            out.append(ConfigAction(device, A.RATE_LIMIT_CHANGED, name,
                                    f"class policers {_classes(was)} -> {_classes(new)}"))
        for direction, before, after in (
            ("ingress", was.acl_ingress, new.acl_ingress),
            ("egress", was.acl_egress, new.acl_egress),
        ):
            for acl in after:
                if acl not in before:
                    out.append(ConfigAction(device, A.ACL_ATTACHED, name, f"{acl} {direction}"))
            for acl in before:
                if acl not in after:
                    out.append(ConfigAction(device, A.ACL_DETACHED, name, f"{acl} {direction}"))
    old_acls = {a.name: a for a in old.acls}
    new_acls = {a.name: a for a in candidate.acls}
    for name in old_acls.keys() - new_acls.keys():
        out.append(ConfigAction(device, A.ACL_REMOVED, name))
    for name, new_acl in new_acls.items():
        if name not in old_acls:
            out.append(ConfigAction(device, A.ACL_ADDED, name, f"{len(new_acl.rules)} rule(s)"))
        elif old_acls[name] != new_acl:
            out.append(ConfigAction(device, A.ACL_CHANGED, name))
    old_routes = {r.prefix: r for r in old.static_routes}
    new_routes = {r.prefix: r for r in candidate.static_routes}
    for prefix in old_routes.keys() - new_routes.keys():
        out.append(ConfigAction(device, A.ROUTE_REMOVED, prefix))
    for prefix, route in new_routes.items():
        if prefix not in old_routes:
            out.append(ConfigAction(device, A.ROUTE_ADDED, prefix, _next_hop(route)))
        elif old_routes[prefix] != route:
            out.append(ConfigAction(device, A.ROUTE_CHANGED, prefix,
                                    f"{_next_hop(old_routes[prefix])} -> {_next_hop(route)}"))
    return sorted(out, key=lambda a: (a.kind.value, a.target, a.detail))


def _rate(itf: InterfaceConfig) -> str:
    r = itf.rate_limit
    if r is None:
        return "none"
    return f"in {r.ingress_mbps or '-'} / out {r.egress_mbps or '-'} Mbit/s"


def _classes(itf: InterfaceConfig) -> str:
    shown = [f"{c.name} {c.direction} {c.rate_mbps:g} Mbit/s"
             + (f" ({c.assured_mbps:g} assured)" if c.assured_mbps else "")
             for c in itf.class_policers]
    return ", ".join(shown) if shown else "none"


def _next_hop(route: Any) -> str:
    if route.discard:
        return "discard"
    if route.next_hop_address is not None:
        return f"via {route.next_hop_address}"
    return f"out {route.outgoing_interface}"


# ------------------------------------------------------------------------------------------
# evaluation


def _pass(rule: str, evidence: str) -> Verdict:
    return Verdict(True, VerdictSource.POLICY, rule, evidence)


def _fail(rule: str, findings: Sequence[str]) -> Verdict:
    head = findings[0] if len(findings) == 1 else f"{findings[0]} (and {len(findings) - 1} more)"
    return Verdict(False, VerdictSource.POLICY, rule, head, tuple(findings))


def _changed(change_set: ChangeSet, current: Mapping[str, DeviceConfig]) -> list[str]:
    return [c.device for c in change_set.changes if current.get(c.device) != c.candidate]


def _aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ConfigError(
            f"now={now.isoformat()} has no timezone; pass an aware datetime such as "
            "datetime.now(UTC)"
        )


def evaluate_change(
    policies: PolicySet,
    intent: Intent,
    change_set: ChangeSet,
    current_configs: Mapping[str, DeviceConfig],
    *,
    now: datetime,
    topology: Topology | None = None,
) -> list[Verdict]:
    """One verdict (source ``policy``) per rule checked; failed ones name the rule id and evidence.

    ``current_configs`` holds the running config of each device (a device missing there is
    judged as if it had an empty config). ``now`` must be timezone-aware. A change outside the
    change windows fails ``change-window`` when the rule says ``outside: refuse``; with
    ``outside: approve`` it passes here and :func:`needs_approval` asks for a person.
    ``topology`` resolves the sites of the intent's scope (a scope naming sites without it fails
    ``intent-scope``).
    """
    _aware(now)
    actions = {
        c.device: change_actions(c.device, current_configs.get(c.device), c.candidate)
        for c in change_set.changes
    }
    touched = [d for d in change_set.devices if actions[d]]
    verdicts: list[Verdict] = [_scope(intent, touched, topology)]

    for rule in policies.protected_devices:
        hits = [f"{d} is protected ({', '.join(str(a) for a in actions[d][:3])})"
                for d in touched if matches_any(d, rule.devices)]
        verdicts.append(_fail(rule.id, hits) if hits else
                        _pass(rule.id, f"no device matching {list(rule.devices)} is changed"))

    for prule in policies.protected_interfaces:
        hits = []
        for d in touched:
            if not matches_any(d, (prule.device,)):
                continue
            for a in actions[d]:
                if a.kind in (ActionKind.INTERFACE_DISABLED, ActionKind.INTERFACE_REMOVED) and (
                    matches_any(a.target, (prule.interface,))
                ):
                    what = "disabled" if a.kind is ActionKind.INTERFACE_DISABLED else "removed"
                    hits.append(f"{d} interface {a.target} is protected but would be {what}")
        verdicts.append(
            _fail(prule.id, hits) if hits else _pass(
                prule.id, f"no interface {prule.interface} on {prule.device} is disabled or removed"
            )
        )

    for frule in policies.forbidden_actions:
        hits = []
        for c in change_set.changes:
            if not actions[c.device] or not matches_any(c.device, frule.devices):
                continue
            hits.extend(_forbidden(frule, policies, c.device, current_configs.get(c.device),
                                   c.candidate))
        verdicts.append(_fail(frule.id, hits) if hits else
                        _pass(frule.id, f"no {frule.action.value.replace('_', ' ')}"))

    size = policies.max_devices_per_change
    if size is not None:
        n = len(touched)
        if n > size.max_devices:
            verdicts.append(_fail(size.id, [
                f"the change touches {n} devices, more than the {size.max_devices} allowed "
                f"({', '.join(touched[:8])}{', ...' if n > 8 else ''})"
            ]))
        else:
            verdicts.append(_pass(size.id, f"{n} device(s), at most {size.max_devices} allowed"))

    window = policies.change_windows
    if window.open_at(now):
        verdicts.append(_pass(window.id, f"{now.isoformat()} is inside a change window"))
    elif window.outside == "approve":
        verdicts.append(_pass(window.id, f"{now.isoformat()} is outside every change window; "
                                         "allowed only with a person's approval"))
    elif touched:
        verdicts.append(_fail(window.id, [f"{now.isoformat()} is outside every change window "
                                          f"({_windows_text(policies)})"]))
    else:
        verdicts.append(_pass(window.id, "nothing changes, so the change window does not apply"))
    return verdicts


def _windows_text(policies: PolicySet) -> str:
    return "; ".join(
        f"{','.join(w.days)} {w.start.strftime('%H:%M')}-{w.end.strftime('%H:%M')} {w.timezone}"
        for w in policies.change_windows.windows
    )


def _scope(intent: Intent, touched: list[str], topology: Topology | None) -> Verdict:
    scope = intent.scope
    if not scope.devices and not scope.sites:
        return _pass(SCOPE_RULE_ID, "the intent's scope is the whole network")
    if scope.sites and topology is None:
        return _fail(SCOPE_RULE_ID, [
            f"intent {intent.id} is scoped to sites {list(scope.sites)}, which cannot be checked "
            "without the topology; pass topology="
        ])
    allowed = set(scope.devices)
    if topology is not None:
        allowed |= {d for d in topology.devices
                    if topology.graph.nodes[d].get("site") in scope.sites}
    outside = [d for d in touched if d not in allowed]
    if outside:
        return _fail(SCOPE_RULE_ID, [
            f"intent {intent.id} may change only {sorted(allowed)} (scope devices "
            f"{list(scope.devices)}, sites {list(scope.sites)}), but the change touches {outside}"
        ])
    return _pass(SCOPE_RULE_ID, f"every changed device is in the scope of intent {intent.id}")


def _forbidden(
    rule: ForbiddenAction,
    policies: PolicySet,
    device: str,
    current: DeviceConfig | None,
    candidate: DeviceConfig,
) -> list[str]:
    old = current if current is not None else DeviceConfig(hostname=candidate.hostname)
    K = ForbiddenActionKind
    ctl = policies.controller
    if rule.action is K.DROP_CONTROLLER_TRAFFIC:
        before = set(_active_rules(old))
        hits = []
        for where, acl, r in _active_rules(candidate):
            if (where, acl, r) in before or r.action is AclAction.ACCEPT:
                continue
            if _catches_controller(r, ctl.prefixes, ctl.management_prefixes):
                hits.append(
                    f"{device} {where}: ACL {acl} rule {r.name} {r.action.value}s "
                    f"{r.source_prefix} -> {r.destination_prefix}, which includes the "
                    f"controller's traffic ({', '.join(ctl.prefixes)} <-> "
                    f"{', '.join(ctl.management_prefixes)})"
                )
        return hits
    if rule.action is K.REMOVE_ALL_STATIC_ROUTES:
        if old.static_routes and not candidate.static_routes:
            return [f"{device} would lose all {len(old.static_routes)} static route(s) "
                    f"({', '.join(r.prefix for r in old.static_routes[:4])})"]
        return []
    if rule.action is K.BLACKHOLE_DEFAULT_OR_CONTROLLER:
        old_routes = set(old.static_routes)
        guarded = [ipaddress.IPv4Network(p) for p in (*ctl.prefixes, *ctl.management_prefixes)]
        hits = []
        for route in candidate.static_routes:
            if not route.discard or route in old_routes:
                continue
            net = ipaddress.IPv4Network(route.prefix)
            if net.prefixlen == 0 or any(net.overlaps(g) for g in guarded):
                hits.append(f"{device} would null-route {route.prefix}")
        return hits
    if rule.action is K.REMOVE_INTERFACE:
        names = {i.name for i in candidate.interfaces}
        return [f"{device} interface {i.name} would be removed"
                for i in old.interfaces if i.name not in names]
    # ISOLATE_DEVICE
    def links_up(cfg: DeviceConfig) -> list[str]:
        return [i.name for i in cfg.interfaces if i.enabled and i.ipv4_address is not None]

    if links_up(old) and not links_up(candidate):
        return [f"{device} would have no enabled link interface left "
                f"(was: {', '.join(links_up(old))})"]
    return []


def _active_rules(cfg: DeviceConfig) -> list[tuple[str, str, AclRule]]:
    """(interface direction, ACL, rule) for every rule of every attached ACL."""
    acls = {a.name: a for a in cfg.acls}
    out = []
    for itf in cfg.interfaces:
        for direction, names in (("ingress", itf.acl_ingress), ("egress", itf.acl_egress)):
            for name in names:
                for r in acls[name].rules:
                    out.append((f"{itf.name} {direction}", name, r))
    return out


def _catches_controller(rule: AclRule, controller: Sequence[str], managed: Sequence[str]) -> bool:
    src = ipaddress.IPv4Network(rule.source_prefix)
    dst = ipaddress.IPv4Network(rule.destination_prefix)

    def hits(nets: Sequence[str], net: ipaddress.IPv4Network) -> bool:
        return any(net.overlaps(ipaddress.IPv4Network(n)) for n in nets)

    return (hits(controller, src) and hits(managed, dst)) or (
        hits(managed, src) and hits(controller, dst)
    )


# ------------------------------------------------------------------------------------------
# approval


def needs_approval(
    policies: PolicySet,
    intent: Intent,
    change_set: ChangeSet,
    *,
    now: datetime,
    current_configs: Mapping[str, DeviceConfig] | None = None,
) -> Verdict | None:
    """Why a person must approve this change first, or ``None`` when no rule asks for it.

    The verdict (source ``approval``, not passed) names every approval rule that matched (and the
    change window when the change falls outside it with ``outside: approve``). With
    ``current_configs`` only devices whose config really changes count; without, every device of
    the change set does.
    """
    _aware(now)
    devices = list(change_set.devices if current_configs is None
                   else _changed(change_set, current_configs))
    rules: list[str] = []
    reasons: list[str] = []
    for rule in policies.approval:
        why = []
        if rule.intent_kinds:
            kinds = sorted(set(intent.kinds) & set(rule.intent_kinds))
            if not kinds:
                continue
            why.append(f"the intent has {'/'.join(kinds)} expectations")
        if rule.min_devices is not None:
            if len(devices) < rule.min_devices:
                continue
            why.append(f"it changes {len(devices)} devices (approval from {rule.min_devices})")
        if rule.devices:
            hit = [d for d in devices if matches_any(d, rule.devices)]
            if not hit:
                continue
            why.append(f"it changes {', '.join(hit)}")
        rules.append(rule.id)
        reasons.append(f"{rule.id}: {' and '.join(why)}")
    window = policies.change_windows
    if window.outside == "approve" and devices and not window.open_at(now):
        rules.append(window.id)
        reasons.append(f"{window.id}: {now.isoformat()} is outside every change window")
    if not rules:
        return None
    return Verdict(False, VerdictSource.APPROVAL, ", ".join(rules),
                   f"intent {intent.id} needs a person's approval: " + "; ".join(reasons),
                   tuple(reasons))


class Guardrails:
    """The :class:`~netgpt.policies.base.PolicyEngine` over one :class:`PolicySet`."""

    def __init__(self, policies: PolicySet, *, topology: Topology | None = None) -> None:
        self.policies = policies
        self.topology = topology

    def evaluate_change(
        self,
        intent: Intent,
        change_set: ChangeSet,
        current_configs: Mapping[str, DeviceConfig],
        *,
        now: datetime,
    ) -> list[Verdict]:
        """See :func:`evaluate_change`."""
        return evaluate_change(self.policies, intent, change_set, current_configs, now=now,
                               topology=self.topology)

    def needs_approval(
        self, intent: Intent, change_set: ChangeSet, *, now: datetime
    ) -> Verdict | None:
        """See :func:`needs_approval`."""
        return needs_approval(self.policies, intent, change_set, now=now)
