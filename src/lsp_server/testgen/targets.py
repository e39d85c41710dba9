"""What to generate tests for: ``FILE[::SYMBOL]``, a module's public functions and classes or
one of them, and where that module lives in its project (the root a job bundles, the import
root, the dotted module name)."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs

PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")


class TargetError(ValueError):
    """The target cannot be used; the message says why, for the user."""


@attrs.frozen
class Symbol:
    name: str
    kind: str
    """"function" or "class"."""
    line: int
    """1-based line of its ``def``/``class``."""


@attrs.frozen
class Target:
    path: Path
    """The module's file, absolute."""
    root: Path
    """The project root: the nearest folder above with a project marker (else the file's)."""
    import_root: Path
    """The folder the module is imported from (the root, or e.g. root/src)."""
    module: str
    """Dotted module name, importable from ``import_root``."""
    symbols: tuple[Symbol, ...]
    """What is tested: every public function and class, or the one named."""
    whole_module: bool
    """True when the target named no symbol."""

    @property
    def relpath(self) -> str:
        return self.path.relative_to(self.root).as_posix()

    @property
    def import_relpath(self) -> str:
        return self.import_root.relative_to(self.root).as_posix()


def public_symbols(source: str) -> tuple[Symbol, ...]:
    """Top-level functions and classes whose names do not start with an underscore."""
    tree = ast.parse(source)
    return tuple(
        Symbol(node.name, "class" if isinstance(node, ast.ClassDef) else "function", node.lineno)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
    )


def _project_root(path: Path) -> Path:
    for folder in path.parents:
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return path.parent


def _import_root(path: Path, root: Path) -> tuple[Path, str]:
    """Walk up through packages (folders with ``__init__.py``) to the folder above them."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists() and folder != root:
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def resolve(spec: str, *, cwd: Path | None = None) -> Target:
    """The target ``FILE[::SYMBOL]`` names; TargetError when it cannot be used."""
    file, _, symbol = spec.partition("::")
    path = ((cwd or Path.cwd()) / file).resolve()
    if path.suffix != ".py":
        raise TargetError(f"{file}: not a Python file")
    if not path.is_file():
        raise TargetError(f"{file}: no such file")
    try:
        symbols = public_symbols(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise TargetError(f"{file}: cannot be parsed ({exc})") from None
    if symbol:
        # Methods are tested through their class: the engines take top-level names.
        top = symbol.split(".")[0]
        chosen = tuple(s for s in symbols if s.name == top)
        if not chosen:
            raise TargetError(f"{file}: no public top-level function or class {top!r}")
        symbols = chosen
    elif not symbols:
        raise TargetError(f"{file}: has no public functions or classes to test")
    root = _project_root(path)
    import_root, module = _import_root(path, root)
    if not import_root.is_relative_to(root):
        raise TargetError(f"{file}: its package reaches above the project root {root}")
    return Target(path, root, import_root, module, symbols, whole_module=not symbol)
