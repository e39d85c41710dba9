"""What a model sees beside the code it writes tests for: the definitions the target calls, the
project's conftest fixtures, existing tests of the module (their style and imports), and the
target's callers, best first within a token budget (AI review's `ContextItem` and token
estimate). Read from the files with `ast`, so it needs no index; files whose content must stay
on this machine (inference.exclude and the built-in globs) are never read into it."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from lsp_server.review.ai.context import ContextItem, is_test_path, item_tokens
from remote_exec.inference.exclusion import is_excluded

from .jobs import project_files
from .targets import Target

DEFAULT_BUDGET = 4000
TEST_FILE_CHARS = 2400
"""An existing test file shows its head: imports, fixtures, the style of a few tests."""
_KIND_ORDER = {"definition": 0, "fixture": 1, "test": 2, "caller": 3}


@attrs.frozen
class TestContext:
    items: tuple[ContextItem, ...]
    tokens: int
    omitted: int
    sources: tuple[str, ...]
    """Relative paths of the files the items come from (what the inference client checks)."""


def _signature(node: ast.AST, lines: list[str]) -> str:
    """A def or class's header lines (decorators included) and its docstring."""
    start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    body = getattr(node, "body", [])
    end = body[0].lineno - 1 if body else node.lineno
    head = "\n".join(lines[start - 1 : max(end, node.lineno)])
    doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef | ast.ClassDef) else None
    return head + (f'\n    """{doc}"""' if doc else "")


def _names_used(nodes: Iterable[ast.AST]) -> set[str]:
    names: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                names.add(sub.attr)
    return names


def _parse(path: Path) -> tuple[ast.Module, list[str]] | None:
    try:
        text = path.read_text(encoding="utf-8")
        return ast.parse(text), text.splitlines()
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None


def build_context(
    target: Target,
    suite: Sequence[Path],
    *,
    budget: int = DEFAULT_BUDGET,
    exclude: Sequence[str] = (),
) -> TestContext:
    root = target.root
    parsed = _parse(target.path)
    if parsed is None:
        return TestContext((), 0, 0, ())
    tree, lines = parsed
    wanted = {s.name for s in target.symbols}
    own = [n for n in tree.body if getattr(n, "name", None) in wanted]
    used = _names_used(own) - wanted
    candidates: list[ContextItem] = []
    for node in tree.body:  # what the target calls, from its own module
        name = getattr(node, "name", None)
        if name in used and isinstance(node, ast.FunctionDef | ast.ClassDef):
            candidates.append(
                ContextItem("definition", target.relpath, name, _signature(node, lines))
            )
    for path in project_files(root):
        rel = path.relative_to(root).as_posix()
        if path == target.path or is_excluded(rel, exclude):
            continue
        found = _parse(path)
        if found is None:
            continue
        module, text_lines = found
        candidates += _items_of(rel, path, module, text_lines, target, wanted, used, suite)
    candidates.sort(key=lambda i: (_KIND_ORDER.get(i.kind, 9), i.path, i.name))
    kept: list[ContextItem] = []
    spent = 0
    for item in dict.fromkeys(candidates):
        cost = item_tokens(item)
        if spent + cost <= budget:
            kept.append(item)
            spent += cost
    sources = tuple(sorted({i.path for i in kept}))
    return TestContext(tuple(kept), spent, len(candidates) - len(kept), sources)


def _items_of(
    rel: str,
    path: Path,
    module: ast.Module,
    lines: list[str],
    target: Target,
    wanted: set[str],
    used: set[str],
    suite: Sequence[Path],
) -> list[ContextItem]:
    items: list[ContextItem] = []
    imported = _imports_from_target(module, target.module)
    if path.name == "conftest.py":
        for node in module.body:
            if isinstance(node, ast.FunctionDef) and any(
                "fixture" in ast.unparse(d) for d in node.decorator_list
            ):
                items.append(ContextItem("fixture", rel, node.name, _signature(node, lines)))
        return items
    if path in suite or (is_test_path(rel) and imported):
        if imported or target.module.split(".")[-1] in "\n".join(lines):
            head = "\n".join(lines)[:TEST_FILE_CHARS]
            items.append(ContextItem("test", rel, path.stem, head))
        return items
    imported_by_target = set().union(*map(_imported_names, _target_imports(target)))
    for node in module.body:  # definitions of what the target uses, imported from here
        name = getattr(node, "name", None)
        if (
            name in used
            and name in imported_by_target
            and isinstance(node, ast.FunctionDef | ast.ClassDef)
        ):
            items.append(ContextItem("definition", rel, name, _signature(node, lines)))
    if imported & wanted or (imported and wanted & _names_used(module.body)):
        for node in module.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and wanted & _names_used([node]):
                items.append(ContextItem("caller", rel, node.name, _signature(node, lines)))
    return items


def _imports_from_target(module: ast.Module, dotted: str) -> set[str]:
    """Names a module imports from the target module ({"*"} for the module itself)."""
    names: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom) and node.module == dotted:
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.Import) and any(a.name == dotted for a in node.names):
            names.add("*")
    return names


def _target_imports(target: Target) -> list[ast.AST]:
    parsed = _parse(target.path)
    if parsed is None:
        return []
    return [n for n in parsed[0].body if isinstance(n, ast.Import | ast.ImportFrom)]


def _imported_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in node.names} | {
            a.name for a in node.names
        }
    return set()
