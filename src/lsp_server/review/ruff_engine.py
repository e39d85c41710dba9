"""Local Python review with ruff: findings, their fixes, and whole-file fixes.

Ruff runs from the project root, as `ruff check` would be run there, with `--force-exclude` so
ruff's default exclusions and the project's `exclude`/`extend-exclude` apply to every file
named: an open document goes through stdin (`--stdin-filename`), files on disk are passed as
paths, many in one invocation. Both ways read the same configuration and give the same findings.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from lsp_server.config import Level, Settings, severity_for
from lsp_server.review.findings import Edit, Finding, Fix, Provenance, Snapshot

_TIMEOUT_S = 30
_PATHS_TIMEOUT_S = 600  # a whole tree in one invocation
PYTHON_SUFFIXES = frozenset({".py", ".pyi", ".ipynb"})
"""What ruff reads as Python by default; a file named outright is checked only if it is one."""
SYNTAX_ERROR = "invalid-syntax"
"""Ruff's name for a syntax error (older versions gave it no code at all)."""
_FAILED_TO_LINT = "warning: Failed to lint "


class RuffUnavailable(RuntimeError):
    """No usable ruff binary: Python files get no local review."""


class RuffFailed(RuntimeError):
    """Ruff ran but did not produce an answer (bad configuration, crash)."""


def find_ruff(settings: Settings) -> str:
    """The ruff binary, resolved once per configured path and $PATH (reviews run often)."""
    return _find_ruff(settings.ruff.path, os.environ.get("PATH", os.defpath))


@functools.lru_cache(maxsize=8)
def _find_ruff(configured: str | None, search_path: str) -> str:
    if configured:
        path = shutil.which(os.path.expanduser(configured), path=search_path)
        if path is None:
            raise RuffUnavailable(f"ruff.path {configured!r} is not an executable")
        return path
    import sysconfig  # slow to import; only needed here

    # The ruff installed beside Gantry first: it is the version Gantry was tested with.
    scripts = Path(sysconfig.get_path("scripts")) / ("ruff.exe" if os.name == "nt" else "ruff")
    path = str(scripts) if scripts.is_file() else shutil.which("ruff", path=_absolute(search_path))
    if path is None:
        raise RuffUnavailable("ruff was not found; install it (pip install ruff) or set ruff.path")
    return path


def provenance(settings: Settings) -> Provenance:
    """What the findings of a ruff run with `settings` come from."""
    return _provenance(find_ruff(settings))


@functools.lru_cache(maxsize=8)
def _provenance(binary: str) -> Provenance:
    """Asked once per binary: `ruff --version` costs a process start, reviews run often."""
    try:
        proc = subprocess.run(
            [binary, "--version"], capture_output=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return Provenance("ruff")
    version = proc.stdout.decode("utf-8", "replace").strip().removeprefix("ruff ")
    return Provenance("ruff", version if proc.returncode == 0 and version else None)


def _absolute(search_path: str) -> str:
    """$PATH without its relative entries ("", "."): the server runs in the workspace, where
    those would find the repository's own `ruff`."""
    entries = search_path.split(os.pathsep)
    return os.pathsep.join(entry for entry in entries if os.path.isabs(entry))


def default_level(rule: str) -> Level:
    """Breakage is an error, likely bugs are warnings, style is information."""
    if rule in (SYNTAX_ERROR, "syntax-error") or rule.startswith(("E9", "F63", "F7", "F82")):
        return "error"
    if rule.startswith(("F", "B", "S", "PLE", "ASYNC", "RUF006")):
        return "warning"
    return "info"


def _args(settings: Settings) -> list[str]:
    args = []
    if settings.ruff.select:
        args.append("--select=" + ",".join(settings.ruff.select))
    if settings.ruff.extend_select:
        args.append("--extend-select=" + ",".join(settings.ruff.extend_select))
    if settings.ruff.ignore:
        args.append("--ignore=" + ",".join(settings.ruff.ignore))
    return args


def _run(
    settings: Settings,
    args: list[str],
    root: Path | None,
    stdin: str | None = None,
    timeout: float = _TIMEOUT_S,
) -> subprocess.CompletedProcess[bytes]:
    """Ruff from `root` (the project root; relative settings such as `src` mean the same as in
    a `ruff check` run there)."""
    binary = find_ruff(settings)
    try:
        proc = subprocess.run(
            [binary, *args],
            input=stdin.encode("utf-8", "surrogatepass") if stdin is not None else None,
            capture_output=True,
            cwd=root if root is not None and root.is_dir() else None,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        _find_ruff.cache_clear()  # the binary went away: look again next time
        raise RuffUnavailable(f"ruff could not be started: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuffFailed(f"ruff took longer than {timeout:g} s") from exc
    if proc.returncode not in (0, 1):
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuffFailed(f"ruff failed: {message[-1] if message else proc.returncode}")
    return proc


def _json(proc: subprocess.CompletedProcess[bytes]) -> list[dict]:
    out = proc.stdout.decode("utf-8", "replace")
    try:
        return json.loads(out)
    except json.JSONDecodeError as exc:
        raise RuffFailed(f"ruff answered something that is not JSON: {out[:200]!r}") from exc


def _check_args(settings: Settings) -> list[str]:
    return [
        "check",
        "--output-format=json",
        "--no-fix",
        "--exit-zero",
        "--force-exclude",
        *_args(settings),
    ]


def _position(location: dict, lines: Sequence[str], first_line: int) -> tuple[int, int]:
    """Ruff's 1-based row/column (in characters; rows count from `first_line`, the start of a
    notebook cell) -> a 0-based position inside the text."""
    line, column = first_line + location["row"] - 1, location["column"] - 1
    if line >= len(lines):  # ruff may point just past the end of the file
        return (len(lines), 0)
    return (line, min(column, len(lines[line].rstrip("\r\n"))))


def to_finding(
    raw: dict,
    lines: Sequence[str],
    settings: Settings,
    provenance: Provenance,
    cells: Mapping[int, int] | None = None,
) -> Finding:
    """One item of ruff's JSON output as a Finding on `lines`; `cells` maps a notebook's cell
    numbers to their first line in the text, since ruff counts rows per cell."""
    rule = raw.get("code") or raw.get("name") or SYNTAX_ERROR
    first_line = cells.get(raw["cell"], 0) if cells and raw.get("cell") else 0
    fix = None
    if raw.get("fix") and raw["fix"].get("applicability") in ("safe", "unsafe"):
        edits = tuple(
            Edit(
                _position(e["location"], lines, first_line),
                _position(e["end_location"], lines, first_line),
                e["content"],
            )
            for e in raw["fix"]["edits"]
        )
        fix = Fix(raw["fix"].get("message") or raw["message"], raw["fix"]["applicability"], edits)
    return Finding(
        rule=rule,
        message=raw["message"],
        level=severity_for(rule, settings, default_level(rule)),
        start=_position(raw["location"], lines, first_line),
        end=_position(raw["end_location"], lines, first_line),
        provenance=provenance,
        url=raw.get("url"),
        fix=fix,
    )


def check(snapshot: Snapshot, root: Path | None = None) -> list[Finding]:
    """Ruff's findings for a snapshot (without fingerprints); none when the project excludes
    the file."""
    settings = snapshot.settings
    args = [*_check_args(settings), "--stdin-filename", snapshot.path, "-"]
    raw = _json(_run(settings, args, root or Path(snapshot.path).parent, snapshot.text))
    lines, origin = snapshot.lines, provenance(settings)
    return [to_finding(item, lines, settings, origin) for item in raw]


@attrs.frozen
class PathsResult:
    """Ruff's raw findings for files on disk, by normalised absolute path."""

    findings: dict[str, list[dict]]
    failed: dict[str, str]
    """Files ruff could not lint (it says why on stderr and reports nothing for them)."""


def check_paths(root: Path, paths: Sequence[Path], settings: Settings) -> PathsResult:
    """One ruff run over files on disk; like `ruff check`, it keeps its cache in the project."""
    proc = _run(
        settings, [*_check_args(settings), "--", *map(str, paths)], root, timeout=_PATHS_TIMEOUT_S
    )
    findings: dict[str, list[dict]] = {}
    for item in _json(proc):
        findings.setdefault(os.path.normpath(item["filename"]), []).append(item)
    return PathsResult(findings, _failures(proc.stderr.decode("utf-8", "replace"), root))


def _failures(stderr: str, root: Path) -> dict[str, str]:
    """`warning: Failed to lint PATH: REASON` lines, by absolute path (ruff prints it relative
    to where it ran)."""
    failed = {}
    for line in stderr.splitlines():
        if line.startswith(_FAILED_TO_LINT):
            named, _, reason = line.removeprefix(_FAILED_TO_LINT).partition(": ")
            failed[os.path.normpath(root / named)] = reason
    return failed


def list_files(root: Path, paths: Sequence[Path], settings: Settings) -> list[Path]:
    """The files `ruff check PATHS` would read from `root`: its own discovery and exclusions."""
    proc = _run(
        settings, ["check", "--show-files", "--force-exclude", "--", *map(str, paths)], root
    )
    return [Path(line) for line in proc.stdout.decode("utf-8", "replace").splitlines() if line]


def fix_all(snapshot: Snapshot, *, unsafe: bool = False, root: Path | None = None) -> str:
    """The snapshot's text with every safe (or also unsafe) fix applied (unchanged when the
    project excludes the file)."""
    args = ["check", "--fix-only", "--exit-zero", "--force-exclude", *_args(snapshot.settings)]
    if unsafe:
        args.append("--unsafe-fixes")
    args += ["--stdin-filename", snapshot.path, "-"]
    proc = _run(snapshot.settings, args, root or Path(snapshot.path).parent, snapshot.text)
    return proc.stdout.decode("utf-8", "replace")
