"""The eval's dataset: JSON lines, one case a line (the format is docs/eval.md).

A case is one file before and after a one-hunk change, labelled either with the line of the
bug the change seeds or as clean (a change that keeps the behaviour). A case may name a project
snapshot (a folder, relative to the dataset file) that the file belongs to: the engine's context
packs then come from it, as they come from the workspace in the editor.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import attrs

from lsp_server.review.findings import split_lines

FORMAT = 1
Kind = Literal["bug", "clean"]


class DatasetError(ValueError):
    """The dataset cannot be read; the message names the file and line."""


@attrs.frozen
class Label:
    kind: Kind
    line: int | None = None
    """The seeded bug's line in `after` (1-based); None for a clean change."""
    note: str = ""
    """What the change is (the mutation, the edit): for people reading results."""


@attrs.frozen
class Change:
    lines: frozenset[int]
    """The lines of `after` (0-based) the change wrote, or the line at a deletion."""
    count: int
    """Changed lines: each replaced, added or removed line once (a modified line is one)."""


@attrs.frozen
class Case:
    id: str
    path: str
    """The file's path in its project (what the model is told), with "/" separators."""
    before: str
    after: str
    label: Label
    project: Path | None = None
    """The project snapshot's folder, resolved; None for a single file."""

    def change(self) -> Change:
        return change(self.before, self.after)

    def to_json(self, dataset: Path | None = None) -> dict[str, Any]:
        """The case as a dataset line; `project` relative to the dataset file's folder."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "id": self.id,
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "label": {"kind": self.label.kind}
            | ({"line": self.label.line} if self.label.line is not None else {})
            | ({"note": self.label.note} if self.label.note else {}),
        }
        if self.project is not None:
            base = dataset.resolve().parent if dataset is not None else None
            project = self.project.resolve()
            data["project"] = (
                project.relative_to(base).as_posix()
                if base is not None and project.is_relative_to(base)
                else str(project)
            )
        return data


def change(before: str, after: str) -> Change:
    old, new = split_lines(before), split_lines(after)
    lines: set[int] = set()
    count = 0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        count += max(i2 - i1, j2 - j1)
        # A deletion wrote no line: the unit now holding the place where it was changed.
        lines.update(range(j1, j2) if j2 > j1 else [max(min(j1, len(new) - 1), 0)])
    return Change(frozenset(lines), count)


def hunks(before: str, after: str, context: int = 3) -> int:
    """How many hunks a unified diff of the two shows (with `context` lines around each)."""
    matcher = difflib.SequenceMatcher(None, split_lines(before), split_lines(after), False)
    return len(list(matcher.get_grouped_opcodes(context))) if before != after else 0


def load(path: Path) -> list[Case]:
    """The cases of the dataset file at `path`; DatasetError on the first unreadable line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the dataset ({exc})") from None
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = _case(json.loads(line), path.resolve().parent)
        except (ValueError, TypeError, KeyError) as exc:
            raise DatasetError(f"{path}:{number}: {_reason(exc)}") from None
        if case.id in seen:
            raise DatasetError(f"{path}:{number}: the id {case.id!r} is used twice")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise DatasetError(f"{path}: no cases")
    return cases


def dump(cases: Iterable[Case], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for case in cases:
            out.write(json.dumps(case.to_json(path), ensure_ascii=False) + "\n")


def _reason(exc: Exception) -> str:
    return f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)


def _case(data: Any, base: Path) -> Case:
    if not isinstance(data, dict):
        raise TypeError("a case is a JSON object")
    if data.get("format", FORMAT) != FORMAT:
        raise ValueError(f"format {data['format']!r}; this version reads format {FORMAT}")
    for field in ("id", "path", "before", "after"):
        if not isinstance(data[field], str):
            raise TypeError(f"{field} must be a string")
    if data["before"] == data["after"]:
        raise ValueError("before and after are the same: nothing changed")
    label = data["label"]
    if not isinstance(label, dict) or label.get("kind") not in ("bug", "clean"):
        raise ValueError('label must be {"kind": "bug", "line": N} or {"kind": "clean"}')
    line = label.get("line")
    after_lines = len(split_lines(data["after"]))
    if label["kind"] == "bug":
        if not isinstance(line, int) or isinstance(line, bool) or not 1 <= line <= after_lines:
            raise ValueError(f"a bug's label needs its line in after (1-{after_lines})")
    elif line is not None:
        raise ValueError("a clean change has no bug line")
    project = data.get("project")
    if project is not None:
        if not isinstance(project, str):
            raise ValueError("project must be a string (a folder)")
        folder = (base / project).resolve()
        if not folder.is_dir():
            raise ValueError(f"project {project}: no such folder")
        project = folder
    return Case(
        id=data["id"],
        path=data["path"],
        before=data["before"],
        after=data["after"],
        label=Label(label["kind"], line, str(label.get("note", ""))),
        project=project,
    )
