"""Candidate tests from a model, for real but for the model: the scripted Messages-API server
answers in the real wire format through remote_exec's inference chain (policy, exclusion,
redaction), and every candidate goes through the real funnel in the bubblewrap sandbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fake_messages_api import FakeMessagesAPI, hang, text, tool_use, unavailable

from lsp_server import config
from lsp_server.testgen import jobs, model_access, targets
from lsp_server.testgen.funnel import Fate
from lsp_server.testgen.generate import Generated, ModelAccess, generate
from lsp_server.testgen.model_loop import ModelSettings
from lsp_server.testgen.model_prompt import TOOL_NAME, BadTests, parse_answer
from remote_exec.inference import call_chain
from remote_exec.sandbox import Sandbox
from remote_exec.settings import Endpoint, OutboundPolicy

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"
BUDGET_S = 400
"""A wall clock, not a speed bar: each round is a funnel of sandboxed jobs on a shared machine."""

DOES_NOT_IMPORT = "import no_such_module\n\n\ndef test_answer():\n    assert no_such_module.f()\n"
FAILS = (
    "from textutils import encode_runs\n\n\n"
    "def test_encode_counts():\n    assert encode_runs('aab') == [('a', 2), ('b', 1)]\n"
)
FLAKY = (  # passes reruns 1, 3 and 5 of 5: each rerun starts from fresh files and knows its number
    "import os\n\nfrom textutils import clamp\n\n\n"
    "def test_clamp_sometimes():\n"
    "    assert int(os.environ['GANTRY_RERUN']) % 2 == 0\n"
    "    assert clamp(-5, 0, 9) == 0\n"
)
ADDS_NOTHING = (
    "from textutils import clamp\n\n\ndef test_clamp_middle():\n    assert clamp(4, 0, 9) == 4\n"
)
GOOD = (
    "from textutils import decode_runs\n\n\n"
    "def test_decode_two():\n    assert decode_runs([('a', 2), ('b', 1)]) == 'aab'\n"
)
SECOND_ROUND = (
    "from textutils import clamp\n\n\n"
    "def test_clamp_below():\n    assert clamp(-1, 0, 9) == 0\n\n\n"
    "def test_clamp_above():\n    assert clamp(12, 0, 9) == 9\n"
)
SECRET = "sk-ant-api03-" + "Zx9" * 20


def submit(*codes: str):
    return tool_use(TOOL_NAME, {"tests": [{"code": c} for c in codes]})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)  # the funnel's guarantees are the sandbox's: never skip them
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    (root / "tests" / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture\ndef small_range():\n"
        '    """A range of ten: (0, 9)."""\n    return (0, 9)\n'
    )
    return root


def access(api: FakeMessagesAPI, *, exclude: tuple[str, ...] = (), **settings) -> ModelAccess:
    endpoint = Endpoint(name="gpu-box", base_url=api.url, model="test-model")
    policy = OutboundPolicy("self-hosted-only", exclude)
    return ModelAccess(
        lambda request, seconds: call_chain([endpoint], request, policy),
        ModelSettings(**{"rounds": 2, **settings}),
        exclude,
    )


def run(root: Path, model: ModelAccess, *, engines=(), symbol: str = "") -> Generated:
    target = targets.resolve(str(root / "textutils.py") + (f"::{symbol}" if symbol else ""))
    local = jobs.local_runner(work_root=root.parent / "jobs")
    return generate(target, local, jobs.Budget.of(BUDGET_S), engines=engines, model=model)


def prompt(api: FakeMessagesAPI, index: int) -> str:
    return api.requests[index].body["messages"][0]["content"]


def fate(generated: Generated, name: str):
    return next(o for o in generated.funnel.outcomes if o.candidate.name == name)


def test_rounds_keep_what_is_good_and_feed_back_what_is_not(
    project: Path, api: FakeMessagesAPI
) -> None:
    api.script(submit(DOES_NOT_IMPORT, FAILS, FLAKY, ADDS_NOTHING, GOOD), submit(SECOND_ROUND))
    generated = run(project, access(api))
    assert len(api.requests) == 2
    assert [r.body["model"] for r in api.requests] == ["test-model"] * 2
    assert fate(generated, "test_answer").fate == Fate.NOT_COLLECTED
    assert fate(generated, "test_encode_counts").fate == Fate.FAILING
    flaky = fate(generated, "test_clamp_sometimes")
    assert (flaky.fate, flaky.passes, flaky.runs) == (Fate.FLAKY, 3, 5)
    assert fate(generated, "test_clamp_middle").fate == Fate.REDUNDANT
    kept = {c.name for c in generated.funnel.kept}
    assert kept == {"test_decode_two", "test_clamp_below", "test_clamp_above"}
    assert [b.candidate.name for b in generated.funnel.possible_bugs] == ["test_encode_counts"]

    first = prompt(api, 0)
    assert "def clamp(x: int, lo: int, hi: int) -> int:" in first  # the code, numbered
    assert "fixture tests/conftest.py small_range" in first  # the project's fixtures
    assert "def test_clamp_inside():" in first  # the existing tests: their style
    assert "Lines no test reaches yet:" in first  # the suite's gaps
    # Round 2 is told what round 1's tests did, and what is still missing after them.
    second = prompt(api, 1)
    assert "No module named 'no_such_module'" in second
    assert "assert [('a', 1), ('b', 0)] == [('a', 2), ('b', 1)]" in second
    assert "test_clamp_sometimes: flaky (passed 3 of 5)" in second
    assert "test_clamp_middle: passed, but reaches no line or branch" in second
    assert "Kept so far (do not repeat them): test_decode_two" in second
    after_round_1 = generated.model.funnels[0]
    assert after_round_1.missing_lines
    listed = ", ".join(map(str, after_round_1.missing_lines))
    assert f"Lines no test reaches yet: {listed}" in second
    for line in after_round_1.missing_lines:
        assert f"\n  {line}: " in second  # each with its code

    model = generated.model
    assert [r.candidates for r in model.rounds] == [5, 2]
    assert [r.kept for r in model.rounds] == [1, 2]
    assert model.input_tokens == 24 and model.output_tokens == 14  # the server's usage
    report = generated.funnel.report
    assert report.coverage_after.percent > report.coverage_before.percent
    assert report.coverage_kept is not None and report.coverage_kept.lines > 0
    assert generated.placement is not None
    assert "def test_clamp_below():" in generated.placement.text


def test_an_answer_that_does_not_fit_says_why_and_loses_nothing(
    project: Path, api: FakeMessagesAPI
) -> None:
    api.script(
        submit(GOOD),
        text("Here are some tests: def test_x(): pass"),  # no tool call
        tool_use(TOOL_NAME, {"tests": [{"code": "def test_broken(:\n    pass\n"}]}),
    )
    generated = run(project, access(api, rounds=3))
    assert len(api.requests) == 3
    assert [c.name for c in generated.funnel.kept] == ["test_decode_two"]  # round 1's, kept
    notes = "\n".join(generated.notes)
    assert "model round 2: the answer did not fit: gpu-box: the answer does not call tool" in notes
    assert (
        "model round 3: the answer did not fit: no usable test: test block 1: does not parse"
        in (notes)
    )
    assert "Your last answer could not be used" in prompt(api, 2)
    assert generated.placement is not None


def test_the_schema_turns_away_what_is_not_a_test() -> None:
    with pytest.raises(BadTests, match="expected a call of submit_tests"):
        parse_answer({"findings": []}, first=1)
    with pytest.raises(BadTests, match="no top-level test_"):
        parse_answer({"tests": [{"code": "x = 1\n"}]}, first=1)
    parsed = parse_answer(
        {
            "tests": [
                {"code": "```python\n" + GOOD + "```"},  # a Markdown fence is taken off
                {"code": "import os\n\ndef test_quits():\n    os._exit(0)\n"},
                {"code": "import _gantry_driver\n\ndef test_x():\n    pass\n"},
                {"code": "def test_y():\n    open('/proc/self/mem', 'rb')\n"},
                {"code": 3},
            ]
        },
        first=7,
    )
    assert [(c.id, c.name) for c in parsed.candidates] == [("model-7", "test_decode_two")]
    assert parsed.rejected == (
        "test block 2: uses os._exit, which ends or inspects the process",
        "test block 3: imports _gantry_driver, which a test may not",
        "test block 4: names the test runner's files",
        "test block 5: no code",
    )


def test_an_unreachable_model_leaves_the_local_engines_running(
    project: Path, api: FakeMessagesAPI
) -> None:
    api.script(unavailable(retry_after=30))
    generated = run(project, access(api), engines=("hypothesis",), symbol="decode_runs")
    assert [r.engine for r in generated.engine_runs] == ["hypothesis"]
    assert generated.engine_runs[0].candidates
    assert {o.candidate.engine for o in generated.funnel.outcomes} == {"hypothesis"}
    notes = "\n".join(generated.notes)
    assert "model candidates were skipped: the model: gpu-box: busy (503" in notes


def test_what_is_sent_is_redacted_and_excluded_files_are_not(
    project: Path, api: FakeMessagesAPI
) -> None:
    source = project / "textutils.py"
    source.write_text(source.read_text() + f'\n\nSERVICE_KEY = "{SECRET}"\n')
    (project / "helpers.py").write_text(
        "from textutils import clamp\n\n\ndef pct(x):\n    return clamp(x, 0, 100)\n"
    )
    (project / "private.py").write_text(
        "from textutils import clamp\n\n\ndef hidden(x):\n    return clamp(x, 1, 2)\n"
    )
    api.script(submit(GOOD))
    generated = run(project, access(api, rounds=1, exclude=("private.py",)))
    sent = json.dumps(api.requests[0].body)
    assert SECRET not in sent
    assert "def pct(x):" in sent  # a caller, as context
    assert "def hidden(x):" not in sent and "private.py" not in sent
    assert [c.name for c in generated.funnel.kept] == ["test_decode_two"]

    api.requests.clear()
    skipped = run(project, access(api, exclude=("textutils.py",)))
    assert api.requests == []
    assert "model candidates were skipped: textutils.py is excluded" in "\n".join(skipped.notes)


def test_a_model_that_does_not_answer_is_given_up_on_within_the_budget(
    project: Path, api: FakeMessagesAPI
) -> None:
    """The answer may take what the budget leaves, no more: the endpoint's 60 s read timeout
    is cut to it (the test asserts the limit the run set, not how long it took)."""
    api.script(hang())
    settings = config.Settings(
        inference=config.InferenceSettings(
            endpoints=[Endpoint(name="gpu-box", base_url=api.url, model="test-model")]
        ),
        testgen=config.TestgenSettings(model_rounds=1),
    )
    target = targets.resolve(str(project / "textutils.py"))
    local = jobs.local_runner(work_root=project.parent / "jobs")
    budget = 40
    generated = generate(
        target,
        local,
        jobs.Budget.of(budget),
        engines=(),
        model=model_access.from_settings(settings),
    )
    assert len(api.requests) == 1
    (note,) = generated.notes
    assert note.startswith("model candidates were skipped: the model: gpu-box: no answer within ")
    limit = float(note.split("no answer within ")[1].split(" s")[0])
    assert limit < budget - 5
