"""What to generate tests for: ``FILE[::SYMBOL]``, a module's public functions and classes or
one of them, and where that module lives in its project (the root a job bundles, the import
root, the dotted module name)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import attrs

from lsp_server.analysis.workspace_files import decode_python

from .project_env import NO_ENV, ProjectEnv, find_env

PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")
GPU_MODULES = frozenset(("torch", "cupy", "jax"))
"""A module importing one of these needs a GPU to test: its jobs run only on a gateway."""


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
    project_env: ProjectEnv = NO_ENV
    """The project's installed packages, bound read-only into the local sandbox for its tests
    to import (or why its virtual environment is not used)."""
    needs_gpu: str | None = None
    """Why its tests need a GPU (it imports torch, or the user marked it), when they do: its
    jobs then ask for one, so they run only on a gateway and wait in the queue meanwhile."""

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


def lensed_symbols(source: str) -> tuple[Symbol, ...]:
    """What an editor offers "Generate tests" over: the public top-level functions and classes,
    and the public methods of those classes (named ``Class.method``, kind "method"). Raises
    SyntaxError or ValueError for a module that does not parse."""
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_"):
            continue
        is_class = isinstance(node, ast.ClassDef)
        found.append(Symbol(node.name, "class" if is_class else "function", node.lineno))
        if is_class:
            found.extend(
                Symbol(f"{node.name}.{item.name}", "method", item.lineno)
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and not item.name.startswith("_")
            )
    return tuple(found)


def symbols_in_lines(source: str, first: int, last: int) -> tuple[Symbol, ...]:
    """The public top-level functions and classes whose lines (decorators included) a selection
    of lines (1-based, inclusive) overlaps: a cursor in a method picks its class."""
    tree = ast.parse(source)
    chosen = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_"):
            continue
        start = min([d.lineno for d in node.decorator_list] + [node.lineno])
        if start <= last and first <= (node.end_lineno or node.lineno):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            chosen.append(Symbol(node.name, kind, node.lineno))
    return tuple(chosen)


def gpu_need(source: str, relpath: str, gpu_paths: Sequence[str] = ()) -> str | None:
    """Why a module's tests need a GPU: it imports torch, cupy or jax, or its path (relative
    to the project root) matches one of ``gpu_paths`` (gitignore-style globs); else None."""
    import pathspec

    if gpu_paths and pathspec.GitIgnoreSpec.from_lines(gpu_paths).match_file(relpath):
        return "testgen.gpu_paths marks it"
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in GPU_MODULES:
                return f"it imports {name.split('.')[0]}"
    return None


def for_source(
    path: Path,
    source: str,
    symbols: tuple[Symbol, ...] | None = None,
    *,
    gpu_paths: Sequence[str] = (),
) -> Target:
    """The target of ``symbols`` (every public function and class when None) in the module at
    ``path`` whose text is ``source`` (an editor's buffer: the file may differ, or not exist)."""
    whole = symbols is None
    if symbols is None:
        symbols = public_symbols(source)
    if not symbols:
        raise TargetError(f"{path.name}: has no public functions or classes to test")
    root = _project_root(path)
    import_root, module = _import_root(path, root)
    if not import_root.is_relative_to(root):
        raise TargetError(f"{path.name}: its package reaches above the project root {root}")
    needs_gpu = gpu_need(source, path.relative_to(root).as_posix(), gpu_paths)
    env = find_env(root)
    return Target(path, root, import_root, module, symbols, whole, env, needs_gpu)


def moved(target: Target, root: Path) -> Target:
    """``target`` in a copy of its project at ``root`` (a snapshot the run reads instead of the
    project, which may change meanwhile)."""
    return attrs.evolve(
        target,
        path=root / target.relpath,
        root=root,
        import_root=root / target.import_relpath,
    )


def resolve(spec: str, *, cwd: Path | None = None, gpu_paths: Sequence[str] = ()) -> Target:
    """The target ``FILE[::SYMBOL]`` names; TargetError when it cannot be used."""
    file, _, symbol = spec.partition("::")
    path = ((cwd or Path.cwd()) / file).resolve()
    if path.suffix != ".py":
        raise TargetError(f"{file}: not a Python file")
    if not path.is_file():
        raise TargetError(f"{file}: no such file")
    try:
        source = decode_python(path.read_bytes())  # its declared encoding, as Python reads it
        symbols = public_symbols(source)
    except (OSError, SyntaxError, ValueError) as exc:
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
    needs_gpu = gpu_need(source, path.relative_to(root).as_posix(), gpu_paths)
    env = find_env(root)
    return Target(path, root, import_root, module, symbols, not symbol, env, needs_gpu)
