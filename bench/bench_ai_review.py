"""AI review's machinery on the generated 2,000-line module (bench/workload.py), indexed in a
real store, through the engine the server runs (`review.ai.review.plan`): tokens sent on a
first review, on a re-review of unchanged code and after a one-line change, beside sending the
whole file; and the local cost of a pass (units, packs, keys, cache look-up) beside the ruff
review of the same text in the same run. The model is not involved: answers are cached as
"clean" (what an empty answer is) so each pass sees what a server would after the model.

    PYTHONPATH=src python bench/bench_ai_review.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from table import markdown, median_ms, row
from workload import generate

from lsp_server.analysis.indexer import Indexer
from lsp_server.config import Settings
from lsp_server.review.ai import review as ai
from lsp_server.review.ai.context import estimate_tokens
from lsp_server.review.ai.prompt import SYSTEM
from lsp_server.review.findings import Snapshot
from lsp_server.review.local import LocalEngine
from lsp_server.store import Store

MODEL = "review-model"
TOKEN_SHARE_TARGET = 0.30
COST_TARGET_MS = 50.0


def _tokens(body: dict) -> int:
    """What a request costs in input tokens (chars/4, as the context budget counts them)."""
    return estimate_tokens(json.dumps([body["system"], body["messages"]]))


def _whole_file_tokens(text: str) -> int:
    """Sending the whole file (its imports are at its top) in one request of the same shape."""
    return estimate_tokens(SYSTEM) + estimate_tokens(text)


def _plan(store: Store, root: Path, text: str, version: int) -> ai.Plan:
    path = root / "mod.py"
    snapshot = Snapshot(path.as_uri(), str(path), version, text, "python", Settings())
    return ai.plan(snapshot, store, path="mod.py", model=MODEL, budget=2000)


def _answer_clean(store: Store, plan: ai.Plan) -> None:
    clean = ai.Answered(
        content=[{"type": "tool_use", "name": "report_findings", "input": {"findings": []}}],
        model=MODEL,
    )
    for review in plan.misses:
        store.put_ai_review(
            review.key, clean.dumps(), model=MODEL, prompt_version=ai.PROMPT_VERSION
        )


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--runs", type=int, default=15)
    args = options.parse_args()
    lines, _ = generate(2000)
    text = "".join(lines)
    edited = text.replace("RETRIES = 3", "RETRIES = 4", 1)
    assert edited != text
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        (root / "mod.py").write_text(text)
        (root / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["E", "F", "W", "B"]\n')
        with Store.open(Path(tmp) / "store.db") as store:
            Indexer(store, root, Settings()).index_all()
            whole = _whole_file_tokens(text)
            first = _plan(store, root, text, 1)
            first_tokens = sum(_tokens(r.body) for r in first.misses)
            _answer_clean(store, first)
            again = _plan(store, root, text, 2)
            again_tokens = sum(_tokens(r.body) for r in again.misses)
            changed = _plan(store, root, edited, 3)
            changed_tokens = sum(_tokens(r.body) for r in changed.misses)
            note = f"{len(first.units)} units; whole file in one request: {whole} tokens"
            rows += [
                row("tokens", "first review", "input tokens sent", first_tokens, "", None, note),
                row(
                    "tokens",
                    "re-review, unchanged code",
                    "input tokens sent",
                    again_tokens,
                    "0",
                    again_tokens == 0,
                    f"{len(again.misses)} units sent",
                ),
                row(
                    "tokens",
                    "after a one-line change",
                    "share of sending the whole file",
                    f"{changed_tokens / whole:.1%}",
                    f"<= {TOKEN_SHARE_TARGET:.0%}",
                    changed_tokens / whole <= TOKEN_SHARE_TARGET,
                    f"{len(changed.misses)} unit(s), {changed_tokens} tokens",
                ),
            ]
            engine = LocalEngine()
            snapshot = Snapshot(
                (root / "mod.py").as_uri(), str(root / "mod.py"), 1, edited, "python", Settings()
            )
            ruff_ms = median_ms(lambda: engine.review(snapshot, root), args.runs)
            pass_ms = median_ms(lambda: _plan(store, root, edited, 4), args.runs)

            def cold() -> None:
                ai._pack.cache_clear()
                _plan(store, root, edited, 5)

            cold_ms = median_ms(cold, args.runs)
            rows += [
                row(
                    "local cost",
                    "ruff review (LocalEngine)",
                    "ms, p50",
                    f"{ruff_ms:.1f}",
                    "",
                    None,
                    "ruff subprocess + fingerprints",
                ),
                row(
                    "local cost",
                    "AI pass from the cache (plan)",
                    "ms, p50",
                    f"{pass_ms:.1f}",
                    f"<= {COST_TARGET_MS:.0f}",
                    pass_ms <= COST_TARGET_MS,
                    f"{pass_ms / ruff_ms:.2f}x the ruff review in the same run; packs of "
                    "unchanged units reused, as while typing",
                ),
                row(
                    "local cost",
                    "AI pass, first of the session",
                    "ms, p50",
                    f"{cold_ms:.1f}",
                    "",
                    None,
                    f"{cold_ms / ruff_ms:.2f}x the ruff review; every pack built",
                ),
            ]
            # the requests a pass builds are what the model would get: none carry a secret or
            # an absolute path of this machine
            assert all(str(root) not in json.dumps(r.body) for r in changed.units)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
