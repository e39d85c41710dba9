"""`gantry check --ai` end to end: the real CLI, the real server, queue and store, against the
scripted Messages-API server on loopback; cassettes recorded from it and replayed with it closed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from ai_fixtures import division_bug
from fake_messages_api import FakeMessagesAPI, hang, tool_use

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0-schema.json").read_text())
TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
SOURCE = f"""\
def average(values):
    total = 0
    for value in values:
        total += value
    print("{TOKEN}")
    return total / len(values)
"""
PLACEHOLDER = "<<gantry:secret:1>>"
"""What redaction makes of TOKEN in the one unit sent: the model sees and quotes only this."""
BUG = division_bug(
    line=6, rationale=f"len(values) is 0 for an empty list; and {PLACEHOLDER} is printed."
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["F"]\n')
    (root / "stats.py").write_text(SOURCE)
    return root


def check(ws: Path, *args: str, home: str = "a") -> subprocess.CompletedProcess[str]:
    """`gantry check` in `ws`; each `home` is a machine of its own (store and queue)."""
    machine = ws.parent / f"home-{home}"
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(machine / "cache"),
        "XDG_DATA_HOME": str(machine / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", "check", *args],
        cwd=ws,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def endpoint(api: FakeMessagesAPI) -> tuple[str, ...]:
    return ("--ai", "--endpoint", api.url, "--model", "review-model")


def ai_findings(result: subprocess.CompletedProcess[str]) -> list[dict]:
    findings = json.loads(result.stdout)["findings"]
    return [f for f in findings if f["provenance"]["engine"] == "ai"]


def test_an_endpoint_flag_finds_the_model_finding_and_a_second_run_sends_nothing(ws, api):
    api.script(tool_use("report_findings", {"findings": [BUG]}))
    first = check(ws, *endpoint(api), "--format", "json", "--fail-on", "warning")
    assert first.returncode == 1, first.stderr
    (finding,) = ai_findings(first)
    assert (finding["rule"], finding["level"], finding["line"]) == ("bug", "warning", 6)
    assert finding["message"].startswith("Division by zero when values is empty")
    assert TOKEN in finding["message"]  # the placeholder the model quoted, restored here
    provenance = finding["provenance"]
    assert (provenance["model"], provenance["endpoint"]) == ("review-model", "command-line")
    assert provenance["cached"] is False and provenance["promptVersion"]
    assert len(api.requests) == 1
    sent = json.dumps(api.requests[0].body)
    assert TOKEN not in sent and PLACEHOLDER in sent

    # Unchanged code: the store's cache answers, nothing is sent; errors only: exit 0.
    second = check(ws, *endpoint(api), "--fail-on", "error")
    assert second.returncode == 0, second.stderr
    assert "stats.py:6:1: warning bug [gantry-ai] Division by zero" in second.stdout
    assert len(api.requests) == 1

    # SARIF: valid, and the model's finding carries its provenance.
    sarif = check(ws, *endpoint(api), "--format", "sarif", "--fail-on", "never")
    assert sarif.returncode == 0, sarif.stderr
    log = json.loads(sarif.stdout)
    jsonschema.validate(log, SARIF_SCHEMA, cls=jsonschema.Draft4Validator)
    (result,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "bug"]
    properties = result["properties"]
    assert properties["source"] == "gantry-ai"
    assert properties["provenance"]["model"] == "review-model"
    assert properties["provenance"]["endpoint"] == "command-line"
    assert properties["provenance"]["cached"] is True
    assert len(api.requests) == 1


def test_a_recorded_cassette_replays_the_same_report_with_no_model(ws, api, tmp_path):
    cassette = tmp_path / "cassette"
    api.script(*[tool_use("report_findings", {"findings": [BUG]})] * 2)
    assert check(ws, *endpoint(api)).returncode == 0  # the store now holds the answer
    # A recording asks anyway: the cassette is its cache, so it holds every answer a replay needs.
    recorded = check(
        ws, *endpoint(api), "--cassette", str(cassette), "--record", "--format", "json"
    )
    assert recorded.returncode == 0, recorded.stderr
    assert len(api.requests) == 2
    assert len(ai_findings(recorded)) == 1
    files = sorted(path.name for path in cassette.iterdir())
    assert len(files) == 2 and "cassette.json" in files
    for path in cassette.iterdir():  # hashes and answers as sent: no secret, however restored
        assert TOKEN not in path.read_text()
    api.close()

    # Another machine (no store, no queue), no endpoint, the model server gone.
    replayed = check(
        ws, "--ai", "--cassette", str(cassette), "--replay", "--format", "json", home="b"
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout  # when the model answered included
    assert len(api.requests) == 2


def test_a_replay_missing_an_answer_fails_the_file_clearly(ws, api, tmp_path):
    cassette = tmp_path / "cassette"
    api.script(tool_use("report_findings", {"findings": []}))
    recorded = check(ws, *endpoint(api), "--cassette", str(cassette), "--record")
    assert recorded.returncode == 0, recorded.stderr
    api.close()
    (ws / "stats.py").write_text(SOURCE.replace("total = 0", "total = 0.0"))

    replayed = check(
        ws, "--ai", "--cassette", str(cassette), "--replay", "--format", "json", home="b"
    )
    assert replayed.returncode == 3, replayed.stderr
    assert re.search(
        r"AI review incomplete for stats\.py: .*has no answer for this request", replayed.stderr
    )
    assert "--record" in replayed.stderr
    summary = json.loads(replayed.stdout)["summary"]
    assert summary["complete"] is False
    (incomplete,) = summary["aiIncomplete"]
    assert incomplete["path"] == "stats.py" and "no answer" in incomplete["reason"]
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ai",), "--ai needs a model"),
        (("--ai", "--cassette", "nowhere", "--replay"), "is not a cassette"),
        (("--ai", "--cassette", "cas", "--record"), "--record needs an endpoint"),
        (("--ai", "--endpoint", "http://127.0.0.1:9"), "--endpoint and --model go together"),
        (("--cassette", "cas", "--replay"), "only go with --ai"),
    ],
)
def test_ai_without_a_model_or_cassette_is_a_usage_error(ws, args, message):
    result = check(ws, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (ws / "cas").exists()


def test_a_workspaces_endpoints_are_used_only_when_it_is_trusted(ws, api):
    """Where code goes is the user's choice: a repository may name an endpoint, and it is
    honoured only with --trust-workspace (or `gantry trust`)."""
    (ws / "pyproject.toml").write_text(
        '[tool.ruff.lint]\nselect = ["F"]\n\n[[tool.gantry.inference.endpoints]]\n'
        f'name = "repo-box"\nbase_url = "{api.url}"\nmodel = "review-model"\n'
    )
    untrusted = check(ws, "--ai")
    assert untrusted.returncode == 2
    assert "inference.endpoints" in untrusted.stderr and "--ai needs a model" in untrusted.stderr
    assert not api.requests

    api.script(tool_use("report_findings", {"findings": [BUG]}))
    trusted = check(ws, "--ai", "--trust-workspace", "--format", "json")
    assert trusted.returncode == 0, trusted.stderr
    (finding,) = ai_findings(trusted)
    assert finding["provenance"]["endpoint"] == "repo-box"
    assert len(api.requests) == 1


def test_a_model_that_never_answers_leaves_the_check_incomplete(ws, api):
    api.script(hang())
    result = check(ws, *endpoint(api), "--wait", "10", "--format", "json")
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["summary"]["complete"] is False
    assert "stats.py" in result.stderr
