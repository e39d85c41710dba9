"""`gantry check` end to end: real subprocesses driving the real server over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import jsonschema
import pytest

from lsp_server.headless import client as client_module
from lsp_server.headless.client import CheckSession, ServerError

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0-schema.json").read_text())

UNUSED_IMPORT = "import os\n\n\nprint('hello')\n"
"""One ruff finding: F401 on line 1, columns 8-10, with a safe fix."""
CLEAN = "print('clean')\n"


def make_workspace(root: Path, files: dict[str, str | bytes], severity: str = "error") -> Path:
    """A workspace checked for pyflakes rules only, whose F401 findings are at `severity`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.gantry.ruff]\nselect = ["F"]\n\n[tool.gantry.severity]\nF401 = "{severity}"\n'
    )
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def gantry_check(tmp_path, monkeypatch):
    # The server's per-workspace store lives in the user cache: keep it inside the test.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lsp_server", "check", *args],
            cwd=cwd,
            check=False,
            capture_output=True,
            text=True,
            timeout=90,
        )

    return run


@pytest.mark.parametrize(
    ("severity", "fail_on", "expected"),
    [
        ("error", "error", 1),
        ("warning", "error", 0),
        ("warning", "warning", 1),
        ("info", "warning", 0),
        ("info", "info", 1),
        ("hint", "info", 0),
        ("error", "never", 0),
    ],
)
def test_exit_code_follows_fail_on(tmp_path, gantry_check, severity, fail_on, expected):
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT}, severity=severity)
    result = gantry_check(workspace, "--fail-on", fail_on)
    assert result.returncode == expected, result.stderr
    assert f"mod.py:1:8: {severity} F401 `os` imported but unused [*]" in result.stdout
    assert "1 finding" in result.stdout


def test_default_fails_on_errors_only(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"clean.py": CLEAN})
    result = gantry_check(workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No findings in 1 file.\n"


def test_json_report(tmp_path, gantry_check):
    workspace = make_workspace(
        tmp_path / "ws", {"pkg/mod.py": UNUSED_IMPORT, "pkg/clean.py": CLEAN, "notes.txt": "x"}
    )
    result = gantry_check(workspace, "pkg", "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["version"] == 1
    (finding,) = document["findings"]
    assert finding["path"] == "pkg/mod.py"
    assert (finding["line"], finding["column"], finding["endLine"], finding["endColumn"]) == (
        1,
        8,
        1,
        10,
    )
    assert (finding["level"], finding["rule"]) == ("error", "F401")
    assert finding["url"].startswith("https://")
    assert finding["fingerprint"]
    assert finding["fix"]["applicability"] == "safe"
    assert finding["fix"]["edits"]
    summary = document["summary"]
    assert (summary["findings"], summary["errors"], summary["files"]) == (1, 1, 2)
    assert summary["complete"] is True
    # JSON stays machine-readable: the human summary goes to stderr.
    assert "1 finding (1 error, 0 warnings, 0 info) in 2 files; 1 fixable" in result.stderr


def test_sarif_report_to_output_file(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT})
    out = tmp_path / "report.sarif"
    result = gantry_check(workspace, "--format", "sarif", "--output", str(out))
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "1 finding" in result.stderr
    log = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.validate(log, SARIF_SCHEMA, cls=jsonschema.Draft4Validator)
    run = log["runs"][0]
    (result_,) = run["results"]
    assert result_["ruleId"] == "F401"
    assert result_["level"] == "error"
    location = result_["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "mod.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == 1
    assert result_["partialFingerprints"]["gantry/v1"]
    assert result_["fixes"][0]["artifactChanges"][0]["replacements"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == workspace.resolve().as_uri() + "/"


def test_github_annotations(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT}, severity="warning")
    result = gantry_check(workspace, "mod.py", "--format", "github")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "::warning file=mod.py,line=1,col=8,endLine=1,endColumn=10,title=F401"
        "::`os` imported but unused\n"
    )


def test_gitignored_files_are_not_checked(tmp_path, gantry_check):
    workspace = make_workspace(
        tmp_path / "ws", {".gitignore": "build/\n", "build/gen.py": UNUSED_IMPORT, "ok.py": CLEAN}
    )
    (workspace / ".git").mkdir()  # ruff applies .gitignore inside a git repository only
    result = gantry_check(workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No findings in 1 file.\n"


@pytest.mark.parametrize("repository", [False, True], ids=["no-git", "git"])
@pytest.mark.parametrize("named", [(), ("ignored.py", "ok.py", "build")], ids=["dot", "named"])
def test_gitignore_applies_as_ruff_applies_it(tmp_path, gantry_check, repository, named):
    """Outside a git repository ruff reads .gitignore'd files; inside one it skips them when
    it walks a directory, not when they are named. Gantry checks what ruff itself reads."""
    workspace = make_workspace(
        tmp_path / "ws",
        {
            ".gitignore": "ignored.py\nbuild/\n",
            "ignored.py": UNUSED_IMPORT,
            "build/gen.py": UNUSED_IMPORT,
            "ok.py": UNUSED_IMPORT,
        },
    )
    if repository:
        (workspace / ".git").mkdir()
    ruff = Path(sysconfig.get_path("scripts")) / "ruff"
    listed = subprocess.run(
        [ruff, "check", "--no-cache", "--show-files", "--", *(named or ["."])],
        cwd=workspace,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    expected = sorted(
        Path(line).relative_to(workspace).as_posix() for line in listed if line.endswith(".py")
    )
    assert ("ignored.py" in expected) == (not repository or bool(named))  # what ruff does
    result = gantry_check(workspace, *named, "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert sorted(finding["path"] for finding in report["findings"]) == expected
    assert report["summary"]["files"] == len(expected)


def test_invalid_settings_are_announced_and_the_check_goes_on(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT})
    with (workspace / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n[tool.gantry]\nmax_file_size_kb = 'big'\n")
    result = gantry_check(workspace)
    assert result.returncode == 1, result.stderr
    assert "gantry: warning:" in result.stderr
    assert "max_file_size_kb" in result.stderr
    assert "mod.py:1:8: error F401" in result.stdout


def test_nonexistent_path_is_a_usage_error(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT})
    result = gantry_check(workspace, "missing.py")
    assert result.returncode == 2
    assert "missing.py" in result.stderr
    assert result.stdout == ""


def test_unwritable_output_is_a_usage_error(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT})
    result = gantry_check(workspace, "--output", str(tmp_path / "no-such-dir" / "r.json"))
    assert result.returncode == 2
    assert "--output" in result.stderr


def test_non_utf8_file_is_skipped_with_a_message(tmp_path, gantry_check):
    workspace = make_workspace(
        tmp_path / "ws", {"latin1.py": "s = 'caf\xe9'\n".encode("latin-1"), "mod.py": UNUSED_IMPORT}
    )
    result = gantry_check(workspace, "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("latin1.py") == 1
    # As ruff itself: with pyflakes rules only, it cannot lint the file and says why.
    assert "skipped latin1.py: ruff could not lint it: stream did not contain valid UTF-8" in (
        result.stderr
    )
    assert "mod.py:1:8: error F401" in result.stdout
    assert "in 1 file" in result.stdout


def test_empty_directory_is_nothing_checked(tmp_path, gantry_check):
    (tmp_path / "empty").mkdir()
    result = gantry_check(tmp_path / "empty")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "nothing was checked" in result.stderr


def test_analysis_cut_short_by_wait_is_incomplete(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT})
    # No interpreter starts, let alone answers `initialize`, within a microsecond.
    result = gantry_check(workspace, "--wait", "0.000001", "--format", "json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["summary"]["notAnalysed"] == ["mod.py"]
    assert "not analysed: mod.py" in result.stderr


async def test_a_server_that_dies_is_a_server_error(tmp_path):
    dying = (sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(7)")
    session = CheckSession(tmp_path, command=dying)
    with pytest.raises(ServerError, match="exited with code 7"):
        await session.start(timeout=60)
    await session.close()
    assert session.client.process.returncode == 7
    assert "boom" in session.client.stderr_tail


async def test_a_silent_server_runs_out_of_time_and_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(client_module, "SHUTDOWN_GRACE_S", 0.1)
    silent = (sys.executable, "-c", "import time; time.sleep(600)")
    session = CheckSession(tmp_path, command=silent)
    assert await session.start(timeout=0.5) is False
    await session.close()
    assert session.client.process.returncode is not None


def test_a_sub_project_is_checked_with_its_own_settings(tmp_path, gantry_check):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    make_workspace(repo / "services" / "api", {"mod.py": UNUSED_IMPORT}, severity="hint")
    result = gantry_check(repo, "services/api", "--fail-on", "info")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "services/api/mod.py:1:8: hint F401" in result.stdout


def test_a_dismissed_finding_is_not_reported(tmp_path, gantry_check):
    """Dismiss in an editor session, then check: the same store and fingerprint apply."""
    import asyncio

    from lsp_harness import SERVER, diagnostics_for, initialize, open_document
    from lsprotocol import types

    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT + "import sys\n"})

    async def dismiss_os_import() -> None:
        client = await SERVER.start()
        try:
            await initialize(client, workspace)
            uri = open_document(client, workspace / "mod.py")
            diagnostics = await diagnostics_for(client, uri, 1)
            os_import = next(d for d in diagnostics if d.range.start.line == 0)
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="gantry.dismissFinding",
                    arguments=[{"uri": uri, "fingerprint": os_import.data["fingerprint"]}],
                )
            )
            await client.shutdown_session()
        finally:
            await client.stop()

    before = gantry_check(workspace)
    assert "mod.py:1:8" in before.stdout and "mod.py:5:8" in before.stdout
    asyncio.run(dismiss_os_import())  # inherits the fixture's XDG_CACHE_HOME: the same store
    after = gantry_check(workspace)
    assert "mod.py:1:8" not in after.stdout and "mod.py:5:8" in after.stdout


# -- what ruff reads, gantry check reviews: ruff's exclusions, encodings, notebooks ----------

RUFF = str(Path(sysconfig.get_path("scripts")) / "ruff")
EXCLUDING = '\n[tool.ruff]\nextend-exclude = ["generated"]\n'
NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Notes\n"]},
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["import os\n", "x = 1\n"],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["import sys\n", "print(x)\n"],
        },
    ],
    "metadata": {"language_info": {"name": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_a_syntax_error_is_an_error_and_fails_the_check(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"broken.py": "def f(:\n    pass\n"})
    result = gantry_check(workspace, "--fail-on", "warning")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "broken.py:1:7: error invalid-syntax " in result.stdout


def excluding_workspace(root: Path) -> Path:
    """One finding in mod.py, and the same in a file ruff excludes and one the project does."""
    files = {".venv/lib/x.py": UNUSED_IMPORT, "generated/gen.py": UNUSED_IMPORT}
    workspace = make_workspace(root, {**files, "mod.py": UNUSED_IMPORT})
    with (workspace / "pyproject.toml").open("a") as pyproject:
        pyproject.write(EXCLUDING)
    return workspace


def test_ruffs_exclusions_and_the_projects_apply(tmp_path, gantry_check):
    workspace = excluding_workspace(tmp_path / "ws")
    result = gantry_check(workspace, "--format", "json")
    document = json.loads(result.stdout)
    assert [finding["path"] for finding in document["findings"]] == ["mod.py"]
    assert document["summary"]["files"] == 1
    # Named outright, an excluded file is not checked either (ruff --force-exclude).
    result = gantry_check(workspace, "generated/gen.py")
    assert result.returncode == 2
    assert "skipped generated/gen.py: excluded by the project's ruff settings" in result.stderr
    assert "nothing was checked" in result.stderr


async def test_an_opened_file_the_project_excludes_gets_no_findings(tmp_path):
    from lsp_harness import SERVER, diagnostics_for, initialize, open_document

    workspace = excluding_workspace(tmp_path / "ws")
    client = await SERVER.start()
    try:
        await initialize(client, workspace)
        venv = open_document(client, workspace / ".venv" / "lib" / "x.py")
        generated = open_document(client, workspace / "generated" / "gen.py")
        kept = open_document(client, workspace / "mod.py")
        assert [d.code for d in await diagnostics_for(client, kept, 1)] == ["F401"]
        assert await diagnostics_for(client, venv, 1) == []
        assert await diagnostics_for(client, generated, 1) == []
        await client.shutdown_session()
    finally:
        await client.stop()


def test_a_declared_encoding_and_a_notebook_get_ruffs_findings(tmp_path, gantry_check):
    workspace = make_workspace(
        tmp_path / "ws",
        {
            "latin1.py": "# -*- coding: latin-1 -*-\nimport os\ns = 'café'\n".encode("latin-1"),
            "analysis.ipynb": json.dumps(NOTEBOOK),
        },
    )
    (workspace / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["E", "F"]\n')
    result = gantry_check(workspace, "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    found = {
        (f["path"], f["cell"], f["line"], f["column"], f["rule"]) for f in document["findings"]
    }
    ruff = subprocess.run(
        [RUFF, "check", "--output-format=json", "--exit-zero", "."],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = {
        (
            Path(d["filename"]).name,
            d["cell"],
            d["location"]["row"],
            d["location"]["column"],
            d["code"],
        )
        for d in json.loads(ruff.stdout)
    }
    assert found == expected
    assert ("analysis.ipynb", 3, 1, 8, "F401") in found  # `import sys`, line 1 of cell 3
    assert ("latin1.py", None, 1, 1, "E902") in found  # ruff reads UTF-8 only, and says so
    assert document["summary"]["files"] == 2
    text = gantry_check(workspace, "analysis.ipynb", "--fail-on", "never").stdout
    assert "analysis.ipynb:cell 2:1:8: warning F401 `os` imported but unused [*]" in text


def test_a_path_that_is_not_python_is_nothing_checked(tmp_path, gantry_check):
    workspace = make_workspace(tmp_path / "ws", {"notes.txt": "import os\n", "mod.py": CLEAN})
    result = gantry_check(workspace, "notes.txt")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "skipped notes.txt: not a Python file" in result.stderr
    assert "nothing was checked" in result.stderr


def test_a_check_leaves_no_store_or_queue_behind(tmp_path, gantry_check, monkeypatch):
    homes = {name: tmp_path / name for name in ("cache", "data", "state")}
    for name, home in homes.items():
        monkeypatch.setenv(f"XDG_{name.upper()}_HOME", str(home))
    workspace = make_workspace(tmp_path / "ws", {"mod.py": UNUSED_IMPORT})
    result = gantry_check(workspace)
    assert result.returncode == 1, result.stderr
    assert "mod.py:1:8: error F401" in result.stdout
    for home in homes.values():
        assert not home.exists() or not any(home.rglob("*")), list(home.rglob("*"))


async def test_the_editor_and_check_give_the_same_findings_and_fingerprints(tmp_path, gantry_check):
    """One engine: ruff on the editor's buffer (stdin) and ruff over files on disk agree."""
    import rich.console
    from lsp_harness import SERVER, diagnostics_for, initialize, open_document

    workspace = make_workspace(
        tmp_path / "ws", {"console.py": Path(rich.console.__file__).read_text(encoding="utf-8")}
    )
    (workspace / "pyproject.toml").write_text(
        '[tool.ruff.lint]\nselect = ["E", "F", "W", "B", "I", "UP"]\n'
    )
    result = gantry_check(workspace, "--format", "json", "--fail-on", "never")
    on_disk = {
        (f["rule"], f["line"] - 1, f["fingerprint"]) for f in json.loads(result.stdout)["findings"]
    }
    client = await SERVER.start()
    try:
        await initialize(client, workspace)
        uri = open_document(client, workspace / "console.py")
        in_editor = {
            (d.code, d.range.start.line, d.data["fingerprint"])
            for d in await diagnostics_for(client, uri, 1)
        }
        await client.shutdown_session()
    finally:
        await client.stop()
    assert len(on_disk) > 20
    assert in_editor == on_disk


def test_check_help_lists_the_exit_codes_and_the_default_path(gantry_check, tmp_path):
    result = gantry_check(tmp_path, "--help")
    assert result.returncode == 0
    assert "default: ." in result.stdout
    for code in ("0  nothing", "1  at least one", "2  usage", "3  --wait"):
        assert code in result.stdout
