"""Privacy at the one exit point: planted secrets never reach the model server, excluded paths
never leave, cloud endpoints only when the policy allows them; placeholders come back restored.

Real parts: the scripted Messages-API server on loopback, the real client and chain, and the real
dispatcher with its SQLite queue; the code under review is real standard-library source.
"""

from __future__ import annotations

import json
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_messages_api import FakeMessagesAPI, Received, tool_use

from remote_exec.dispatcher import Dispatcher
from remote_exec.inference import (
    DEFAULT_EXCLUDE,
    Excluded,
    InferenceRequest,
    Redaction,
    TextBlock,
    ToolUseBlock,
    Unusable,
    call,
    call_chain,
    count_tokens,
    find_secrets,
    is_excluded,
)
from remote_exec.jobs import JobKind, JobState
from remote_exec.settings import DispatcherConfig, Endpoint, OutboundPolicy

# -- what is planted ------------------------------------------------------------------------------

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB_TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
SLACK_TOKEN = "xoxb-2424143893-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
KEY_BODY = (
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi4Dn6LRD0kL8tNc3GMgJx7n4Ekq0dV\n"
    "vW5m2Yb0vR0R9jN7Rz2qY0xJ8Ewq3l0y3PnUe1s+3lQ2JvM7k4Yb8s1w2Zx9QpLmNb\n"
    "Hq7Vt2Kc9Rj4Xw8Lp3Ns6Dm1Fz5Gy0Ab7Ce2Du9Ev4Fw6Gx3Hy8Iz1Ja5Kb0Lc7M=="
)
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----"
ENV_FILE = "DATABASE_URL=postgres://app:s3cr3t-Pa55w0rd@db.internal/app\nSTRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc\n"

PLANTED_CODE = f'''"""Uploads reports."""
import boto3

AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"
aws_secret_access_key = "{AWS_SECRET}"
GITHUB_TOKEN = "{GITHUB_TOKEN}"

SIGNING_KEY = """{PRIVATE_KEY}"""


def notify(text):
    client = slack.WebClient(token="{SLACK_TOKEN}")
    return client.chat_postMessage(channel="#reports", text=text)


def upload(path):
    s3 = boto3.client("s3", aws_access_key_id=AWS_ACCESS_KEY_ID)
    return s3.upload_file(path, "reports", path)
'''
SECRETS = [AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN, SLACK_TOKEN, *KEY_BODY.split("\n")]

REVIEW_TOOL = {
    "name": "report",
    "description": "Report findings.",
    "input_schema": {"type": "object", "properties": {"findings": {"type": "array"}}},
}


def fragments(secret: str, size: int = 10) -> list[str]:
    """Every window of ``size`` characters: no piece of a secret may get through either."""
    return [secret[i : i + size] for i in range(max(1, len(secret) - size + 1))]


def assert_nothing_planted_in(requests: list[Received]) -> None:
    assert requests, "nothing reached the server at all"
    seen = "\n".join(
        json.dumps(r.body, ensure_ascii=False) + json.dumps(r.headers) + r.path for r in requests
    )
    for secret in SECRETS:
        leaked = [f for f in fragments(secret) if f in seen]
        assert not leaked, f"{secret[:8]}… reached the model server: {leaked[:3]}"


def review_request(
    code: str, *, sources: tuple[str, ...] = ("app/reports.py",)
) -> InferenceRequest:
    return InferenceRequest.structured(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"Review this unit.\n<code>\n{code}\n</code>"},
                ],
            }
        ],
        REVIEW_TOOL,
        system=f"You review code. The deploy key is {GITHUB_TOKEN}; never print it.",
        sources=sources,
    )


def stdlib_source(module: str) -> str:
    return (Path(sysconfig.get_paths()["stdlib"]) / module).read_text(encoding="utf-8")


def endpoint(api: FakeMessagesAPI, name: str = "gpu", **fields: object) -> Endpoint:
    fields = {"connect_timeout_s": 1.0, "read_timeout_s": 5.0, **fields}
    return Endpoint(name=name, base_url=api.url, model="qwen-coder", **fields)  # type: ignore[arg-type]


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as api:
        yield api


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[callable]:
    started: list[Dispatcher] = []

    def start(*endpoints: Endpoint, **fields: object) -> Dispatcher:
        config = DispatcherConfig(
            queue_path=tmp_path / "queue.sqlite",
            work_root=tmp_path / "work",
            endpoints=endpoints,
            **{"lease_s": 6.0, "retry_down_s": 0.3, "probe_interval_s": 0.2, **fields},
        )
        d = Dispatcher(config)
        started.append(d)
        d.start()
        return d

    yield start
    for d in started:
        d.stop()


# -- the test the issue asks for: through the dispatcher, against the scripted server ---------------


def test_planted_secrets_never_reach_the_model_and_come_back_restored(
    fake_api: FakeMessagesAPI, dispatcher
) -> None:
    # The model "suggests" fixes that mention what it saw: the placeholders.
    fake_api.script(
        tool_use(
            "report",
            {
                "findings": [
                    {
                        "message": "Hard-coded credential <<gantry:secret:2>>",
                        "fix": {
                            "search": 'AWS_ACCESS_KEY_ID = "<<gantry:secret:2>>"',
                            "replace": 'AWS_ACCESS_KEY_ID = os.environ["AWS_ACCESS_KEY_ID"]',
                        },
                        "lines": ["<<gantry:secret:1>>", {"nested": ["<<gantry:secret:3>>"]}],
                    }
                ]
            },
            text="Found secrets: <<gantry:secret:4>> and <<gantry:secret:99>>.",
        )
    )
    d = dispatcher(endpoint(fake_api))
    request = review_request(PLANTED_CODE)
    job = d.submit("review:reports.py@1", JobKind.INFERENCE, request.to_body())
    job = d.wait(job.id, 30)
    assert job.state == JobState.DONE, (job.state, job.error)

    assert_nothing_planted_in(fake_api.requests)
    sent = json.dumps(fake_api.requests[0].body)
    assert "<<gantry:secret:" in sent
    assert "sources" not in fake_api.requests[0].body  # the paths are ours, not the model's
    assert "def upload(path):" in fake_api.requests[0].body["messages"][0]["content"][0]["text"]

    # What each placeholder stood for, read off the body that was sent: every one the model
    # mentions comes back as the original, in text and (nested) tool input alike.
    originals = placeholders_in(fake_api.requests[0].body, request)
    assert set(originals.values()) >= {AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN, SLACK_TOKEN}
    blocks = job.result["content"]
    text_block = next(b for b in blocks if b["type"] == "text")
    finding = next(b for b in blocks if b["type"] == "tool_use")["input"]["findings"][0]
    p = originals
    assert finding == {
        "message": f"Hard-coded credential {p['<<gantry:secret:2>>']}",
        "fix": {
            "search": f'AWS_ACCESS_KEY_ID = "{p["<<gantry:secret:2>>"]}"',
            "replace": 'AWS_ACCESS_KEY_ID = os.environ["AWS_ACCESS_KEY_ID"]',
        },
        "lines": [p["<<gantry:secret:1>>"], {"nested": [p["<<gantry:secret:3>>"]]}],
    }
    assert text_block["text"] == (
        f"Found secrets: {p['<<gantry:secret:4>>']} and <<gantry:secret:99>>."  # 99: not ours
    )


def placeholders_in(sent: dict, request: InferenceRequest) -> dict[str, str]:
    """placeholder -> original, by lining up each sent field with the original: the sent field
    must be the original with secrets swapped, one placeholder always for the same secret."""
    original = request.api_body()
    pairs = [
        (sent["system"], original["system"]),
        (sent["messages"][0]["content"][0]["text"], original["messages"][0]["content"][0]["text"]),
    ]
    mapping: dict[str, str] = {}
    for redacted, plain in pairs:
        names = list(dict.fromkeys(re.findall(r"<<gantry:secret:\d+>>", redacted)))
        pattern = re.escape(redacted)
        for index, name in enumerate(names):
            pattern = pattern.replace(re.escape(name), f"(?P<g{index}>.+?)", 1)
            pattern = pattern.replace(re.escape(name), f"(?P=g{index})")
        match = re.fullmatch(pattern, plain, re.DOTALL)
        assert match, "the sent field is not the original with placeholders"
        for index, name in enumerate(names):
            assert mapping.setdefault(name, match[f"g{index}"]) == match[f"g{index}"]
    return mapping


def test_same_secret_same_placeholder_and_the_fix_gets_the_original_back(
    fake_api: FakeMessagesAPI,
) -> None:
    request = review_request(PLANTED_CODE)
    fake_api.script(tool_use("report", {"findings": []}))
    call(endpoint(fake_api), request)
    body = fake_api.requests[0].body
    system, code = body["system"], body["messages"][0]["content"][0]["text"]
    github = system.split("deploy key is ")[1].split(";")[0]
    assert github.startswith("<<gantry:secret:")
    assert f'GITHUB_TOKEN = "{github}"' in code  # one placeholder for one secret, across fields
    aws = code.split('AWS_ACCESS_KEY_ID = "')[1].split('"')[0]
    assert aws.startswith("<<gantry:secret:") and aws != github

    fake_api.script(
        tool_use(
            "report",
            {"findings": [{"fix": {"search": f'AWS_ACCESS_KEY_ID = "{aws}"', "replace": "x"}}]},
            text=f"Rotate {github}.",
        )
    )
    result = call(endpoint(fake_api), request)
    assert result.tool_input("report")["findings"][0]["fix"]["search"] == (
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"'
    )
    assert result.text == f"Rotate {GITHUB_TOKEN}."
    assert_nothing_planted_in(fake_api.requests)


def test_env_file_is_refused_for_good_and_never_sent(
    fake_api: FakeMessagesAPI, dispatcher, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    d = dispatcher(endpoint(fake_api))
    request = review_request((tmp_path / ".env").read_text(), sources=("app/main.py", ".env"))
    job = d.submit("review:.env@1", JobKind.INFERENCE, request.to_body(), max_attempts=5)
    job = d.wait(job.id, 30)

    assert job.state == JobState.DEAD  # failed for good: retrying cannot change the path
    assert job.attempts == 1
    assert ".env" in job.error and "must stay on this machine" in job.error
    assert fake_api.requests == []  # not one byte, not even of the other source


def test_excluded_paths_are_refused_by_every_entry_point(fake_api: FakeMessagesAPI) -> None:
    policy = OutboundPolicy("any", exclude=("internal/**",))
    for sources in ((".env.production",), ("deploy/server.pem",), ("internal/notes.md",)):
        request = InferenceRequest([{"role": "user", "content": "hi"}], sources=sources)
        with pytest.raises(Excluded, match="must stay on this machine"):
            call(endpoint(fake_api), request, policy)
        with pytest.raises(Excluded):
            call_chain([endpoint(fake_api)], request, policy)
        assert count_tokens(endpoint(fake_api), request, policy)[1] is False  # estimated here
    assert fake_api.requests == []
    ok = InferenceRequest([{"role": "user", "content": "hi"}], sources=("internal.py",))
    call(endpoint(fake_api), ok, policy)
    assert len(fake_api.requests) == 1


def test_one_path_or_glob_is_one_item_not_its_characters() -> None:
    assert InferenceRequest([], sources=".env").sources == (".env",)
    assert OutboundPolicy("any", exclude="internal/").exclude == ("internal/",)
    assert is_excluded("internal/a.py", "internal/") and not is_excluded("n.py", "internal/")


def test_sources_survive_the_queue_payload() -> None:
    request = review_request("x = 1", sources=("a.py", ".env"))
    assert InferenceRequest.from_body(request.to_body()).sources == ("a.py", ".env")
    assert "sources" not in request.api_body()


# -- privacy class, enforced at the exit point -----------------------------------------------------


def test_cloud_endpoint_refused_by_the_client_itself(
    fake_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANTRY_TEST_CLOUD_KEY", "sk-test")
    cloud = endpoint(fake_api, "cloud", privacy="cloud", api_key_env="GANTRY_TEST_CLOUD_KEY")
    request = review_request("x = 1")
    with pytest.raises(Unusable, match="privacy policy"):
        call(cloud, request)  # the default policy: self-hosted only
    with pytest.raises(Unusable, match="privacy policy"):
        call(cloud, request, OutboundPolicy("self-hosted-only"))
    assert count_tokens(cloud, request)[1] is False
    assert fake_api.requests == []

    fake_api.script(tool_use("report", {"findings": []}))
    assert call(cloud, request, OutboundPolicy("any")).endpoint == "cloud"


def test_dispatcher_never_sends_to_a_cloud_endpoint_under_a_self_hosted_policy(
    fake_api: FakeMessagesAPI, dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANTRY_TEST_CLOUD_KEY", "sk-test")
    cloud = endpoint(fake_api, "cloud", privacy="cloud", api_key_env="GANTRY_TEST_CLOUD_KEY")
    d = dispatcher(cloud, privacy="self-hosted-only")
    job = d.submit("k", JobKind.INFERENCE, review_request("x = 1").to_body())
    job = d.wait(job.id, 30)
    assert job.state == JobState.PARKED and "privacy policy" in job.error
    assert fake_api.requests == []


def test_count_tokens_sends_the_redacted_body(fake_api: FakeMessagesAPI) -> None:
    fake_api.count_tokens = 42
    assert count_tokens(endpoint(fake_api, "counting"), review_request(PLANTED_CODE)) == (42, True)
    assert fake_api.requests[0].path == "/v1/messages/count_tokens"
    assert_nothing_planted_in(fake_api.requests)


# -- ordinary code passes unchanged ----------------------------------------------------------------

STDLIB = ["argparse.py", "json/decoder.py", "subprocess.py", "http/client.py", "email/utils.py"]


@pytest.mark.parametrize("module", STDLIB)
def test_stdlib_code_has_no_false_positives(module: str) -> None:
    source = stdlib_source(module)
    found = find_secrets(source)
    assert [source[f.start : f.end] for f in found] == []


def test_stdlib_code_reaches_the_model_byte_for_byte(fake_api: FakeMessagesAPI) -> None:
    source = stdlib_source("argparse.py")
    fake_api.script(tool_use("report", {"findings": []}))
    call(endpoint(fake_api), review_request(source, sources=("argparse.py",)))
    assert source in fake_api.requests[0].body["messages"][0]["content"][0]["text"]


# -- the redaction itself (pure) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'key = "{AWS_KEY_ID}"', AWS_KEY_ID),
        (f'aws_secret_access_key = "{AWS_SECRET}"', AWS_SECRET),
        (f"headers = {{'Authorization': 'token {GITHUB_TOKEN}'}}", GITHUB_TOKEN),
        (f"WebClient(token='{SLACK_TOKEN}')", SLACK_TOKEN),
        ("stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ('db_password = "correct-horse-battery"', "correct-horse-battery"),
        ("url = 'https://admin:hunter22@db.example.com/x'", "hunter22"),
        (
            "jwt = eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        ),
        # our own entropy check: an unquoted token no plugin names
        ("export DEPLOY=Zx8Qm2Lr7Vt4Np9Ks3Hd6Wf1Jc5Bg0Ya", "Zx8Qm2Lr7Vt4Np9Ks3Hd6Wf1Jc5Bg0Ya"),
        ("digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d081884c"),
    ],
)
def test_each_kind_of_secret_is_replaced(line: str, secret: str) -> None:
    redaction = Redaction()
    out = redaction.redact_text(line)
    assert secret not in out and "<<gantry:secret:1>>" in out
    assert redaction.restore(out) == line


def test_private_key_blocks_are_taken_whole_also_inside_string_literals() -> None:
    escaped = PRIVATE_KEY.replace("\n", "\\n")
    for text_ in (PRIVATE_KEY, f'KEY = "{escaped}"', f"KEY = (\n    {json.dumps(PRIVATE_KEY)}\n)"):
        redaction = Redaction()
        out = redaction.redact_text(text_)
        assert "MIIE" not in out and "PRIVATE KEY" not in out, out
        assert redaction.restore(out) == text_


def test_code_that_mentions_key_markers_is_left_alone() -> None:
    parser = (
        "def read_pem(lines):\n"
        '    if lines[0] == "-----BEGIN RSA PRIVATE KEY-----":\n'
        "        body = lines[1:-1]\n"
        '    assert lines[-1] == "-----END RSA PRIVATE KEY-----"\n'
        "    return base64.b64decode(''.join(body))\n"
    )
    assert find_secrets(parser) == []


def test_placeholders_already_in_the_text_are_not_reused() -> None:
    redaction = Redaction()
    line = f'doc = "<<gantry:secret:1>>"; key = "{AWS_KEY_ID}"'
    out = redaction.redact_text(line)
    assert out == 'doc = "<<gantry:secret:1>>"; key = "<<gantry:secret:2>>"'
    assert redaction.restore(out) == line
    assert redaction.restore("<<gantry:secret:1>>") == "<<gantry:secret:1>>"


def test_structure_is_not_redacted() -> None:
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_01A09q90qw90lq917835lq9",
                        "name": "report",
                        "input": {"note": f"found {GITHUB_TOKEN}"},
                    }
                ],
            }
        ]
    }
    out = Redaction().redact_body(body)
    block = out["messages"][0]["content"][0]
    assert block["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert block["input"]["note"] == "found <<gantry:secret:1>>"
    assert body["messages"][0]["content"][0]["input"]["note"].endswith(GITHUB_TOKEN)  # a copy


def test_restore_reaches_every_block_kind() -> None:
    redaction = Redaction()
    redaction.redact_text(f'k = "{AWS_KEY_ID}"')
    blocks = [
        TextBlock("<<gantry:secret:1>>"),
        ToolUseBlock("t", "n", {"a": ["<<gantry:secret:1>>"]}),
    ]
    assert redaction.restore([b.text if isinstance(b, TextBlock) else b.input for b in blocks]) == [
        AWS_KEY_ID,
        {"a": [AWS_KEY_ID]},
    ]


# -- excluded paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        "config/.env.production",
        "certs/server.pem",
        "tls/site.key",
        "home/.ssh/id_rsa",
        "id_ed25519.pub",
        "store.p12",
        "store.pfx",
        ".aws/credentials",
        "gcp/credentials.json",
        ".netrc",
        "C:\\work\\app\\.env",
        "/abs/project/.env",
    ],
)
def test_default_exclusions(path: str) -> None:
    assert is_excluded(path)


@pytest.mark.parametrize(
    "path",
    ["main.py", "src/remote_exec/credentials.py", "environment.py", "keys.py", "docs/pem.md"],
)
def test_ordinary_files_are_not_excluded(path: str) -> None:
    assert not is_excluded(path)


def test_user_globs_add_and_negations_cannot_let_a_default_through() -> None:
    globs = ["secrets/", "*.sqlite", "!.env", "!secrets/public.txt"]
    assert is_excluded("secrets/prod.txt", globs) and is_excluded("data/app.sqlite", globs)
    assert is_excluded(".env", globs)
    assert is_excluded("secrets/public.txt", globs)
    assert not is_excluded("src/app.py", globs)
    assert ".env*" in DEFAULT_EXCLUDE


def test_a_key_block_cut_short_still_loses_its_material() -> None:
    # A context pack may end inside a key; without a footer there is no block, but every line of
    # key material is a random token. 200 escaped lines: a backtracking block pattern would hang.
    cut = 'KEY = "-----BEGIN RSA PRIVATE KEY-----\\n' + "\\n".join(KEY_BODY.split("\n")) * 67
    out = Redaction().redact_text(cut)
    assert all(line not in out for line in KEY_BODY.split("\n"))


@pytest.mark.parametrize("offset", [0, 290, 300, 310, 499, 500, 40_000])
def test_secrets_in_a_long_minified_line_are_found_wherever_they_sit(offset: int) -> None:
    # Long lines reach the plugins in overlapping windows: no secret may fall between two.
    filler = ";".join(["var a=b.key", 'c("x")', "d==e", "f:{g:h}"] * 2500)
    line = f'{filler[:offset]};var password="hunter2-battery-staple";{filler[offset:]}'
    out = Redaction().redact_text(line)
    assert "hunter2-battery-staple" not in out and "<<gantry:secret:1>>" in out


def test_the_log_says_how_many_were_redacted_never_what(
    fake_api: FakeMessagesAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    fake_api.script(tool_use("report", {"findings": []}))
    call(endpoint(fake_api), review_request(PLANTED_CODE))
    assert "secrets redacted" in caplog.text
    for secret in SECRETS:
        assert not any(f in caplog.text for f in fragments(secret))


def _rand(alphabet: str, n: int, seed: int) -> str:
    import random

    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


_B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEXL = "0123456789abcdef"
# One line in the shape each detect-secrets plugin looks for.
PLUGIN_SHAPES = {
    "Artifactory": f'artifactory = "AKC{_rand(_B62, 60, 1)}"',
    "Azure": f"conn = 'AccountName=x;AccountKey={_rand(_B62, 86, 2)}=='",
    "BasicAuth": "DSN = 'postgres://app:Xq7-pw@db.internal/app'",
    "Cloudant": f'cloudant_password = "{_rand(_HEXL, 64, 3)}"',
    "Discord": f"bot = {_rand('MNO', 1, 4)}{_rand(_B62, 23, 4)}.{_rand(_B62, 6, 5)}.{_rand(_B62, 27, 6)}",
    "GitLab": f'CI_TOKEN = "glpat-{_rand(_B62, 20, 7)}"',
    "IBM IAM": f'ibm_cloud_iam_key = "{_rand(_B62, 44, 8)}"',
    "IBM COS": f'cos_hmac_secret_access_key = "{_rand(_HEXL, 48, 9)}"',
    "Mailchimp": f"mc = {_rand(_HEXL, 32, 10)}-us12",
    "npm": f"//registry.npmjs.org/:_authToken=npm_{_rand(_B62, 36, 11)}",
    "OpenAI": f"OPENAI = 'sk-{_rand(_B62, 20, 12)}T3BlbkFJ{_rand(_B62, 20, 13)}'",
    "PyPI": f"TWINE_PASSWORD=pypi-AgEIcHlwaS5vcmc{_rand(_B62, 70, 14)}",
    "SendGrid": f"SG.{_rand(_B62, 22, 15)}.{_rand(_B62, 43, 16)}",
    "SoftLayer": f'softlayer_api_key = "{_rand(_HEXL, 64, 17)}"',
    "Square": f"sq0csp-{_rand(_B62, 43, 18)}",
    "Telegram": f"bot: 123456789:{_rand(_B62, 35, 19)}",
    "Twilio": f"TWILIO = 'SK{_rand(_HEXL, 32, 20)}'",
    "hex in quotes": f'salt = "{_rand(_HEXL, 40, 21)}"',
    "Artifactory AP": f'repo_pw = "AP6{_rand(_B62, 12, 22)}"',
}


@pytest.mark.parametrize("line", PLUGIN_SHAPES.values(), ids=PLUGIN_SHAPES.keys())
def test_the_gates_lose_nothing_any_plugin_finds(line: str) -> None:
    # Every plugin on the whole line, ungated: whatever one of them finds must be redacted.
    from remote_exec.inference import redaction

    ungated = [
        line[s:e]
        for plugin, _gates in redaction._plugins()
        for s, e in redaction._plugin_spans(plugin, line)
        if redaction._kept(plugin, line[s:e], line)
    ]
    assert ungated, "no plugin recognises this shape: the sample is wrong"
    out = Redaction().redact_text(line)
    assert [value for value in ungated if value in out] == []
