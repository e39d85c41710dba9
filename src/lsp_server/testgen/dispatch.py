"""Test-generation jobs through a workspace's dispatcher (the durable queue: a gateway when one
is up, the local sandbox otherwise, GPU jobs only on a gateway with one), for the server and
for `gantry testgen` alike. The dispatcher is asyncio's (remote_exec.aio); the runs are threads:
`dispatched` submits on the loop and waits off it, and `project_queue` gives a command without
a loop of its own one in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .jobs import RunJob

if TYPE_CHECKING:
    from lsp_server.config import Settings
    from remote_exec.aio import AsyncDispatcher
    from remote_exec.jobs import ExecResult, ExecSpec

log = logging.getLogger("gantry.testgen")
CLIENT_WAIT_S = 30.0
"""How long a call on the dispatcher (a submit, its start, its stop) may take."""
QUEUE_SLACK_S = 60.0
"""How long past its own timeout a job may wait (for a worker, for the gateway) before the run
gives up on it: the run's budget is the user's wait."""
NOT_RUN = ""
"""The ``where`` of a result made here for a job that ended in the queue without running."""


class QueueUnavailable(RuntimeError):
    """The project's dispatcher could not start (its queue file is not a queue, or cannot be
    opened): the message says why."""


class NotRun(RuntimeError):
    """A job could not be run at all (the dispatcher parked it: no sandbox; or no gateway can
    ever run it); the message says why, for the user."""


def dispatched(
    dispatcher: AsyncDispatcher,
    loop: asyncio.AbstractEventLoop,
    cancel: threading.Event,
    prefix: str,
    *,
    deadline: float | None = None,
) -> RunJob:
    """A RunJob (called in a worker thread) that submits each job to the dispatcher on the
    loop and waits for its end; once ``cancel`` is set the job is cancelled there, which
    kills it wherever it runs (the local sandbox's process group, or on the gateway).

    ``deadline`` (monotonic seconds: the run's budget) bounds the wait too: a job not ended
    then is cancelled and comes back failed, ``where`` NOT_RUN, and no job is sent after it;
    without one, a job is given up (cancelled) QUEUE_SLACK_S past its own timeout."""
    import uuid
    from concurrent.futures import TimeoutError as WaitTimeout

    import cattrs

    from remote_exec.jobs import ExecResult, JobKind, Priority

    convert = cattrs.Converter()

    def on_loop(coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    def run(spec: ExecSpec) -> ExecResult:
        if deadline is not None and time.monotonic() >= deadline and not cancel.is_set():
            why = "not sent: the run's budget had run out"
            return ExecResult("failed", None, stderr_tail=why, where=NOT_RUN)
        job = on_loop(
            dispatcher.submit(
                f"{prefix}{uuid.uuid4().hex}",
                JobKind.EXEC,
                convert.unstructure(spec),
                priority=Priority.INTERACTIVE,
                max_attempts=1,
            )
        ).result(CLIENT_WAIT_S)
        ended = on_loop(dispatcher.ended(job.id))
        give_up = time.monotonic() + spec.timeout_s + QUEUE_SLACK_S
        if deadline is not None:
            give_up = min(give_up, deadline)
        cancelled = False
        while True:
            try:
                job = ended.result(0.1)
                break
            except WaitTimeout:
                if not cancelled and (cancel.is_set() or time.monotonic() > give_up):
                    cancelled = True
                    on_loop(dispatcher.cancel(job.id))
        if job.state == "done" and job.result:
            return convert.structure(job.result, ExecResult)
        if job.state in ("parked", "dead") and not cancel.is_set():
            # Not the candidates' fault (no sandbox here, a refused bundle): the run stops.
            raise NotRun(job.error or f"a job ended {job.state}")
        if cancelled and deadline is not None and not cancel.is_set():
            why = f"cancelled when the run's budget ran out ({job.error or 'in the queue'})"
            return ExecResult("failed", None, stderr_tail=why, where=NOT_RUN)
        state = "cancelled" if job.state == "cancelled" else "failed"
        return ExecResult(
            state, None, stderr_tail=job.error or f"the job ended {job.state}", where=NOT_RUN
        )

    return run


@contextlib.contextmanager
def project_queue(
    root: Path, settings: Settings, *, announce: Callable[[str], None]
) -> Iterator[tuple[AsyncDispatcher, asyncio.AbstractEventLoop]]:
    """The project's dispatcher, as the server builds it (remote_setup), started on an event
    loop in a thread of its own, for a command that has none; stopped on the way out (jobs
    still queued stay in the queue: cancel them first if they are not wanted). Raises
    QueueUnavailable when it cannot start."""
    from lsp_server.remote_setup import dispatcher_config
    from remote_exec.aio import AsyncDispatcher

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gantry-dispatch-loop", daemon=True)
    thread.start()
    try:
        try:
            config = dispatcher_config(root, settings)
            dispatcher = asyncio.run_coroutine_threadsafe(
                AsyncDispatcher.start(config, announce=announce), loop
            ).result(CLIENT_WAIT_S)
        except Exception as exc:  # as the server: say why, and let the caller go on without
            raise QueueUnavailable(f"the job queue could not start: {exc}") from exc
        try:
            yield dispatcher, loop
        finally:
            asyncio.run_coroutine_threadsafe(dispatcher.stop(), loop).result(CLIENT_WAIT_S)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLIENT_WAIT_S)
        if not thread.is_alive():
            loop.close()


def waiting_reasons(
    dispatcher: AsyncDispatcher,
    loop: asyncio.AbstractEventLoop,
    prefix: str,
    say: Callable[[str], None],
    stop: threading.Event,
    interval_s: float = 1.0,
) -> threading.Thread:
    """A thread that tells ``say`` why a job of the run (its key starts with ``prefix``) waits
    in the queue for a remote, each time the reason changes, until ``stop`` is set."""
    from remote_exec.jobs import JobState
    from remote_exec.routing import WAITING_FOR_REMOTE

    def watch() -> None:
        last = None
        while not stop.wait(interval_s):
            try:
                jobs = asyncio.run_coroutine_threadsafe(
                    dispatcher.jobs([JobState.PENDING], limit=100), loop
                ).result(CLIENT_WAIT_S)
            except Exception:  # the loop is stopping, or the queue is busy: look again
                log.debug("reading the queue failed", exc_info=True)
                continue
            reasons = [
                job.error.removeprefix(WAITING_FOR_REMOTE)
                for job in jobs
                if job.key.startswith(prefix) and (job.error or "").startswith(WAITING_FOR_REMOTE)
            ]
            if reasons and reasons[0] != last:
                last = reasons[0]
                say(last)

    thread = threading.Thread(target=watch, name="gantry-queue-watch", daemon=True)
    thread.start()
    return thread
