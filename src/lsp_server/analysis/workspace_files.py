"""Which workspace files Gantry reads, and reading them: shared by the indexer, the server and
`gantry check`, so all three agree on what is ignored, binary, too large or not UTF-8."""

from __future__ import annotations

import enum
import io
import json
import os
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs
import pathspec

from lsp_server.analysis.languages import language_for_path

BINARY_SNIFF_BYTES = 8192
_LINE_END = re.compile(r"\r\n?|\n")


class Skip(enum.StrEnum):
    IGNORED = "ignored"
    BINARY = "binary"
    TOO_LARGE = "too large"
    NOT_UTF8 = "not UTF-8"


def skip_sentence(skip: Skip, max_bytes: int) -> str:
    return {
        Skip.IGNORED: "it is ignored (.gitignore or the index exclude setting)",
        Skip.BINARY: "it looks binary (a NUL byte in its first 8 KiB)",
        Skip.TOO_LARGE: f"it is larger than the {max_bytes // 1024} KiB limit (max_file_size_kb)",
        Skip.NOT_UTF8: "it is not valid UTF-8",
    }[skip]


_Chain = tuple[tuple[int, str, pathspec.GitIgnoreSpec], ...]
"""Ignore files that apply inside a directory, outermost first: (characters to strip from a
root-relative path, prefix to put before it, spec), making the path relative to the file's
own directory."""


def _decide(chain: _Chain, candidate: str) -> bool | None:
    """Whether the deepest file of `chain` that matches `candidate` ignores it; None if none
    matches."""
    decided = None
    for strip, lead, spec in chain:
        result = spec.check_file(lead + candidate[strip:])
        if result.include is not None:
            decided = result.include
    return decided


def _lead(folders: list[Path]) -> str:
    """The path from the last of `folders` (a root's ancestors, nearest first) down to the
    root, as a prefix."""
    inner = "/".join(reversed([folder.name for folder in folders]))
    return inner + "/" if inner else ""


class IgnoreRules:
    """What ruff skips when it walks the workspace (the `ignore` crate's rules), plus the user's
    exclude patterns, which always win. `.gitignore` files apply only inside a git repository
    (a directory with a `.git`, at or above them), from its root down (those above the
    workspace root included), beside the repository's `.git/info/exclude`; a nested repository
    starts afresh. `.ignore` files apply everywhere, those above the root too, and decide
    before any `.gitignore`. A deeper file overrides a shallower one, `!` re-includes, an
    ignored directory hides everything below it. Without `gitignore`, only the user's patterns
    apply (ruff has already applied its own rules). Git's global excludes file is not read."""

    def __init__(self, root: Path, exclude: Iterable[str] = (), *, gitignore: bool = True) -> None:
        self.root = root
        self._gitignore = gitignore
        self._exclude = pathspec.GitIgnoreSpec.from_lines(list(exclude))
        self._chains: dict[str, _Chain | None] = {}
        """`.gitignore` rules per root-relative directory; None outside a git repository."""
        self._dot_ignores: dict[str, _Chain] = {}
        """`.ignore` rules per root-relative directory."""

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether the path `rel` (relative, forward slashes) or any directory above it is ignored."""
        parts = rel.split("/")
        return any(
            self.ignores_entry("/".join(parts[: i + 1]), is_dir or i < len(parts) - 1)
            for i in range(len(parts))
        )

    def ignores_entry(self, rel: str, is_dir: bool) -> bool:
        """Whether this entry itself is ignored, its parent directories being known not to be."""
        name = rel.rsplit("/", 1)[-1]
        if is_dir and name == ".git":
            return True
        candidate = rel + "/" if is_dir else rel
        if self._exclude.match_file(candidate):
            return True
        directory = rel.rpartition("/")[0]
        decided = _decide(self._dot_ignore_chain(directory), candidate)
        if decided is not None:
            return decided
        return bool(_decide(self._chain(directory) or (), candidate))

    def _dot_ignore_chain(self, directory: str) -> _Chain:
        if not self._gitignore:
            return ()
        chain = self._dot_ignores.get(directory)
        if chain is None:
            if directory:
                parent = self._dot_ignore_chain(directory.rpartition("/")[0])
                own = self._load(self.root / directory / ".ignore")
                chain = parent if own is None else (*parent, (len(directory) + 1, "", own))
            else:
                root = self.root.absolute()
                folders = [root, *root.parents]
                chain = ()
                for depth in range(len(folders) - 1, -1, -1):  # from the top down to the root
                    own = self._load(folders[depth] / ".ignore")
                    if own is not None:
                        chain = (*chain, (0, _lead(folders[:depth]), own))
            self._dot_ignores[directory] = chain
        return chain

    def _chain(self, directory: str) -> _Chain | None:
        if not self._gitignore:
            return None
        if directory in self._chains:
            return self._chains[directory]
        if not directory:
            chain = self._outer_chain()
        elif (self.root / directory / ".git").exists():  # a nested repository: its own rules
            chain = self._repository_start(directory, len(directory) + 1, "")
        else:
            parent = self._chain(directory.rpartition("/")[0])
            own = self._load(self.root / directory / ".gitignore")
            if parent is None or own is None:
                chain = parent
            else:
                chain = (*parent, (len(directory) + 1, "", own))
        self._chains[directory] = chain
        return chain

    def _outer_chain(self) -> _Chain | None:
        """The rules inside the root: from the repository's root, which may be above it."""
        root = self.root.absolute()
        folders = [root, *root.parents]
        top = next((i for i, folder in enumerate(folders) if (folder / ".git").exists()), None)
        if top is None:
            return None
        chain = self._repository_start("", 0, _lead(folders[:top]), folders[top])
        for depth in range(top - 1, -1, -1):  # the folders between, down to the root
            own = self._load(folders[depth] / ".gitignore")
            if own is not None:
                chain = (*chain, (0, _lead(folders[:depth]), own))
        return chain

    def _repository_start(
        self, directory: str, strip: int, lead: str, folder: Path | None = None
    ) -> _Chain:
        """A repository's `.git/info/exclude` and its root `.gitignore`, for paths under it."""
        folder = folder if folder is not None else self.root / directory
        files = (folder / ".git" / "info" / "exclude", folder / ".gitignore")
        return tuple((strip, lead, spec) for spec in map(self._load, files) if spec is not None)

    @staticmethod
    def _load(file: Path) -> pathspec.GitIgnoreSpec | None:
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        return pathspec.GitIgnoreSpec.from_lines(lines)


def walk_source_files(
    root: Path, rules: IgnoreRules, on_ignored: Callable[[str], None] | None = None
) -> Iterator[str]:
    """Relative paths (forward slashes) of the files Gantry can parse, sorted per directory.
    Symlinked directories are not followed (they can loop or leave the workspace)."""
    for directory, dirnames, filenames in os.walk(root):
        base = os.path.relpath(directory, root).replace(os.sep, "/")
        prefix = "" if base == "." else base + "/"
        kept = []
        for name in sorted(dirnames):
            if rules.ignores_entry(prefix + name, is_dir=True):
                if on_ignored is not None and name != ".git":
                    on_ignored(prefix + name + "/")
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = prefix + name
            if language_for_path(name) is None:
                continue
            if rules.ignores_entry(rel, is_dir=False):
                if on_ignored is not None:
                    on_ignored(rel)
                continue
            yield rel


def sniff(path: Path, max_bytes: int) -> Skip | None:
    """Why a file should not be reviewed (too large, binary), from its size and first bytes."""
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size > max_bytes:
            return Skip.TOO_LARGE
        head = file.read(BINARY_SNIFF_BYTES)
    return Skip.BINARY if b"\0" in head else None


def read_source_bytes(path: Path, max_bytes: int) -> tuple[bytes | None, Skip | None]:
    """The file's bytes when Gantry should parse it, else why not. UTF-8 is checked here."""
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size > max_bytes:
            return None, Skip.TOO_LARGE
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None, Skip.TOO_LARGE
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None, Skip.BINARY
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None, Skip.NOT_UTF8
    return data, None


@attrs.frozen
class SourceText:
    """A file's text as ruff lints it."""

    text: str
    cells: dict[int, int] | None = None
    """For a notebook, whose text is its code cells one after the other: cell number (1-based,
    over all cells, as ruff counts them) -> the cell's first line in `text`."""


def read_source_text(path: Path) -> SourceText:
    """A Python file (its declared encoding honoured) or a notebook's code cells."""
    data = path.read_bytes()
    if path.suffix == ".ipynb":
        return notebook_text(data)
    return SourceText(decode_python(data))


def decode_python(data: bytes) -> str:
    """Python source decoded as Python decodes it: a BOM or a coding declaration (PEP 263)
    names the encoding, else UTF-8. Bytes that still do not decode are replaced, so positions
    in the rest of the file stay usable."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data.decode("utf-8", "replace").removeprefix("\ufeff")


def notebook_text(data: bytes) -> SourceText:
    """A Jupyter notebook's code cells as one text; an unreadable notebook has none."""
    try:
        cells = json.loads(data).get("cells", [])
    except (ValueError, AttributeError):
        return SourceText("", {})
    parts, starts, line = [], {}, 0
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        text = text if text.endswith("\n") else text + "\n"
        starts[number] = line
        parts.append(text)
        line += len(_LINE_END.findall(text))
    return SourceText("".join(parts), starts)
