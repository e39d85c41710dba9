"""The `gantry/status` notification and `$/progress` reports.

One summary of what the server is doing, sent when it changes, at most once per `_INTERVAL_S`
(the last state always), so a status bar or a CI client can tell "busy" from "idle" without
guessing, and a review of thousands of files does not send thousands of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp_server.contract.converter import unstructure
from lsp_server.contract.status import Status, StatusCounts
from lsp_server.review.findings import Finding, Snapshot

if TYPE_CHECKING:
    from lsp_server.server import GantryServer
    from remote_exec.dispatcher import DispatcherStatus

log = logging.getLogger("gantry.status")
STATUS_NOTIFICATION = "gantry/status"
_CLIENT_ANSWER_TIMEOUT_S = 5.0  # a client that never answers must not stall the work
_INTERVAL_S = 0.1


class PublishedFindings(MutableMapping[str, tuple[Snapshot, tuple[Finding, ...]]]):
    """The findings last published per URI, with the snapshot they were computed on, and their
    total, kept as they change: the status counts them after every review."""

    def __init__(self) -> None:
        self._by_uri: dict[str, tuple[Snapshot, tuple[Finding, ...]]] = {}
        self.total = 0

    def __getitem__(self, uri: str) -> tuple[Snapshot, tuple[Finding, ...]]:
        return self._by_uri[uri]

    def __setitem__(self, uri: str, value: tuple[Snapshot, tuple[Finding, ...]]) -> None:
        self.pop(uri, None)
        self._by_uri[uri] = value
        self.total += len(value[1])

    def __delitem__(self, uri: str) -> None:
        _, findings = self._by_uri.pop(uri)
        self.total -= len(findings)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_uri)

    def __len__(self) -> int:
        return len(self._by_uri)


class StatusReporter:
    def __init__(self, server: GantryServer) -> None:
        self.server = server
        self.reviewing = 0
        self.indexing = False
        self.problems: dict[str, str] = {}
        """Degradations by component ("ruff", "store", ...), shown until cleared."""
        self.remote: DispatcherStatus | None = None
        self._last: Status | None = None
        self._sent_at = float("-inf")
        self._due: asyncio.Handle | None = None

    def snapshot(self) -> Status:
        pending, remote = not self.server.ready.is_set(), self.remote
        if pending or self.reviewing or self.indexing:
            state = "busy"
            parts = []
            if pending:
                parts.append("starting")
            if self.reviewing:
                parts.append(f"reviewing {self.reviewing} file{'s' * (self.reviewing != 1)}")
            if self.indexing:
                parts.append("indexing the workspace")
            message = ", ".join(parts).capitalize()
        elif remote is not None and remote.state != "ready":
            state = remote.state  # queued | degraded | offline
            message = "; ".join([f"Remote: {remote.message}", *self.problems.values()])
        elif self.problems:
            state, message = "degraded", "; ".join(self.problems.values())
        else:
            state, message = "ready", "Ready"
        queue = remote.queue if remote is not None else {}
        return Status(
            state=state,
            message=message,
            counts=StatusCounts(
                documents=len(self.server.workspace.text_documents),
                reviewing=self.reviewing,
                indexing=int(self.indexing),
                findings=self.server.published.total,
                queued=queue.get("pending", 0) + queue.get("leased", 0),
                parked=queue.get("parked", 0),
                dead=queue.get("dead", 0),
                running_locally=remote.running_locally if remote is not None else 0,
            ),
            remotes=dict(remote.remotes) if remote is not None else {},
        )

    def update(self) -> None:
        """Send the status if it changed: in the next turn of the event loop, or, when one went
        out less than `_INTERVAL_S` ago, once that interval is over."""
        if self._due is not None:
            return
        loop = asyncio.get_running_loop()
        self._due = loop.call_at(max(loop.time(), self._sent_at + _INTERVAL_S), self._send)

    def _send(self) -> None:
        self._due = None
        current = self.snapshot()
        if current != self._last:
            self._last = current
            self._sent_at = asyncio.get_running_loop().time()
            self.server.protocol.notify(STATUS_NOTIFICATION, unstructure(current))

    def set_problem(self, component: str, message: str | None) -> None:
        """Record (or clear, with None) a degradation; say it once when it first appears."""
        if message is None:
            self.problems.pop(component, None)
        elif self.problems.get(component) != message:
            self.problems[component] = message
            self.server.notify_user(message)
        self.update()

    @contextlib.asynccontextmanager
    async def progress(self, title: str) -> AsyncIterator[Callable[[str, int | None], None]]:
        """`$/progress` for long work; yields report(message, percentage). A fresh token each
        time: pygls never releases old ones."""
        server = self.server
        token = None
        if server.caps.work_done_progress:
            token = str(uuid.uuid4())
            try:
                await asyncio.wait_for(
                    server.work_done_progress.create_async(token), _CLIENT_ANSWER_TIMEOUT_S
                )
                server.work_done_progress.begin(
                    token, types.WorkDoneProgressBegin(title=title, percentage=0)
                )
            except Exception as exc:  # refused or unanswered: the work goes on without a bar
                log.debug("progress refused: %s", exc)
                token = None

        def report(message: str, percentage: int | None = None) -> None:
            if token is not None:
                server.work_done_progress.report(
                    token, types.WorkDoneProgressReport(message=message, percentage=percentage)
                )

        try:
            yield report
        finally:
            if token is not None:
                server.work_done_progress.end(token, types.WorkDoneProgressEnd())
