"""The local review: every engine that runs on this machine, without waiting for anything
remote. Pure: a snapshot (or files on disk) in, findings out.

An open document is reviewed from its text; files on disk are selected as `ruff check` would
select them and reviewed many to one ruff run. Both give the same findings and fingerprints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from lsp_server.analysis.fingerprint import IncrementalParser, fingerprint_findings
from lsp_server.analysis.workspace_files import (
    IgnoreRules,
    SourceText,
    read_source_text,
    skip_sentence,
    sniff,
)
from lsp_server.config import Settings
from lsp_server.review import ruff_engine
from lsp_server.review.findings import Finding, Snapshot, split_lines


@attrs.frozen
class LocalReview:
    findings: tuple[Finding, ...] = ()
    skipped: str | None = None
    """Why the document was not reviewed at all (too large, binary)."""
    problem: str | None = None
    """An engine that could not run (no ruff): the review is degraded, not failed."""


def skip_reason(snapshot: Snapshot) -> str | None:
    limit = snapshot.settings.max_file_size
    if len(snapshot.text) > limit:  # characters >= bytes / 4: a cheap first test
        size = len(snapshot.text.encode("utf-8", "surrogatepass"))
        if size > limit:
            return f"larger than max_file_size_kb ({size // 1024} KiB > {limit // 1024} KiB)"
    if "\x00" in snapshot.text:
        return "it looks binary (it contains NUL characters)"
    return None


def review(
    snapshot: Snapshot, root: Path | None = None, trees: IncrementalParser | None = None
) -> LocalReview:
    """Review an open document; `root` is the project root ruff runs from, `trees` the
    document's parser from its previous review (its next parse re-reads only what changed)."""
    if (reason := skip_reason(snapshot)) is not None:
        return LocalReview(skipped=reason)
    if snapshot.language != "python" or not snapshot.settings.ruff.enabled:
        return LocalReview()
    try:
        raw = ruff_engine.check(snapshot, root)
    except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed) as exc:
        return LocalReview(problem=str(exc))
    findings = fingerprint_findings(
        raw, snapshot.text, snapshot.language, trees, lines=snapshot.lines
    )
    return LocalReview(findings=tuple(findings))


@attrs.frozen
class Selection:
    files: tuple[Path, ...]
    """What ruff would read under the paths (with .gitignore as ruff applies it: inside a git
    repository only, and not to files named outright), less what `index.exclude` ignores."""
    skipped: tuple[tuple[Path, str], ...] = ()
    """(path, why) for what was named or found but is not reviewed."""


def select_files(root: Path, paths: Sequence[Path], settings: Settings) -> Selection:
    """The files on disk a review of `paths` covers. Raises RuffUnavailable, RuffFailed."""
    named, skipped = [], []
    for path in map(Path, map(os.path.normpath, paths)):  # as ruff lists them
        if not path.exists():
            skipped.append((path, "no such file or directory"))
        elif path.is_file() and path.suffix not in ruff_engine.PYTHON_SUFFIXES:
            skipped.append((path, "not a Python file (.py, .pyi or .ipynb)"))
        else:
            named.append(path)
    if not named:
        return Selection((), tuple(skipped))
    listed = ruff_engine.list_files(root, named, settings)
    found = set(map(str, listed))
    skipped += [
        (path, "excluded by the project's ruff settings")
        for path in named
        if path.is_file() and str(path) not in found
    ]
    # ruff's listing has .gitignore applied already, as ruff does; only Gantry's own patterns
    rules, files = IgnoreRules(root, settings.index.exclude, gitignore=False), []
    for path in listed:
        if path.name == "pyproject.toml" or _ignored(rules, root, path):
            continue
        try:
            skip = sniff(path, settings.max_file_size)
        except OSError as exc:
            skipped.append((path, exc.strerror or str(exc)))
            continue
        if skip is None:
            files.append(path)
        else:
            skipped.append((path, skip_sentence(skip, settings.max_file_size)))
    return Selection(tuple(files), tuple(skipped))


def _ignored(rules: IgnoreRules, root: Path, path: Path) -> bool:
    """Whether `index.exclude` ignores a file (inside the workspace only)."""
    relative = Path(os.path.relpath(path, root))
    return relative.parts[0] != ".." and rules.is_ignored(relative.as_posix(), False)


@attrs.frozen
class FileReview:
    path: Path
    findings: tuple[Finding, ...] = ()
    source: SourceText | None = None
    """The text the findings point into; None for a file without findings (it is not read)."""
    lines: Sequence[str] = ()
    """`source` split as ruff counts lines (and LSP: `\\n`, `\\r\\n` and `\\r` only)."""


@attrs.frozen
class FilesReview:
    files: tuple[FileReview, ...] = ()
    """Every file reviewed, clean ones included."""
    failed: tuple[tuple[Path, str], ...] = ()
    """(path, why) for files ruff could not lint."""
    problem: str | None = None
    """Ruff could not run at all: nothing was reviewed."""


def review_files(
    root: Path, files: Sequence[Path], settings: Settings, *, fingerprints: bool = True
) -> FilesReview:
    """Review files on disk (as selected by `select_files`) in one ruff run from `root`.
    Without `fingerprints` (nobody will read them) the findings' fingerprints stay empty:
    computing them parses every file with findings, the costliest step."""
    if not settings.ruff.enabled:
        return FilesReview(tuple(FileReview(path) for path in files))
    try:
        result = ruff_engine.check_paths(root, files, settings)
    except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed) as exc:
        return FilesReview(problem=str(exc))
    reviews, failed, origin = [], [], ruff_engine.provenance(settings)
    for path in files:
        key = os.path.normpath(path)
        if key in result.failed:
            failed.append((path, f"ruff could not lint it: {result.failed[key]}"))
            continue
        raw = result.findings.get(key)
        if not raw:
            reviews.append(FileReview(path))
            continue
        try:
            source = read_source_text(path)
        except OSError as exc:
            failed.append((path, exc.strerror or str(exc)))
            continue
        lines = split_lines(source.text)
        found = [
            ruff_engine.to_finding(item, lines, settings, origin, source.cells) for item in raw
        ]
        if fingerprints:
            found = fingerprint_findings(
                found, source.text, "python", lines=lines, scan=source.cells is None
            )
        reviews.append(FileReview(path, tuple(found), source, lines))
    return FilesReview(tuple(reviews), tuple(failed))


class LocalEngine:
    """The local review as an engine of open documents: each document keeps its parser between
    reviews (one at a time), so a review re-parses only what changed."""

    source = "ruff"

    def __init__(self) -> None:
        self._trees: dict[str, IncrementalParser] = {}

    def review(self, snapshot: Snapshot, root: Path | None) -> LocalReview:
        return review(snapshot, root, self._trees.setdefault(snapshot.uri, IncrementalParser()))

    def forget(self, uri: str) -> None:
        self._trees.pop(uri, None)
