"""Ruff while typing: one `ruff check` per change (what Gantry runs) beside a persistent
`ruff server` child asked for pull diagnostics, on the same edits, in one run; prints a
markdown table.

    python bench/bench_ruff_backend.py [--changes 60] [--warmup 5] [--output FILE]

The document is bench/workload.py's 2,000-line module and its edits, in its workspace
(`pyproject.toml` selecting E,F,W,B). Each change is timed from the call to the findings in
hand, as JSON decoded in this process: (a) `ruff check --output-format=json --stdin-filename`
as `review.ruff_engine.check` runs it (process start, configuration, lint, JSON); (b) a
`didChange` with the full text then `textDocument/diagnostic` to a `ruff server` started once.
The two alternate, change by change, so they share the machine's load. Also shown: what each
answer carries, since Gantry's findings must be ruff's own (message, fix and its
applicability).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from lspclient import LspClient, file_uri, initialize_params
from table import markdown, row
from workload import Editor, generate, make_workspace

from bench import machine

RUFF = str(Path(sysconfig.get_path("scripts")) / "ruff")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class PerChange:
    """What Gantry does: a ruff process per change, the text on stdin."""

    def __init__(self, document: Path) -> None:
        self.document = document
        self.argv = [
            RUFF,
            "check",
            "--output-format=json",
            "--no-fix",
            "--exit-zero",
            "--force-exclude",
            "--stdin-filename",
            str(document),
            "-",
        ]

    def findings(self, text: str, _version: int) -> list[dict[str, Any]]:
        proc = subprocess.run(
            self.argv,
            input=text.encode(),
            capture_output=True,
            cwd=self.document.parent,
            check=True,
            timeout=30,
        )
        return json.loads(proc.stdout)


class Persistent:
    """A `ruff server` started once; each change is a didChange and a diagnostic pull."""

    def __init__(self, document: Path, text: str) -> None:
        self.uri = file_uri(document)
        self.client = LspClient([RUFF, "server"], cwd=document.parent)
        params = initialize_params(document.parent)
        params["capabilities"] = {
            "general": {"positionEncodings": ["utf-32"]},  # characters, as ruff check counts
            "textDocument": {"diagnostic": {"dynamicRegistration": False}},
        }
        _, answer = self.client.wait_response(self.client.request("initialize", params), 30)
        self.encoding = answer["result"]["capabilities"].get("positionEncoding")
        self.client.notify("initialized", {})
        document_item = {"uri": self.uri, "languageId": "python", "version": 0, "text": text}
        self.client.notify("textDocument/didOpen", {"textDocument": document_item})

    def findings(self, text: str, version: int) -> list[dict[str, Any]]:
        self.client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": self.uri, "version": version},
                "contentChanges": [{"text": text}],
            },
        )
        request = self.client.request(
            "textDocument/diagnostic", {"textDocument": {"uri": self.uri}}
        )
        _, answer = self.client.wait_response(request, 30)
        return answer["result"]["items"]

    def close(self) -> None:
        self.client.close()


def _check_key(item: dict[str, Any]) -> tuple:
    return (item["location"]["row"] - 1, item["location"]["column"] - 1, item["code"])


def _server_key(item: dict[str, Any]) -> tuple:
    start = item["range"]["start"]
    return (start["line"], start["character"], item["code"])


def compare(checked: list[dict[str, Any]], served: list[dict[str, Any]]) -> dict[str, int]:
    """How the two answers for the same text differ, finding by finding."""
    by_key = {_server_key(item): item for item in served}
    same_place = [(item, by_key.get(_check_key(item))) for item in checked]
    paired = [(c, s) for c, s in same_place if s is not None]
    return {
        "check": len(checked),
        "server": len(served),
        "same (line, column, rule)": len(paired),
        "message differs": sum(c["message"] != s["message"] for c, s in paired),
        "fixes (check: with applicability)": sum(bool(c.get("fix")) for c in checked),
        "fixes (server: edits, no applicability)": sum(
            bool((s.get("data") or {}).get("edits")) for s in served
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gantry-bench-ruff-") as tmpdir:
        tmp = Path(tmpdir)
        document = make_workspace(tmp / "ws", tmp / "store.db")
        editor = Editor(*generate())
        backends = {
            "ruff check per change (subprocess)": PerChange(document),
            "ruff server child (pull)": Persistent(document, editor.text(0)),
        }
        times: dict[str, list[float]] = {name: [] for name in backends}
        answers: dict[str, list] = {}
        try:
            for step in range(1, args.warmup + args.changes + 1):
                text = editor.text(step)
                for name, backend in backends.items():
                    begun = time.perf_counter()
                    answers[name] = backend.findings(text, step)
                    if step > args.warmup:
                        times[name].append((time.perf_counter() - begun) * 1000)
        finally:
            backends["ruff server child (pull)"].close()
        checked, served = answers.values()
    rows = [
        row(
            "typing",
            name,
            "change -> findings decoded, p50 / p95",
            f"{statistics.median(values):.1f} / {percentile(values, 0.95):.1f} ms",
            note=f"n={len(values)} after {args.warmup} warm-up; min {min(values):.1f} ms",
        )
        for name, values in times.items()
    ]
    differences = compare(checked, served)
    rows.append(
        row(
            "answers",
            "last change, both",
            "findings",
            "; ".join(f"{key}: {value}" for key, value in differences.items()),
        )
    )
    text = (
        f"Machine: {machine()}\n\n{markdown(rows)}\n\n"
        f"Benchmark wall time: {time.perf_counter() - started:.0f} s\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
