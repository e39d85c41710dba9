"""Cassettes at the inference exit point: what is recorded, what a replay answers, and what it
refuses, through the real client against the scripted Messages-API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_messages_api import FakeMessagesAPI, tool_use

from remote_exec.inference import InferenceRequest, call
from remote_exec.inference.cassette import (
    MANIFEST,
    CassetteError,
    NotRecorded,
    post_for,
    replay_endpoints,
    request_key,
)
from remote_exec.settings import Cassette, Endpoint

SECRET = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
TOOL = {"name": "report", "input_schema": {"type": "object"}}


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as server:
        yield server


def request(text: str, user: str = "ci") -> InferenceRequest:
    messages = [{"role": "user", "content": text}]
    return InferenceRequest.structured(messages, TOOL, metadata={"user_id": user})


def test_a_replay_answers_as_recorded_and_the_cassette_holds_no_secret(api, tmp_path: Path):
    endpoint = Endpoint("box", api.url, "m-1")
    folder = tmp_path / "cassette"
    api.script(tool_use("report", {"quoted": "<<gantry:secret:1>>"}))
    recorder = post_for(Cassette(str(folder), "record"), [endpoint])
    recorded = call(endpoint, request(f"review: {SECRET}"), post=recorder)
    assert recorded.tool_input() == {"quoted": SECRET}  # restored for this machine only
    assert len(api.requests) == 1
    for file in folder.iterdir():
        assert SECRET not in file.read_text()
    assert json.loads((folder / MANIFEST).read_text())["endpoints"] == [
        {"name": "box", "model": "m-1"}
    ]
    api.close()

    # Who asks (metadata) is not what is asked; the endpoint's name and URL are not either.
    (replay,) = replay_endpoints(folder)
    replayer = post_for(Cassette(str(folder), "replay"), [replay])
    replayed = call(replay, request(f"review: {SECRET}", user="other"), post=replayer)
    assert replayed.tool_input() == {"quoted": SECRET}
    assert (replayed.model, replayed.usage) == (recorded.model, recorded.usage)
    assert replayed.answered_at == recorded.answered_at  # when the model answered, not now

    with pytest.raises(NotRecorded, match="has no answer for this request"):
        call(replay, request("review: something else"), post=replayer)
    other_model = Endpoint("box", api.url, "m-2")
    with pytest.raises(NotRecorded, match="'m-2'"):
        call(other_model, request(f"review: {SECRET}"), post=replayer)


def test_the_key_is_the_wire_body_without_metadata():
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    assert request_key({**body, "metadata": {"user_id": "a"}}) == request_key(body)
    assert request_key({**body, "max_tokens": 11}) != request_key(body)


def test_a_folder_that_is_not_a_cassette_says_so(tmp_path: Path):
    with pytest.raises(CassetteError, match="is not a cassette"):
        replay_endpoints(tmp_path)
    (tmp_path / MANIFEST).write_text('{"format": 99}')
    with pytest.raises(CassetteError, match="not a format 1 cassette"):
        replay_endpoints(tmp_path)
