"""Gantry against its peers, in one run; prints a markdown table.

    python bench/bench.py [--runs 10] [--changes 50] [--sections start,diag,dense,index]

(a) process start -> `initialize` response, median of --runs cold starts, beside the floor of
    importing pygls, and process start -> first diagnostics of a file opened right away;
    (b) didChange -> publishDiagnostics latency on a generated ~2,000-line file; (c) cold and
    incremental indexing of the standard library (Gantry's indexer in-process, in a subprocess
    of its own; `gantry index`; universal-ctags); (d) peak RSS; (e) didOpen -> first
    publishDiagnostics of finding-dense files (100 and 1,000 KiB), Gantry beside ruff server.
Targets are shown, never asserted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lspclient import LspClient, ServerError, file_uri, initialize_params
from workload import Editor, dense, generate, make_workspace

BIN = Path(sys.executable).parent

TARGET_INIT_MS = 150
TARGET_FIRST_DIAG_RATIO = 1.15
TARGET_DIAG_P50_MS = 15
TARGET_DIAG_P95_MS = 30
TARGET_INDEX_LPS = 20_000
TARGET_DENSE_MS = 3_000
DENSE_KIB = (100, 1000)
TARGET_INCR_MS = 30
TARGET_RSS_MB = 150


@dataclass
class Peer:
    name: str
    exe: str
    args: list[str]
    diag_note: str
    comparable: bool = True
    """Its diagnostics are the same kind of work as Gantry's (a linter over the file)."""

    def argv(self) -> list[str] | None:
        path = BIN / self.exe
        found = str(path) if path.is_file() else shutil.which(self.exe)
        return [found, *self.args] if found else None


PEERS = [
    Peer("gantry serve", "gantry", ["serve"], "ruff check (E,F,W,B) in a subprocess per review"),
    Peer("ruff server", "ruff", ["server"], "ruff (E,F,W,B) in-process, Rust"),
    Peer(
        "pylsp",
        "pylsp",
        [],
        "pyflakes + pycodestyle + mccabe; includes its built-in 500 ms lint debounce",
    ),
    Peer(
        "jedi-language-server",
        "jedi-language-server",
        [],
        "syntax errors only (not comparable); includes its built-in 1 s debounce",
        comparable=False,
    ),
]


@dataclass
class Row:
    section: str
    tool: str
    metric: str
    value: str
    target: str = ""
    status: str = ""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args, **kwargs) -> None:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        print(
            f"  {row.section} | {row.tool} | {row.metric}: {row.value} {row.status}",
            file=sys.stderr,
            flush=True,
        )

    def markdown(self) -> str:
        head = "| section | tool | metric | value | target | met? | note |"
        out = [head, "|---|---|---|---:|---|---|---|"]
        for r in self.rows:
            cells = (r.section, r.tool, r.metric, r.value, r.target, r.status, r.note)
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(out)


def met(ok: bool) -> str:
    return "met" if ok else "missed"


def pct(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def server_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(cache)  # nothing lands in the user's cache
    env.pop("VIRTUAL_ENV_PROMPT", None)
    return env


def mib(kib: int | None) -> str:
    return "n/a" if not kib else f"{kib / 1024:.0f} MB"


# -- (a) cold start -------------------------------------------------------------------------


def time_command(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            argv,
            env=env,
            check=True,
            timeout=60,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out.append((time.perf_counter() - t0) * 1000)
    return out


def cold_start(argv: list[str], ws: Path, doc: Path, env: dict[str, str]) -> tuple[float, float]:
    """(process start -> initialize response, process start -> first publishDiagnostics of a
    document opened as soon as the server is initialized), in ms."""
    client = LspClient(argv, cwd=ws, env=env)
    try:
        rid = client.request("initialize", initialize_params(ws))
        initialized, _ = client.wait_response(rid, 30)
        client.notify("initialized", {})
        uri = open_document(client, doc)
        published, _ = client.wait_for(publish_for(uri, None), 30)
        return (initialized - client.started) * 1000, (published - client.started) * 1000
    finally:
        client.close()


def open_document(client: LspClient, doc: Path, text: str | None = None) -> str:
    """didOpen of `doc` (version 1) with its text on disk, or `text`; returns its URI."""
    uri = file_uri(doc)
    client.notify(
        "textDocument/didOpen",
        {
            "textDocument": {
                "uri": uri,
                "languageId": "python",
                "version": 1,
                "text": doc.read_text(encoding="utf-8") if text is None else text,
            }
        },
    )
    return uri


def bench_start(report: Report, runs: int, ws: Path, doc: Path, env: dict[str, str]) -> None:
    py = sys.executable
    floors = {
        "python -c pass": [py, "-c", "pass"],
        'python -c "import pygls.lsp.server"': [py, "-c", "import pygls.lsp.server"],
        "import gantry's server modules": [
            py,
            "-c",
            "import lsp_server.server, lsp_server.features",
        ],
    }
    results: dict[str, list[float]] = {name: [] for name in floors}
    first_diag: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    argvs = {}
    for peer in PEERS:
        argv = peer.argv()
        if argv is None:
            errors[peer.name] = "skipped: not installed"
        else:
            argvs[peer.name] = argv
            results[peer.name], first_diag[peer.name] = [], []
    # One untimed start each (bytecode caches), then rounds interleaved across tools.
    for name, argv in argvs.items():
        try:
            cold_start(argv, ws, doc, env)
        except (ServerError, TimeoutError, OSError) as exc:
            errors[name] = f"error: {exc}"
    for argv in floors.values():
        time_command(argv, 1, env)
    for _ in range(runs):
        for name, argv in floors.items():
            results[name] += time_command(argv, 1, env)
        for name, argv in argvs.items():
            if name in errors:
                continue
            try:
                initialized, published = cold_start(argv, ws, doc, env)
                results[name].append(initialized)
                first_diag[name].append(published)
            except (ServerError, TimeoutError, OSError) as exc:
                errors[name] = f"error: {exc}"
    floor = statistics.median(results['python -c "import pygls.lsp.server"'])
    for name in floors:
        med = statistics.median(results[name])
        report.add(
            "(a) start",
            name,
            "wall time, median",
            f"{med:.0f} ms",
            note=f"floor; n={runs}, min {min(results[name]):.0f} ms",
        )
    for peer in PEERS:
        if peer.name in errors:
            report.add("(a) start", peer.name, "start -> initialize response", errors[peer.name])
            continue
        values = results[peer.name]
        med = statistics.median(values)
        note = f"n={runs}, min {min(values):.0f}, max {max(values):.0f} ms"
        if peer.name == "gantry serve":
            note += f"; {med / floor:.2f}x the pygls import floor ({floor:.0f} ms)"
        report.add(
            "(a) start",
            peer.name,
            "start -> initialize response, median",
            f"{med:.0f} ms",
            f"<= {TARGET_INIT_MS} ms",
            met(med <= TARGET_INIT_MS),
            note,
        )
    for peer in PEERS:
        if peer.name in errors:
            continue
        firsts = first_diag[peer.name]
        ratios = [f / i for f, i in zip(firsts, results[peer.name], strict=True)]
        ratio = statistics.median(ratios)
        gantry = peer.name == "gantry serve"
        report.add(
            "(a) start",
            peer.name,
            "start -> first diagnostics of a just-opened file, median",
            f"{statistics.median(firsts):.0f} ms",
            f"<= {TARGET_FIRST_DIAG_RATIO}x initialize" if gantry else "",
            met(ratio <= TARGET_FIRST_DIAG_RATIO) if gantry else "",
            f"{ratio:.2f}x its initialize response (median of per-start ratios); n={runs}, "
            f"min {min(firsts):.0f}, max {max(firsts):.0f} ms; didOpen of the (b) file right "
            "after `initialized`",
        )


# -- (b) diagnostics latency ----------------------------------------------------------------


@dataclass
class DiagResult:
    latencies_ms: list[float]
    timeouts: int
    versioned: bool
    counts: tuple[set[int], set[int]]
    """Diagnostic counts seen after even and after odd edits."""
    rss_kib: int | None


def publish_for(uri: str, version: int | None) -> Callable[[dict], bool]:
    def match(message: dict) -> bool:
        if message.get("method") != "textDocument/publishDiagnostics":
            return False
        params = message.get("params") or {}
        if params.get("uri") != uri:
            return False
        return version is None or params.get("version") == version

    return match


def diag_run(
    argv: list[str],
    ws: Path,
    doc: Path,
    env: dict[str, str],
    warmup: int,
    changes: int,
    timeout: float,
) -> DiagResult:
    lines, anchors = generate()
    editor = Editor(lines, anchors)
    client = LspClient(argv, cwd=ws, env=env)
    try:
        rid = client.request("initialize", initialize_params(ws))
        client.wait_response(rid, 30)
        client.notify("initialized", {})
        uri = open_document(client, doc, editor.text(0))
        _, first = client.wait_for(publish_for(uri, None), 60)
        versioned = "version" in first["params"]
        if versioned and first["params"]["version"] != 1:
            client.wait_for(publish_for(uri, 1), 60)
        latencies, timeouts = [], 0
        counts: tuple[set[int], set[int]] = (set(), set())
        for step in range(1, warmup + changes + 1):
            version = step + 1
            text = editor.text(step)
            client.drain()
            sent = time.perf_counter()
            client.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"text": text}],
                },
            )
            try:
                stamp, message = client.wait_for(
                    publish_for(uri, version if versioned else None), timeout
                )
            except TimeoutError:
                timeouts += 1
                continue
            if step > warmup:
                latencies.append((stamp - sent) * 1000)
                counts[step % 2].add(len(message["params"]["diagnostics"]))
        rss = client.peak_rss_kib()
        return DiagResult(latencies, timeouts, versioned, counts, rss)
    finally:
        client.close()


def bench_diag(
    report: Report,
    ws: Path,
    doc: Path,
    env: dict[str, str],
    warmup: int,
    changes: int,
    timeout: float,
) -> dict[str, int | None]:
    rss: dict[str, int | None] = {}
    for peer in PEERS:
        argv = peer.argv()
        if argv is None:
            report.add(
                "(b) diagnostics",
                peer.name,
                "didChange -> publishDiagnostics",
                "skipped: not installed",
            )
            continue
        try:
            result = diag_run(argv, ws, doc, env, warmup, changes, timeout)
        except (ServerError, TimeoutError, OSError) as exc:
            report.add(
                "(b) diagnostics", peer.name, "didChange -> publishDiagnostics", f"error: {exc}"
            )
            continue
        rss[peer.name] = result.rss_kib
        if not result.latencies_ms:
            report.add(
                "(b) diagnostics",
                peer.name,
                "didChange -> publishDiagnostics",
                f"error: no publish within {timeout} s ({result.timeouts} timeouts)",
            )
            continue
        values = result.latencies_ms
        p50, p95 = pct(values, 50), pct(values, 95)
        even, odd = sorted(result.counts[0]), sorted(result.counts[1])
        note = (
            f"n={len(values)} after {warmup} warm-up; "
            f"{'waits for the version' if result.versioned else 'unversioned: next publish'}"
            f"; diagnostics even/odd edits: {even}/{odd}"
        )
        if result.timeouts:
            note += f"; {result.timeouts} timeouts ({timeout:.0f} s)"
        note += "; " + peer.diag_note
        target = (
            f"<= {TARGET_DIAG_P50_MS} / {TARGET_DIAG_P95_MS} ms"
            if peer.comparable
            else "not comparable"
        )
        ok = p50 <= TARGET_DIAG_P50_MS and p95 <= TARGET_DIAG_P95_MS
        status = met(ok) if peer.comparable else ""
        report.add(
            "(b) diagnostics",
            peer.name,
            "didChange -> publishDiagnostics p50 / p95",
            f"{p50:.0f} / {p95:.0f} ms",
            target,
            status,
            note,
        )
    return rss


# -- (e) finding-dense files ------------------------------------------------------------------


def dense_run(
    argv: list[str],
    ws: Path,
    warm: Path,
    doc: Path,
    env: dict[str, str],
    timeout: float,
    reports_state: bool,
) -> tuple[float, int]:
    """didOpen of the dense `doc` -> its first publishDiagnostics (ms, diagnostics), once the
    server has published for the small `warm` document and, if it `reports_state` (Gantry's
    `gantry/status`), has finished its start-up work (indexing the workspace)."""
    client = LspClient(argv, cwd=ws, env=env)
    try:
        rid = client.request("initialize", initialize_params(ws))
        client.wait_response(rid, 30)
        client.notify("initialized", {})
        warmed = publish_for(open_document(client, warm), None)
        seen: dict[str, object] = {"published": False, "state": None}

        def settled(message: dict) -> bool:
            seen["published"] = seen["published"] or warmed(message)
            if message.get("method") == "gantry/status":
                seen["state"] = message["params"]["state"]
            idle = seen["state"] not in ("busy", None) or not reports_state
            return bool(seen["published"]) and idle

        client.wait_for(settled, timeout)
        time.sleep(0.5)  # a server that reports no state: let it settle too
        client.drain()
        sent = time.perf_counter()
        stamp, message = client.wait_for(publish_for(open_document(client, doc), None), timeout)
        return (stamp - sent) * 1000, len(message["params"]["diagnostics"])
    finally:
        client.close()


def bench_dense(report: Report, ws: Path, warm: Path, env: dict[str, str], timeout: float) -> None:
    peers = PEERS[:2]  # gantry and ruff server: the others lint by other rules
    for kib in DENSE_KIB:
        doc = ws / f"dense_{kib}.py"
        text = dense(kib)
        doc.write_text(text)
        metric = f"didOpen -> first publishDiagnostics, {kib} KiB finding-dense file"
        results: dict[str, tuple[float, int] | str] = {}
        for peer in peers:
            argv = peer.argv()
            if argv is None:
                results[peer.name] = "skipped: not installed"
                continue
            try:
                gantry = peer.name == "gantry serve"
                results[peer.name] = dense_run(argv, ws, warm, doc, env, timeout, gantry)
            except (ServerError, TimeoutError, OSError) as exc:
                results[peer.name] = f"error: {exc}"
        doc.unlink()  # out of the other sections' workspace
        ruff = results.get("ruff server")
        for peer in peers:
            result = results[peer.name]
            if isinstance(result, str):
                report.add("(e) dense file", peer.name, metric, result)
                continue
            ms, count = result
            note = f"{count:,} diagnostics; {text.count(chr(10)):,} lines"
            if peer.name != "ruff server" and isinstance(ruff, tuple):
                note += f"; {ms / ruff[0]:.1f}x ruff server"
            gantry = peer.name == "gantry serve" and kib == DENSE_KIB[-1]
            report.add(
                "(e) dense file",
                peer.name,
                metric,
                f"{ms:,.0f} ms",
                f"<= {TARGET_DENSE_MS:,} ms" if gantry else "",
                met(ms <= TARGET_DENSE_MS) if gantry else "",
                note,
            )


# -- (c) indexing -----------------------------------------------------------------------------


def copy_python_tree(src: Path, dst: Path) -> tuple[int, int]:
    """Copy the .py files of `src` (without site-packages, __pycache__) to dst; the copy is
    what every indexer reads, so the real standard library is never touched."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        out = []
        for name in names:
            skipped_dir = name in ("site-packages", "__pycache__")
            not_python = not name.endswith(".py") and not os.path.isdir(
                os.path.join(directory, name)
            )
            if skipped_dir or not_python:
                out.append(name)
        return out

    shutil.copytree(src, dst, ignore=ignore, symlinks=True)
    files = lines = 0
    for path in dst.rglob("*.py"):
        if path.is_file() and not path.is_symlink():
            files += 1
            with open(path, "rb") as f:
                lines += f.read().count(b"\n")
    return files, lines


def run_measured(
    argv: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None
) -> tuple[float, int, str, str, int]:
    """(wall seconds, peak RSS KiB from wait4, stdout, stderr tail, exit code)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            wall,
            usage.ru_maxrss,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace")[-600:],
            proc.returncode,
        )


def bench_index(
    report: Report, stdlib: Path, tmp: Path, env: dict[str, str], edits: int
) -> dict[str, tuple[int, str]]:
    rss: dict[str, tuple[int, str]] = {}
    tree = tmp / "stdlib"
    t0 = time.perf_counter()
    files, lines = copy_python_tree(stdlib, tree)
    report.add(
        "(c) index",
        "(tree)",
        "Python stdlib .py files",
        f"{files} files, {lines:,} lines",
        note=f"copied from {stdlib} in {time.perf_counter() - t0:.1f} s "
        "(no site-packages); every tool reads the copy",
    )

    # universal-ctags
    ctags = shutil.which("ctags")
    version = ""
    if ctags:
        probe = subprocess.run(
            [ctags, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        version = probe.stdout.splitlines()[0] if probe.stdout else ""
    if not ctags or "Universal Ctags" not in version:
        report.add("(c) index", "universal-ctags", "cold index", "skipped: not installed")
    else:
        tags = tmp / "out.tags"
        wall, maxrss, _, err, code = run_measured(
            [ctags, "-R", "--languages=Python", "-f", str(tags), str(tree)], env, 240
        )
        if code != 0:
            report.add("(c) index", "universal-ctags", "cold index", f"error: {err}")
        else:
            with open(tags, "rb") as f:
                count = sum(1 for line in f if not line.startswith(b"!_"))
            report.add(
                "(c) index",
                "universal-ctags",
                "cold index: files/s, lines/s",
                f"{files / wall:,.0f} files/s, {lines / wall:,.0f} lines/s",
                note=f"{wall:.2f} s wall, {count:,} tags; {version}",
            )
            rss["universal-ctags"] = (maxrss, "ctags -R")

    # gantry index, as a user runs it
    gantry = BIN / "gantry"
    cli_env = dict(env, XDG_CACHE_HOME=str(tmp / "cli-cache"))
    wall, maxrss, out, err, code = run_measured([str(gantry), "index", str(tree)], cli_env, 300)
    if code != 0:
        report.add("(c) index", "gantry index", "cold, CLI wall", f"error ({code}): {err}")
    else:
        said = next((line for line in out.splitlines() if line.startswith("time:")), "")
        report.add(
            "(c) index",
            "gantry index",
            "cold, CLI wall time",
            f"{wall:.1f} s ({lines / wall:,.0f} lines/s)",
            note=f"process start to exit; it reports '{said}'",
        )
        rss["gantry index (CLI)"] = (maxrss, "main process only")

    # Gantry's indexer in-process, in a subprocess of its own
    child = Path(__file__).resolve().parent / "index_child.py"
    store_dir = tmp / "index-store"
    store_dir.mkdir()
    wall, maxrss, out, err, code = run_measured(
        [sys.executable, str(child), str(tree), str(store_dir), "--edits", str(edits)], env, 300
    )
    if code != 0:
        report.add("(c) index", "Gantry Indexer", "cold index", f"error ({code}): {err}")
        return rss
    data = json.loads(out.strip().splitlines()[-1])
    cold = data["cold"]
    seconds = cold["wall_s"]
    lps = cold["lines"] / seconds
    skipped = ", ".join(f"{n} {why}" for why, n in cold["files_skipped"].items()) or "none"
    report.add(
        "(c) index",
        "Gantry Indexer.index_all",
        "cold index: files/s, lines/s",
        f"{cold['files_seen'] / seconds:,.0f} files/s, {lps:,.0f} lines/s",
        f">= {TARGET_INDEX_LPS:,} lines/s",
        met(lps >= TARGET_INDEX_LPS),
        f"{seconds:.1f} s; {cold['files_parsed']} parsed, {cold['files_reused']} reused "
        f"(same content), skipped {skipped}; {cold['symbols']:,} symbols",
    )
    report.add(
        "(c) index",
        "Gantry Indexer.index_all",
        "re-index, nothing changed",
        f"{data['noop']['wall_s'] * 1000:.0f} ms",
        note=f"{data['noop']['files_unchanged']} files unchanged (stat only)",
    )
    incr = data["incremental"]
    if incr["median_s"] is not None:
        med = incr["median_s"] * 1000
        times = [t * 1000 for t in incr["times_s"]]
        report.add(
            "(c) index",
            "Gantry Indexer.index_paths",
            "incremental, one changed file",
            f"{med:.1f} ms",
            f"<= {TARGET_INCR_MS} ms",
            met(med <= TARGET_INCR_MS),
            f"median of {incr['edits']} files (2-60 KB, {incr['lines']:,} lines), "
            f"max {max(times):.1f} ms; {incr['parsed']} parsed",
        )
    rss["Gantry indexer (index_all)"] = (
        data["rss_kib"],
        (
            f"main process (wait4 {mib(maxrss)}); pool workers peak "
            f"{mib(data['worker_rss_kib'])} each ({data['workers_seen']} child processes: "
            "forkserver, resource tracker, workers)"
        ),
    )
    return rss


# -- main ---------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs ({cpu}), {mem}; "
        f"Python {platform.python_version()}; {platform.system()} {platform.release()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="cold starts per server")
    parser.add_argument("--changes", type=int, default=50, help="measured didChanges")
    parser.add_argument("--warmup", type=int, default=5, help="didChanges before measuring")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for one publishDiagnostics"
    )
    parser.add_argument(
        "--dense-timeout", type=float, default=120.0, help="seconds to wait for a dense file"
    )
    parser.add_argument("--edits", type=int, default=20, help="files for incremental index")
    parser.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--sections", default="start,diag,dense,index")
    parser.add_argument(
        "--servers", help="comma-separated subset of: " + ", ".join(peer.name for peer in PEERS)
    )
    parser.add_argument("--output", type=Path, help="also write the markdown here")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if args.servers:
        wanted = {name.strip() for name in args.servers.split(",")}
        PEERS[:] = [peer for peer in PEERS if peer.name in wanted]

    started = time.perf_counter()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = server_env(tmp / "cache")
        ws = tmp / "ws"
        doc = make_workspace(ws, tmp / "gantry-store.db")
        server_rss: dict[str, int | None] = {}
        index_rss: dict[str, tuple[int, str]] = {}
        if "start" in sections:
            print("(a) cold starts...", file=sys.stderr, flush=True)
            bench_start(report, args.runs, ws, doc, env)
        if "diag" in sections:
            print("(b) diagnostics...", file=sys.stderr, flush=True)
            server_rss = bench_diag(report, ws, doc, env, args.warmup, args.changes, args.timeout)
        if "dense" in sections:
            print("(e) finding-dense files...", file=sys.stderr, flush=True)
            bench_dense(report, ws, doc, env, args.dense_timeout)
        if "index" in sections:
            print("(c) indexing...", file=sys.stderr, flush=True)
            index_rss = bench_index(report, args.stdlib, tmp, env, args.edits)
        for name, kib in server_rss.items():
            target = f"<= {TARGET_RSS_MB} MB" if name == "gantry serve" else ""
            status = met(bool(kib) and kib / 1024 <= TARGET_RSS_MB) if target else ""
            report.add(
                "(d) peak RSS",
                name,
                "server VmHWM after (b)",
                mib(kib),
                target,
                status,
                "server process only"
                + (
                    " (ruff runs as a short-lived child per review)"
                    if name == "gantry serve"
                    else ""
                ),
            )
        for name, (kib, note) in index_rss.items():
            gantry = name.startswith("Gantry")
            report.add(
                "(d) peak RSS",
                name,
                "peak RSS of the index run",
                mib(kib),
                f"<= {TARGET_RSS_MB} MB" if gantry else "",
                met(kib / 1024 <= TARGET_RSS_MB) if gantry else "",
                note,
            )
    markdown = (
        f"Machine: {machine()}\n\n{report.markdown()}\n\n"
        f"Benchmark wall time: {time.perf_counter() - started:.0f} s\n"
    )
    print(markdown)
    if args.output:
        args.output.write_text(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
