"""Broken or hostile input over real stdio: bad frames, values that are not messages, requests out
of lifecycle order. Each is refused with the JSON-RPC error LSP names, the server keeps reading,
and everything it writes stays strict `Content-Length` framing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from raw_lsp import RawServer, parse_frames

SAMPLE = "import os\n"
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND = -32700, -32600, -32601
SERVER_NOT_INITIALIZED = -32002


def frame(body: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body


def message(**fields) -> bytes:
    return json.dumps({"jsonrpc": "2.0", **fields}).encode()


def start(root: Path) -> RawServer:
    (root / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["F"]\n')
    (root / "app.py").write_text(SAMPLE)
    return RawServer(root)


def initialize(raw: RawServer, root: Path) -> dict:
    response = raw.response(
        raw.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
    )
    raw.notify("initialized", {})
    return response


def probe(raw: RawServer) -> int:
    """The error code of a request for a method nobody serves: proof that the server reads on."""
    return raw.response(raw.request("gantry/probe", None))["error"]["code"]


def null_id_errors(raw: RawServer) -> list[int]:
    return [m["error"]["code"] for m in raw.messages() if "error" in m and m.get("id") is None]


def error_messages(raw: RawServer) -> list[str]:
    """What the server showed the user as an error."""
    return [
        m["params"]["message"]
        for m in raw.messages()
        if m.get("method") == "window/showMessage" and m["params"]["type"] == 1
    ]


@pytest.fixture
def fresh(tmp_path: Path):
    """A server that has not been initialized."""
    raw = start(tmp_path)
    yield raw
    raw.close()
    parse_frames(bytes(raw.raw))  # everything it wrote, strictly


@pytest.fixture
def server(fresh: RawServer, tmp_path: Path):
    assert "result" in initialize(fresh, tmp_path)
    return fresh


def test_a_huge_content_length_is_refused_and_the_server_reads_on(server: RawServer):
    server.send_raw(b"Content-Length: 99999999999\r\n\r\n")
    assert probe(server) == METHOD_NOT_FOUND
    assert null_id_errors(server) == [PARSE_ERROR]
    assert server.proc.poll() is None


@pytest.mark.parametrize("wrong_by", [-9, 40], ids=["too-short", "too-long"])
def test_a_wrong_content_length_is_skipped_and_later_frames_are_answered(
    server: RawServer, wrong_by: int
):
    body = message(id=1000, method="gantry/probe", params=None)
    later = [message(id=i, method="gantry/probe", params=None) for i in (1001, 1002, 1003)]
    server.send_raw(frame(body, len(body) + wrong_by) + b"".join(frame(b) for b in later))
    for i in (1001, 1002, 1003):
        assert server.response(i)["error"]["code"] == METHOD_NOT_FOUND
    assert null_id_errors(server) == [PARSE_ERROR]
    assert probe(server) == METHOD_NOT_FOUND


def test_bodies_that_are_not_json_or_not_utf8_get_parse_errors(server: RawServer):
    server.send(b"{this is not json")
    server.send(b'{"jsonrpc": "2.0", "id": 1100, "method": "gantry/\xff\xfe"}')
    server.send(b'{"jsonrpc": "2.0", "id": 1101, "method": "gantry/probe", "params": NaN}')
    assert probe(server) == METHOD_NOT_FOUND
    assert null_id_errors(server) == [PARSE_ERROR] * 3


def test_values_that_are_not_requests_get_invalid_request(server: RawServer):
    for i, method in [(1200, None), (1201, ""), (1202, 5), (1203, ["initialize"])]:
        server.send(message(id=i, method=method))
    server.send(json.dumps({"id": 1204, "method": "gantry/probe"}).encode())  # no "jsonrpc"
    for i in range(1200, 1205):
        assert server.response(i)["error"]["code"] == INVALID_REQUEST
    for bad_id in [True, 1.5, [1], {"id": 1}]:
        server.send(message(id=bad_id, method="gantry/probe"))
    for value in [[], [json.loads(message(id=1205, method="gantry/probe"))], 5, "x", None]:
        server.send(json.dumps(value).encode())
    server.send(message(id=1206))  # neither a request nor a response
    assert probe(server) == METHOD_NOT_FOUND
    assert null_id_errors(server) == [INVALID_REQUEST] * 10
    assert not [m for m in server.messages() if m.get("id") == 1205]


def test_deep_nesting_gets_an_error_not_silence(server: RawServer):
    for i, depth in [(1300, 5000), (1301, 500)]:
        params = b'{"a":' * depth + b"1" + b"}" * depth
        server.send(b'{"jsonrpc":"2.0","id":%d,"method":"gantry/probe","params":%s}' % (i, params))
    assert server.response(1301)["error"]["code"] == INVALID_REQUEST
    assert probe(server) == METHOD_NOT_FOUND
    assert null_id_errors(server) == [PARSE_ERROR]  # too deep to find its id


def test_an_argument_shaped_like_a_message_is_only_an_argument(server: RawServer):
    shaped = [
        {"jsonrpc": "2.0", "id": 777, "method": "textDocument/hover", "params": {"x": 1}},
        {"jsonrpc": "2.0", "id": 778, "result": None},
        {"jsonrpc": "2.0", "id": 779, "error": {"code": 1, "message": "m"}},
    ]
    for argument in shaped:
        rid = server.request(
            "workspace/executeCommand",
            {"command": "gantry.dismissFinding", "arguments": [argument]},
        )
        assert server.response(rid)["error"]["code"] == -32602
    assert not [m for m in server.messages() if m.get("id") in (777, 778, 779)]


def test_requests_before_initialize_are_refused_and_change_nothing(tmp_path: Path):
    first = start(tmp_path)
    initialize(first, tmp_path)
    uri = (tmp_path / "app.py").as_uri()
    first.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SAMPLE}},
    )
    published = first.wait_for(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics" and m["params"]["diagnostics"]
        )
    )
    fingerprint = published["params"]["diagnostics"][0]["data"]["fingerprint"]
    first.response(first.request("shutdown", None))
    first.notify("exit", None)
    assert first.close() == 0

    raw = RawServer(tmp_path)
    try:
        dismiss = {"uri": uri, "fingerprint": fingerprint}
        rid = raw.request(
            "workspace/executeCommand",
            {"command": "gantry.dismissFinding", "arguments": [dismiss]},
        )
        assert raw.response(rid)["error"]["code"] == SERVER_NOT_INITIALIZED
        raw.notify("initialize", {"processId": None, "capabilities": {}})  # not as a request
        assert probe(raw) == SERVER_NOT_INITIALIZED
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SAMPLE}},
        )
        assert "result" in initialize(raw, tmp_path)
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 2, "text": SAMPLE}},
        )
        published = raw.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert published["params"]["version"] == 2  # the didOpen before initialize was dropped
        assert fingerprint in {d["data"]["fingerprint"] for d in published["params"]["diagnostics"]}
        assert error_messages(raw) == []
    finally:
        raw.close()
    parse_frames(bytes(raw.raw))


def test_a_second_initialize_is_refused_and_changes_nothing(server: RawServer, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    for name in ("a.py", "b.py", "c.py"):
        (elsewhere / name).write_text(SAMPLE)
    rid = server.request(
        "initialize", {"processId": None, "rootUri": elsewhere.as_uri(), "capabilities": {}}
    )
    error = server.response(rid)["error"]
    assert (error["code"], error["message"]) == (INVALID_REQUEST, "already initialized")
    rid = server.request("workspace/executeCommand", {"command": "gantry.reviewWorkspace"})
    assert server.response(rid)["result"]["files"] == 1  # still rooted where it was


def test_after_shutdown_requests_are_invalid_and_exit_ends_with_0(server: RawServer):
    assert server.response(server.request("shutdown", None))["result"] is None
    assert probe(server) == INVALID_REQUEST
    assert server.response(server.request("shutdown", None))["error"]["code"] == INVALID_REQUEST
    server.notify("exit", None)
    assert server.proc.wait(timeout=30) == 0


def test_exit_without_shutdown_ends_with_1(fresh: RawServer):
    fresh.notify("exit", None)
    assert fresh.proc.wait(timeout=30) == 1


def test_a_change_to_a_document_never_opened_is_ignored(server: RawServer, tmp_path: Path):
    server.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": (tmp_path / "never.py").as_uri(), "version": 2},
            "contentChanges": [{"text": "x = 1\n"}],
        },
    )
    assert probe(server) == METHOD_NOT_FOUND
    assert error_messages(server) == []
