"""What privacy costs at the inference exit point, printed as a markdown table.

* redaction of one request carrying a 2,000-line module (bench/workload.py's, and the first 2,000
  lines of the standard library's argparse.py), p50/p95 over --runs; the same module with planted
  secrets; a typical review request (a 60-line unit and a 300-line context pack);
* the first redaction in a process (detect-secrets imported and its plugins built);
* `python -X importtime -c 'import remote_exec.inference'` (median of --imports runs), which the
  language server pays at start-up and which must not grow;
* findings on the standard library's own modules (not its tests): every one is a false positive
  unless it is a secret-shaped literal; the test suite pins several modules at zero.

Usage: PYTHONPATH=src python bench/bench_redaction.py [--runs 50] [--imports 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table import markdown, row
from workload import generate

PLANTED = [
    'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"',
    'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    'GITHUB = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"',
    'slack = WebClient(token="xoxb-2424143893-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")',
    (
        'KEY = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi4Dn6LRD0k\\n'
        '-----END RSA PRIVATE KEY-----"'
    ),
]


def body(code: str) -> dict:
    return {
        "system": "You review code.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": code}]}],
    }


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def import_ms(runs: int) -> float:
    totals = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import remote_exec.inference"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        line = next(
            ln for ln in out.splitlines() if ln.rstrip().endswith("| remote_exec.inference")
        )
        totals.append(int(line.split("|")[1]) / 1000)
    return statistics.median(totals)


def first_redaction_ms() -> float:
    code = (
        "import time; t = time.perf_counter()\n"
        "from remote_exec.inference import Redaction\n"
        "Redaction().redact_text('key = \"AKIAIOSFODNN7EXAMPLE\"')\n"
        "print((time.perf_counter() - t) * 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--imports", type=int, default=15)
    args = parser.parse_args()

    from remote_exec.inference import Redaction, find_secrets

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    workload = "".join(generate(2000)[0])
    argparse_2000 = "\n".join((stdlib / "argparse.py").read_text().split("\n")[:2000])
    lines = workload.split("\n")
    planted = "\n".join(lines[:1000] + PLANTED + lines[1000:])
    typical = "\n".join(lines[:300]) + "\n<unit>\n" + "\n".join(lines[1000:1060])
    Redaction().redact_body(body(workload))  # warm: detect-secrets loaded

    rows = []
    for name, code in (
        ("2,000-line module (workload)", workload),
        ("2,000 lines of argparse.py", argparse_2000),
        ("2,000-line module + 5 planted secrets", planted),
        ("typical request (60-line unit + 300-line pack)", typical),
    ):
        p50, p95 = timed(lambda code=code: Redaction().redact_body(body(code)), args.runs)
        redaction = Redaction()
        redaction.redact_body(body(code))
        rows.append(
            row(
                "redaction",
                name,
                "ms per request p50 / p95",
                f"{p50:.2f} / {p95:.2f}",
                "a few ms",
                p50 <= 10,
                f"{len(redaction)} secrets replaced",
            )
        )
    rows.append(
        row(
            "redaction",
            "first call in a process",
            "ms (imports detect-secrets)",
            f"{first_redaction_ms():.0f}",
            note="paid once, on a worker thread",
        )
    )
    rows.append(
        row(
            "start-up",
            "import remote_exec.inference",
            "ms cumulative (-X importtime, median)",
            f"{import_ms(args.imports):.1f}",
            note="detect-secrets, pathspec, anthropic not imported",
        )
    )

    files = [
        f
        for f in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py"))
        if "test" not in f.parts[-2] and "site-packages" not in str(f)
    ]
    hits, total_lines, started = [], 0, time.perf_counter()
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        total_lines += text.count("\n")
        hits += [
            f"{f.relative_to(stdlib)}: {text[s.start : s.end][:24]}" for s in find_secrets(text)
        ]
    elapsed = (time.perf_counter() - started) * 1000
    rows.append(
        row(
            "false positives",
            f"stdlib, {len(files)} modules, {total_lines:,} lines",
            "findings",
            len(hits),
            "0, or secret-shaped literals",
            None,
            "; ".join(hits),
        )
    )
    rows.append(
        row("redaction", "stdlib scan", "ms per 2,000 lines", f"{elapsed / total_lines * 2000:.2f}")
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
