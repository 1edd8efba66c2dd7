"""API tokens, roles and console sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netgpt.api.auth import ApiUser, Role, SessionBook, TokenBook, write_token_file
from netgpt.api.events import EventBus
from netgpt.errors import ConfigError


def test_roles_are_ordered_and_named():
    assert Role.named("Approver") is Role.APPROVER
    assert ApiUser("a", Role.ADMIN).may(Role.APPROVER)
    assert not ApiUser("o", Role.OPERATOR).may(Role.APPROVER)
    with pytest.raises(ConfigError, match=r"unknown role 'root'.*viewer, operator"):
        Role.named("root")


def test_token_file_round_trip_and_digests(tmp_path: Path):
    path = tmp_path / "tokens.json"
    tokens = write_token_file(path, [("ann", Role.ADMIN), ("vic", Role.VIEWER)])
    assert path.stat().st_mode & 0o777 == 0o600
    book = TokenBook.from_file(path)
    assert book.user(tokens["ann"]) == ApiUser("ann", Role.ADMIN)
    assert book.user(tokens["vic"]) == ApiUser("vic", Role.VIEWER)
    assert book.user(tokens["ann"] + "x") is None
    hashed = TokenBook.from_entries([{
        "name": "ops", "role": "operator",
        "token_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}])
    assert hashed.user("test") == ApiUser("ops", Role.OPERATOR)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"users": []}, "no users"),
        ({"users": [{"name": "a", "role": "admin", "token": "short"}]}, "shorter than 16"),
        ({"users": [{"name": "a", "role": "boss", "token": "x" * 20}]}, "unknown role 'boss'"),
        ({"users": [{"name": "a", "role": "admin", "token": "x" * 20},
                    {"name": "a", "role": "viewer", "token": "y" * 20}]}, "appears twice"),
        ({"users": [{"name": "a", "role": "admin", "token_sha256": "abc"}]}, "not a SHA-256"),
        ({"people": []}, "must hold"),
    ],
)
def test_bad_token_files_name_the_problem(tmp_path: Path, body: dict, message: str):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(body))
    with pytest.raises(ConfigError, match=message):
        TokenBook.from_file(path)


def test_missing_or_broken_token_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        TokenBook.from_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not readable JSON"):
        TokenBook.from_file(tmp_path / "bad.json")


def test_sessions_expire_and_close():
    book = SessionBook(ttl_s=60)
    sid = book.open(ApiUser("ann", Role.ADMIN))
    assert book.user(sid) == ApiUser("ann", Role.ADMIN)
    book.close(sid)
    assert book.user(sid) is None
    stale = SessionBook(ttl_s=-1)
    assert stale.user(stale.open(ApiUser("ann", Role.ADMIN))) is None


def test_event_bus_fans_out_and_drops_the_oldest_for_slow_streams():
    import asyncio

    async def scenario() -> tuple[list[str], list[str]]:
        bus = EventBus(backlog=2)
        k1, q1 = bus.subscribe()
        _, q2 = bus.subscribe()
        for n in range(3):
            bus.publish("intent", {"n": n})
        await asyncio.sleep(0)
        bus.unsubscribe(k1)
        bus.publish("intent", {"n": 3})
        await asyncio.sleep(0)
        first = [q1.get_nowait().encode() for _ in range(q1.qsize())]
        second = [q2.get_nowait().encode() for _ in range(q2.qsize())]
        return first, second

    first, second = asyncio.run(scenario())
    assert first == ['event: intent\ndata: {"n": 1}\n\n', 'event: intent\ndata: {"n": 2}\n\n']
    assert second[-1] == 'event: intent\ndata: {"n": 3}\n\n' and len(second) == 2
