"""What deploy/ ships, used as docs/deploy.md uses it: Caddy (HTTPS, its internal CA), coturn (use-auth-secret),
the agent behind them, and a customer's headless Chromium whose media may only flow through coturn
(iceTransportPolicy relay), each side in a network namespace of its own (benchmarks/deploy.py)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from benchmarks.browser import chromium_args
from benchmarks.deploy import CALL_STATS_JS, CLIENT_IP, DEPLOY, KEEP_PEERS_JS, SERVER_IP, SITE, deployment, missing, widget_page

from .conftest import ARTIFACTS, ROOT, espeak
from .test_browser_e2e import MOUTH_CHANGE_JS

browser = pytest.mark.browser  # the tests that run the deployment and Chromium (`make test-fast` leaves them out)
NOT_HERE = missing()


def test_the_systemd_unit_verifies_clean(tmp_path):
    """`systemd-analyze verify` on deploy/avatar-agent.service, in a root of its own where the unit's ExecStart
    exists as it does on a server (/opt/avatar-agent/.venv/bin/avatar-agent): no error and no warning."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    (root / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", root / "lib" / "systemd" / "system", symlinks=True)  # the targets it names
    agent = root / "opt" / "avatar-agent" / ".venv" / "bin" / "avatar-agent"
    agent.parent.mkdir(parents=True)
    agent.write_text("#!/bin/sh\n")
    agent.chmod(0o755)
    shutil.copy(DEPLOY / "avatar-agent.service", root / "etc" / "systemd" / "system")
    result = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "avatar-agent.service"], capture_output=True, text=True)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    unit = (DEPLOY / "avatar-agent.service").read_text()
    drain_s = 120  # the shipped configs' server.drain_s
    stop_s = int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1))
    assert stop_s > drain_s, "systemd must give the drain its time before it kills the agent"
    assert "--config /etc/avatar-agent/agent.yaml" in unit and "StateDirectory=avatar-agent" in unit


def test_the_caddyfile_gets_a_public_certificate_by_default(tmp_path):
    """Without AVATAR_TLS the site has automatic HTTPS from a public CA (no internal issuer), and the file is as
    `caddy fmt` writes it."""
    if shutil.which("caddy") is None:
        pytest.skip("caddy is not installed (apt-get install caddy)")
    env = {**os.environ, "AVATAR_DOMAIN": "support.example.com", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    env.pop("AVATAR_TLS", None)
    adapted = subprocess.run(["caddy", "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
                             capture_output=True, text=True, env=env)
    assert adapted.returncode == 0, adapted.stderr
    assert "support.example.com" in adapted.stdout and '"internal"' not in adapted.stdout, adapted.stdout[:2000]
    formatted = subprocess.run(["caddy", "fmt", str(DEPLOY / "Caddyfile")], capture_output=True, text=True)
    assert formatted.stdout == (DEPLOY / "Caddyfile").read_text(), "run: caddy fmt --overwrite deploy/Caddyfile"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    if NOT_HERE:
        pytest.skip(f"the deployment test {NOT_HERE}")
    with deployment(tmp_path_factory.mktemp("deploy")) as d:
        yield d


@browser
def test_caddy_serves_the_agent_over_https_with_its_headers_and_keeps_metrics_private(deployed):
    page = deployed.get(f"{deployed.domain_url}/")
    assert page.status == 200 and "avatar-widget.js" in page.body
    assert page.headers["strict-transport-security"].startswith("max-age=")
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "same-origin"
    assert f"https://{SITE}" in page.headers["content-security-policy"], "the agent's own frame-ancestors comes through"
    assert "server" not in page.headers
    assert deployed.get(f"{deployed.domain_url}/metrics").status == 403, "metrics are not for the internet"
    assert deployed.get(f"{deployed.domain_url}/metrics/nodes/x").status == 403
    assert deployed.get(f"{deployed.agent_url}/metrics", ns=deployed.server_ns).status == 200, "but are on the machine itself"
    health = deployed.get(f"{deployed.domain_url}/healthz")
    assert health.status == 200 and '"status": "ok"' in health.body
    # Plain HTTP is sent to HTTPS.
    redirect = deployed.get(f"http://{SERVER_IP}/", headers={"Host": deployed.domain_url.split("//")[1]})
    assert redirect.status in (301, 308) and redirect.headers["location"].startswith("https://"), redirect


@browser
def test_a_customer_on_the_companys_site_is_answered_through_caddy_and_coturn(deployed, speech_dir):
    from playwright.sync_api import sync_playwright

    question = espeak("What are your opening hours?", speech_dir / "deploy_question.wav", rate=48000, lead_s=6.0, tail_s=25.0)
    url = deployed.write_page("index.html", widget_page(policy="relay"))
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=deployed.chromium(), env=deployed.chromium_env(), headless=True,
                                     args=chromium_args(question) + deployed.resolver_args())
        page = chromium.new_page(viewport={"width": 600, "height": 900})
        page.add_init_script(KEEP_PEERS_JS)
        page.goto(url)  # https://shop.test: a certificate only Caddy's CA vouches for
        with page.expect_response(lambda r: "/api/ice-servers" in r.url, timeout=60_000) as handed:
            page.click("#call")
        turn = handed.value.json()["iceServers"][0]
        page.wait_for_function("() => (window.avatarEvents || []).some(e => e.type === 'avatar' && e.text.startsWith('We are open'))",
                               timeout=150_000)
        events = page.evaluate("window.avatarEvents")
        page.wait_for_function("() => document.getElementById('avatar-video').videoWidth > 0", timeout=60_000)
        during = page.evaluate(CALL_STATS_JS)
        frames_before = page.evaluate("document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames")
        mouth_change = page.evaluate(MOUTH_CHANGE_JS)
        frames_after = page.evaluate("document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames")
        after = page.evaluate(CALL_STATS_JS)
        page.screenshot(path=str(ARTIFACTS / "e2e-deploy-call.png"))
        page.click("#hangup")
        chromium.close()
    print(f"deploy: {during}; after: {after}; {frames_after - frames_before} frames during the answer, mouth changed by up to {mouth_change:.1f}")

    # Media only through coturn: the page asked for relay, made relay candidates only, and the pair in use is
    # coturn's relay (on the server's address) to the agent's own candidate.
    assert during["policy"] == "relay" and set(during["locals"]) == {"relay"}, during
    assert during["state"] == "connected" and during["local"]["type"] == "relay", during
    assert during["local"]["address"] == SERVER_IP and during["remote"]["address"] == SERVER_IP, during
    # The question was heard and answered, with sound and a moving mouth.
    assert any(e["type"] == "user" and "hours" in e["text"].lower() for e in events), events
    assert after["audio"]["samples"] > during["audio"]["samples"] and after["audio"]["energy"] > during["audio"]["energy"], \
        f"no sound came while the answer played: {during['audio']} then {after['audio']}"
    assert frames_after - frames_before >= 10, "video frames stopped arriving"
    assert mouth_change > 3.0, "the mouth does not move on the received video"

    # coturn's log: the call's own TURN user (the one /api/ice-servers handed out) allocated a relay, was let send to
    # the agent's address, and, once the page hung up, the relay's account shows the call's media from the agent.
    username = turn["username"]
    expiry, _, name = username.partition(":")
    assert expiry.isdigit() and int(expiry) > time.time() and name, turn
    user = re.escape(username)
    turn_log = deployed.turn_log.read_text()
    sessions = set(re.findall(rf"session (\d+): realm <[^>]*> user <{user}>: incoming packet ALLOCATE processed, success", turn_log))
    assert sessions, f"no relayed allocation for {username} in coturn's log:\n{turn_log[-3000:]}"
    assert any(re.search(rf"session {s}: peer {re.escape(SERVER_IP)}(:\d+)? lifetime updated", turn_log) for s in sessions), turn_log[-3000:]
    relayed = re.compile(rf"session \d+: peer usage: realm=<[^>]*>, username=<{user}>, rp=(\d+), rb=(\d+)")
    deadline = time.monotonic() + 60
    while max((int(rb) for _, rb in relayed.findall(turn_log)), default=0) < 100_000 and time.monotonic() < deadline:
        time.sleep(0.5)
        turn_log = deployed.turn_log.read_text()
    from_agent = max((int(rb) for _, rb in relayed.findall(turn_log)), default=0)
    print(f"deploy: coturn relayed {from_agent} bytes from the agent to the page")
    assert from_agent > 100_000, f"the relay carried no media ({from_agent} bytes):\n{turn_log[-3000:]}"

    # The agent saw the customer's own address (Caddy's X-Forwarded-For, trusted from 127.0.0.1 only), not Caddy's.
    agent_log = deployed.agent_log.read_text()
    assert f"call started from {CLIENT_IP} (origin https://{SITE})" in agent_log, agent_log[-3000:]
    assert "call started from 127.0.0.1" not in agent_log

    deadline = time.monotonic() + 30
    while '"sessions": 0' not in (health := deployed.get(f"{deployed.domain_url}/healthz").body) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert '"sessions": 0' in health, health


@browser
def test_while_the_agent_is_down_caddy_answers_as_a_draining_agent_and_the_widget_says_so(deployed):
    """Between a restart's drain and the new process listening, Caddy answers for the agent (503, Retry-After,
    reason draining): a customer whose page was open presses Call and is told. Runs last: it stops the agent."""
    from playwright.sync_api import sync_playwright

    url = deployed.write_page("down.html", widget_page(policy="relay"))
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=deployed.chromium(), env=deployed.chromium_env(), headless=True,
                                     args=chromium_args() + deployed.resolver_args())
        page = chromium.new_page()
        page.goto(url)
        page.wait_for_selector("#call")  # the widget loaded while the agent was up
        agent = deployed.processes["agent"]
        agent.terminate()  # SIGTERM with no call in progress: the drain has nothing to wait for
        assert agent.wait(60) == 0, deployed.agent_log.read_text()[-3000:]
        page.click("#call")
        page.wait_for_function("() => document.getElementById('status').classList.contains('error')", timeout=30_000)
        status = page.inner_text("#status")
        chromium.close()
    assert "restarting and will be back in a moment" in status, status
    answer = deployed.get(f"{deployed.domain_url}/api/ice-servers?tenant=shop", headers={"Origin": f"https://{SITE}"})
    assert answer.status == 503 and answer.headers["retry-after"] == "30", answer
    assert '"reason": "draining"' in answer.body and answer.headers["access-control-allow-origin"] == f"https://{SITE}", answer
    assert answer.headers["strict-transport-security"].startswith("max-age=")
