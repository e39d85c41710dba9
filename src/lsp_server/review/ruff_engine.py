"""Local Python review with ruff: findings, their fixes, and whole-file fixes.

Ruff runs as a subprocess on the snapshot's text through stdin, with the document's path as
`--stdin-filename` so the project's own ruff configuration applies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from lsp_server.config import Level, Settings, severity_for
from lsp_server.review.findings import Edit, Finding, Fix, Snapshot

_TIMEOUT_S = 30


class RuffUnavailable(RuntimeError):
    """No usable ruff binary: Python files get no local review."""


class RuffFailed(RuntimeError):
    """Ruff ran but did not produce an answer (bad configuration, crash)."""


def find_ruff(settings: Settings) -> str:
    if settings.ruff.path:
        path = shutil.which(os.path.expanduser(settings.ruff.path))
        if path is None:
            raise RuffUnavailable(f"ruff.path {settings.ruff.path!r} is not an executable")
        return path
    import sysconfig  # slow to import; only needed here

    # The ruff installed beside Gantry first: it is the version Gantry was tested with.
    scripts = Path(sysconfig.get_path("scripts")) / ("ruff.exe" if os.name == "nt" else "ruff")
    path = str(scripts) if scripts.is_file() else shutil.which("ruff", path=_absolute_path())
    if path is None:
        raise RuffUnavailable("ruff was not found; install it (pip install ruff) or set ruff.path")
    return path


def _absolute_path() -> str:
    """$PATH without its relative entries ("", "."): the server runs in the workspace, where
    those would find the repository's own `ruff`."""
    entries = os.environ.get("PATH", os.defpath).split(os.pathsep)
    return os.pathsep.join(entry for entry in entries if os.path.isabs(entry))


def default_level(rule: str) -> Level:
    """Breakage is an error, likely bugs are warnings, style is information."""
    if rule in ("syntax-error",) or rule.startswith(("E9", "F63", "F7", "F82")):
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


def _run(binary: str, args: list[str], snapshot: Snapshot) -> str:
    cwd = Path(snapshot.path).parent
    try:
        proc = subprocess.run(
            [binary, *args, "--stdin-filename", snapshot.path, "-"],
            input=snapshot.text.encode("utf-8", "surrogatepass"),
            capture_output=True,
            cwd=cwd if cwd.is_dir() else None,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise RuffUnavailable(f"ruff could not be started: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuffFailed(f"ruff took longer than {_TIMEOUT_S} s") from exc
    if proc.returncode not in (0, 1):
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuffFailed(f"ruff failed: {message[-1] if message else proc.returncode}")
    return proc.stdout.decode("utf-8", "replace")


def _position(location: dict, lines: list[str]) -> tuple[int, int]:
    """Ruff's 1-based row/column (in characters) -> a 0-based position inside the text."""
    line, column = location["row"] - 1, location["column"] - 1
    if line >= len(lines):  # ruff may point just past the end of the file
        return (len(lines), 0)
    return (line, min(column, len(lines[line].rstrip("\r\n"))))


def _finding(raw: dict, lines: list[str], settings: Settings) -> Finding:
    rule = raw.get("code") or "syntax-error"
    fix = None
    if raw.get("fix") and raw["fix"].get("applicability") in ("safe", "unsafe"):
        edits = tuple(
            Edit(_position(e["location"], lines), _position(e["end_location"], lines), e["content"])
            for e in raw["fix"]["edits"]
        )
        fix = Fix(raw["fix"].get("message") or raw["message"], raw["fix"]["applicability"], edits)
    return Finding(
        rule=rule,
        message=raw["message"],
        level=severity_for(rule, settings, default_level(rule)),
        start=_position(raw["location"], lines),
        end=_position(raw["end_location"], lines),
        engine="ruff",
        url=raw.get("url"),
        fix=fix,
    )


def check(snapshot: Snapshot) -> list[Finding]:
    """Ruff's findings for a snapshot (without fingerprints)."""
    settings = snapshot.settings
    out = _run(
        find_ruff(settings),
        ["check", "--output-format=json", "--no-fix", "--exit-zero", *_args(settings)],
        snapshot,
    )
    try:
        raw = json.loads(out)
    except json.JSONDecodeError as exc:
        raise RuffFailed(f"ruff answered something that is not JSON: {out[:200]!r}") from exc
    lines = snapshot.text.splitlines(keepends=True)
    return [_finding(item, lines, settings) for item in raw]


def fix_all(snapshot: Snapshot, *, unsafe: bool = False) -> str:
    """The snapshot's text with every safe (or also unsafe) fix applied."""
    args = ["check", "--fix-only", "--exit-zero", *_args(snapshot.settings)]
    if unsafe:
        args.append("--unsafe-fixes")
    return _run(find_ruff(snapshot.settings), args, snapshot)
