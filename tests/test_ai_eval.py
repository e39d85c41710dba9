"""`gantry eval review`: a hand-written dataset of two seeded bugs and two clean changes,
reviewed through the real engine against the scripted Messages-API server on loopback (one
hit, one miss, one false positive, one silent unit), scored exactly; the same answers from an
answers file; usage errors. The dataset builder's mutants and clean edits: test_ai_eval_build.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_server.cli import main
from lsp_server.review.ai.eval.dataset import Case, DatasetError, Label, change, dump, load
from lsp_server.review.ai.eval.score import hits

sys.path.insert(0, str(Path(__file__).parent / "remote"))
from fake_messages_api import FakeMessagesAPI, tool_use

LAST_BEFORE = '''\
def last(items, n):
    """The last n items of a list."""
    if n <= 0:
        return []
    start = len(items) - n
    return items[start:]
'''
CLAMP_BEFORE = '''\
def clamp(value, low, high):
    """Value limited to low..high."""
    if value < low:
        return low
    if value > high:
        return high
    return value
'''
TOTAL_BEFORE = '''\
def total(prices, rate):
    """Sum of prices with tax."""
    s = 0
    for p in prices:
        s += p
    return s * (1 + rate)
'''
TOTAL_AFTER = '''\
def total(prices, rate):
    """Sum of prices with tax."""
    subtotal = 0
    for p in prices:
        subtotal += p
    return subtotal * (1 + rate)
'''
GREET_BEFORE = 'def greet(name):\n    return f"Hello, {name}!"\n'
GREET_AFTER = 'def greet(name):\n    """A greeting."""\n    return f"Hello, {name}!"\n'

CASES = [
    Case(
        "last-off-by-one",
        "pkg/window.py",
        LAST_BEFORE,
        LAST_BEFORE.replace("len(items) - n", "len(items) - n - 1"),
        Label("bug", 5, "off by one"),
    ),
    Case(
        "clamp-flipped",
        "pkg/clamp.py",
        CLAMP_BEFORE,
        CLAMP_BEFORE.replace("value < low", "value > low"),
        Label("bug", 3, "comparison flip"),
    ),
    Case("total-rename", "pkg/total.py", TOTAL_BEFORE, TOTAL_AFTER, Label("clean")),
    Case("greet-docstring", "pkg/greet.py", GREET_BEFORE, GREET_AFTER, Label("clean")),
]


def _finding(line: int, message: str, fix: dict | None = None) -> dict:
    finding = {
        "start_line": line,
        "end_line": line,
        "severity": "warning",
        "category": "bug",
        "message": message,
        "rationale": "Seen in the unit.",
        "confidence": 0.9,
    }
    return finding | ({"fix": fix} if fix else {})


# Unit lines are document lines here: each file is one function from its first line.
HIT = _finding(
    5,
    "Off by one: one item too many",
    {"search": "len(items) - n - 1", "replace": "len(items) - n"},
)
MISS = _finding(7, "value is returned unchecked")  # 4 lines from the bug on line 3
FALSE_POSITIVE = _finding(
    # a fix that does not parse: suggested, refused by validation, the finding kept
    6,
    "Tax applied twice",
    {"search": "return subtotal * (1 + rate)", "replace": "return subtotal * (1 + rate"},
)
ANSWERS = [[HIT], [MISS], [FALSE_POSITIVE], []]

EXPECTED = {
    "cases": {"total": 4, "bug": 2, "clean": 2, "scored": 4},
    "units": 4,
    "bad_answers": 0,
    "recall": {"value": 0.5, "part": 1, "whole": 2},
    "precision": {"value": 1 / 3, "part": 1, "whole": 3},
    # changed lines: 1 + 1 + 3 (three renamed lines) + 1 (the docstring)
    "false_positives": {"count": 2, "changed_lines": 6, "per_100_lines": 100 * 2 / 6},
    "silent_units": {"value": 0.25, "part": 1, "whole": 4},
    "fix_validation": {"value": 0.5, "part": 1, "whole": 2},
}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "cases.jsonl"
    dump(CASES, path)
    return path


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as server:
        yield server


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _metrics(report: dict) -> dict:
    return {key: report[key] for key in EXPECTED}


def test_metrics_against_the_scripted_model(dataset, api, capsys):
    api.script(*(tool_use("report_findings", {"findings": a}) for a in ANSWERS))
    code, out, _ = _run(
        capsys, str(dataset), "--endpoint", api.url, "--model", "m", "--parallel", "1", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert _metrics(report) == EXPECTED
    assert report["tokens"] == {"input": 48, "output": 28, "total": 76}  # the server's 12 + 7
    # One request per changed unit, through the client: the unit's text in the nonce block.
    assert len(api.requests) == 4
    sent = [r.body for r in api.requests]
    assert all(body["model"] == "m" for body in sent)
    assert "len(items) - n - 1" in sent[0]["messages"][0]["content"][0]["text"]
    assert "subtotal" in sent[2]["messages"][0]["content"][0]["text"]
    assert "sources" not in sent[0]  # the engine's bookkeeping never leaves
    first = report["per_case"][0]["units"][0]["findings"][0]
    assert first["hit"] and first["fix_suggested"] and first["fix_valid"]


def test_the_table(dataset, api, capsys):
    api.script(*(tool_use("report_findings", {"findings": a}) for a in ANSWERS))
    code, out, err = _run(
        capsys, str(dataset), "--endpoint", api.url, "--model", "m", "--parallel", "1"
    )
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "50.0% (1 of 2 seeded bugs found within ±3 lines)" in rows["recall"]
    assert "33.3% (1 of 3 findings)" in rows["precision"]
    assert "33.3 per 100 changed lines (2 in 6 lines)" in rows["false"]
    assert "25.0% (1 of 4)" in rows["silent"]
    assert "50.0% (1 of 2 suggested fixes passed)" in rows["fix"]
    assert "76 (48 in, 28 out)" in rows["tokens"]
    assert "reviewing 4 changed units of 4 cases" in err


UNITS = {"last-off-by-one": "last", "clamp-flipped": "clamp", "total-rename": "total"}


def _answers_file(path: Path, answers: list[list[dict]]) -> Path:
    lines = [
        {
            "case": case.id,
            "unit": UNITS.get(case.id, "greet"),
            "findings": found,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }
        for case, found in zip(CASES, answers, strict=True)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_an_answers_file_scores_the_same(dataset, tmp_path, capsys):
    answers = _answers_file(tmp_path / "answers.jsonl", ANSWERS)
    code, out, _ = _run(capsys, str(dataset), "--answers", str(answers), "--json")
    assert code == 0
    report = json.loads(out)
    assert _metrics(report) == EXPECTED
    assert report["tokens"] == {"input": 40, "output": 20, "total": 60}


def test_saved_answers_replay_offline(dataset, api, tmp_path, capsys):
    api.script(*(tool_use("report_findings", {"findings": a}) for a in ANSWERS))
    saved = tmp_path / "saved.jsonl"
    live = ["--endpoint", api.url, "--model", "m", "--save-answers", str(saved)]
    code, out, _ = _run(capsys, str(dataset), *live, "--parallel", "2", "--json")
    assert code == 0
    recorded = json.loads(out)
    code, out, _ = _run(capsys, str(dataset), "--answers", str(saved), "--json")
    assert code == 0
    replayed = json.loads(out)
    assert _metrics(replayed) == _metrics(recorded)
    assert replayed["tokens"] == recorded["tokens"]
    assert len(api.requests) == 4


def test_a_bad_answer_is_counted_and_never_half_used(dataset, tmp_path, capsys):
    bad = dict(HIT, start_line=40, end_line=40)  # outside the unit: the whole answer is refused
    answers = _answers_file(tmp_path / "answers.jsonl", [[HIT, bad], [], [], []])
    code, out, _ = _run(capsys, str(dataset), "--answers", str(answers), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["bad_answers"] == 1
    assert report["recall"] == {"value": 0.0, "part": 0, "whole": 2}
    assert report["silent_units"] == {"value": 0.75, "part": 3, "whole": 4}
    assert "outside the unit" in report["per_case"][0]["units"][0]["bad_answer"]


def test_a_unit_without_an_answer_leaves_its_case_unscored(dataset, tmp_path, capsys):
    answers = _answers_file(tmp_path / "answers.jsonl", ANSWERS)
    kept = answers.read_text().splitlines()[1:]  # nothing for the first case
    answers.write_text("\n".join(kept) + "\n")
    code, out, err = _run(capsys, str(dataset), "--answers", str(answers), "--json")
    assert code == 3
    report = json.loads(out)
    assert report["cases"]["scored"] == 3
    assert report["recall"] == {"value": 0.0, "part": 0, "whole": 1}
    assert "not scored: last-off-by-one: last: " in err


def test_an_endpoint_that_is_down_leaves_cases_unscored(dataset, capsys):
    with FakeMessagesAPI() as gone:
        url = gone.url
    code, out, err = _run(capsys, str(dataset), "--endpoint", url, "--model", "m", "--json")
    assert code == 3
    assert json.loads(out)["cases"]["scored"] == 0
    assert "cannot connect" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "give either --endpoint URL --model NAME, or --answers FILE"),
        (["--endpoint", "http://127.0.0.1:9", "--answers", "a.jsonl"], "give either"),
        (["--endpoint", "http://127.0.0.1:9"], "--endpoint needs --model NAME"),
        (["--answers", "nowhere.jsonl"], "cannot read the answers"),
        (["--answers", "{answers}", "--model", "m"], "--model go with --endpoint"),
        (
            ["--endpoint", "http://127.0.0.1:9", "--model", "m", "--api-key-env", "GANTRY_NO_KEY"],
            "GANTRY_NO_KEY: the variable is not set",
        ),
        (["--endpoint", "ftp://127.0.0.1", "--model", "m"], "--endpoint: expected an http"),
        (["--endpoint", "https://api.anthropic.com", "--model", "m"], "--api-key-env VAR"),
        (["--answers", "{answers}", "--parallel", "0"], "--parallel must be at least 1"),
    ],
)
def test_usage_errors_exit_2(dataset, tmp_path, capsys, monkeypatch, argv, says):
    monkeypatch.delenv("GANTRY_NO_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    answers = _answers_file(tmp_path / "answers.jsonl", ANSWERS)
    argv = [arg.replace("{answers}", str(answers)) for arg in argv]
    code, out, err = _run(capsys, str(dataset), *argv)
    assert code == 2
    assert says in err
    assert out == ""


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("not json", "cases.jsonl:1:"),
        (json.dumps({"id": "x", "path": "a.py", "before": "a", "after": "b"}), "missing field"),
        (
            json.dumps(
                {
                    "id": "x",
                    "path": "a.py",
                    "before": "a\n",
                    "after": "b\n",
                    "label": {"kind": "bug", "line": 9},
                }
            ),
            "needs its line in after (1-1)",
        ),
        (
            json.dumps(
                {
                    "id": "x",
                    "path": "a.py",
                    "before": "a\n",
                    "after": "b\n",
                    "label": {"kind": "clean"},
                    "project": "gone",
                }
            ),
            "project gone: no such folder",
        ),
    ],
)
def test_an_unreadable_dataset_exits_2(tmp_path, capsys, line, says):
    broken = tmp_path / "cases.jsonl"
    broken.write_text(line + "\n")
    answers = _answers_file(tmp_path / "answers.jsonl", ANSWERS)
    code, _, err = _run(capsys, str(broken), "--answers", str(answers))
    assert code == 2
    assert says in err
    with pytest.raises(DatasetError):
        load(broken)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["eval", "review"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["eval", "score", "x.jsonl"])
    assert exited.value.code == 2


def test_changed_lines_and_the_window():
    assert change(TOTAL_BEFORE, TOTAL_AFTER).count == 3
    assert change(TOTAL_BEFORE, TOTAL_AFTER).lines == {2, 4, 5}
    assert change(GREET_BEFORE, GREET_AFTER).lines == {1}
    assert change(GREET_AFTER, GREET_BEFORE).lines == {1}  # a deletion: the line now there
    assert hits(5, 8, 8) and hits(5, 2, 2) and not hits(5, 9, 9) and not hits(None, 5, 5)


def test_a_project_snapshot_gives_context(tmp_path, capsys):
    """A case in a project: its index is the context, as the workspace's is in the editor."""
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "window.py").write_text(LAST_BEFORE)
    (project / "pkg" / "use.py").write_text(
        "from pkg.window import last\n\n\ndef tail(rows):\n    return last(rows, 3)\n"
    )
    case = CASES[0]
    path = tmp_path / "cases.jsonl"
    dump([Case(case.id, case.path, case.before, case.after, case.label, project)], path)
    assert json.loads(path.read_text())["project"] == "project"
    with FakeMessagesAPI() as api:
        api.script(tool_use("report_findings", {"findings": [HIT]}))
        code, out, _ = _run(capsys, str(path), "--endpoint", api.url, "--model", "m", "--json")
        assert code == 0
        assert json.loads(out)["recall"]["value"] == 1.0
        message = api.requests[0].body["messages"][0]["content"][0]["text"]
    assert "def tail(rows)" in message  # its caller, from the project's index
