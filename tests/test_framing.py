"""Stdout carries the protocol and nothing else; malformed input gets errors, not a crash."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from raw_lsp import FramingError, RawServer, parse_frames

from lsp_server.framing import FrameReader, FrameWriter, ParseError

SAMPLE = "import os\n\n\ndef f(x):\n    if x == None:\n        return 1\n"


def test_the_strict_parser_rejects_stray_bytes():
    good = b'Content-Length: 17\r\n\r\n{"jsonrpc":"2.0"}'
    assert parse_frames(good) == [{"jsonrpc": "2.0"}]
    with pytest.raises(FramingError):
        parse_frames(b"hello\n" + good)
    with pytest.raises(FramingError):
        parse_frames(good + b"\n")


def frame(body: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body


@pytest.mark.parametrize("read_size", [1, 7, 65536])
def test_the_reader_resynchronises_however_the_input_is_split(read_size: int):
    stream = io.BytesIO(
        frame(b'{"n": 1}')
        + b"noise\r\n\r\n"
        + frame(b'{"n": 2}', length=6)  # too short: its tail is glued to the next header
        + frame(b'{"n": 3}', length=1000)  # over the cap: refused unread
        + frame(b'{"n": 4}', length=30)  # too long: it swallows the next header, given back
        + frame(b'{"n": 5}')
        + b"Content-Type: text/plain\r\ncontent-length: 8\r\n\r\n"
        + b'{"n": 6}'
    )
    messages = list(FrameReader(lambda n: stream.read(min(n, read_size)), max_body=100).messages())
    assert [m if isinstance(m, dict) else type(m) for m in messages] == [
        {"n": 1},
        ParseError,  # {"n": 2} cut short
        ParseError,  # 1000 bytes
        ParseError,  # {"n": 4} and 22 bytes of the next frame
        {"n": 5},
        {"n": 6},
    ]


@pytest.fixture
def server(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["E", "F"]\n')
    (tmp_path / "app.py").write_text(SAMPLE)
    raw = RawServer(tmp_path)
    rid = raw.request(
        "initialize",
        {
            "processId": None,
            "rootUri": tmp_path.as_uri(),
            "capabilities": {"window": {"workDoneProgress": True}},
        },
    )
    assert "result" in raw.response(rid)
    raw.notify("initialized", {})
    yield raw, tmp_path
    raw.close()


def test_a_whole_session_writes_only_frames(server):
    raw, root = server
    uri = (root / "app.py").as_uri()
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SAMPLE}},
    )
    raw.wait_for(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics" and m["params"]["version"] == 1
        )
    )
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": SAMPLE + "print(undefined)\n"}],
        },
    )
    published = raw.wait_for(
        lambda m: (
            m.get("method") == "textDocument/publishDiagnostics" and m["params"]["version"] == 2
        )
    )
    assert "F821" in {d["code"] for d in published["params"]["diagnostics"]}
    rid = raw.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 9, "character": 0}},
            "context": {"diagnostics": published["params"]["diagnostics"]},
        },
    )
    assert raw.response(rid)["result"]
    rid = raw.request("shutdown", None)
    raw.response(rid)
    raw.notify("exit", None)
    assert raw.close() == 0
    messages = parse_frames(bytes(raw.raw))  # the whole stream, strictly
    assert any(m.get("method") == "gantry/status" for m in messages)


def test_malformed_input_gets_errors_and_the_server_lives(server):
    raw, root = server
    bad = [
        ("textDocument/codeAction", {"textDocument": 7}),
        ("workspace/executeCommand", {"command": "gantry.dismissFinding", "arguments": [42]}),
        ("codeAction/resolve", {"title": "x", "data": {"nonsense": True}}),
        ("textDocument/hover", {"position": "nowhere"}),
    ]
    for method, params in bad:
        response = raw.response(raw.request(method, params))
        assert "error" in response, (method, response)
    raw.send(b"{this is not json")
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": "file:///never/opened.py", "version": 3},
            "contentChanges": [{"text": "x"}],
        },
    )
    raw.notify("textDocument/didOpen", {"textDocument": "garbage"})
    uri = (root / "app.py").as_uri()
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SAMPLE}},
    )
    raw.wait_for(
        lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
    )
    assert raw.proc.poll() is None
    parse_frames(bytes(raw.raw))


def test_a_client_that_never_answers_does_not_stall_the_server(tmp_path: Path):
    """No answer to workDoneProgress/create or workspace/configuration: the server reviews,
    indexes and shuts down all the same."""
    (tmp_path / "app.py").write_text(SAMPLE)
    raw = RawServer(tmp_path, answer_requests=False)
    try:
        capabilities = {"window": {"workDoneProgress": True}, "workspace": {"configuration": True}}
        raw.response(
            raw.request(
                "initialize",
                {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": capabilities},
            )
        )
        raw.notify("initialized", {})
        uri = (tmp_path / "app.py").as_uri()
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SAMPLE}},
        )
        raw.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert "result" in raw.response(raw.request("shutdown", None))
        raw.notify("exit", None)
        assert raw.close() == 0
    finally:
        raw.proc.kill()


def test_frames_are_written_whole_on_a_full_non_blocking_pipe():
    """A slow reader and a non-blocking descriptor: every frame arrives whole and in order,
    even when frames are written from two threads at once."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    writer = FrameWriter(write_end)
    pad = b"x" * 300_000
    bodies = [b'{"jsonrpc":"2.0","method":"m","params":[%d,"%s"]}' % (i, pad) for i in range(6)]
    frames = [b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies]
    received = bytearray()

    def read() -> None:
        while chunk := os.read(read_end, 7_000):
            received.extend(chunk)
            time.sleep(0.001)  # slower than the writer: the pipe fills up

    reader = threading.Thread(target=read)
    reader.start()
    writers = [
        threading.Thread(target=lambda part=part: [writer.write(f) for f in part])
        for part in (frames[::2], frames[1::2])
    ]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    os.close(write_end)
    reader.join(60)
    os.close(read_end)
    parsed = parse_frames(bytes(received))
    assert sorted(message["params"][0] for message in parsed) == list(range(6))
