"""The indexer against real workspaces in tmp_path and a real store."""

from __future__ import annotations

import os
import subprocess
import sysconfig
import threading
from pathlib import Path

import pytest

from lsp_server.analysis.indexer import Indexer
from lsp_server.analysis.symbols import extract_symbols
from lsp_server.analysis.workspace_files import (
    IgnoreRules,
    Skip,
    read_source_bytes,
    walk_source_files,
)
from lsp_server.config import IndexSettings, Settings
from lsp_server.store import Store

SNIPPETS: dict[str, tuple[str, bytes, set[tuple[str, str, str | None]]]] = {
    "python": (
        "a.py",
        (
            b'LIMIT = 3\nclass Greeter:\n    """Says hello."""\n'
            b"    def greet(self, name):\n        return self.prefix + name\n"
        ),
        {("LIMIT", "constant", None), ("Greeter", "class", None), ("greet", "method", "Greeter")},
    ),
    "javascript": (
        "a.js",
        (
            b"// Adds.\nfunction add(a, b) { return a + b; }\n"
            b"class Shape { area() { return this.w; } }\nconst sq = (x) => x * x;\n"
        ),
        {
            ("add", "function", None),
            ("Shape", "class", None),
            ("area", "method", "Shape"),
            ("sq", "function", None),
        },
    ),
    "typescript": (
        "a.ts",
        (
            b"interface Point { x: number }\nenum Color { Red }\n"
            b"export function norm(p: Point): number { return p.x; }\n"
        ),
        {("Point", "interface", None), ("Color", "enum", None), ("norm", "function", None)},
    ),
    "tsx": (
        "a.tsx",
        b"export function Title(props: {text: string}) { return <h1>{props.text}</h1>; }\n",
        {("Title", "function", None)},
    ),
    "go": (
        "a.go",
        (
            b"package main\n// Point is a point.\ntype Point struct { X int }\n"
            b"func (p *Point) Move(dx int) { p.X += dx }\nconst Pi = 3.14\n"
        ),
        {("Point", "struct", None), ("Move", "method", "Point"), ("Pi", "constant", None)},
    ),
    "rust": (
        "a.rs",
        (
            b"/// A point.\n#[derive(Debug)]\nstruct Point { x: i32 }\n"
            b"trait Shape { fn area(&self) -> f64; }\n"
            b"impl Point { fn norm(&self) -> i32 { self.x.abs() } }\n"
        ),
        {
            ("Point", "struct", None),
            ("Shape", "trait", None),
            ("area", "method", "Shape"),
            ("norm", "method", "Point"),
        },
    ),
    "java": (
        "A.java",
        (
            b"/** A greeter. */\npublic class Greeter {\n"
            b"  /** Greets. */\n  String greet(String name) { return name.trim(); }\n}\n"
        ),
        {("Greeter", "class", None), ("greet", "method", "Greeter")},
    ),
}


@pytest.mark.parametrize("language", sorted(SNIPPETS))
def test_extracts_definitions_in_each_language(language: str) -> None:
    _, source, expected = SNIPPETS[language]
    found = {(s.name, s.kind, s.container) for s in extract_symbols(language, source)}
    assert found == expected


def test_signature_docstring_and_refs() -> None:
    python = {s.name: s for s in extract_symbols("python", SNIPPETS["python"][1])}
    assert python["greet"].signature == "def greet(self, name)"
    assert python["Greeter"].docstring == "Says hello."
    assert python["greet"].refs == ("name", "prefix", "self")  # attribute names count
    assert "greet" not in python["Greeter"].refs  # methods keep their own identifiers

    go = {s.name: s for s in extract_symbols("go", SNIPPETS["go"][1])}
    assert go["Point"].docstring == "Point is a point."
    assert go["Move"].signature == "func (p *Point) Move(dx int)"
    rust = {s.name: s for s in extract_symbols("rust", SNIPPETS["rust"][1])}
    assert rust["Point"].docstring == "A point."  # the #[derive] between does not hide it
    assert set(rust["norm"].refs) >= {"x", "abs"}
    java = {s.name: s for s in extract_symbols("java", SNIPPETS["java"][1])}
    assert java["greet"].docstring == "Greets."
    js = {s.name: s for s in extract_symbols("javascript", SNIPPETS["javascript"][1])}
    assert js["add"].docstring == "Adds."


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for language, (name, source, _) in SNIPPETS.items():
        (root / language).mkdir(parents=True)
        (root / language / name).write_bytes(source)
    return root


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "store.db") as opened:
        yield opened


def _indexer(store: Store, root: Path, **settings) -> Indexer:
    return Indexer(store, root, Settings(**settings))


def test_index_all_then_nothing_to_do(store: Store, workspace: Path) -> None:
    indexer = _indexer(store, workspace)
    first = indexer.index_all()
    assert (first.files_seen, first.files_parsed, first.files_reused) == (7, 7, 0)
    assert first.symbols == sum(len(expected) for _, _, expected in SNIPPETS.values())
    assert set(store.file_states()) == {
        f"{language}/{name}" for language, (name, _, _) in SNIPPETS.items()
    }
    second = indexer.index_all()
    assert (second.files_unchanged, second.files_parsed, second.lines) == (7, 0, 0)


def test_same_content_is_never_parsed_twice(store: Store, workspace: Path) -> None:
    """A branch switch A -> B -> A: the return to A parses nothing."""
    indexer = _indexer(store, workspace)
    indexer.index_all()
    target = workspace / "python" / "a.py"
    version_a = target.read_bytes()
    target.write_bytes(version_a + b"\ndef added():\n    pass\n")
    to_b = indexer.index_paths([target])
    assert (to_b.files_parsed, to_b.files_reused) == (1, 0)
    target.write_bytes(version_a)
    os.utime(target, ns=(1, 1))  # a different mtime: the content hash must decide
    back_to_a = indexer.index_all()
    assert (back_to_a.files_parsed, back_to_a.files_reused) == (0, 1)
    assert {s.name for s in store.symbols_in("python/a.py")} == {"LIMIT", "Greeter", "greet"}


def test_copies_of_a_file_share_one_parse(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "copies"
    root.mkdir()
    for i in range(5):
        (root / f"m{i}.py").write_text("def shared():\n    return 1\n")
    stats = _indexer(store, root).index_all()
    assert (stats.files_parsed, stats.files_reused) == (1, 4)
    assert len(store.definitions("shared")) == 5


def test_skips_ignored_binary_oversize_and_non_utf8(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "skips"
    (root / "pkg" / "build").mkdir(parents=True)
    (root / "vendor").mkdir()
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".gitignore").write_text("*.gen.py\n")
    (root / "pkg" / ".gitignore").write_text("build/\n!keep.gen.py\n")
    (root / ".git" / "info" / "exclude").write_text("secret.py\n")
    (root / ".git" / "hooks.py").write_text("x = 1\n")
    files = {
        "ok.py": b"def ok():\n    pass\n",
        "top.gen.py": b"x = 1\n",
        "pkg/keep.gen.py": b"def kept():\n    pass\n",  # re-included by the nested file
        "pkg/build/out.py": b"x = 1\n",
        "secret.py": b"x = 1\n",
        "vendor/lib.py": b"x = 1\n",
        "blob.py": b"x = 1\n\x00\x01binary",
        "big.py": b"# padding\n" * 200,
        "latin.py": "s = 'café'\n".encode("latin-1"),
        "notes.txt": b"not source",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    settings = {"index": IndexSettings(exclude=["vendor/"]), "max_file_size_kb": 1}
    stats = _indexer(store, root, **settings).index_all()
    assert set(store.file_states()) == {"ok.py", "pkg/keep.gen.py"}
    assert stats.files_skipped == {"binary": 1, "too large": 1, "not UTF-8": 1, "ignored": 4}
    listed = set(walk_source_files(root, IgnoreRules(root, ["vendor/"])))
    assert listed == {"ok.py", "pkg/keep.gen.py", "blob.py", "big.py", "latin.py"}
    assert read_source_bytes(root / "ok.py", 1024) == (b"def ok():\n    pass\n", None)
    assert read_source_bytes(root / "latin.py", 1024) == (None, Skip.NOT_UTF8)


# Trees where .gitignore files apply or not, as ruff (the `ignore` crate) decides: outside a
# repository they do not; in one, they do from its root down, those above the walked folder
# too, with `.git/info/exclude`; a nested repository (or a `.git` file: a worktree) starts
# afresh. `.ignore` files apply everywhere and overrule .gitignore.
_GITIGNORE_TREE = {
    "plain/.gitignore": "ign.py\n",
    "plain/ign.py": "",
    "plain/a.py": "",
    "plain/sub/.gitignore": "x.py\n",
    "plain/sub/x.py": "",
    "plain/sub/repo/.git/info/exclude": "excl.py\n",
    "plain/sub/repo/.gitignore": "r.py\n/top.py\n",
    "plain/sub/repo/r.py": "",
    "plain/sub/repo/top.py": "",
    "plain/sub/repo/excl.py": "",
    "plain/sub/repo/ok.py": "",
    "plain/sub/repo/d/.gitignore": "ok.py\n!r.py\n",
    "plain/sub/repo/d/ok.py": "",
    "plain/sub/repo/d/r.py": "",
    "plain/sub/repo/d/top.py": "",
    "outer/.gitignore": "repo/z.py\n",
    "outer/repo/.git/info/exclude": "deep/e.py\n",
    "outer/repo/.gitignore": "deep/y.py\nout/\n*.gen.py\n",
    "outer/repo/z.py": "",
    "outer/repo/deep/y.py": "",
    "outer/repo/deep/e.py": "",
    "outer/repo/deep/k.py": "",
    "outer/repo/deep/k.gen.py": "",
    "outer/repo/deep/out/o.py": "",
    "outer/repo/deep/inner/.git": "gitdir: elsewhere\n",
    "outer/repo/deep/inner/i.gen.py": "",
    "outer/repo/deep/inner/i.py": "",
    # .ignore files apply everywhere, those above the walked folder too, before .gitignore
    "plain/.ignore": "dot.py\n",
    "plain/dot.py": "",
    "plain/sub/dot.py": "",
    "plain/sub/repo/.ignore": "!r.py\n",
    "outer/repo/deep/.ignore": "!k.gen.py\n",
}


@pytest.mark.parametrize(
    "walked",
    [
        "plain",
        "plain/sub",
        "plain/sub/repo",
        "plain/sub/repo/d",
        "outer",
        "outer/repo",
        "outer/repo/deep",
    ],
)
def test_gitignore_applies_where_ruff_applies_it(tmp_path: Path, walked: str) -> None:
    for rel, text in _GITIGNORE_TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    root = tmp_path / walked
    ruff = Path(sysconfig.get_path("scripts")) / "ruff"
    listed = subprocess.run(
        [ruff, "check", "--no-cache", "--isolated", "--show-files", "."],
        cwd=root,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    expected = {Path(line).relative_to(root).as_posix() for line in listed}
    assert expected  # every walked folder keeps some file
    assert set(walk_source_files(root, IgnoreRules(root))) == expected


def test_index_paths_handles_created_changed_deleted_and_newly_ignored(
    store: Store, workspace: Path
) -> None:
    indexer = _indexer(store, workspace)
    indexer.index_all()
    created = workspace / "python" / "new.py"
    created.write_text("def fresh():\n    pass\n")
    deleted = workspace / "go" / "a.go"
    deleted.unlink()
    stats = indexer.index_paths([created, deleted, workspace / "README.md"])
    assert (stats.files_parsed, stats.files_removed) == (1, 1)
    assert "go/a.go" not in store.file_states()
    assert [hit.path for hit in store.definitions("fresh")] == ["python/new.py"]
    (workspace / ".gitignore").write_text("new.py\n")
    (workspace / ".git").mkdir()  # .gitignore applies inside a git repository only
    stats = indexer.index_paths([created])
    assert stats.files_removed == 1 and "python/new.py" not in store.file_states()


def test_deleted_files_are_removed_but_their_content_kept_until_pruned(
    store: Store, workspace: Path
) -> None:
    indexer = _indexer(store, workspace)
    indexer.index_all()
    digest = store.file_states()["rust/a.rs"].content_hash
    (workspace / "rust" / "a.rs").unlink()
    assert indexer.index_all().files_removed == 1
    assert store.known_contents([digest]) == {digest}
    assert store.prune_contents() == 1
    assert store.known_contents([digest]) == set()


def test_cancelled_index_never_claims_unstored_files(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(200):  # enough files for several batches and the process pool
        (root / f"m{i:03}.py").write_text(f"def f{i}():\n    return {i}\n")
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int, _path: str) -> None:
        seen.append(done)
        if len(seen) == 2:
            cancel.set()

    stats = _indexer(store, root).index_all(progress=progress, cancel=cancel)
    assert stats.cancelled
    stored = store.file_states()
    assert 0 < len(stored) < 200
    # Every claimed file has its content and symbols stored.
    assert store.known_contents(s.content_hash for s in stored.values()) == {
        s.content_hash for s in stored.values()
    }
    for path in stored:
        assert len(store.symbols_in(path)) == 1
    # Resuming finishes the job without parsing the stored files again.
    resumed = _indexer(store, root).index_all()
    assert resumed.files_unchanged == len(stored)
    assert resumed.files_parsed == 200 - len(stored)
    assert len(store.file_states()) == 200


def test_full_text_search_finds_a_symbol_by_a_docstring_word(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "fts"
    root.mkdir()
    (root / "net.py").write_text(
        'def fetch(url):\n    """Download the page with retries and backoff."""\n'
    )
    (root / "other.py").write_text("def unrelated():\n    pass\n")
    _indexer(store, root).index_all()
    hits = store.search_symbols("retries")
    assert [(hit.name, hit.path, hit.start_line) for hit in hits] == [("fetch", "net.py", 0)]


def test_progress_reaches_the_total(store: Store, workspace: Path) -> None:
    calls: list[tuple[int, int]] = []
    _indexer(store, workspace).index_all(progress=lambda d, t, _p: calls.append((d, t)))
    assert calls and calls[-1] == (7, 7)
