"""The edited document for the diagnostics benchmark: ~2,000 lines of ordinary Python
(imports, dataclasses, classes with methods, functions, a CLI) with a sprinkling of lint
findings, and the small edits the benchmark types into it."""

from __future__ import annotations

import random
from pathlib import Path

PYPROJECT = """\
[tool.ruff]
line-length = 100

[tool.ruff.lint]
# The same families pylsp reports (pyflakes + pycodestyle), plus bugbear.
select = ["E", "F", "W", "B"]

[tool.gantry]
store = "{store}"

[tool.gantry.index]
exclude = [".bench/"]
"""

_HEADER = '''\
"""Inventory service: stock levels, reservations and reports (generated for benchmarking)."""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

log = logging.getLogger(__name__)

RETRIES = 3
DEFAULT_WAREHOUSE = "main"
'''

_CLASS = '''

@dataclasses.dataclass
class {name}Record:
    """A {lower} as stored."""

    key: str
    quantity: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)

    def total(self, factor: float = 1.0) -> float:
        total = 0
        for index, tag in enumerate(self.tags):
            total += len(tag) * factor + index
        return total + self.quantity

    def describe(self) -> str:
        parts = [self.key, str(self.quantity)]
        if self.tags:
            parts.append(",".join(sorted(self.tags)))
        return " ".join(parts)


class {name}Repository:
    """Keeps {lower} records in memory, keyed by name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.items: dict[str, {name}Record] = {{}}
        self.history: collections.deque = collections.deque(maxlen=100)

    def add(self, record: {name}Record) -> None:
        if record.key in self.items:
            raise KeyError(f"duplicate {lower}: {{record.key}}")
        self.items[record.key] = record
        self.history.append(("add", record.key))

    def remove(self, key: str) -> Optional[{name}Record]:
        record = self.items.pop(key, None)
        if record is not None:
            self.history.append(("remove", key))
        return record

    def find(self, pattern: str) -> list[{name}Record]:
        regex = re.compile(pattern)
        return [r for k, r in sorted(self.items.items()) if regex.search(k)]

    def save(self) -> Path:
        path = self.root / "{lower}.json"
        data = {{k: dataclasses.asdict(v) for k, v in self.items.items()}}
        path.write_text(json.dumps(data, indent=2))
        return path

    def load(self) -> int:
        path = self.root / "{lower}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("cannot read %s", path)
            return 0
        for key, value in data.items():
            self.items[key] = {name}Record(**value)
        return len(data)
'''

_FUNCTION = '''

def {name}(values: Iterable[int], limit: int = {limit}) -> dict[str, Any]:
    """Summarise values for the {name} report."""
    total = 0
    seen = set()
    for value in values:
        if value in seen:
            continue
        seen.add(value)
        total += value
        if total > limit:
            break
    result = {{"total": total, "count": len(seen), "limit": limit}}
    log.debug("{name}: %s", result)
    return result
'''

# A few findings that real code has: an unused local, `== None`, a bare except, an f-string
# without placeholders, an ambiguous name.
_FINDINGS = """

def legacy_{n}(path):
    handle = open(path)
    unused_{n} = handle.name
    try:
        data = handle.read()
    except:
        data = None
    if data == None:
        return f"empty"
    l = len(data)
    return l
"""

_FOOTER = """

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path(os.getcwd())
    counts = collections.Counter()
    for path in root.rglob("*.json"):
        counts[path.suffix] += 1
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""

_NAMES = [
    "Widget",
    "Gadget",
    "Bolt",
    "Crate",
    "Pallet",
    "Shelf",
    "Order",
    "Supplier",
    "Invoice",
    "Carrier",
    "Route",
    "Depot",
    "Batch",
    "Label",
    "Scanner",
    "Ticket",
    "Vendor",
    "Parcel",
    "Bin",
    "Aisle",
    "Forklift",
    "Dock",
]


def generate(target_lines: int = 2000, seed: int = 7) -> tuple[list[str], list[int]]:
    """The document's lines (with newlines), and the indexes of lines after which an edit can
    insert a statement in a function body (`    total = 0`)."""
    rng = random.Random(seed)
    text = _HEADER
    n = 0
    while text.count("\n") < target_lines - 20:
        name = _NAMES[n % len(_NAMES)] + ("" if n < len(_NAMES) else str(n // len(_NAMES)))
        text += _CLASS.format(name=name, lower=name.lower())
        for k in range(2):
            text += _FUNCTION.format(name=f"report_{n}_{k}", limit=rng.randint(10, 10_000))
        if n % 4 == 1:
            text += _FINDINGS.format(n=n)
        n += 1
    text += _FOOTER
    lines = text.splitlines(keepends=True)
    anchors = [i for i, line in enumerate(lines) if line == "    total = 0\n"]
    return lines, anchors


class Editor:
    """The benchmark's typing: odd edits insert an unused local in some function (a new F841),
    even edits remove it again and change a constant, so every version differs and so do the
    diagnostics."""

    def __init__(self, lines: list[str], anchors: list[int]) -> None:
        self.lines = lines
        self.anchors = anchors

    def text(self, step: int) -> str:
        lines = list(self.lines)
        retries = next(i for i, line in enumerate(lines) if line.startswith("RETRIES = "))
        lines[retries] = f"RETRIES = {3 + step % 7}\n"
        if step % 2:
            anchor = self.anchors[(step * 37) % len(self.anchors)]
            lines.insert(anchor + 1, f"    scratch_{step} = total + {step}\n")
        return "".join(lines)


# One unit of the finding-dense module: E401/F401/F811 on the re-import, F841, E711, E722, E741.
_DENSE = """\
import os, sys
def check_{n}(value):
    unused_{n} = value
    if value == None:
        return os.sep
    try:
        pass
    except:
        pass
class Item{n}:
    def size(self, other):
        same = other == None
        l = 1
        return l
"""


def dense(kib: int) -> str:
    """A module of about `kib` KiB where nearly every line is a finding (a file that grew by
    copy and paste, or generated code)."""
    chunks, size = [], 0
    while size < kib * 1024:
        chunks.append(_DENSE.format(n=len(chunks)))
        size += len(chunks[-1])
    return "".join(chunks)


def make_workspace(root: Path, store: Path) -> Path:
    """A workspace with the pyproject and the document; returns the document's path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(store=store.as_posix()))
    lines, _ = generate()
    doc = root / "inventory.py"
    doc.write_text("".join(lines))
    return doc
