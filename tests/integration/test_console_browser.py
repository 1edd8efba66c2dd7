"""The web console in a real headless Chromium: log in, submit, approve, see the link change.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without them the
test is skipped, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from netgpt.api.server import serving
from netgpt.sim_networks.twin import Demand, DigitalTwin
from tests.integration.networks import start_network

pytestmark = pytest.mark.integration

WAYPOINT = "traffic from SNVAng to NYCMng must go through HSTNng"
SCREENSHOTS = Path(os.environ.get("NETGPT_SCREENSHOTS", "build/screenshots"))


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        why = "Debian chromium and chromium-driver are not installed (apt-get install chromium " \
              "chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return browser, driver


@pytest.fixture
def browser() -> Iterator[object]:
    binary, driver = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1400,1300",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Callable[[], object], timeout_s: float = 30.0) -> object:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None  # live events re-render the tables and the map: look again
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _click(chrome: object, element_id: str) -> None:
    """Click an element, looking it up again if a live re-render replaced it meanwhile."""
    from selenium.webdriver.common.by import By

    def click() -> bool:
        chrome.find_element(By.ID, element_id).click()  # type: ignore[attr-defined]
        return True

    _wait(f"a click on #{element_id}", click)


def test_login_submit_approve_and_see_the_link_change(browser: object, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    chrome: WebDriver = browser  # type: ignore[assignment]
    net = start_network("abilene", tmp_path / "net", start=45000)
    assert net.inventory is not None
    topo = net.topology
    # a 3 Gbit/s job from Sunnyvale to New York, on the IGP's path for now
    net.live.inject((Demand("SNVAng", "NYCMng", 3000.0),))
    try:
        with serving(net.inventory, tmp_path / "state", topology=topo, port=_free_port(),
                     watch_interval_s=0, telemetry_interval_s=0.5) as running:
            tokens = {u["name"]: u["token"]
                      for u in json.loads(running.tokens_file.read_text())["users"]}
            before = DigitalTwin(topo, running.platform.read_configs())
            old_path = set(before.paths("SNVAng", before.default_address("NYCMng"))[0].devices)
            assert "HSTNng" not in old_path

            def log_in(user: str) -> None:
                chrome.find_element(By.ID, "token").send_keys(tokens[user])
                _click(chrome, "login-button")
                _wait(f"{user} logged in",
                      lambda: chrome.find_element(By.ID, "whoami").text.startswith(user))

            chrome.get(running.server.url)
            log_in("operator")
            chrome.find_element(By.ID, "intent-text").send_keys(WAYPOINT)
            _click(chrome, "submit-button")
            # live events re-render the page: read what is needed inside one look-up, never
            # hold an element across waits
            result = _wait("the run's result", lambda: [
                (r.get_attribute("data-outcome"), r.get_attribute("id"), r.text)
                for r in chrome.find_elements(By.CSS_SELECTOR, "#run-result .run")])
            outcome, element_id, text = result[0]  # type: ignore[index]
            assert outcome == "awaiting_approval", text
            # two plans pass; the console shows both and which the planner chose, and why
            assert "plan chosen by planner: Option 0 changes the fewest devices" in text, text
            assert "option 1 (passes)" in text, text
            run_id = element_id.removeprefix("run-")

            # the link the new path takes, and what it carries now, as the map shows it
            link_id = _new_link(running, run_id)

            def shown_util() -> float | None:  # the map is redrawn at each login: find it anew
                value = chrome.find_element(By.ID, link_id).get_attribute("data-util")
                return float(value) if value else None

            util_before = _wait("rates on the map", shown_util)
            assert isinstance(util_before, float)

            _click(chrome, "logout")
            log_in("approver")
            pending = _wait("the pending change", lambda: [
                p.text for p in chrome.find_elements(By.ID, f"pending-{run_id}")])
            assert "HSTNng" in pending[0]  # type: ignore[index]  # its diff is shown
            _click(chrome, f"approve-{run_id}")
            _wait("deployment", lambda: chrome.find_elements(
                By.CSS_SELECTOR, f"#run-{run_id}[data-outcome='deployed']"), timeout_s=60)
            _wait("the intent's state", lambda: "deployed" in chrome.find_element(
                By.ID, f"intent-{run_id}").text or "fulfilled" in chrome.find_element(
                By.ID, f"intent-{run_id}").text)
            _wait("the link to carry the job",
                  lambda: (shown_util() or 0.0) > util_before + 0.15)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / "console-after-approval.png"
            assert chrome.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
            steps = [(r.actor, r.step, r.outcome)
                     for r in running.platform.audit.records(run_id)]
            assert ("approver", "approve", "approved") in steps
    finally:
        net.stop()


def _new_link(running: object, run_id: str) -> str:
    """The map id of a link the approved path will take that the current path does not."""
    from netgpt.api.server import Serving

    assert isinstance(running, Serving)
    platform = running.platform
    (pending,) = [p for p in platform.pending_approvals() if p.run_id == run_id]
    values = platform.graph.get_state({"configurable": {"thread_id": run_id}}).values
    from netgpt.device_config import DeviceConfig

    after = platform.read_configs()
    after.update({d: DeviceConfig.model_validate(c["candidate"])
                  for d, c in values["plan"]["changes"].items()})
    twin = DigitalTwin(platform.topology, after)
    before = DigitalTwin(platform.topology, platform.read_configs())
    new = twin.paths("SNVAng", twin.default_address("NYCMng"))[0].devices
    old = before.paths("SNVAng", before.default_address("NYCMng"))[0].devices
    old_links = {tuple(sorted(p)) for p in pairwise(old)}
    for a, b in pairwise(new):
        key = tuple(sorted((a, b)))
        if key not in old_links:
            assert pending.diffs
            return f"link-{key[0]}-{key[1]}"
    raise AssertionError(f"the approved path {new} takes no new link")
