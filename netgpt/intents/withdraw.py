"""Undoing an intent: the change set that takes out what its deployed plans put in.

Pure logic. Each deployed plan is known by the configs it started from and the candidates it
committed. Withdrawal removes the intent's own ACL (named after the intent) everywhere, and
reverts every other leaf the plans changed — static routes, IGP costs, rate limits — but only
where the device still holds the value the intent set, so later changes by others are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from netgpt.device_config import DeviceConfig
from netgpt.intents.compiler import intent_acl_name
from netgpt.intents.plan import ChangeSet, DeviceChange

__all__ = ["DeployedPlan", "withdrawal_change_set"]


@dataclass(frozen=True)
class DeployedPlan:
    """One applied plan of an intent: each device's config before, and the candidate after."""

    before: Mapping[str, DeviceConfig]
    after: Mapping[str, DeviceConfig]


def _without_acl(config: DeviceConfig, acl: str) -> DeviceConfig:
    interfaces = tuple(
        i.model_copy(
            update={
                "acl_ingress": tuple(a for a in i.acl_ingress if a != acl),
                "acl_egress": tuple(a for a in i.acl_egress if a != acl),
            }
        )
        for i in config.interfaces
    )
    return DeviceConfig(
        hostname=config.hostname,
        interfaces=interfaces,
        acls=tuple(a for a in config.acls if a.name != acl),
        static_routes=config.static_routes,
    )


def _revert(current: DeviceConfig, before: DeviceConfig, after: DeviceConfig) -> DeviceConfig:
    routes = list(current.static_routes)
    added = [r for r in after.static_routes if r not in before.static_routes]
    for route in added:
        if route in routes:
            routes.remove(route)
            replaced = next((r for r in before.static_routes if r.prefix == route.prefix), None)
            if replaced is not None:
                routes.append(replaced)
    interfaces = []
    for itf in current.interfaces:
        old = next((i for i in before.interfaces if i.name == itf.name), None)
        new = next((i for i in after.interfaces if i.name == itf.name), None)
        if old is not None and new is not None:
            update: dict[str, object] = {}
            if new.igp_cost != old.igp_cost and itf.igp_cost == new.igp_cost:
                update["igp_cost"] = old.igp_cost
            if new.rate_limit != old.rate_limit and itf.rate_limit == new.rate_limit:
                update["rate_limit"] = old.rate_limit
            if new.enabled != old.enabled and itf.enabled == new.enabled:
                update["enabled"] = old.enabled
            before_classes = {c.name: c for c in old.class_policers}
            placed = {c.name: c for c in new.class_policers if before_classes.get(c.name) != c}
            if placed:  # remove the class policers the plan put there, where still unchanged
                kept = [c for c in itf.class_policers if placed.get(c.name) != c]
                for name in placed:
                    if name in before_classes and all(c.name != name for c in kept):
                        kept.append(before_classes[name])
                update["class_policers"] = tuple(kept)
            itf = itf.model_copy(update=update) if update else itf
        interfaces.append(itf)
    return DeviceConfig(
        hostname=current.hostname,
        interfaces=tuple(interfaces),
        acls=current.acls,
        static_routes=tuple(routes),
    )


def withdrawal_change_set(
    intent_id: str, plans: Sequence[DeployedPlan], current: Mapping[str, DeviceConfig]
) -> ChangeSet:
    """The change set that withdraws ``intent_id`` from ``current`` (plans oldest first)."""
    acl = intent_acl_name(intent_id)
    configs = dict(current)
    touched: dict[str, list[str]] = {}
    for name, cfg in current.items():
        if any(a.name == acl for a in cfg.acls):
            configs[name] = _without_acl(cfg, acl)
            touched.setdefault(name, []).append(f"remove ACL {acl}")
    for plan in reversed(plans):
        for name, after in plan.after.items():
            before = plan.before.get(name)
            if before is None or name not in configs:
                continue
            reverted = _revert(configs[name], before, after)
            if reverted != configs[name]:
                configs[name] = reverted
                touched.setdefault(name, []).append("revert routes, IGP costs and rate limits")
    changes = tuple(
        DeviceChange(device=name, candidate=configs[name], reasons=tuple(touched[name]))
        for name in sorted(touched)
        if configs[name] != current[name]
    )
    return ChangeSet(
        intent_id=intent_id,
        changes=changes,
        notes=(f"withdraw {intent_id}: {len(changes)} device(s) change back",),
    )
