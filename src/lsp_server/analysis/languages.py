"""The tree-sitter languages Gantry understands, loaded lazily from the per-language packages.

Each grammar ships compiled inside its own wheel (tree-sitter-python, ...), so nothing is ever
downloaded at run time.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import PurePath

from tree_sitter import Language, Parser

# language name -> (module, function returning the grammar pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
}

# LSP languageId -> our language name, for documents whose path says nothing.
_LANGUAGE_IDS: dict[str, str] = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
}

LANGUAGES: tuple[str, ...] = tuple(_GRAMMARS)


def language_for_path(path: str | PurePath) -> str | None:
    """The language of a file by its extension, or None when Gantry does not parse it."""
    return EXTENSIONS.get(PurePath(path).suffix.lower())


def language_for_document(path: str | PurePath, language_id: str | None = None) -> str | None:
    return language_for_path(path) or _LANGUAGE_IDS.get(language_id or "")


@functools.cache
def grammar(name: str) -> Language:
    module, func = _GRAMMARS[name]
    return Language(getattr(importlib.import_module(module), func)())


def parser(name: str) -> Parser:
    """A new parser (parsers are not thread-safe: one per thread or per call)."""
    return Parser(grammar(name))
