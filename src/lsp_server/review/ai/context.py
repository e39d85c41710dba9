"""Context packs: what a model sees beside a unit, from the context store, within a budget.

A pack holds, for one unit: its current local diagnostics and the user's past verdicts in its
file (handed in by the caller, first: they are few and about this very code), then the
definitions of the symbols it uses, its callers and the tests that use it, ranked repo-map
style (Aider's): a graph whose nodes are the unit and the stored symbols around it, with an
edge from each symbol to the definitions of the names it uses (a call weighs twice a mention,
an ambiguous name is shared among its definitions) and a lighter one back, ranked by PageRank
restarting at the unit. Items are taken best first while they fit the token budget.

Nothing in an item depends on where code sits (no line numbers but the unit's own relative
ones), so the pack's digest, part of the AI cache key, changes only when what the model would
read changes: lines inserted above a callee, or above the unit, cost no new review.

`neighbourhood` reads the store; `build_pack` is a pure function of what it is given.

Tokens are estimated as characters / 4: no tokenizer for the models in use runs offline here
(tiktoken is OpenAI's and downloads its tables; Anthropic counts tokens only through its API).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import attrs

from lsp_server.review.ai.units import Unit
from lsp_server.review.findings import Finding

if TYPE_CHECKING:  # the store's modules load in a worker thread, not at server start
    from lsp_server.store import Store, SymbolHit, SymbolUses, Verdict

ItemKind = Literal["diagnostic", "verdict", "definition", "caller", "test"]

DEFAULT_BUDGET = 2000
"""Tokens for the items of one pack (the unit and the prompt are not counted)."""
NEIGHBOURS = 200
"""At most this many definitions, and as many users, are read per unit."""
CALL_WEIGHT = 2.0
BACK_WEIGHT = 0.5
"""An edge from a definition back to its user weighs half the use: callers matter, callees more."""
DAMPING = 0.85
_TEST_FILE = re.compile(
    r"(^|/)(tests?|__tests__|spec)/"
    r"|(^|/)test_[^/]*\.py$|_test\.(py|go)$|\.(test|spec)\.[cm]?[jt]sx?$"
)
_KIND_ORDER: dict[str, int] = {"definition": 0, "caller": 1, "test": 2}


@attrs.frozen
class ContextItem:
    kind: ItemKind
    path: str
    """Workspace-relative, forward slashes."""
    name: str
    """The symbol's qualified name (`Class.method`); a diagnostic's or verdict's rule."""
    text: str


@attrs.frozen
class ContextPack:
    items: tuple[ContextItem, ...]
    """Caller-given items first, then stored symbols best first."""
    digest: str
    """sha256 over the items as a set: the same content gives the same digest in any order."""
    tokens: int
    """Estimated tokens of the items."""
    symbols: tuple[str, ...]
    """`path:name` of each stored symbol in the pack, for provenance."""
    omitted: int = 0
    """Items left out because the budget was spent."""


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def is_test_path(path: str) -> bool:
    return bool(_TEST_FILE.search(path))


def short_name(unit: Unit) -> str | None:
    """The name callers use for the unit (`method` of `Class.method`); blocks have none."""
    if unit.kind in ("block", "imports"):
        return None
    return unit.name.rsplit(".", 1)[-1]


def neighbourhood(store: Store, unit: Unit, limit: int = NEIGHBOURS) -> tuple[SymbolUses, ...]:
    """What `build_pack` ranks: the stored definitions of the names the unit uses, and the
    stored symbols that use the unit's name, each with the names it uses."""
    return neighbourhoods(store, [unit], limit)[0]


def neighbourhoods(
    store: Store, units: Sequence[Unit], limit: int = NEIGHBOURS
) -> tuple[tuple[SymbolUses, ...], ...]:
    """Each unit's `neighbourhood` (at most `limit` definitions and `limit` users, in path
    order), all from one read of the store: a file's units share most of their names."""
    names = {name for unit in units if (name := short_name(unit))}
    refs = sorted({ref for unit in units for ref in unit.refs})
    symbols = store.neighbourhood(refs, sorted(names), per_name=limit)
    defined: dict[str, list[SymbolUses]] = defaultdict(list)
    users: dict[str, list[SymbolUses]] = defaultdict(list)
    for symbol in symbols:
        defined[symbol.hit.name].append(symbol)
        for ref in names.intersection(symbol.refs):
            users[ref].append(symbol)
    packs = []
    for unit in units:
        found = sorted((s for ref in unit.refs for s in defined.get(ref, ())), key=_place)
        own = short_name(unit)
        using = sorted(users.get(own, ()), key=_place) if own else []
        packs.append(tuple(dict.fromkeys(found[:limit] + using[:limit])))
    return tuple(packs)


def _place(symbol: SymbolUses) -> tuple[str, int, int]:
    return symbol.hit.path, symbol.hit.start_line, symbol.hit.start_col


def build_pack(
    unit: Unit,
    path: str,
    symbols: Iterable[SymbolUses],
    *,
    budget: int = DEFAULT_BUDGET,
    diagnostics: Sequence[Finding] = (),
    verdicts: Sequence[Verdict] = (),
) -> ContextPack:
    """The pack for `unit` of the file at `path`, from its `neighbourhood` and what the caller
    knows of the file now: its local `diagnostics` and the user's `verdicts` in it."""
    given = _diagnostic_items(unit, path, diagnostics) + _verdict_items(path, verdicts)
    found = _candidates(unit, path, symbols)
    candidates = list(dict.fromkeys(given + _by_kind(found)))
    costs = {item: item_tokens(item) for item in candidates}
    if sum(costs.values()) > budget:
        # Only a budget that cannot hold everything needs the ranking, to choose what to cut.
        ranked = _ranked(unit.refs, unit.calls, short_name(unit), tuple(found))
        candidates = list(dict.fromkeys(given + list(ranked)))
    kept: list[ContextItem] = []
    spent = 0
    for item in candidates:  # best first; an item too big is skipped, a smaller one may fit
        if spent + costs[item] <= budget:
            kept.append(item)
            spent += costs[item]
    return ContextPack(
        items=tuple(kept),
        digest=pack_digest(kept),
        tokens=spent,
        symbols=tuple(f"{item.path}:{item.name}" for item in kept if item.kind in _KIND_ORDER),
        omitted=len(candidates) - len(kept),
    )


def pack_digest(items: Iterable[ContextItem]) -> str:
    rows = sorted([item.kind, item.path, item.name, item.text] for item in items)
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def item_tokens(item: ContextItem) -> int:
    """What a prompt spends on an item: its heading (kind, path, name) and its text."""
    return estimate_tokens(f"{item.kind} {item.path} {item.name}\n{item.text}\n")


def _diagnostic_items(unit: Unit, path: str, findings: Sequence[Finding]) -> list[ContextItem]:
    """The findings on the unit's lines, at lines relative to the unit (1-based, as a reader
    counts): absolute lines would change the pack whenever code above the unit moves."""
    items = []
    for finding in sorted(findings, key=lambda f: (f.start, f.rule, f.message)):
        line = unit.unit_line(finding.start[0])
        if line is not None:
            text = f"line {line + 1}: {finding.message}"
            items.append(ContextItem("diagnostic", path, finding.rule, text))
    return items


def _verdict_items(path: str, verdicts: Sequence[Verdict]) -> list[ContextItem]:
    items = [
        ContextItem("verdict", path, verdict.rule, f"{verdict.verdict}: {verdict.message}")
        for verdict in verdicts
        if verdict.path in ("", path)
    ]
    return sorted(set(items), key=lambda item: (item.name, item.text))


def _qualified(hit: SymbolHit) -> str:
    return f"{hit.container}.{hit.name}" if hit.container else hit.name


def _is_the_unit(unit: Unit, path: str, hit: SymbolHit) -> bool:
    """Whether a stored symbol is the unit itself or lies inside it (a class's methods, a
    function's nested functions): the model sees those already."""
    if hit.path != path or unit.kind in ("block", "imports"):
        return False
    name = _qualified(hit)
    # The store qualifies by the nearest container only; a unit by all of them.
    return (
        unit.name == name
        or unit.name.endswith("." + name)
        or (hit.container is not None and hit.container == short_name(unit))
    )


Node = Hashable
_UNIT = -1


@attrs.frozen
class _Candidate:
    """A stored symbol as a pack item, with what ranking needs; nothing positional, so that
    rankings are memoised across edits that only move code."""

    item: ContextItem
    name: str
    refs: tuple[str, ...]


def _candidates(unit: Unit, path: str, symbols: Iterable[SymbolUses]) -> list[_Candidate]:
    refs = set(unit.refs)
    own = short_name(unit)
    candidates = []
    for symbol in symbols:
        hit = symbol.hit
        if _is_the_unit(unit, path, hit):
            continue
        if own is not None and own in symbol.refs:
            kind: ItemKind = "test" if is_test_path(hit.path) else "caller"
            text = hit.signature
        elif hit.name in refs:
            kind = "definition"
            text = hit.signature + (f"\n{hit.docstring}" if hit.docstring else "")
        else:
            continue  # a user of a name the unit shares with another symbol: not context
        item = ContextItem(kind, hit.path, _qualified(hit), text)
        candidates.append(_Candidate(item, hit.name, symbol.refs))
    return candidates


def _by_kind(candidates: list[_Candidate]) -> list[ContextItem]:
    items = [candidate.item for candidate in candidates]
    return sorted(items, key=lambda i: (_KIND_ORDER[i.kind], i.path, i.name, i.text))


@functools.lru_cache(maxsize=4096)
def _ranked(
    refs: tuple[str, ...],
    calls: tuple[str, ...],
    own: str | None,
    candidates: tuple[_Candidate, ...],
) -> tuple[ContextItem, ...]:
    """The candidates best first by PageRank restarting at the unit (node -1)."""
    defined: dict[str, list[int]] = defaultdict(list)
    for index, candidate in enumerate(candidates):
        defined[candidate.name].append(index)
    edges: dict[Node, dict[Node, float]] = defaultdict(dict)

    def link(user: int, target: int, weight: float) -> None:
        edges[user][target] = edges[user].get(target, 0.0) + weight
        edges[target][user] = edges[target].get(user, 0.0) + weight * BACK_WEIGHT

    def use(user: int, name: str, weight: float) -> None:
        targets = defined.get(name, ())
        for target in targets:
            if target != user:
                link(user, target, weight / len(targets))

    called = set(calls)
    for name in refs:
        use(_UNIT, name, CALL_WEIGHT if name in called else 1.0)
    for index, candidate in enumerate(candidates):
        for name in candidate.refs:
            use(index, name, 1.0)
        if own is not None and own in candidate.refs:
            link(index, _UNIT, 1.0)
    rank = personalised_pagerank(edges, {_UNIT: 1.0})
    order = sorted(
        range(len(candidates)),
        key=lambda i: (
            -rank.get(i, 0.0),
            _KIND_ORDER[candidates[i].item.kind],
            candidates[i].item.path,
            candidates[i].item.name,
        ),
    )
    return tuple(candidates[i].item for i in order)


def personalised_pagerank(
    edges: Mapping[Node, Mapping[Node, float]],
    restart: Mapping[Node, float],
    *,
    damping: float = DAMPING,
    tolerance: float = 1e-6,
    max_iterations: int = 100,
) -> dict[Node, float]:
    """PageRank of a weighted directed graph whose walks restart at `restart` (weights),
    by power iteration; a node without out-edges hands its rank back to the restart nodes.

    Written out rather than taken from networkx, whose `pagerank` needs numpy and scipy: the
    graphs here have tens to hundreds of nodes."""
    names = list(dict.fromkeys([*restart, *edges, *(t for ts in edges.values() for t in ts)]))
    index = {node: i for i, node in enumerate(names)}
    total = sum(restart.values())
    start = [restart.get(node, 0.0) / total for node in names]
    # Each node's out-edges as (target, normalised weight); a list walk is what keeps the
    # iteration cheap enough to rank every unit of a file.
    links: list[list[tuple[int, float]]] = [[] for _ in names]
    for node, targets in edges.items():
        out = sum(targets.values())
        if out > 0:
            links[index[node]] = [(index[t], w / out) for t, w in targets.items() if w > 0]
    dangling_nodes = [i for i, targets in enumerate(links) if not targets]
    rank = list(start)
    for _ in range(max_iterations):
        dangling = sum(rank[i] for i in dangling_nodes)
        base = 1 - damping + damping * dangling
        new = [base * weight for weight in start]
        for i, targets in enumerate(links):
            share = damping * rank[i]
            for target, weight in targets:
                new[target] += share * weight
        change = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if change < tolerance * len(names):
            break
    return dict(zip(names, rank, strict=True))
