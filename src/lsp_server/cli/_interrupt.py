"""Ctrl-C in `gantry`: one line, not a traceback, and exit 130 (128 + SIGINT, what a shell
expects); the asyncio commands (serve, check) leave at once."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator


def say_interrupted() -> None:
    with contextlib.suppress(OSError):  # `gantry check`, reading a server's stderr, may be gone
        os.write(2, b"gantry: interrupted\n")


_leaving = threading.Lock()


def _leave_at_once(*_: object) -> None:
    if _leaving.acquire(blocking=False):  # the handler and the watcher may both get here
        say_interrupted()
        os._exit(130)


@contextlib.contextmanager
def ctrl_c_leaves_at_once() -> Iterator[None]:
    """Ctrl-C in the asyncio commands leaves at once. asyncio.run would make it a cancellation,
    which waits for the work in flight and which Python 3.11's wait_for can swallow; raised as
    an exception inside the loop, it can leave the loop waiting forever. Nothing is lost by
    leaving: the store and the queue commit as they go (they survive a kill -9 too), and what we
    started ends with us (the server `check` runs sees its input close, pool workers and jobs
    have a parent-death signal).

    A Python handler runs only once the main thread runs Python again, and the kernel may hand
    the signal to another thread while the loop sleeps; so the signal's wakeup byte, written by
    whichever thread gets it, also wakes a thread of ours."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    handler = signal.signal(signal.SIGINT, _leave_at_once)
    wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    threading.Thread(
        target=_watch_for_ctrl_c, args=(read,), name="gantry-ctrl-c", daemon=True
    ).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(wakeup)
        signal.signal(signal.SIGINT, handler)
        os.close(write)  # the watcher reads the end and closes its side


def _watch_for_ctrl_c(read: int) -> None:
    while byte := os.read(read, 1):
        if byte[0] == signal.SIGINT:  # other signals with Python handlers write theirs too
            _leave_at_once()
    os.close(read)
