import sqlite3

import pytest

from netgpt.agents.audit import AuditLog
from netgpt.agents.store import IntentStore
from netgpt.errors import ConfigError
from netgpt.intents.model import (
    DeviceEndpoint,
    Intent,
    LifecycleState,
    PrefixEndpoint,
    ReachabilityExpectation,
)

pytestmark = pytest.mark.unit


def make_intent(**kw) -> Intent:
    return Intent(
        text="r1 must reach 10.0.2.0/24",
        expectations=(
            ReachabilityExpectation(
                source=DeviceEndpoint(name="r1"), destination=PrefixEndpoint(prefix="10.0.2.0/24")
            ),
        ),
        **kw,
    )


def test_audit_chain_verifies_and_detects_edits_and_deletions(tmp_path):
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for step in ("parse", "compile", "apply"):
        log.append(actor="alice", intent_id="int-1", step=step, outcome="ok", detail={"n": 1})
    log.append(actor="bob", intent_id="int-2", step="parse", outcome="refused")
    assert log.verify() == (True, "4 records intact")
    assert [r.step for r in log.records("int-1")] == ["parse", "compile", "apply"]
    log.close()

    db = sqlite3.connect(path)
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    db.commit()
    ok, why = AuditLog(path).verify()
    assert not ok and "record 2" in why and "edited" in why
    db.execute("UPDATE audit SET actor = 'alice' WHERE seq = 2")
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    ok, why = AuditLog(path).verify()
    assert not ok and "record 4" in why


def test_intent_store_round_trip_and_active(tmp_path):
    store = IntentStore(tmp_path / "intents.sqlite")
    a = make_intent()
    b = make_intent().moved_to(LifecycleState.COMPILED).moved_to(LifecycleState.DEPLOYED)
    store.save(a)
    store.save(b)
    assert store.get(a.id) == a
    assert [i.id for i in store.active()] == [b.id]
    withdrawn = b.moved_to(LifecycleState.WITHDRAWN, "operator asked")
    store.save(withdrawn)
    assert store.active() == []
    assert store.get(b.id).history[-1].reason == "operator asked"
    with pytest.raises(ConfigError, match="no intent 'int-nope'"):
        store.get("int-nope")
