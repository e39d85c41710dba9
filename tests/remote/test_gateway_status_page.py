"""The gateway's status page (`GET /`) over real HTTP, and in a real headless Chromium."""

from __future__ import annotations

import hashlib
import sys
import threading
from pathlib import Path

import httpx2
import pytest
from gateway_harness import TOKEN, python_spec, serve_in_thread
from headless_chromium import CHROMIUM, Browser

from remote_exec.execution import ExecutionClient
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.gateway.config import GatewayConfig, load_tokens
from remote_exec.jobs import ExecSpec
from remote_exec.sandbox import Sandbox

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
TENANT_TOKEN = "tenant-token-for-tests-012345678"
HOSTILE = "<b id=pwned>owned</b><script>document.title='pwned'</script>"
SLEEPER = "import time; time.sleep(300)"


def _short(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


@pytest.fixture
def gateway(tmp_path: Path):
    """A gateway with three tokens (one admin), a running job of TOKEN's whose command carries
    markup, and a failed one whose output does."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n{ADMIN_TOKEN} read admin\n{TENANT_TOKEN}\n")
    tokens.chmod(0o600)
    config = GatewayConfig(
        tokens=load_tokens(tokens),
        journal_path=tmp_path / "jobs.sqlite",
        work_root=tmp_path / "work",
        name="box-1",
    )
    backend = LocalBackend(Sandbox(), config.work_root, max_concurrency=2, gpus=[])
    with serve_in_thread(config, backend) as url, ExecutionClient(url, TOKEN) as client:
        hostile_command = ExecSpec(files={}, argv=[sys.executable, "-c", f"{SLEEPER}  # {HOSTILE}"])
        running = client.submit("hostile-run", hostile_command)
        failed = client.submit(
            "hostile-fail", python_spec(f"import sys; sys.exit({HOSTILE!r})", timeout_s=30)
        )
        assert client.wait(failed.id, deadline_s=60, poll_s=0.05).state == "failed"
        while client.get(running.id).state != "running":
            threading.Event().wait(0.05)
        yield url, running.id, failed.id
        client.cancel(running.id)
        client.wait(running.id, deadline_s=30, poll_s=0.05)


def _get(url: str, token: str | None = None, **kwargs: object) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.get(f"{url}/", headers=headers, **kwargs)


def test_without_a_token_the_page_refuses_and_shows_only_a_sign_in_form(gateway) -> None:
    url, running, _ = gateway
    for answer in (_get(url), _get(url, "not-a-token-of-this-gateway")):
        assert answer.status_code == 401
        assert "name=token" in answer.text
        assert running not in answer.text and "hostile" not in answer.text


def test_with_the_token_it_shows_capacity_the_running_job_and_failures_escaped(gateway) -> None:
    url, running, failed = gateway
    answer = _get(url, TOKEN)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    html = answer.text
    assert running in html and failed in html and "box-1" in html
    assert _short(TOKEN) in html and TOKEN not in html  # named by a hash, never the token
    assert "<b id=pwned>" not in html and "<script>" not in html
    assert "&lt;b id=pwned&gt;" in html
    assert "http://" not in html.replace(url, "") and "https://" not in html  # no external assets


def test_other_tokens_see_totals_and_their_own_jobs_an_admin_sees_all(gateway) -> None:
    url, running, failed = gateway
    tenant = _get(url, TENANT_TOKEN).text
    assert running not in tenant and failed not in tenant and _short(TOKEN) not in tenant
    admin = _get(url, ADMIN_TOKEN).text
    assert running in admin and failed in admin and _short(TOKEN) in admin


def test_signing_in_by_form_sets_a_strict_httponly_cookie_the_api_ignores(gateway) -> None:
    url, running, _ = gateway
    with httpx2.Client(base_url=url) as browser:
        refused = browser.post("/login", data={"token": "wrong-token-0123456789"})
        assert refused.status_code == 401 and "token not accepted" in refused.text
        foreign = browser.post(
            "/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403 and not foreign.cookies
        signed_in = browser.post("/login", data={"token": TOKEN})
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
        assert running in browser.get("/").text
        assert browser.get("/v1/health").status_code == 401  # the API wants the bearer token
        browser.post("/logout")
        assert browser.get("/").status_code == 401
    forged = httpx2.get(f"{url}/", cookies={"gantry_session": f"{_short(TOKEN)}.9999999999.0"})
    assert forged.status_code == 401


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_in_chromium_the_page_refuses_then_signs_in_and_shows_the_running_job(gateway) -> None:
    url, running, _ = gateway
    with Browser() as browser:
        browser.navigate(f"{url}/")
        assert browser.documents[-1] == (f"{url}/", 401)
        assert browser.run("document.querySelector('#running')") is None
        assert browser.run("!!document.querySelector('form#login input[name=token]')")

        browser.run_and_wait_for_load(
            f"document.querySelector('input[name=token]').value = {TOKEN!r};"
            "document.querySelector('form#login').requestSubmit()"
        )
        assert browser.documents[-1] == (f"{url}/", 200)
        assert running in browser.run("document.querySelector('#running').textContent")
        # The hostile command and output are text on the page, not markup in it.
        assert browser.run("document.getElementById('pwned')") is None
        assert browser.run("document.title") == "gantry gateway box-1"
        assert HOSTILE in browser.run("document.body.textContent")
        assert browser.run("document.cookie") == ""  # HttpOnly: no script reads the session
        assert all(u.startswith(url) or u == "about:blank" for u in browser.requests)

        browser.run_and_wait_for_load("document.querySelector('form[action=\"/logout\"]').submit()")
        assert browser.documents[-1] == (f"{url}/", 401)
