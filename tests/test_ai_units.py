"""Review units on real files: a standard-library module, and a small module per language."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from lsp_server.analysis.languages import language_for_path, parser
from lsp_server.review.ai.units import Unit, digest_text, split_units

DATA = Path(__file__).parent / "data" / "units"
STDLIB_MODULE = Path(textwrap.__file__)


def _lines_of(unit: Unit, source: str) -> str:
    lines = source.splitlines(keepends=True)
    return "".join("".join(lines[start:end]) for start, end in unit.spans)


def _units(name: str) -> tuple[Unit, ...]:
    path = DATA / name
    language = language_for_path(path)
    assert language is not None
    return split_units(language, path.read_bytes())


def test_a_stdlib_module_splits_into_its_definitions_as_ast_sees_them() -> None:
    source = STDLIB_MODULE.read_text()
    units = split_units("python", source)
    by_name = {unit.name: unit for unit in units}
    definitions: dict[tuple[str, str], ast.FunctionDef] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            definitions["function", node.name] = node
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    definitions["method", f"{node.name}.{member.name}"] = member
    assert set(definitions) <= {(unit.kind, unit.name) for unit in units}
    # Each definition's unit starts at its decorators or the comments right above it, and
    # ends with its body (and the indented comments closing it, which ast does not count).
    lines = source.splitlines()
    for (_kind, name), node in definitions.items():
        unit = by_name[name]
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        assert unit.start_line <= first
        assert unit.end_line >= node.end_lineno
        tail = lines[node.end_lineno : unit.end_line]
        assert all(not line.strip() or line.strip().startswith("#") for line in tail)
    for unit in units:
        assert unit.text == _lines_of(unit, source)
    assert [u.kind for u in units].count("imports") == 1
    assert "re" in by_name["<imports>"].refs
    # A class unit keeps what only the class holds, not its methods' bodies.
    wrapper = by_name["TextWrapper"]
    assert wrapper.kind == "class"
    assert "whitespace_trans" in wrapper.text and "def _munge_whitespace" not in wrapper.text
    assert "_munge_whitespace" not in wrapper.refs
    # What each definition calls, as ast sees it.
    for (_kind, name), node in definitions.items():
        called = {
            call.func.id if isinstance(call.func, ast.Name) else call.func.attr
            for call in ast.walk(node)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name | ast.Attribute)
        }
        assert set(by_name[name].calls) == called, name
        assert called <= set(by_name[name].refs)


def test_units_never_share_a_line_in_a_stdlib_module() -> None:
    units = split_units("python", STDLIB_MODULE.read_bytes())
    seen: set[int] = set()
    for unit in units:
        lines = {line for start, end in unit.spans for line in range(start, end)}
        assert not lines & seen, unit.name
        seen |= lines


def test_digests_are_stable_and_ignore_only_trailing_blanks() -> None:
    source = STDLIB_MODULE.read_text()
    digests = [unit.digest for unit in split_units("python", source)]
    tree = parser("python").parse(source.encode())
    assert [u.digest for u in split_units("python", source.encode(), tree)] == digests
    assert [u.digest for u in split_units("python", source)] == digests
    # A Windows checkout, with trailing blanks too (but not after a line continuation).
    crlf = re.sub(r"(?<!\\)\n", "  \r\n", source).replace("\\\n", "\\\r\n")
    assert [u.digest for u in split_units("python", crlf)] == digests
    assert digest_text("a = 1\n\n") != digest_text("a = 1\n")  # line structure counts
    assert digest_text(" a = 1\n") != digest_text("a = 1\n")  # so does indentation


def test_a_one_line_change_changes_exactly_one_units_digest() -> None:
    source = STDLIB_MODULE.read_text()
    before = split_units("python", source)
    target = "        chunks = self.wordsep_re.split(text)\n"
    assert source.count(target) == 1
    after = split_units("python", source.replace(target, target.replace("text", "text or ''")))
    changed = [a.name for a, b in zip(before, after, strict=True) if a.digest != b.digest]
    assert changed == ["TextWrapper._split"]
    # Lines added above move units, and change no digest.
    moved = split_units("python", "# a new first line\n\n" + source)
    assert [u.digest for u in moved] == [u.digest for u in before]
    assert [u.start_line for u in moved] == [u.start_line + 2 for u in before]


def test_a_new_method_leaves_its_class_and_the_other_methods_alone() -> None:
    source = STDLIB_MODULE.read_text()
    anchor = "    def _munge_whitespace(self, text):\n"
    extra = "    def added(self):\n        return self.width\n\n"
    before = {u.name: u.digest for u in split_units("python", source)}
    after = {
        u.name: u.digest for u in split_units("python", source.replace(anchor, extra + anchor))
    }
    assert after.pop("TextWrapper.added")
    assert after == before


EXPECTED: dict[str, list[tuple[str, str]]] = {
    "inventory.js": [
        ("imports", "<imports>"),
        ("block", "<block>"),
        ("function", "loadStock"),
        ("class", "Inventory"),
        ("method", "Inventory.constructor"),
        ("method", "Inventory.remaining"),
        ("method", "Inventory.take"),
        ("function", "low"),
        ("block", "<block>"),
    ],
    "inventory.ts": [
        ("imports", "<imports>"),
        ("block", "<block>"),
        ("class", "Store"),
        ("method", "Store.add"),
        ("method", "Store.total"),
        ("function", "Reports.lowStock"),
        ("function", "byCount"),
    ],
    "inventory.go": [
        ("imports", "<imports>"),
        ("block", "<block>"),
        ("function", "Stock.Take"),
        ("function", "Report"),
    ],
    "inventory.rs": [
        ("imports", "<imports>"),
        ("block", "<block>"),
        ("class", "Stock"),
        ("method", "Stock.take"),
        ("method", "Stock.fmt"),
        ("imports", "tests.<imports>"),
        ("function", "tests.take_more_than_there_is"),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_language_splits_through_the_same_queries(name: str) -> None:
    units = _units(name)
    source = (DATA / name).read_text()
    assert [(u.kind, u.name) for u in units] == EXPECTED[name]
    for unit in units:
        assert unit.text == _lines_of(unit, source)
        assert unit.digest == digest_text(unit.text)
        for line in range(len(unit.text.splitlines())):
            assert unit.unit_line(unit.document_line(line)) == line


def test_comments_decorators_and_attributes_go_with_their_definition() -> None:
    js = {u.name: u for u in _units("inventory.js")}
    assert js["loadStock"].text.startswith("// Reads the stock file")
    assert js["Inventory.remaining"].text.lstrip().startswith("/** Units of `sku`")
    assert js["loadStock"].calls == ("join", "parse", "readFile")
    ts = {u.name: u for u in _units("inventory.ts")}
    assert ts["Store.add"].text.lstrip().startswith("@logged")
    assert "@logged" not in ts["Store"].text and "abstract price" in ts["Store"].text
    go = {u.name: u for u in _units("inventory.go")}
    assert go["Stock.Take"].text.startswith("// Take removes")
    assert "ErrEmpty" in go["Stock.Take"].refs
    rust = {u.name: u for u in _units("inventory.rs")}
    assert rust["Stock.take"].text.lstrip().startswith("/// Removes")
    assert rust["tests.take_more_than_there_is"].text.lstrip().startswith("#[test]")
    # The inherent impl keeps its constant; the trait impl holds nothing but a method.
    assert "LIMIT" in rust["Stock"].text and "fn take" not in rust["Stock"].text
    assert [u.name for u in rust.values()].count("Stock") == 1


def test_a_class_unit_maps_its_lines_back_around_the_methods_taken_out() -> None:
    source = (DATA / "inventory.js").read_text()
    inventory = next(u for u in _units("inventory.js") if u.name == "Inventory")
    lines = source.splitlines()
    closing = len(inventory.text.splitlines()) - 1
    assert lines[inventory.document_line(closing)] == "}"
    assert lines[inventory.document_line(1)] == "  limit = DEFAULT_LIMIT;"
    assert inventory.unit_line(inventory.start_line + 5) is None  # inside the constructor


def test_blocks_of_nothing_but_comments_or_a_docstring_are_not_units() -> None:
    source = '"""Module doc."""\n# a note\n\n\ndef f():\n    pass\n\n# trailing\n'
    assert [(u.kind, u.name) for u in split_units("python", source)] == [("function", "f")]
    only_methods = "class A:\n    '''Doc.'''\n\n    def m(self):\n        pass\n"
    assert [u.name for u in split_units("python", only_methods)] == ["A.m"]


def test_a_language_without_unit_queries_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no review units for 'java'"):
        split_units("java", "class A {}\n")


def test_code_being_typed_still_splits() -> None:
    assert split_units("python", "") == ()
    broken = "def f(:\n    pass\n\ndef g():\n    return h(1)\n"
    units = {u.name: u for u in split_units("python", broken)}
    assert units["g"].calls == ("h",) and units["g"].spans == ((3, 5),)
