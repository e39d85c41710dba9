"""The store's single writer: one thread owns the only writable connection.

Any thread submits a function; the writer runs it inside one IMMEDIATE transaction and resolves
the returned future once it is committed (or rolled back, with the exception).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from lsp_server.store.db import connect, retry_busy

T = TypeVar("T")
_STOP = object()


class StoreWriter:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready: Future[None] = Future()
        self.thread = threading.Thread(target=self._run, name="gantry-store-writer", daemon=True)
        self.thread.start()
        self._ready.result()  # surface a failure to open right here

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        if not self.thread.is_alive():
            future.set_exception(RuntimeError("the store is closed"))
            return future
        self._jobs.put((work, future))
        return future

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Submit and wait until committed. Never call this from the writer thread itself."""
        return self.submit(work).result()

    def close(self) -> None:
        if self.thread.is_alive():
            self._jobs.put(_STOP)
            self.thread.join()

    def _run(self) -> None:
        try:
            conn = connect(self._path)
        except Exception as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            while (job := self._jobs.get()) is not _STOP:
                work, future = job
                if future.set_running_or_notify_cancel():
                    self._execute(conn, work, future)
        finally:
            conn.close()

    @staticmethod
    def _execute(conn: sqlite3.Connection, work: Callable[..., Any], future: Future[Any]) -> None:
        try:
            retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
