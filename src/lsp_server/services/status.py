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
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

import attrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.contract.converter import unstructure
from lsp_server.contract.status import GatewayStatus, Status, StatusCounts

if TYPE_CHECKING:
    from remote_exec.dispatcher import DispatcherStatus

log = logging.getLogger("gantry.status")
STATUS_NOTIFICATION = "gantry/status"
_CLIENT_ANSWER_TIMEOUT_S = 5.0  # a client that never answers must not stall the work
_INTERVAL_S = 0.1


class StatusReporter:
    """What the server is doing: the services set their part, then call `update()`."""

    def __init__(self, server: LanguageServer, notify_user: Callable[[str], None]) -> None:
        self.server = server
        self._notify_user = notify_user
        self.work_done_progress = False
        """The client takes `$/progress` (known from initialize)."""
        self.starting = True
        """Some workspace folder is not ready yet (settings or verdicts loading)."""
        self.reviewing = 0
        self.indexing = 0
        """Folders being indexed."""
        self.findings = 0
        """Findings published over all documents."""
        self.ai_waiting = 0
        """Units whose AI review waits for the model."""
        self.problems: dict[str, str] = {}
        """Degradations by component ("ruff", "store", ...), shown until cleared."""
        self.remotes: dict[str, DispatcherStatus] = {}
        """Each workspace folder's remote side, by folder."""
        self._last: Status | None = None
        self._sent_at = float("-inf")
        self._due: asyncio.Handle | None = None

    @property
    def remote(self) -> DispatcherStatus | None:
        return combined(self.remotes)

    def snapshot(self) -> Status:
        pending, remote = self.starting, self.remote
        asking = self.ai_waiting if remote is None or remote.state == "ready" else 0
        if pending or self.reviewing or self.indexing or asking:
            state = "busy"
            parts = []
            if pending:
                parts.append("starting")
            if asking:
                parts.append(f"asking the model about {asking} unit{'s' * (asking != 1)}")
            if self.reviewing:
                parts.append(f"reviewing {self.reviewing} file{'s' * (self.reviewing != 1)}")
            if self.indexing:
                parts.append("indexing the workspace")
            message = ", ".join(parts).capitalize()
        elif remote is not None and remote.state != "ready":
            state = remote.state  # queued | degraded | offline
            waiting = self.ai_waiting
            queued = [f"{waiting} AI review{'s' * (waiting != 1)} queued"] if waiting else []
            message = "; ".join([f"Remote: {remote.message}", *queued, *self.problems.values()])
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
                indexing=self.indexing,
                findings=self.findings,
                queued=queue.get("pending", 0) + queue.get("leased", 0),
                parked=queue.get("parked", 0),
                dead=queue.get("dead", 0),
                running_locally=remote.running_locally if remote is not None else 0,
                ai_waiting=self.ai_waiting,
            ),
            remotes=dict(remote.remotes) if remote is not None else {},
            gateways=[
                GatewayStatus(
                    name=g.name,
                    health=g.health,
                    labels=dict(g.labels),
                    slots=g.slots,
                    free_slots=g.free_slots,
                    gpus=g.gpus,
                    free_gpus=g.free_gpus,
                    jobs=g.jobs,
                )
                for g in (remote.gateways if remote is not None else ())
            ],
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
            self._notify_user(message)
        self.update()

    @contextlib.asynccontextmanager
    async def progress(
        self, title: str, *, on_cancel: Callable[[], None] | None = None
    ) -> AsyncIterator[Callable[[str, int | None], None]]:
        """`$/progress` for long work; yields report(message, percentage). A fresh token each
        time: pygls never releases old ones. With `on_cancel`, the client may cancel the work
        (window/workDoneProgress/cancel): `on_cancel()` is then called on the loop."""
        server = self.server
        token = None
        if self.work_done_progress:
            token = str(uuid.uuid4())
            try:
                await asyncio.wait_for(
                    server.work_done_progress.create_async(token), _CLIENT_ANSWER_TIMEOUT_S
                )
                begin = types.WorkDoneProgressBegin(
                    title=title, percentage=0, cancellable=on_cancel is not None
                )
                server.work_done_progress.begin(token, begin)
                if on_cancel is not None:  # pygls cancels the token's future on the client's word
                    server.work_done_progress.tokens[token].add_done_callback(
                        lambda future: on_cancel() if future.cancelled() else None
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


_WORST_FIRST = ("offline", "degraded", "queued", "ready")


def combined(statuses: Mapping[str, DispatcherStatus]) -> DispatcherStatus | None:
    """Several folders' remote sides as one: the worst state, counts summed."""
    if not statuses:
        return None
    if len(statuses) == 1:
        return next(iter(statuses.values()))
    from remote_exec.dispatcher import DispatcherStatus

    parts = list(statuses.values())
    worst = min(parts, key=lambda s: _WORST_FIRST.index(s.state) if s.state in _WORST_FIRST else 0)
    queue: dict[str, int] = {}
    for part in parts:
        for state, count in part.queue.items():
            queue[state] = queue.get(state, 0) + count
    gateways = {}  # one line per gateway; a folder's own jobs there are summed
    for part in parts:
        for gateway in part.gateways:
            seen = gateways.get(gateway.name)
            gateways[gateway.name] = (
                gateway if seen is None else attrs.evolve(seen, jobs=seen.jobs + gateway.jobs)
            )
    return DispatcherStatus(
        state=worst.state,
        message=worst.message,
        remotes={name: state for part in parts for name, state in part.remotes.items()},
        queue=queue,
        running_locally=sum(part.running_locally for part in parts),
        gateways=tuple(gateways.values()),
    )
