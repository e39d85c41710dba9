"""Diagnostics by source: each engine owns one slot per document; the client sees their union.

An engine puts its findings into its slot with the snapshot they were computed on. What is
published for a document is the union of the slots computed on its current version (for a file
that is not open: on its text on disk), so a slow engine never delays or erases a fast one, and
findings computed on older text are never shown on newer text.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import attrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.convert import diagnostic_json
from lsp_server.protocol import GantryProtocol
from lsp_server.review.findings import Finding, Snapshot
from lsp_server.services.status import StatusReporter


@attrs.frozen
class Slot:
    snapshot: Snapshot
    findings: tuple[Finding, ...]
    cells: dict[int, int] | None = None
    """A notebook's first line per cell number: its diagnostics count lines per cell."""
    lines: Sequence[str] | None = None
    """The lines positions count in, when they are not the snapshot's (a notebook's)."""


@attrs.frozen
class Shown:
    """What the client was last sent for a document: the snapshot it belongs to and the
    findings, dismissed ones left out."""

    snapshot: Snapshot
    findings: tuple[Finding, ...]


class Publisher:
    def __init__(
        self,
        server: LanguageServer,
        status: StatusReporter,
        dismissed: Callable[[str], frozenset[str]],
    ) -> None:
        self._server = server
        self._protocol = cast(GantryProtocol, server.protocol)
        self._status = status
        self._dismissed = dismissed
        """The fingerprints the user dismissed, for a document's URI (its folder's verdicts)."""
        self._slots: dict[str, dict[str, Slot]] = {}
        self._shown: dict[str, Shown] = {}
        self._put = asyncio.Event()
        """Set, and replaced, on every put: what `settled` waits on."""

    def put(
        self,
        source: str,
        snapshot: Snapshot,
        findings: tuple[Finding, ...],
        *,
        cells: dict[int, int] | None = None,
        lines: Sequence[str] | None = None,
    ) -> None:
        """Record a source's findings for a snapshot and publish the document's union, unless
        the snapshot is not the document's current text (then the slot waits, unseen)."""
        uri = snapshot.uri
        self._slots.setdefault(uri, {})[source] = Slot(snapshot, findings, cells, lines)
        if self._is_current(snapshot):
            self._publish(uri, snapshot)
        self._put.set()
        self._put = asyncio.Event()

    async def settled(self, uri: str, source: str, version: int, timeout: float) -> Slot | None:
        """`source`'s slot for an open document once it holds `version` or a later one;
        None if none came within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            slot = self.slot(uri, source)
            if slot is not None and (slot.snapshot.version or 0) >= version:
                return slot
            if (left := deadline - loop.time()) <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._put.wait(), left)

    def slot(self, uri: str, source: str) -> Slot | None:
        """What `source` last put for a document, shown or not."""
        return self._slots.get(uri, {}).get(source)

    def shown(self, uri: str) -> Shown | None:
        return self._shown.get(uri)

    def all_shown(self) -> Iterator[Shown]:
        return iter(list(self._shown.values()))

    def republish(self, uri: str) -> None:
        """Publish again what is shown (after a dismissal: the verdicts changed)."""
        if (shown := self._shown.get(uri)) is not None:
            self._publish(uri, shown.snapshot)

    def clear(self, uri: str) -> None:
        """Forget every source's findings for a document and clear them in the client."""
        self._slots.pop(uri, None)
        self._set_shown(uri, None)
        self._server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    def _is_current(self, snapshot: Snapshot) -> bool:
        document = self._server.workspace.text_documents.get(snapshot.uri)
        if document is None:
            return snapshot.version is None  # on-disk text, for a document that is not open
        return document.version == snapshot.version

    def _publish(self, uri: str, snapshot: Snapshot) -> None:
        dismissed = self._dismissed(uri)
        codec = self._server.workspace.position_codec
        kept: list[Finding] = []
        diagnostics: list[dict[str, Any]] = []
        for slot in self._slots.get(uri, {}).values():
            if slot.snapshot.version != snapshot.version:
                continue  # computed on other text: never shown on this one
            lines = slot.lines or slot.snapshot.lines
            for finding in slot.findings:
                if finding.fingerprint in dismissed:
                    continue
                kept.append(finding)
                diagnostics.append(diagnostic_json(codec, lines, finding, slot.cells))
        self._set_shown(uri, Shown(snapshot, tuple(kept)))
        params: dict[str, Any] = {"uri": uri, "diagnostics": diagnostics}
        if snapshot.version is not None:
            params["version"] = snapshot.version
        self._protocol.notify_json(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, params)

    def _set_shown(self, uri: str, shown: Shown | None) -> None:
        before = self._shown.pop(uri, None)
        if before is not None:
            self._status.findings -= len(before.findings)
        if shown is not None:
            self._shown[uri] = shown
            self._status.findings += len(shown.findings)
        self._status.update()
