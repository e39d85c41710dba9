"""`gantry index` as a user runs it: a real subprocess on a temporary workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _gantry(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_index_prints_a_summary_and_reuses_on_the_second_run(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.gantry]\nstore = ".gantry/store.db"\n')
    (root / ".gitignore").write_text("generated/\n")
    (root / ".git").mkdir()  # .gitignore applies inside a git repository only
    (root / "generated").mkdir()
    (root / "generated" / "out.py").write_text("x = 1\n")
    (root / "app.py").write_text('def main():\n    """Entry point."""\n    return 0\n')
    (root / "lib.go").write_text("package lib\nfunc Add(a, b int) int { return a + b }\n")
    (root / "blob.py").write_bytes(b"\x00\x01\x02")

    first = _gantry("index", str(root), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "files: 2 indexed, 0 reused, 0 unchanged, 0 removed" in first.stdout
    assert "skipped: 1 binary, 1 ignored" in first.stdout
    assert "symbols: 2" in first.stdout
    assert f"store: {root / '.gantry' / 'store.db'}" in first.stdout
    assert (root / ".gantry" / "store.db").is_file()

    second = _gantry("index", cwd=root)
    assert second.returncode == 0, second.stderr
    assert "files: 0 indexed, 0 reused, 2 unchanged, 0 removed" in second.stdout


def test_index_refuses_a_path_that_is_not_a_directory(tmp_path: Path) -> None:
    result = _gantry("index", str(tmp_path / "missing"), cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
    assert result.stdout == ""


def test_a_store_path_holding_another_file_is_refused_with_a_message(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("mine, not a database\n")
    (root / "pyproject.toml").write_text('[tool.gantry]\nstore = "notes.txt"\n')
    result = _gantry("index", str(root), cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot be opened" in result.stderr and "Traceback" not in result.stderr
    assert (root / "notes.txt").read_text() == "mine, not a database\n"
