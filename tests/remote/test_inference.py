"""remote_exec.inference against the scripted Messages-API server on loopback."""

from __future__ import annotations

import email.utils
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import anthropic
import httpx2
import pytest
from fake_messages_api import (
    FakeMessagesAPI,
    error,
    hang,
    malformed,
    overloaded,
    rate_limited,
    raw,
    server_error,
    spend_limit,
    text,
    tool_use,
    unavailable,
)

from remote_exec.inference import (
    DEFAULT_BACKOFF_S,
    BadAnswer,
    EndpointDown,
    InferenceRequest,
    InferenceResult,
    Parked,
    Rejected,
    RetryLater,
    TextBlock,
    ToolUseBlock,
    Unusable,
    call,
    call_chain,
    count_tokens,
    estimate_tokens,
    not_before_from,
    privacy_allows,
)
from remote_exec.settings import Endpoint

REPORT_TOOL = {
    "name": "report",
    "description": "Report findings.",
    "input_schema": {"type": "object", "properties": {"findings": {"type": "array"}}},
}
HELLO = [{"role": "user", "content": "Review this function."}]


def endpoint(api: FakeMessagesAPI, name: str = "gpu", **fields: object) -> Endpoint:
    fields = {"connect_timeout_s": 1.0, "read_timeout_s": 2.0, **fields}
    return Endpoint(name=name, base_url=api.url, model="qwen-coder", **fields)  # type: ignore[arg-type]


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as api:
        yield api


@pytest.fixture
def second_api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as api:
        yield api


# -- answers ------------------------------------------------------------------------------


def test_text_answer_is_parsed_with_provenance(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(text("Looks fine.", input_tokens=30, output_tokens=4))
    result = call(endpoint(fake_api), InferenceRequest(HELLO, system="You review code."))

    assert result.content == [TextBlock("Looks fine.")]
    assert result.text == "Looks fine."
    assert (result.endpoint, result.model, result.stop_reason) == ("gpu", "qwen-coder", "end_turn")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (30, 4)
    assert result.request_id and result.request_id.startswith("req_fake_")
    assert result.latency_s >= 0
    sent = fake_api.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.body["model"] == "qwen-coder"
    assert sent.body["system"] == "You review code."
    assert sent.body["max_tokens"] == 4096
    assert "stream" not in sent.body


def test_forced_tool_use_answer_is_parsed(fake_api: FakeMessagesAPI) -> None:
    findings = {"findings": [{"line": 3, "severity": "warning"}]}
    fake_api.script(tool_use("report", findings))
    request = InferenceRequest.structured(HELLO, REPORT_TOOL, max_tokens=512, temperature=0.0)

    result = call(endpoint(fake_api), request)

    assert result.tool_input("report") == findings
    assert isinstance(result.content[0], ToolUseBlock)
    assert result.stop_reason == "tool_use"
    sent = fake_api.requests[0].body
    assert sent["tool_choice"] == {"type": "tool", "name": "report"}
    assert sent["tools"] == [REPORT_TOOL]
    assert (sent["max_tokens"], sent["temperature"]) == (512, 0.0)


def test_result_and_request_round_trip_as_json_data(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(tool_use("report", {"findings": []}, text="Done."))
    request = InferenceRequest.structured(HELLO, REPORT_TOOL, system="s")
    result = call(endpoint(fake_api), request)

    assert InferenceResult.from_dict(result.to_dict()) == result
    assert InferenceRequest.from_body(request.to_body()) == request


def test_missing_forced_tool_use_is_a_bad_answer(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(text("I would rather chat."))
    with pytest.raises(BadAnswer, match="does not call tool 'report'"):
        call(endpoint(fake_api), InferenceRequest.structured(HELLO, REPORT_TOOL))


def test_tool_input_that_is_not_an_object_is_a_bad_answer(fake_api: FakeMessagesAPI) -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": "report", "input": [1, 2]}
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [block],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    fake_api.script(raw(200, message))
    with pytest.raises(BadAnswer, match="not a JSON object"):
        call(endpoint(fake_api), InferenceRequest.structured(HELLO, REPORT_TOOL))


@pytest.mark.parametrize(
    "answer",
    [
        malformed(),
        raw(200, {"hello": "world"}),
        raw(200, {"type": "message", "content": "flat"}),
        raw(200, "<html>proxy</html>"),
    ],
    ids=["truncated-json", "not-a-message", "content-not-a-list", "html"],
)
def test_unusable_bodies_are_bad_answers(fake_api: FakeMessagesAPI, answer: object) -> None:
    fake_api.script(answer)  # type: ignore[arg-type]
    with pytest.raises(BadAnswer):
        call(endpoint(fake_api), InferenceRequest(HELLO))


# -- the fake's streaming, read by the SDK's own stream helper ---------------------------------


def test_fake_streams_the_real_event_sequence(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(tool_use("report", {"findings": [{"line": 1, "why": "x" * 40}]}, text="Hm."))
    client = anthropic.Anthropic(
        base_url=fake_api.url, api_key="k", max_retries=0, timeout=httpx2.Timeout(5.0)
    )
    with client.messages.stream(model="m", max_tokens=64, messages=HELLO) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()

    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(kinds)
    assert "message_delta" in kinds
    assert message.content[0].type == "text" and message.content[0].text == "Hm."
    assert message.content[1].type == "tool_use"
    assert message.content[1].input == {"findings": [{"line": 1, "why": "x" * 40}]}
    assert (message.stop_reason, message.usage.output_tokens) == ("tool_use", 7)
    assert fake_api.requests[0].body["stream"] is True


# -- busy, parked, down ------------------------------------------------------------------------


def test_429_sets_not_before_from_retry_after_seconds(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(rate_limited(retry_after=30))
    before = time.time()
    with pytest.raises(RetryLater) as caught:
        call(endpoint(fake_api), InferenceRequest(HELLO))
    assert before + 30 <= caught.value.not_before <= time.time() + 30


def test_429_reads_an_http_date_retry_after(fake_api: FakeMessagesAPI) -> None:
    when = int(time.time()) + 120
    fake_api.script(rate_limited(retry_after=email.utils.formatdate(when, usegmt=True)))
    with pytest.raises(RetryLater) as caught:
        call(endpoint(fake_api), InferenceRequest(HELLO))
    assert caught.value.not_before == pytest.approx(when, abs=1)


@pytest.mark.parametrize("answer", [overloaded(), unavailable(), rate_limited()])
def test_busy_without_retry_after_backs_off(fake_api: FakeMessagesAPI, answer: object) -> None:
    fake_api.script(answer)  # type: ignore[arg-type]
    before = time.time()
    with pytest.raises(RetryLater) as caught:
        call(endpoint(fake_api), InferenceRequest(HELLO))
    assert caught.value.not_before > before
    assert len(fake_api.requests) == 1  # the SDK did not retry on its own


def test_529_honours_retry_after(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(overloaded(retry_after=5))
    before = time.time()
    with pytest.raises(RetryLater) as caught:
        call(endpoint(fake_api), InferenceRequest(HELLO))
    assert caught.value.not_before >= before + 5


def test_spend_limit_parks_and_is_not_retried(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(spend_limit())
    with pytest.raises(Parked, match="usage limit") as caught:
        call(endpoint(fake_api), InferenceRequest(HELLO))
    assert "kept in the queue" in caught.value.reason
    assert len(fake_api.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        error(400, "invalid_request_error", "Your credit balance is too low to access the API."),
        error(402, "billing_error", "Billing problem."),
        error(
            402,
            "billing_error",
            "Linked org over its limit.",
            error_code="linked_organization_spend_limit_reached",
        ),
    ],
    ids=["credit-balance-400", "billing-402", "linked-org-402"],
)
def test_billing_problems_park(fake_api: FakeMessagesAPI, answer: object) -> None:
    fake_api.script(answer)  # type: ignore[arg-type]
    with pytest.raises(Parked):
        call(endpoint(fake_api), InferenceRequest(HELLO))


def test_ramp_limit_is_busy_not_parked(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(
        error(
            429,
            "rate_limit_error",
            "Usage is growing faster than your spend limit allows.",
            error_code="ramp_limit_exceeded",
            headers={"retry-after": "9"},
        )
    )
    with pytest.raises(RetryLater):
        call(endpoint(fake_api), InferenceRequest(HELLO))


def test_500_is_endpoint_down(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(server_error())
    with pytest.raises(EndpointDown, match="server error 500"):
        call(endpoint(fake_api), InferenceRequest(HELLO))


def test_refused_port_is_endpoint_down() -> None:
    down = Endpoint(name="gone", base_url=refused_url(), model="m", connect_timeout_s=1.0)
    with pytest.raises(EndpointDown, match="cannot connect"):
        call(down, InferenceRequest(HELLO))


def test_hang_is_endpoint_down_after_the_read_timeout(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(hang())
    with pytest.raises(EndpointDown, match="no answer within 0.5 s"):
        call(endpoint(fake_api, read_timeout_s=0.5), InferenceRequest(HELLO))


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, Unusable), (403, Unusable), (404, Unusable), (400, Rejected), (413, Rejected)],
)
def test_other_statuses(fake_api: FakeMessagesAPI, status: int, kind: type[Exception]) -> None:
    fake_api.script(error(status, "invalid_request_error", "no"))
    with pytest.raises(kind):
        call(endpoint(fake_api), InferenceRequest(HELLO))


# -- the chain --------------------------------------------------------------------------------


def test_chain_falls_through_to_the_second_endpoint(
    fake_api: FakeMessagesAPI, second_api: FakeMessagesAPI
) -> None:
    fake_api.script(server_error())
    second_api.script(text("From the second."))
    outcomes: list[tuple[str, str | None]] = []

    result = call_chain(
        [endpoint(fake_api, "first"), endpoint(second_api, "second")],
        InferenceRequest(HELLO),
        "any",
        on_outcome=lambda name, exc: outcomes.append((name, type(exc).__name__ if exc else None)),
    )

    assert (result.endpoint, result.text) == ("second", "From the second.")
    assert outcomes == [("first", "EndpointDown"), ("second", None)]


def test_chain_skips_open_breakers(fake_api: FakeMessagesAPI, second_api: FakeMessagesAPI) -> None:
    chain = [endpoint(fake_api, "first"), endpoint(second_api, "second")]
    result = call_chain(chain, InferenceRequest(HELLO), "any", skip=lambda name: name == "first")
    assert result.endpoint == "second"
    assert fake_api.requests == []


def test_privacy_policy_refuses_a_cloud_endpoint(fake_api: FakeMessagesAPI) -> None:
    cloud = endpoint(fake_api, "cloud", privacy="cloud", api_key_env="GANTRY_TEST_KEY")
    assert privacy_allows(cloud, "any") and not privacy_allows(cloud, "self-hosted-only")

    with pytest.raises(Unusable, match="privacy policy"):
        call_chain([cloud], InferenceRequest(HELLO), "self-hosted-only")
    assert fake_api.requests == []  # not a byte was sent


def test_self_hosted_label_on_anthropic_cloud_is_refused() -> None:
    with pytest.raises(ValueError, match="not self-hosted"):
        Endpoint(name="x", base_url="https://api.anthropic.com", model="m")


def test_chain_prefers_the_earliest_retry(
    fake_api: FakeMessagesAPI, second_api: FakeMessagesAPI
) -> None:
    fake_api.script(rate_limited(retry_after=300))
    second_api.script(overloaded(retry_after=20))
    chain = [endpoint(fake_api, "first"), endpoint(second_api, "second")]
    before = time.time()
    with pytest.raises(RetryLater) as caught:
        call_chain(chain, InferenceRequest(HELLO), "any")
    assert before + 20 <= caught.value.not_before < before + 300
    assert "first" in caught.value.reason and "second" in caught.value.reason


def test_chain_parks_when_one_parked_and_none_answered(
    fake_api: FakeMessagesAPI, second_api: FakeMessagesAPI
) -> None:
    fake_api.script(spend_limit())
    second_api.script(server_error())
    chain = [endpoint(fake_api, "cloud"), endpoint(second_api, "gpu")]
    with pytest.raises(Parked):
        call_chain(chain, InferenceRequest(HELLO), "any")


def test_chain_reports_every_endpoint_down(fake_api: FakeMessagesAPI) -> None:
    fake_api.script(server_error())
    gone = Endpoint(name="gone", base_url=refused_url(), model="m", connect_timeout_s=1.0)
    with pytest.raises(EndpointDown) as caught:
        call_chain([endpoint(fake_api, "gpu"), gone], InferenceRequest(HELLO), "any")
    assert "gpu: server error 500" in caught.value.reason
    assert "gone: cannot connect" in caught.value.reason


def test_chain_stops_at_a_bad_answer(
    fake_api: FakeMessagesAPI, second_api: FakeMessagesAPI
) -> None:
    fake_api.script(malformed())
    chain = [endpoint(fake_api, "first"), endpoint(second_api, "second")]
    with pytest.raises(BadAnswer):
        call_chain(chain, InferenceRequest(HELLO), "any")
    assert second_api.requests == []


# -- keys -------------------------------------------------------------------------------------


def test_key_from_environment_is_sent_and_neither_key_nor_code_logged(
    fake_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-env-0123456789"
    monkeypatch.setenv("GANTRY_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    fake_api.script(text(), rate_limited())
    cloud = endpoint(fake_api, "cloud", privacy="cloud", api_key_env="GANTRY_TEST_KEY")

    call(cloud, InferenceRequest(HELLO), "any")
    with pytest.raises(RetryLater) as caught:
        call(cloud, InferenceRequest(HELLO), "any")

    assert secret in fake_api.requests[0].headers["authorization"]
    assert "HTTP Request: POST" in caplog.text  # the HTTP layer did log, at DEBUG and INFO
    assert secret not in caplog.text
    assert "Review this function" not in caplog.text  # nor did the SDK log the code sent
    assert secret not in str(caught.value) and secret not in repr(cloud)


def test_key_from_file(fake_api: FakeMessagesAPI, tmp_path: object) -> None:
    key_file = tmp_path / "key"  # type: ignore[operator]
    key_file.write_text("sk-test-file-987\n")
    cloud = endpoint(fake_api, "cloud", privacy="cloud", api_key_file=str(key_file))
    call(cloud, InferenceRequest(HELLO), "any")
    assert fake_api.requests[0].headers["authorization"] == "Bearer sk-test-file-987"


def test_missing_cloud_key_makes_the_endpoint_unusable(
    fake_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("GANTRY_TEST_KEY", raising=False)
    for fields in (
        {"api_key_env": "GANTRY_TEST_KEY"},
        {"api_key_file": str(tmp_path / "absent")},  # type: ignore[operator]
        {},
    ):
        cloud = endpoint(fake_api, "cloud", privacy="cloud", **fields)
        with pytest.raises(Unusable, match="cloud endpoint needs|not set|no such file|cannot"):
            call(cloud, InferenceRequest(HELLO), "any")
    assert fake_api.requests == []


def test_self_hosted_without_a_key_never_gets_the_cloud_key(
    fake_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-cloud-secret")
    call(endpoint(fake_api), InferenceRequest(HELLO))
    assert "sk-cloud-secret" not in str(fake_api.requests[0].headers)


# -- token counting ---------------------------------------------------------------------------


def test_count_tokens_exact_where_offered(fake_api: FakeMessagesAPI) -> None:
    fake_api.count_tokens = 321
    request = InferenceRequest.structured(HELLO, REPORT_TOOL, system="s", max_tokens=9)
    assert count_tokens(endpoint(fake_api, "counts"), request) == (321, True)
    sent = fake_api.requests[0]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.body["tools"] == [REPORT_TOOL] and "max_tokens" not in sent.body


def test_count_tokens_estimates_and_remembers_when_not_offered(fake_api: FakeMessagesAPI) -> None:
    request = InferenceRequest(HELLO, system="You review code.")
    ep = endpoint(fake_api, "no-counting")
    assert count_tokens(ep, request) == (estimate_tokens(request), False)
    assert count_tokens(ep, request) == (estimate_tokens(request), False)
    assert len(fake_api.requests) == 1  # asked once, then remembered
    assert 0 < estimate_tokens(request) < 100


def test_count_tokens_estimates_while_the_endpoint_is_down() -> None:
    gone = Endpoint(name="gone-count", base_url=refused_url(), model="m", connect_timeout_s=1.0)
    assert count_tokens(gone, InferenceRequest(HELLO))[1] is False


# -- import cost ------------------------------------------------------------------------------


def test_importing_inference_does_not_import_the_sdk() -> None:
    code = (
        "import sys, remote_exec.inference\n"
        "heavy = ('anthropic', 'httpx2', 'lsp_server', 'detect_secrets', 'pathspec', 'requests')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# -- retry-after parsing and the fake itself ---------------------------------------------------


def test_not_before_parsing() -> None:
    now = 1_000_000.0
    assert not_before_from({"retry-after-ms": "1500"}, now) == now + 1.5
    assert not_before_from({"retry-after": "2.5"}, now) == now + 2.5
    assert not_before_from({"retry-after": "soon"}, now) == now + DEFAULT_BACKOFF_S
    assert not_before_from({"retry-after": "-5"}, now) == now
    assert not_before_from({}, now) == now + DEFAULT_BACKOFF_S


def test_fake_releases_a_hung_request_when_it_closes() -> None:
    api = FakeMessagesAPI().start()
    api.script(hang())
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            call(endpoint(api, read_timeout_s=60.0), InferenceRequest(HELLO))
        except BaseException as exc:
            outcome.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    while not api.requests:  # the request arrived and is being held
        time.sleep(0.01)
    api.close()
    asker.join(timeout=30)
    assert not asker.is_alive()
    assert isinstance(outcome[0], EndpointDown)


def test_fake_answers_unknown_paths_like_the_api(fake_api: FakeMessagesAPI) -> None:
    response = httpx2.get(f"{fake_api.url}/v1/models", timeout=5.0)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert fake_api.requests[0].method == "GET"
