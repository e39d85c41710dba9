""" "Generate tests" from an editor, end to end over stdio with VS Code's capabilities: the code
lens, the command running the real engines and funnel in bubblewrap on the fixture project
(once for the module: it takes tens of seconds), the kept tests delivered by
workspace/applyEdit and shown, the planted off-by-one as a "gantry-tests" diagnostic with its
actions, cancellation through $/progress, and arguments that are refused."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio
from lsp_harness import (
    SERVER,
    apply_text_edits,
    diagnostics_for,
    initialize,
    open_document,
    read_actions_as_editors_do,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from lsp_server.contract.schema import SCHEMAS_DIR
from lsp_server.store import Store
from remote_exec.sandbox import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")
FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"
SETTINGS = (
    '\n[tool.gantry]\nstore = ".gantry/store.db"\n'
    "\n[tool.gantry.testgen]\nbudget_seconds = 90\nreruns = 3\n"
)
RUN_WAIT_S = 200


def _fits_schema(command: types.Command) -> None:
    """The arguments the server hands out are what its schema for the command says."""
    schema = json.loads((SCHEMAS_DIR / "commands" / f"{command.command}.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(list(command.arguments))


def _range(first: int, last: int) -> dict:
    """Whole lines ``first``..``last`` (0-based) as the command's range argument."""
    return {"start": {"line": first, "character": 0}, "end": {"line": last + 1, "character": 0}}


async def _execute(client: LanguageClient, command: str, args: list, timeout: float = 30):
    return await asyncio.wait_for(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=args)
        ),
        timeout,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)  # generated tests only ever run sandboxed: never skip that
    root = tmp_path_factory.mktemp("tg-editor") / "project"
    shutil.copytree(FIXTURE, root)
    with (root / "pyproject.toml").open("a") as f:
        f.write(SETTINGS)
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(project: Path):
    client = await SERVER.start()
    read_actions_as_editors_do(client)
    client.initialized = await asyncio.wait_for(
        initialize(client, project, "visual-studio-code"), 30
    )
    yield client
    try:
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        await asyncio.wait_for(client.stop(), 30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_uri(client: LanguageClient, project: Path) -> str:
    uri = open_document(client, project / "textutils.py")
    await diagnostics_for(client, uri, 1)
    return uri


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def generated(client: LanguageClient, module_uri: str, project: Path) -> dict:
    """One run over a selection of encode_runs and decode_runs (lines 4-17): the ghostwriter
    pairs them into a round trip, which the planted off-by-one breaks."""
    client.applied_edits.clear()
    result = await _execute(
        client, "gantry.generateTests", [{"uri": module_uri, "range": _range(3, 16)}], RUN_WAIT_S
    )
    return result


async def test_code_lens_over_functions_methods_and_classes(
    client: LanguageClient, project: Path
) -> None:
    text = (project / "textutils.py").read_text() + (
        "\n\nclass Stack:\n    def push(self, x):\n        pass\n\n    def _hidden(self):\n"
        "        pass\n"
    )
    uri = open_document(client, project / "scratch.py", text)
    lenses = await asyncio.wait_for(
        client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        ),
        30,
    )
    by_symbol = {lens.command.arguments[0]["symbol"]: lens for lens in lenses}
    assert list(by_symbol) == ["encode_runs", "decode_runs", "clamp", "Stack", "Stack.push"]
    assert {lens.command.title for lens in lenses} == {"Generate tests"}
    assert {lens.command.command for lens in lenses} == {"gantry.generateTests"}
    assert by_symbol["encode_runs"].range.start.line == 3
    assert by_symbol["Stack.push"].range.start.line == text.splitlines().index(
        "    def push(self, x):"
    )
    assert all(lens.command.arguments[0]["uri"] == uri for lens in lenses)
    for lens in lenses:
        _fits_schema(lens.command)


async def test_the_server_advertises_lenses_and_the_commands(client: LanguageClient) -> None:
    caps = client.initialized.capabilities
    assert caps.code_lens_provider is not None
    commands = caps.execute_command_provider.commands
    assert {"gantry.generateTests", "gantry.addExpectedFailure"} <= set(commands)
    assert "refactor.gantry.generateTests" in caps.code_action_provider.code_action_kinds


async def test_a_selection_offers_generate_tests(client: LanguageClient, module_uri: str) -> None:
    actions = await asyncio.wait_for(
        client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=module_uri),
                range=types.Range(
                    start=types.Position(line=5, character=4),
                    end=types.Position(line=16, character=0),
                ),
                context=types.CodeActionContext(diagnostics=[]),
            )
        ),
        30,
    )
    offered = [
        a for a in actions or [] if getattr(a, "kind", None) == "refactor.gantry.generateTests"
    ]
    assert len(offered) == 1
    assert offered[0].title == "Gantry: generate tests for selection (encode_runs, decode_runs)"
    _fits_schema(offered[0].command)
    args = offered[0].command.arguments[0]
    assert args["uri"] == module_uri and args["range"]["start"] == {"line": 5, "character": 4}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([{"uri": "file:///x.py"}], "exactly one of symbol and range is required (got neither)"),
        (
            [{"uri": "file:///x.py", "symbol": "f", "range": _range(0, 0)}],
            "exactly one of symbol and range is required (got both)",
        ),
        ([{"uri": "file:///x.py", "symbol": 3}], "$.symbol"),
        ([{"uri": "file:///x.py", "range": {"start": {"line": 0}}}], "$.range"),
        (["textutils.py"], "expected one object"),
    ],
)
async def test_bad_arguments_are_invalid_params(
    client: LanguageClient, args: list, message: str
) -> None:
    with pytest.raises(JsonRpcException) as raised:
        await _execute(client, "gantry.generateTests", args)
    assert raised.value.code == -32602
    assert message in str(raised.value)


async def test_nothing_to_test_is_invalid_params(
    client: LanguageClient, module_uri: str, project: Path
) -> None:
    cases = [
        ({"uri": module_uri, "symbol": "_private"}, "no public top-level function or class"),
        ({"uri": module_uri, "range": _range(0, 1)}, "no public function, method or class"),
        ({"uri": (project / "pyproject.toml").as_uri(), "symbol": "f"}, "not a Python file"),
        ({"uri": "file:///elsewhere/mod.py", "symbol": "f"}, "outside every workspace folder"),
    ]
    for args, message in cases:
        with pytest.raises(JsonRpcException) as raised:
            await _execute(client, "gantry.generateTests", [args])
        assert raised.value.code == -32602, args
        assert message in str(raised.value), args


async def test_a_gpu_target_without_a_gateway_is_not_run_and_says_why(
    client: LanguageClient, project: Path
) -> None:
    """Its jobs would ask for a GPU, which only a gateway has; none is configured here."""
    module = project / "gpu_model.py"
    module.write_text("import torch\n\n\ndef scale(x):\n    return torch.tensor(x) * 2\n")
    result = await _execute(
        client, "gantry.generateTests", [{"uri": module.as_uri(), "symbol": "scale"}], 60
    )
    assert result["outcome"] == "not-run", result
    assert "gpu_model.py needs a GPU (it imports torch)" in result["message"]
    assert "none is configured" in result["message"]
    assert not (project / "tests" / "test_gpu_model.py").exists()


def _server_children(client: LanguageClient) -> list[int]:
    pid = client._server.pid  # the server process pytest-lsp started
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return children


async def test_cancel_stops_the_run_and_writes_nothing(
    client: LanguageClient, module_uri: str, project: Path
) -> None:
    test_file = project / "tests" / "test_textutils.py"
    before = test_file.read_text()
    known = set(client.progress_reports)
    edits = len(client.applied_edits)
    run = asyncio.ensure_future(
        _execute(client, "gantry.generateTests", [{"uri": module_uri, "symbol": "clamp"}], 120)
    )

    async def started() -> str:
        while True:
            for token, reports in list(client.progress_reports.items()):
                if token not in known and any(
                    isinstance(r, types.WorkDoneProgressReport) and "generate" in (r.message or "")
                    for r in reports
                ):
                    return token
            await asyncio.sleep(0.05)

    token = await asyncio.wait_for(started(), 60)
    begin = client.progress_reports[token][0]
    assert isinstance(begin, types.WorkDoneProgressBegin) and begin.cancellable
    assert begin.title == "Gantry: generating tests for clamp"
    again = await _execute(client, "gantry.generateTests", [{"uri": module_uri, "symbol": "clamp"}])
    assert again["outcome"] == "running", again  # one run per symbol at a time
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(run, 60)
    assert result["outcome"] == "cancelled", result
    assert "nothing was written" in result["message"]
    assert isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd)
    assert len(client.applied_edits) == edits
    assert test_file.read_text() == before

    async def no_children() -> None:  # the sandbox's process group is killed (it takes a moment)
        while _server_children(client):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(no_children(), 10)
    # It went through the folder's durable queue, and its job ended cancelled there.
    queue = await _execute(client, "gantry.queueStatus", [{"uri": module_uri}])
    testgen = [job for job in queue["jobs"] if job["key"].startswith("testgen:")]
    assert testgen and {job["state"] for job in testgen} == {"cancelled"}, queue["jobs"]


async def test_the_run_delivers_kept_tests_by_apply_edit_and_shows_them(
    client: LanguageClient, generated: dict, project: Path
) -> None:
    assert generated["outcome"] == "done", generated
    assert generated["kept"] >= 1, generated
    assert generated["delivered"] == "edit"
    test_file = project / "tests" / "test_textutils.py"
    assert generated["testFile"] == test_file.as_uri()
    funnel = generated["funnel"]
    assert funnel["generated"] >= funnel["collected"] >= funnel["kept"] == generated["kept"]
    # The edit the client got: a TextEdit of the existing test file (it exists: no CreateFile).
    edit = client.applied_edits[-1]
    changes = edit.document_changes
    assert len(changes) == 1 and isinstance(changes[0], types.TextDocumentEdit)
    assert changes[0].text_document.uri == test_file.as_uri()
    assert client.shown_documents[-1].uri == test_file.as_uri()
    # This client leaves the file it edited unsaved (as Neovim does): the server wrote it.
    written = test_file.read_text()
    assert written.startswith("import pytest\n")
    assert written.count("def test_clamp_inside(") == 1
    assert written.count("def test_") >= 2 + generated["kept"]
    assert "encode_runs" in written or "decode_runs" in written
    # Every job went through the folder's dispatcher (no gateway here: the local sandbox).
    queue = await _execute(client, "gantry.queueStatus", [{"uri": generated["testFile"]}])
    done = [j for j in queue["jobs"] if j["key"].startswith("testgen:") and j["state"] == "done"]
    assert len(done) >= 4, queue["jobs"]  # the engines, collect, reruns, coverage
    # The summary, with the funnel's counts.
    summary = client.messages[-1].message
    assert f"{generated['kept']} test(s) for encode_runs, decode_runs added to " in summary
    assert f"{funnel['kept']} kept" in summary
    # The run's counts are in the folder's store.
    with Store.open(project / ".gantry" / "store.db") as store:
        runs = store.testgen_runs("textutils.py")
    assert any(
        (run.symbols, run.kept) == (("encode_runs", "decode_runs"), generated["kept"])
        for run in runs
    ), runs


async def test_progress_shows_every_stage(client: LanguageClient, generated: dict) -> None:
    titled = [
        reports
        for reports in client.progress_reports.values()
        if reports
        and isinstance(reports[0], types.WorkDoneProgressBegin)
        and reports[0].title == "Gantry: generating tests for encode_runs, decode_runs"
    ]
    assert len(titled) == 1
    messages = [r.message for r in titled[0] if isinstance(r, types.WorkDoneProgressReport)]
    stages = [m.split(":")[0] for m in messages]
    assert list(dict.fromkeys(stages)) == ["generate", "collect", "rerun", "coverage", "place"]
    assert any(m.startswith("rerun: ") and "x 3 runs" in m for m in messages), messages


async def test_the_planted_off_by_one_is_a_possible_bug_diagnostic(
    client: LanguageClient, generated: dict, module_uri: str, project: Path
) -> None:
    assert generated["possibleBugs"] >= 1
    bugs = [d for d in client.diagnostics.get(module_uri, []) if d.source == "gantry-tests"]
    assert bugs, client.diagnostics.get(module_uri)
    roundtrip = next(d for d in bugs if "test_roundtrip_encode_runs_decode_runs" in d.message)
    assert "AssertionError" in roundtrip.message
    assert "text='0'" in roundtrip.message  # the input Hypothesis shrank it to
    assert roundtrip.code == "possible-bug"
    assert roundtrip.range.start.line in (3, 14)  # on encode_runs' or decode_runs' def

    actions = await asyncio.wait_for(
        client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=module_uri),
                range=roundtrip.range,
                context=types.CodeActionContext(diagnostics=[roundtrip]),
            )
        ),
        30,
    )
    titles = {a.title: a for a in actions}
    for action in actions:
        _fits_schema(action.command)
    assert "Gantry: add as expected-failure test" in titles
    assert "Gantry: dismiss possible-bug here" in titles

    command = titles["Gantry: add as expected-failure test"].command
    test_file = project / "tests" / "test_textutils.py"
    theirs = (FIXTURE / "tests" / "test_textutils.py").read_text()

    # No test file yet: a CreateFile and its text; the client leaves it unsaved, the server
    # writes it.
    test_file.unlink()
    client.applied_edits.clear()
    result = await _execute(client, command.command, command.arguments)
    assert result["outcome"] == "done" and result["delivered"] == "edit", result
    changes = client.applied_edits[-1].document_changes
    assert isinstance(changes[0], types.CreateFile) and changes[0].uri == test_file.as_uri()
    created = test_file.read_text()
    assert "@pytest.mark.xfail(strict=True" in created
    assert created.count("def test_roundtrip_encode_runs_decode_runs(") == 1
    # Asked again: it is there already, whatever its layout.
    again = await _execute(client, command.command, command.arguments)
    assert again["outcome"] == "already-there", again
    assert test_file.read_text() == created

    # The test file is open with the user's unsaved work: the edit is made on that buffer,
    # keeps it, and the server leaves the disk alone (the buffer is the user's to save).
    test_file.write_text(theirs)
    mine = theirs + "\n\ndef test_mine():\n    assert True\n"
    test_uri = open_document(client, test_file, mine, version=3)
    result = await _execute(client, command.command, command.arguments)
    assert result["outcome"] == "done" and result["delivered"] == "edit", result
    change = client.applied_edits[-1].document_changes[0]
    assert change.text_document.version == 3
    edited = apply_text_edits(mine, change.edits)
    assert "def test_mine():" in edited and "@pytest.mark.xfail(strict=True" in edited
    assert test_file.read_text() == theirs
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=test_uri))
    )

    # The client refuses the edit: the server writes the file itself.
    test_file.write_text(theirs)
    client.refuse_edits = True
    try:
        result = await _execute(client, command.command, command.arguments)
    finally:
        client.refuse_edits = False
    assert result["outcome"] == "done" and result["delivered"] == "written", result
    after = test_file.read_text()
    assert after.startswith("import pytest\n")
    assert theirs.split("\n\n\n", 1)[1].strip() in after  # their tests, untouched
    assert "@pytest.mark.xfail(strict=True" in after
    # A working test file: their tests pass, the possible bug fails as expected.
    check = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(project)},
        check=False,
    )
    assert check.returncode == 0, check.stdout
    assert "2 passed, 1 xfailed" in check.stdout

    dismiss = titles["Gantry: dismiss possible-bug here"].command
    await _execute(client, dismiss.command, dismiss.arguments)

    async def gone() -> None:
        while any(
            d.source == "gantry-tests" and d.message == roundtrip.message
            for d in client.diagnostics.get(module_uri, [])
        ):
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    await asyncio.wait_for(gone(), 30)
