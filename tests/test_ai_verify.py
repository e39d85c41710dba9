""" "Apply and verify" end to end over stdio: the scripted model reports a bug with a fix; the
second code action applies it (workspace/applyEdit, or the action's own edit for a client that
cannot be asked) and runs the tests that cover the unit as an exec job: no gateway is
configured, so it runs in the real local bubblewrap sandbox. A unit no test mentions runs
nothing and says so."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import attrs
import pytest
from ai_fixtures import AVERAGE, GOOD_FIX, division_bug
from fake_messages_api import FakeMessagesAPI, tool_use
from lsp_harness import (
    SERVER,
    apply_text_edits,
    change_document,
    diagnostics_for,
    edits_of,
    open_document,
    read_actions_as_editors_do,
    write_workspace,
)
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from lsp_server.features.code_actions import VERIFY_TITLE
from remote_exec.sandbox import Sandbox

STATS = AVERAGE
TESTS = """\
from stats import average


def test_average():
    assert average([1, 2, 3]) == 2


def test_empty():
    assert average([]) == 0.0
"""
OTHER = """\
def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
"""


BAD_FIX = "return total / len(values) if values else None"


@pytest.fixture(scope="module", autouse=True)
def bubblewrap() -> None:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(f"the local sandbox cannot run here: {problem}")


def _workspace(tmp_path: Path) -> Path:
    return write_workspace(
        tmp_path / "ws",
        {
            "pyproject.toml": '[tool.ruff.lint]\nselect = ["F"]\n',
            "stats.py": STATS,
            "other.py": OTHER,
            "tests/test_stats.py": TESTS,
        },
    )


def _initialize(
    client: LanguageClient, ws: Path, api: FakeMessagesAPI, caps, execution: dict | None = None
):
    endpoint = {"name": "gpu-box", "base_url": api.url, "model": "review-model"}
    options = {"inference": {"endpoints": [endpoint]}, "execution": execution or {}}
    return client.initialize_session(
        types.InitializeParams(
            capabilities=caps,
            root_uri=ws.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=ws.as_uri(), name=ws.name)],
            initialization_options=options,
        )
    )


async def _session(ws: Path, api: FakeMessagesAPI, caps: types.ClientCapabilities):
    client = await SERVER.start()
    read_actions_as_editors_do(client)
    await asyncio.wait_for(_initialize(client, ws, api, caps), 30)
    return client


async def _close(client: LanguageClient) -> None:
    try:
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        await asyncio.wait_for(client.stop(), 30)


async def _ai_finding(client: LanguageClient, uri: str) -> types.Diagnostic:
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )

    async def wait() -> types.Diagnostic:
        while True:
            found = [d for d in client.diagnostics.get(uri, []) if d.source == "gantry-ai"]
            if found:
                return found[0]
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    return await asyncio.wait_for(wait(), 60)


async def _verify_action(client: LanguageClient, uri: str, finding) -> types.CodeAction:
    actions = await asyncio.wait_for(
        client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=finding.range,
                context=types.CodeActionContext(diagnostics=[finding]),
            )
        ),
        30,
    )
    titles = [a.title for a in actions]
    assert any(t.startswith("Gantry: Apply the suggested fix") for t in titles), titles
    (action,) = [a for a in actions if a.title == VERIFY_TITLE]
    assert isinstance(action, types.CodeAction) and action.kind == "quickfix"
    assert action.command.command == "gantry.verifyFix"
    assert list(action.command.arguments) == [
        {"uri": uri, "fingerprint": finding.data["fingerprint"]}
    ]
    return action


async def _run(client: LanguageClient, command: types.Command) -> dict:
    # Bounded by the job's own timeout and the time to start the sandbox.
    return await asyncio.wait_for(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
        ),
        240,
    )


async def _exec_jobs(client: LanguageClient, uri: str) -> list[dict]:
    status = await asyncio.wait_for(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="gantry.queueStatus", arguments=[{"uri": uri}])
        ),
        30,
    )
    return [job for job in status["jobs"] if job["kind"] == "exec"]


@pytest.mark.parametrize("editor", ["visual-studio-code", "neovim"])
async def test_apply_and_verify_applies_the_fix_and_the_covering_tests_pass(
    tmp_path: Path, api: FakeMessagesAPI, editor: str
):
    ws = _workspace(tmp_path)
    api.script(tool_use("report_findings", {"findings": [division_bug()]}))
    client = await _session(ws, api, client_capabilities(editor))
    try:
        uri = open_document(client, ws / "stats.py")
        finding = await _ai_finding(client, uri)
        action = await _verify_action(client, uri, finding)
        assert action.edit is None  # the command applies it: the client takes applyEdit

        answer = await _run(client, action.command)

        # The fix went to the editor through workspace/applyEdit ...
        (edit,) = client.applied_edits
        fixed = apply_text_edits(STATS, edits_of(edit, uri))
        assert fixed == STATS.replace("return total / len(values)", GOOD_FIX)
        # ... and the test file that mentions `average` ran in the local sandbox, and passed.
        assert answer["outcome"] == "passed", answer
        assert answer["tests"] == ["tests/test_stats.py"]
        assert (answer["passed"], answer["failed"]) == (2, 0)
        said = client.messages[-1]
        assert said.type == types.MessageType.Info
        assert "2 passed" in said.message and "the local sandbox" in said.message, said.message
        (job,) = await _exec_jobs(client, uri)
        assert job["state"] == "done" and job["key"].startswith("verify-fix:")
        if editor == "visual-studio-code":  # it takes $/progress: the run was shown
            assert any(
                isinstance(report, types.WorkDoneProgressBegin)
                and "verifying the fix to `average`" in report.title
                for reports in client.progress_reports.values()
                for report in reports
            ), client.progress_reports
    finally:
        await _close(client)


async def test_a_fix_that_breaks_a_covering_test_says_which_and_the_assertion(
    tmp_path: Path, api: FakeMessagesAPI
):
    ws = _workspace(tmp_path)
    api.script(tool_use("report_findings", {"findings": [division_bug(replace=BAD_FIX)]}))
    client = await _session(ws, api, client_capabilities("neovim"))
    try:
        uri = open_document(client, ws / "stats.py")
        finding = await _ai_finding(client, uri)
        action = await _verify_action(client, uri, finding)
        assert action.edit is None  # the command applies it: the client takes applyEdit

        answer = await _run(client, action.command)

        assert len(client.applied_edits) == 1
        assert answer["outcome"] == "failed", answer
        assert (answer["passed"], answer["failed"]) == (1, 1)
        assert answer["firstFailure"].startswith("tests/test_stats::test_empty: ")
        assert "assert None == 0.0" in answer["firstFailure"]
        said = client.messages[-1]
        assert said.type == types.MessageType.Warning
        assert "1 passed, 1 failed" in said.message
        assert "tests/test_stats::test_empty" in said.message
        assert "assert None == 0.0" in said.message, said.message
    finally:
        await _close(client)


async def test_a_unit_no_test_mentions_runs_nothing_and_says_so(
    tmp_path: Path, api: FakeMessagesAPI
):
    ws = _workspace(tmp_path)
    bug = division_bug(
        replace="return ordered[len(ordered) // 2] if ordered else None",
        search="return ordered[len(ordered) // 2]",
        line=3,
    )
    api.script(tool_use("report_findings", {"findings": [{**bug, "message": "IndexError"}]}))
    client = await _session(ws, api, client_capabilities("neovim"))
    try:
        uri = open_document(client, ws / "other.py")
        finding = await _ai_finding(client, uri)
        action = await _verify_action(client, uri, finding)
        assert action.edit is None  # the command applies it: the client takes applyEdit

        answer = await _run(client, action.command)

        assert answer["outcome"] == "no-tests", answer
        said = client.messages[-1].message
        assert "no tests cover `median`" in said and "nothing was run" in said, said
        assert await _exec_jobs(client, uri) == []  # no job was submitted
        assert len(client.applied_edits) == 1  # the fix itself was applied all the same
    finally:
        await _close(client)


async def test_a_client_without_apply_edit_gets_the_edit_in_the_action(
    tmp_path: Path, api: FakeMessagesAPI
):
    """It applies the action's edit, then runs the command: the tests run on that text."""
    ws = _workspace(tmp_path)
    api.script(tool_use("report_findings", {"findings": [division_bug()]}))
    caps = client_capabilities("neovim")
    caps.workspace.apply_edit = False
    client = await _session(ws, api, caps)
    try:
        uri = open_document(client, ws / "stats.py")
        finding = await _ai_finding(client, uri)
        action = await _verify_action(client, uri, finding)
        if action.edit is None:  # filled in when the action is resolved
            action = await asyncio.wait_for(client.code_action_resolve_async(action), 30)
        fixed = apply_text_edits(STATS, edits_of(action.edit, uri))
        assert fixed == STATS.replace("return total / len(values)", GOOD_FIX)
        change_document(client, uri, 2, fixed)
        await diagnostics_for(client, uri, 2)

        answer = await _run(client, action.command)

        assert client.applied_edits == []
        assert answer["outcome"] == "passed", answer
        assert (answer["passed"], answer["failed"]) == (2, 0)
    finally:
        await _close(client)


async def test_without_bubblewrap_nothing_runs_and_the_user_is_told_why(
    tmp_path: Path, api: FakeMessagesAPI
):
    """No bwrap on the server's PATH and no `unsandboxed` setting: the job is parked, not run
    some other way, and the message says what to install."""
    ws = _workspace(tmp_path)
    api.script(tool_use("report_findings", {"findings": [division_bug()]}))
    no_bwrap = attrs.evolve(SERVER, server_env={**os.environ, "PATH": str(tmp_path / "empty")})
    client = await no_bwrap.start()
    read_actions_as_editors_do(client)
    try:
        await asyncio.wait_for(_initialize(client, ws, api, client_capabilities("neovim")), 30)
        uri = open_document(client, ws / "stats.py")
        finding = await _ai_finding(client, uri)
        action = await _verify_action(client, uri, finding)

        answer = await _run(client, action.command)

        assert answer["outcome"] == "not-run", answer
        said = client.messages[-1].message
        assert "did not run" in said and "bubblewrap" in said and "unsandboxed" in said, said
        (job,) = await _exec_jobs(client, uri)
        assert job["state"] == "parked"
    finally:
        await _close(client)


async def test_with_the_gateway_up_the_tests_run_there(tmp_path: Path, api: FakeMessagesAPI):
    """The same job goes to the execution gateway when one is configured and up (here a real
    one on loopback, whose local backend runs it in its own sandbox)."""
    from gateway_harness import TOKEN, make_config, serve_in_thread

    from remote_exec.gateway.backends.local import LocalBackend

    ws = _workspace(tmp_path)
    api.script(tool_use("report_findings", {"findings": [division_bug(replace=BAD_FIX)]}))
    config = make_config(tmp_path / "gateway")
    backend = LocalBackend(Sandbox(), config.work_root, max_concurrency=2, gpus=[])
    with serve_in_thread(config, backend) as url:
        server = attrs.evolve(SERVER, server_env={**os.environ, "GANTRY_GATEWAY_TOKEN": TOKEN})
        client = await server.start()
        read_actions_as_editors_do(client)
        try:
            gateway = {"url": url, "name": "gpu-gateway"}
            await asyncio.wait_for(
                _initialize(client, ws, api, client_capabilities("neovim"), {"gateway": gateway}),
                30,
            )
            uri = open_document(client, ws / "stats.py")
            finding = await _ai_finding(client, uri)
            action = await _verify_action(client, uri, finding)

            answer = await _run(client, action.command)

            assert answer["outcome"] == "failed", answer
            assert (answer["passed"], answer["failed"]) == (1, 1)
            said = client.messages[-1].message
            assert f"in the gateway {url}" in said and "assert None == 0.0" in said, said
        finally:
            await _close(client)


# -- the rule and the bundle, on files ----------------------------------------------------


def _plan(ws: Path, name: str, **options):
    from lsp_server.review import verify

    defaults = {"open_texts": {}, "ignore": [], "private": [], "max_file_bytes": 1 << 20}
    return verify.plan(ws, "stats.py", STATS, name, **{**defaults, **options})


def test_the_covering_tests_are_the_test_files_that_name_the_unit(tmp_path: Path):
    ws = _workspace(tmp_path)
    write_workspace(
        ws,
        {
            "tests/test_more.py": "from stats import averages\n",  # another name
            "tests/helpers.py": "from stats import average\n",  # not a test file
            "tests/build/test_old.py": "average\n",  # ignored
            ".gitignore": "build/\n",
            "secret_settings.py": "TOKEN = 'x'\n",
        },
    )
    (ws / ".git").mkdir()  # .gitignore applies inside a git repository only, as for ruff
    plan = _plan(ws, "average", private=["secret_*.py"])
    assert plan.tests == ("tests/test_stats.py",)
    sent = set(plan.spec.files)
    assert {"stats.py", "tests/test_stats.py", "tests/helpers.py", "pyproject.toml"} <= sent
    assert "secret_settings.py" not in sent and "tests/build/test_old.py" not in sent
    assert plan.spec.argv[:3] == ["python3", "-m", "pytest"]
    assert plan.spec.argv[-1] == "tests/test_stats.py"
    assert plan.spec.resources.gpus == 0  # a CPU job: it may fall back to the local sandbox
    # The editor's unsaved text is what runs.
    opened = _plan(ws, "average", open_texts={"tests/test_stats.py": "x = 1\n"})
    assert opened.tests == ()
    assert _plan(ws, None).tests == ()  # top-level code: no name, no tests


def test_the_bundle_is_bounded_and_says_what_it_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from lsp_server.review import verify

    ws = _workspace(tmp_path)
    write_workspace(ws, {f"pkg/mod{i}.py": "x = 1\n" for i in range(5)})
    monkeypatch.setattr(verify, "MAX_BUNDLE_FILES", 4)
    plan = _plan(ws, "average")
    assert list(plan.spec.files)[:2] == ["stats.py", "tests/test_stats.py"]  # first in
    assert len(plan.spec.files) == 4 and plan.left_out == 5  # pkg/: every module


def test_results_that_are_not_a_report_say_why():
    from lsp_server.review.verify import read_result

    missing = read_result(
        {"state": "failed", "exit_code": 1, "stderr_tail": "/x/python3: No module named pytest\n"}
    )
    assert missing.problem and "pytest is not installed" in missing.problem
    assert "did not finish" in read_result({"state": "timed_out", "exit_code": None}).problem
    assert not missing.ok
