"""The `gantry.*` commands' arguments.

A command takes one object: `arguments` is `[object]`, or `[]` when every field has a default.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import attrs

from lsp_server.contract.converter import ContractError, structure
from lsp_server.contract.data import Range

T = TypeVar("T")


@attrs.frozen
class NoArgs:
    """For commands that take nothing."""


@attrs.frozen
class DismissArgs:
    uri: str
    fingerprint: str
    verdict: Literal["dismissed", "false_positive"] = "dismissed"
    reason: str | None = None


@attrs.frozen
class ReviewFileArgs:
    uri: str


@attrs.frozen
class ReviewPathsArgs:
    paths: list[str]
    """Files or folders on disk (file system paths, not URIs); relative ones are taken from
    the workspace root."""
    fingerprints: bool = True
    """False when the caller will not read them (a text report): they cost a parse per file."""
    ai: bool = False
    """Also review them with the model (`gantry check --ai`): the answer comes once every AI
    finding is published."""


@attrs.frozen
class VerifyFixArgs:
    """Apply an AI finding's validated fix (unless the client applied it already) and run the
    tests that cover its unit in the sandbox."""

    uri: str
    fingerprint: str


@attrs.frozen
class QueueStatusArgs:
    uri: str | None = None
    """A workspace folder, or a document in one: whose queue; the first folder's if omitted."""


@attrs.frozen
class RetryArgs:
    id: int | None = None
    """One job; all dead and parked jobs when omitted."""
    uri: str | None = None
    """A workspace folder, or a document in one: whose queue; the first folder's if omitted."""


@attrs.frozen
class GenerateTestsArgs:
    """Generate tests for a symbol, or for what a range of the document touches (an empty range,
    a cursor: the function, method or class around it). Exactly one of the two."""

    uri: str
    symbol: str | None = None
    """A public top-level function or class, or `Class.method` (tested through its class)."""
    range: Range | None = None

    def __attrs_post_init__(self) -> None:
        if (self.symbol is None) == (self.range is None):
            given = "both" if self.symbol is not None else "neither"
            raise ContractError(f"exactly one of symbol and range is required (got {given})")


@attrs.frozen
class ExpectedFailureArgs:
    """Add a possible bug's test (a "gantry-tests" diagnostic) to the project's tests as an
    expected failure: `pytest.mark.xfail(strict=True)`."""

    uri: str
    fingerprint: str


COMMANDS: dict[str, type] = {
    "gantry.dismissFinding": DismissArgs,
    "gantry.reviewFile": ReviewFileArgs,
    "gantry.reviewWorkspace": NoArgs,
    "gantry.reviewPaths": ReviewPathsArgs,
    "gantry.verifyFix": VerifyFixArgs,
    "gantry.queueStatus": QueueStatusArgs,
    "gantry.retryQueued": RetryArgs,
    "gantry.generateTests": GenerateTestsArgs,
    "gantry.addExpectedFailure": ExpectedFailureArgs,
}
"""Every command the server offers, with its arguments' class."""


def parse(cls: type[T], arguments: list[Any]) -> T:
    """A command's `arguments` as `cls`. An empty list stands for an empty object, alone or in
    the list: Lua cannot tell them apart."""
    value = arguments[0] if len(arguments) == 1 else arguments
    if value == []:
        value = {}
    if not isinstance(value, dict):
        names = ", ".join(field.name for field in attrs.fields(cls)) or "nothing"
        raise ContractError(f"expected one object ({names}); got {arguments!r}")
    return structure(value, cls)
