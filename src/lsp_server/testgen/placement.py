"""Where kept tests go, and merging them there: the project's layout (a tests/ tree, or
test_*.py beside the modules), an existing test file extended without duplicate imports or
names, and the result formatted with ruff when the project uses ruff."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path

import attrs

from .candidates import Candidate
from .targets import Target

TEST_DIRS = ("tests", "test")


@attrs.frozen
class Layout:
    test_file: Path
    """Where the target's tests go (it may not exist yet)."""
    style: str
    """"tests-tree" or "beside"."""
    suite: tuple[Path, ...]
    """The project's existing test files."""
    uses_ruff: bool


@attrs.frozen
class Placement:
    path: Path
    text: str
    """The whole file after the merge."""
    created: bool
    renamed: tuple[tuple[str, str], ...] = ()
    """(candidate's name, the name it got) where its name was taken."""


def _test_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("test_*.py")) + sorted(root.rglob("*_test.py")):
        parts = path.relative_to(root).parts
        if not any(p.startswith(".") or p in ("venv", "node_modules", "build") for p in parts):
            found.append(path)
    return found


def uses_ruff(root: Path) -> bool:
    if (root / "ruff.toml").exists() or (root / ".ruff.toml").exists():
        return True
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return "ruff" in pyproject.get("tool", {})


def detect_layout(target: Target) -> Layout:
    root = target.root
    suite = tuple(_test_files(root))
    name = f"test_{target.path.stem}.py"
    tests_dir = next((root / d for d in TEST_DIRS if (root / d).is_dir()), None)
    beside = [p for p in suite if tests_dir is None or not p.is_relative_to(tests_dir)]
    if tests_dir is not None:
        existing = [p for p in suite if p.name == name and p.is_relative_to(tests_dir)]
        test_file, style = (existing[0] if existing else tests_dir / name), "tests-tree"
    elif beside:
        test_file, style = target.path.with_name(name), "beside"
    else:
        test_file, style = root / "tests" / name, "tests-tree"
    return Layout(test_file, style, suite, uses_ruff(root))


def _import_keys(node: ast.stmt) -> list[str]:
    """One normalised line per imported name: 'from m import a, b' -> two keys."""
    if isinstance(node, ast.Import):
        return [ast.unparse(ast.Import(names=[alias])) for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [
            ast.unparse(ast.ImportFrom(module=node.module, names=[alias], level=node.level))
            for alias in node.names
        ]
    return []


def _bound_name(key: str) -> str:
    """The name a one-name import statement binds: 'import a.b' -> a, 'from m import x as y' -> y."""
    alias = _aliases(ast.parse(key).body[0])[0]
    return alias.asname or alias.name.split(".")[0]


def _aliases(node: ast.stmt) -> list[ast.alias]:
    return node.names if isinstance(node, ast.Import | ast.ImportFrom) else []


def _used_names(c: Candidate) -> set[str]:
    """Names a candidate's test and helpers read: engines import more than each test uses
    (CrossHair always imports pytest), and an unused import is a lint error in its new home."""
    used = set()
    for text in (*c.preamble, c.source):
        used.update(n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name))
    return used


def _top_level(text: str) -> tuple[set[str], set[str], int]:
    """Import keys and top-level names of a module, and the line after its last import."""
    tree = ast.parse(text)
    imports: set[str] = set()
    names: set[str] = set()
    after_imports = 0
    for node in tree.body:
        if keys := _import_keys(node):
            imports.update(keys)
            after_imports = node.end_lineno or after_imports
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and not names:
            after_imports = max(after_imports, node.end_lineno or 0)  # the module docstring
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return imports, names, after_imports


def _free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def merge(existing: str, kept: Sequence[Candidate]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``existing`` (a test module's text, maybe empty) with ``kept`` added: imports it lacks
    after its own, helpers it lacks, and each test at the end under a name not yet taken."""
    imports, names, after = _top_level(existing)
    new_imports: list[str] = []
    preamble: list[str] = []
    tests: list[str] = []
    renamed = []
    for c in kept:
        used = _used_names(c)
        for line in c.imports:
            for key in _import_keys(ast.parse(line).body[0]):
                if key not in imports and _bound_name(key) in used:
                    imports.add(key)
                    new_imports.append(key)
        for statement in c.preamble:
            if statement not in existing and statement not in preamble:
                preamble.append(statement)
        name = _free_name(c.name, names)
        names.add(name)
        source = c.source
        if name != c.name:
            renamed.append((c.name, name))
            source = re.sub(rf"\bdef {re.escape(c.name)}\(", f"def {name}(", source, count=1)
        tests.append(source)
    lines = existing.splitlines()
    head, tail = lines[:after], lines[after:]
    head, new_imports = _join_imports(existing, head, new_imports)
    parts = ["\n".join(head + new_imports).strip("\n")]
    if preamble:
        parts.append("\n\n".join(preamble))
    if body := "\n".join(tail).strip("\n"):
        parts.append(body)
    parts.extend(tests)
    return "\n\n\n".join(p for p in parts if p) + "\n", tuple(renamed)


def _join_imports(existing: str, head: list[str], keys: list[str]) -> tuple[list[str], list[str]]:
    """New ``from m import x`` keys joined into the file's own one-line ``from m import ...``
    where it has one, else into one new statement per module, as a person would write them."""
    by_module: dict[tuple[str | None, int], list[ast.alias]] = {}
    plain = []
    for key in keys:
        node = ast.parse(key).body[0]
        if isinstance(node, ast.ImportFrom):
            by_module.setdefault((node.module, node.level), []).extend(node.names)
        else:
            plain.append(key)
    head = list(head)
    for node in ast.parse(existing).body if existing else ():
        if (
            isinstance(node, ast.ImportFrom)
            and node.lineno == node.end_lineno
            and (node.module, node.level) in by_module
            and node.names[0].name != "*"
        ):
            names = node.names + by_module.pop((node.module, node.level))
            joined = ast.ImportFrom(module=node.module, names=names, level=node.level)
            head[node.lineno - 1] = ast.unparse(joined)
    joined_new = [
        ast.unparse(ast.ImportFrom(module=module, names=names, level=level))
        for (module, level), names in by_module.items()
    ]
    return head, plain + joined_new


def ruff_format(text: str, path: Path, root: Path, ruff: str) -> str:
    """``text`` as ``ruff format`` makes it under the project's configuration; unchanged if
    ruff fails (a formatter's problem must not lose the tests)."""
    try:
        done = subprocess.run(
            [ruff, "format", "--stdin-filename", str(path), "-"],
            check=False,
            input=text,
            capture_output=True,
            text=True,
            cwd=root,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return text
    return done.stdout if done.returncode == 0 and done.stdout else text


def place(kept: Sequence[Candidate], layout: Layout, root: Path, *, ruff: str | None) -> Placement:
    """The test file with ``kept`` merged in (not written); ``ruff``: the binary to format with
    when the project uses ruff."""
    path = layout.test_file
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    text, renamed = merge(existing, kept)
    if ruff is not None and layout.uses_ruff:
        text = ruff_format(text, path, root, ruff)
    return Placement(path, text, created=not path.exists(), renamed=renamed)
