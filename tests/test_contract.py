"""The contract between the server and its clients (`lsp_server.contract`): the committed JSON
Schemas are the ones the classes generate, and what the real server sends over stdio, and
accepts, is what they say."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import jsonschema
import pytest
from raw_lsp import RawServer

from lsp_server.contract import data
from lsp_server.contract.commands import COMMANDS, DismissArgs, ReviewPathsArgs, parse
from lsp_server.contract.converter import ContractError, structure, unstructure
from lsp_server.contract.schema import SCHEMAS_DIR, generate, render
from lsp_server.review.findings import Provenance

PYPROJECT = '[tool.ruff.lint]\nselect = ["E", "F"]\n'
SAMPLE = "import os\n\n\ndef f(x):\n    if x == None:\n        return undefined\n"
NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Notes\n"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["x = 1\n"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["import sys\n"]},
    ],
    "metadata": {"language_info": {"name": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_the_committed_schemas_are_the_generated_ones():
    generated = generate()
    committed = {
        path.relative_to(SCHEMAS_DIR).as_posix(): path.read_text(encoding="utf-8")
        for path in SCHEMAS_DIR.rglob("*.json")
    }
    assert sorted(committed) == sorted(generated), "run: python -m lsp_server.contract.schema"
    for name, schema in generated.items():
        assert committed[name] == render(schema), (
            f"{name} is stale: python -m lsp_server.contract.schema"
        )


def test_every_value_round_trips_and_validates():
    provenance = Provenance(
        "gantry-ai",
        version="1",
        model="m",
        endpoint="gpu-box",
        prompt_version="review-3",
        cached=True,
        at=datetime.datetime(2026, 11, 29, 4, 0, tzinfo=datetime.UTC),
        context=("pkg.mod.f", "pkg.mod.C.g"),
        tokens=1234,
    )
    edit = data.TextEdit(data.Range(data.Position(1, 0), data.Position(2, 0)), "")
    value = data.DiagnosticData("fp", data.FixData("Remove", "safe", (edit,)), provenance, cell=2)
    raw = unstructure(value)
    validator("diagnostic-data.json").validate(raw)
    assert raw["provenance"]["promptVersion"] == "review-3"
    assert raw["provenance"]["at"] == "2026-11-29T04:00:00+00:00"
    assert raw["fix"]["edits"][0]["newText"] == ""
    assert structure(json.loads(json.dumps(raw)), data.DiagnosticData) == value
    # what ruff's findings carry: only what ruff has, and the keys editors read, always
    ruff = unstructure(data.DiagnosticData("", None, Provenance("ruff", "0.17.6")))
    assert ruff == {
        "fingerprint": "",
        "fix": None,
        "provenance": {"engine": "ruff", "version": "0.17.6"},
    }
    validator("diagnostic-data.json").validate(ruff)


DISMISS, REVIEW_PATHS = "gantry.dismissFinding", "gantry.reviewPaths"


@pytest.mark.parametrize(
    ("command", "arguments", "problem"),
    [
        (DISMISS, [{"fingerprint": "x"}], "required field missing @ $.uri"),
        (DISMISS, [{"uri": 1, "fingerprint": "x"}], "expected str @ $.uri"),
        (DISMISS, [{"uri": "u", "fingerprint": "x", "verdict": "no"}], '"false_positive"'),
        (DISMISS, ["u", "x"], "expected one object (uri, fingerprint, verdict, reason)"),
        (REVIEW_PATHS, [{"paths": "src"}], "expected list @ $.paths"),
        (REVIEW_PATHS, [{"paths": ["src"], "fingerprints": "false"}], "expected bool"),
        ("gantry.retryQueued", [{"id": "3"}], "@ $.id"),
    ],
)
def test_bad_arguments_are_refused_saying_why(command, arguments, problem):
    with pytest.raises(ContractError) as caught:
        parse(COMMANDS[command], arguments)
    assert problem in str(caught.value)
    assert not validator(f"commands/{command}.json").is_valid(arguments)


def test_arguments_that_fit_are_read_as_the_schemas_say():
    assert parse(COMMANDS[DISMISS], [{"uri": "u", "fingerprint": "x"}]) == DismissArgs("u", "x")
    assert parse(COMMANDS[REVIEW_PATHS], [{"paths": ["a"]}]) == ReviewPathsArgs(["a"])
    for empty in ([], [{}], [[]]):  # Lua sends an empty object as []
        assert parse(COMMANDS["gantry.retryQueued"], empty).id is None
    assert validator("commands/gantry.retryQueued.json").is_valid([])
    assert validator("commands/gantry.queueStatus.json").is_valid([{}])


def start(root: Path) -> RawServer:
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "app.py").write_text(SAMPLE)
    (root / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
    raw = RawServer(root)
    capabilities = {
        "general": {"positionEncodings": ["utf-16"]},
        "textDocument": {"publishDiagnostics": {"dataSupport": True}},
        "workspace": {"executeCommand": {}},
    }
    rid = raw.request(
        "initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": capabilities}
    )
    offered = raw.response(rid)["result"]["capabilities"]["executeCommandProvider"]["commands"]
    assert sorted(offered) == sorted(COMMANDS), "every command has its arguments' class"
    raw.notify("initialized", {})
    return raw


def test_what_the_server_sends_and_accepts_over_stdio_fits_the_schemas(tmp_path: Path):
    raw = start(tmp_path)
    try:
        uri = (tmp_path / "app.py").as_uri()
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SAMPLE}},
        )
        raw.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        rid = raw.request(
            "workspace/executeCommand", {"command": "gantry.reviewWorkspace", "arguments": []}
        )
        assert raw.response(rid)["result"]["files"] == 2
        published = [
            m["params"]
            for m in raw.messages()
            if m.get("method") == "textDocument/publishDiagnostics"
        ]
        diagnostics = [d for params in published for d in params["diagnostics"]]
        assert {d["code"] for d in diagnostics} >= {"F401", "E711", "F821"}
        datas = validator("diagnostic-data.json")
        for diagnostic in diagnostics:
            datas.validate(diagnostic["data"])
            assert diagnostic["data"]["provenance"]["engine"] == "ruff"
            assert diagnostic["data"]["provenance"]["version"]
        assert any(d["data"].get("fix") for d in diagnostics), "a fix was checked too"
        assert any(d["data"].get("cell") == 3 for d in diagnostics), "a notebook's cell too"

        f401 = next(d for d in diagnostics if d["code"] == "F401" and "cell" not in d["data"])
        rid = raw.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": f401["range"],
                "context": {"diagnostics": [f401]},
            },
        )
        commands = [a["command"] for a in raw.response(rid)["result"] if "command" in a]
        assert commands, "dismiss actions"
        for command in commands:
            validator(f"commands/{command['command']}.json").validate(command["arguments"])
        rid = raw.request("workspace/executeCommand", commands[0])
        assert raw.response(rid)["result"]["fingerprint"] == f401["data"]["fingerprint"]

        bad = {"command": "gantry.dismissFinding", "arguments": [{"uri": uri, "fingerprint": 7}]}
        error = raw.response(raw.request("workspace/executeCommand", bad))["error"]
        assert error["code"] == -32602  # InvalidParams
        assert "gantry.dismissFinding: invalid arguments" in error["message"]
        assert "$.fingerprint" in error["message"]

        # The status is coalesced and indexing may still run: wait for "ready" (bounded).
        raw.wait_for(
            lambda m: m.get("method") == "gantry/status" and m["params"]["state"] == "ready", 60
        )
        statuses = [m["params"] for m in raw.messages() if m.get("method") == "gantry/status"]
        assert {params["state"] for params in statuses} >= {"busy", "ready"}
        status = validator("status.json")
        for params in statuses:
            status.validate(params)
    finally:
        raw.close()
