"""Kept tests into the project's files, as the editor delivers them: whether a test module
holds a test already (under any name), the module with tests merged in and formatted as the
project formats, and a write that never leaves the workspace folder."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path

from .candidates import Candidate


def read_if_there(path: Path) -> str | None:
    """The file's text; None when it does not exist (yet)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _shape(node: ast.AST) -> str:
    """A test function as code, whatever its name and layout."""
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    return ast.dump(ast.FunctionDef(**{**vars(node), "name": "_"}))


def has_test(existing: str, test: Candidate) -> bool:
    """Whether the test module ``existing`` holds ``test`` under whatever name and layout."""
    wanted = _shape(ast.parse(test.source).body[0])
    try:
        tree = ast.parse(existing)
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _shape(node) == wanted
        for node in tree.body
    )


def merged_text(
    root: Path, path: Path, tests: Sequence[Candidate], existing: str | None, settings
) -> str:
    """The test module ``existing`` (None: a new one) with ``tests`` merged in, formatted as
    the project formats (ruff, when it uses ruff). SyntaxError when ``existing`` does not
    parse."""
    from lsp_server.review.ruff_engine import RuffUnavailable, find_ruff

    from .placement import merge, ruff_format, uses_ruff

    text, _ = merge(existing or "", tests)
    if uses_ruff(root):
        try:
            text = ruff_format(text, path, root, find_ruff(settings))
        except RuffUnavailable:
            pass
    return text


def write_inside(root: Path, path: Path, text: str) -> None:
    """Write ``text`` to ``path`` only if it lies inside ``root`` without passing through a
    symbolic link (a repository may plant one pointing anywhere); OSError otherwise."""
    root = Path(os.path.abspath(root))  # the folder itself may be reached through a link
    path = Path(os.path.abspath(path))
    if not path.is_relative_to(root) or path == root:
        raise OSError(f"{path} is outside the workspace folder {root}")
    folder = root
    for part in path.relative_to(root).parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise OSError(f"{folder} is a symbolic link")
        folder.mkdir(exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
