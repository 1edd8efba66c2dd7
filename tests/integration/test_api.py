"""The REST API over a real uvicorn server on loopback, over a real embedded network."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from netgpt.api.app import MAX_BODY_BYTES, SESSION_COOKIE
from netgpt.api.server import Serving, serving
from netgpt.edge_models.forecasting import load_forecaster
from netgpt.sim_networks.runtime import EmbeddedNetwork
from tests.integration.networks import start_network

pytestmark = pytest.mark.integration

WAYPOINT = "traffic from SNVAng to NYCMng must go through HSTNng"


@dataclass
class Api:
    running: Serving
    net: EmbeddedNetwork
    tokens: dict[str, str]
    client: httpx.Client

    def as_(self, user: str | None) -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str | None = "viewer", **kw: object) -> httpx.Response:
        return self.client.get(path, headers=self.as_(user), **kw)  # type: ignore[arg-type]

    def post(self, path: str, user: str | None, **kw: object) -> httpx.Response:
        return self.client.post(path, headers=self.as_(user), **kw)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("api")
    net = start_network("abilene", root / "net", start=43000)
    assert net.inventory is not None
    try:
        with serving(net.inventory, root / "state", topology=net.topology, port=_free_port(),
                     watch_interval_s=0, telemetry_interval_s=0.5,
                     watch_forecaster=load_forecaster()) as running:
            raw = json.loads(running.tokens_file.read_text())
            tokens = {u["name"]: u["token"] for u in raw["users"]}
            with httpx.Client(base_url=running.server.url, timeout=60) as client:
                yield Api(running, net, tokens, client)
    finally:
        net.stop()


READS = ["/api/me", "/api/intents", "/api/approvals", "/api/topology", "/api/devices",
         "/api/links", "/api/audit", "/api/audit/verify", "/api/policies", "/metrics",
         "/api/links/CHINng/NYCMng/telemetry"]


def test_token_file_is_private_and_tokens_never_logged(api: Api, caplog: pytest.LogCaptureFixture):
    assert api.running.tokens_file.stat().st_mode & 0o777 == 0o600
    caplog.set_level(logging.DEBUG)
    for user in api.tokens:
        assert api.get("/api/me", user).json()["name"] == user
    with httpx.Client(base_url=api.running.server.url, timeout=30) as browser:
        browser.post("/api/login", json={"token": api.tokens["viewer"]})
    logged = caplog.text + json.dumps([r.detail for r in api.running.platform.audit.records()])
    assert not any(token in logged for token in api.tokens.values())


@pytest.mark.parametrize("path", READS)
def test_every_read_needs_a_caller_and_a_viewer_may_read(api: Api, path: str):
    anonymous = api.get(path, None)
    assert anonymous.status_code == 401, anonymous.text
    assert "log in" in anonymous.json()["detail"]
    forged = api.client.get(path, headers={"Authorization": "Bearer not-a-token-at-all"})
    assert forged.status_code == 401
    assert api.get(path, "viewer").status_code == 200


def test_health_and_console_need_no_login(api: Api):
    assert api.get("/api/health", None).json() == {"status": "ok"}
    page = api.get("/", None)
    assert page.status_code == 200 and "NetGPT console" in page.text
    assert api.get("/console/console.js", None).status_code == 200
    assert api.get("/console/../auth.py", None).status_code == 404
    spec = api.get("/openapi.json", None).json()
    assert {"/api/intents", "/api/approvals/{run_id}/approve", "/api/events"} <= set(spec["paths"])


def test_roles_submit_dry_run_and_withdraw(api: Api):
    text = "block telnet from NYCMng to LOSAng"
    refused = api.post("/api/intents", "viewer", json={"text": text})
    assert refused.status_code == 403 and "operator role" in refused.json()["detail"]
    dry = api.post("/api/intents", "operator", json={"text": text, "dry_run": True}).json()
    assert dry["outcome"] == "dry_run" and "NYCMng" in dry["diffs"]
    assert "intent-" in dry["diffs"]["NYCMng"]
    run = api.post("/api/intents", "operator", json={"text": text}).json()
    assert run["outcome"] == "deployed", run["reason"]
    shown = api.get(f"/api/intents/{run['run_id']}").json()
    assert shown["state"] in ("deployed", "fulfilled") and shown["owner"] == "operator"
    assert api.post(f"/api/intents/{run['run_id']}/withdraw", "viewer").status_code == 403
    gone = api.post(f"/api/intents/{run['run_id']}/withdraw", "operator")
    assert gone.status_code == 200 and gone.json()["state"] == "withdrawn"
    again = api.post(f"/api/intents/{run['run_id']}/withdraw", "operator")
    assert again.status_code == 409 and "already withdrawn" in again.json()["detail"]
    steps = [(r.actor, r.step, r.outcome)
             for r in api.running.platform.audit.records(run["run_id"])]
    assert ("operator", "withdraw", "ok") in steps


def test_approval_needs_an_approver_and_four_eyes(api: Api):
    by_approver = api.post("/api/intents", "approver", json={"text": WAYPOINT}).json()
    assert by_approver["outcome"] == "awaiting_approval", by_approver["reason"]
    run_id = by_approver["run_id"]
    # two plans pass; with no model configured the planner's first is kept, and the run says so
    choice = by_approver["plan_choice"]
    assert choice["by"] == "planner" and choice["chosen"] == 0 and len(choice["options"]) >= 2
    pending = {p["run_id"]: p for p in api.get("/api/approvals").json()}
    assert pending[run_id]["submitter"] == "approver" and pending[run_id]["diffs"]
    assert api.post(f"/api/approvals/{run_id}/approve", "operator").status_code == 403
    own = api.post(f"/api/approvals/{run_id}/approve", "approver")
    assert own.status_code == 403 and "cannot also approve" in own.json()["detail"]
    assert api.get(f"/api/intents/{run_id}").json()["state"] == "awaiting_approval"
    ok = api.post(f"/api/approvals/{run_id}/approve", "admin").json()
    assert ok["outcome"] == "deployed", ok["reason"]
    assert any(v["source"] == "approval" and "admin" in v["evidence"] for v in ok["verdicts"])
    records = [(r.actor, r.step, r.outcome) for r in api.running.platform.audit.records(run_id)]
    assert ("approver", "approve", "refused") in records
    assert ("admin", "approve", "approved") in records
    assert api.post(f"/api/approvals/{run_id}/approve", "admin").status_code == 404
    # an operator's risky change waits, and the operator cannot approve it
    mine = api.post("/api/intents", "operator",
                    json={"text": "traffic from LOSAng to WASHng must go through KSCYng"}).json()
    assert mine["outcome"] == "awaiting_approval", mine["reason"]
    assert api.post(f"/api/approvals/{mine['run_id']}/approve", "operator").status_code == 403
    no = api.post(f"/api/approvals/{mine['run_id']}/reject", "approver").json()
    assert no["outcome"] == "rejected"
    api.post(f"/api/intents/{run_id}/withdraw", "operator")


def test_policies_only_admin_replaces_and_it_is_audited(api: Api):
    current = api.get("/api/policies").json()
    bigger = json.loads(json.dumps(current))
    bigger["max_devices_per_change"]["max_devices"] = 15
    assert api.client.put("/api/policies", json=bigger, headers=api.as_("approver")
                          ).status_code == 403
    bad = dict(bigger, surprise=1)
    assert api.client.put("/api/policies", json=bad, headers=api.as_("admin")).status_code == 422
    done = api.client.put("/api/policies", json=bigger, headers=api.as_("admin"))
    assert done.status_code == 200
    assert api.running.platform.policies.max_devices_per_change is not None
    assert api.running.platform.policies.max_devices_per_change.max_devices == 15
    assert api.running.service.policy_file is not None
    assert "max_devices: 15" in api.running.service.policy_file.read_text()
    assert [(r.actor, r.step) for r in api.running.platform.audit.records("-")][-1] == (
        "admin", "policy")
    api.client.put("/api/policies", json=current, headers=api.as_("admin"))


def test_console_session_cookie(api: Api):
    with httpx.Client(base_url=api.running.server.url, timeout=30) as browser:
        wrong = browser.post("/api/login", json={"token": "x" * 40})
        assert wrong.status_code == 401
        ok = browser.post("/api/login", json={"token": api.tokens["approver"]})
        assert ok.json() == {"name": "approver", "role": "approver"}
        assert "httponly" in ok.headers["set-cookie"].lower()
        assert browser.get("/api/me").json()["name"] == "approver"
        browser.post("/api/logout")
        browser.cookies.delete(SESSION_COOKIE)
        assert browser.get("/api/me").status_code == 401
    outcomes = [(r.actor, r.outcome) for r in api.running.platform.audit.records("-")
                if r.step == "login"]
    assert ("unknown", "refused") in outcomes and ("approver", "ok") in outcomes


BAD_REQUESTS = [
    ("post", "/api/intents", {"json": {"text": 5}}, 422),
    ("post", "/api/intents", {"json": {"text": ""}}, 422),
    ("post", "/api/intents", {"json": {"text": "x", "extra": True}}, 422),
    ("post", "/api/intents", {"content": b"{not json", "headers": {
        "content-type": "application/json"}}, 422),
    ("post", "/api/intents", {"json": {"text": "a" * 2001}}, 422),
    ("post", "/api/intents", {"json": {"text": "make the coffee stronger"}}, 200),
    ("post", "/api/intents", {"content": b"x" * (MAX_BODY_BYTES + 1)}, 413),
    ("get", "/api/intents/no-such-intent", {}, 404),
    ("get", "/api/intents/" + "%00" * 3, {}, 404),
    ("post", "/api/intents/no-such-intent/withdraw", {}, 404),
    ("post", "/api/approvals/no-such-run/approve", {}, 404),
    ("post", "/api/approvals/no-such-run/reject", {}, 404),
    ("get", "/api/links/CHINng/ATLAM5/telemetry", {}, 404),
    ("get", "/api/links/CHINng/NYCMng/telemetry?rows=-3", {}, 422),
    ("get", "/api/links/CHINng/NYCMng/forecast?horizon=0", {}, 422),
    ("get", "/api/links/CHINng/NYCMng/forecast?threshold=7", {}, 422),
    ("get", "/api/audit?limit=abc", {}, 422),
    ("post", "/api/login", {"json": {"token": ["a"]}}, 422),
    ("get", "/console/secrets.txt", {}, 404),
]


@pytest.mark.parametrize(("method", "path", "kw", "status"), BAD_REQUESTS)
def test_bad_input_gets_a_clear_4xx(api: Api, method: str, path: str, kw: dict, status: int):
    headers = {**api.as_("admin"), **kw.pop("headers", {})} if "headers" in kw else api.as_(
        "admin")
    response = api.client.request(method.upper(), path, headers=headers, **kw)
    assert response.status_code == status, response.text
    if status != 200:
        detail = response.json()["detail"]
        assert detail and "Traceback" not in response.text
    else:  # words the parser cannot place: a clean refusal naming them, nothing applied
        body = response.json()
        assert body["outcome"] in ("refused", "failed") and "coffee" in body["reason"]


def test_oversized_body_without_a_length_is_refused(api: Api):
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192

    response = api.client.post("/api/intents", content=chunks(), headers=api.as_("operator"))
    assert response.status_code == 413


def test_links_metrics_forecast_and_events(api: Api, tmp_path: Path):
    deadline = time.monotonic() + 20
    links = api.get("/api/links").json()
    while any(lk["a_to_b"] is None for lk in links) and time.monotonic() < deadline:
        time.sleep(0.5)
        links = api.get("/api/links").json()
    assert all(0 <= lk["a_to_b"] < 1 for lk in links)
    metrics = api.get("/metrics").text
    for family in ("netgpt_intents{state=", "netgpt_apply_seconds_bucket",
                   "netgpt_device_reachable{device=\"CHINng\"} 1.0",
                   "netgpt_link_utilization{source="):
        assert family in metrics
    while len(api.get("/api/links/CHINng/NYCMng/telemetry").json()["times"]) < 16:
        assert time.monotonic() < deadline + 20, "telemetry history does not grow"
        time.sleep(0.5)
    fc = api.get("/api/links/CHINng/NYCMng/forecast?horizon=6&threshold=0.6").json()
    assert "q50" in fc, fc
    assert len(fc["q50"]) == 6 and all(a <= b <= c for a, b, c in
                                       zip(fc["q10"], fc["q50"], fc["q90"], strict=True))
    assert 0.0 <= fc["probability_above"] <= 1.0
    # serving(watch_forecaster=...): the closed loop has a forecaster of its own, the shipped one
    watcher = api.running.service.watcher
    assert watcher.forecaster is not None and watcher.forecaster.name == "forecaster"
    png = api.get("/api/links/CHINng/NYCMng/forecast.png?horizon=6")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"

    seen: list[str] = []
    with api.client.stream("GET", "/api/events", headers=api.as_("viewer")) as stream:
        submitted = False
        for line in stream.iter_lines():
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
            if "links" in seen and not submitted:
                submitted = True
                run = api.post("/api/intents", "operator",
                               json={"text": "block ssh from WASHng to SNVAng"}).json()
                assert run["outcome"] == "deployed", run["reason"]
            if {"intent", "run"} <= set(seen):  # either may come first: the loop thread
                break                            # can see the state change mid-submit
    assert seen[0] == "hello" and {"links", "run", "intent"} <= set(seen)


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_netgpt_serve_starts_network_api_and_console_and_stops_on_ctrl_c(
    tmp_path: Path, stop: str
):
    """The command operators run: embedded network + API by default; Ctrl-C (SIGINT) or a
    service manager's SIGTERM ends all of it, cleanly."""
    import signal
    import subprocess
    import sys

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netgpt.cli", "serve", "--port", str(port), "--state-dir",
         str(tmp_path), "--watch-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # a shell running this suite in the background ignores SIGINT for its children, and
        # Python then never turns it into KeyboardInterrupt: give the server the terminal's
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        tokens_file = tmp_path / "api-tokens.json"
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "netgpt serve did not answer within 60 s"
            time.sleep(0.5)
        tokens = {u["name"]: u["token"] for u in json.loads(tokens_file.read_text())["users"]}
        topo = httpx.get(f"http://127.0.0.1:{port}/api/topology", timeout=10,
                         headers={"Authorization": f"Bearer {tokens['viewer']}"}).json()
        assert topo["name"] == "abilene" and len(topo["devices"]) == 12
    finally:
        proc.send_signal(getattr(signal, stop))
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # collect what it said (stacks if it hung), reap it
            proc.kill()
            out, _ = proc.communicate()
            pytest.fail(f"netgpt serve did not stop within 60 s of {stop}:\n{out}")
    assert proc.returncode == 0, out
    assert "stopping" in out, out
    assert f"on http://127.0.0.1:{port}" in out and "api-tokens.json" in out
    assert not any(token in out for token in tokens.values())
