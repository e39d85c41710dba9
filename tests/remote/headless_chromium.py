"""Debian's Chromium, headless, driven over the DevTools protocol on a pipe (no port, no extra
package): navigate, read the DOM, run a line of script, and see every request the page made."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Self

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


_WIRE = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4);"
    " os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"
)


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The same pipe on descriptors above 9, so wiring them to 3 and 4 cannot clobber them."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


class Browser:
    def __init__(self, timeout_s: float = 30.0) -> None:
        assert CHROMIUM is not None
        self._timeout = timeout_s
        self._profile = tempfile.TemporaryDirectory(
            prefix="gantry-chromium-", ignore_cleanup_errors=True
        )
        to_child, self._to_browser = _high(os.pipe())
        self._from_browser, from_child = _high(os.pipe())
        args = [
            CHROMIUM,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses root otherwise (CI containers)
        # The browser reads commands on fd 3 and answers on fd 4: a small Python wires them
        # and execs it (not preexec_fn, unsafe beside the gateway's threads; not sh, whose
        # redirections stop at fd 9).
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WIRE, str(to_child), str(from_child), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(to_child, from_child),
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.requests: list[str] = []
        """Every URL the page asked for, in order."""
        self.documents: list[tuple[str, int]] = []
        """(url, HTTP status) of each page loaded."""
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self._session = attached["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Network.enable", session=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, AssertionError):
            self.call("Browser.close")
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # its renderers and helpers too
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def navigate(self, url: str) -> None:
        self._until_loaded(lambda: self.call("Page.navigate", url=url, session=True))

    def run(self, script: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=script, returnByValue=True, session=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def run_and_wait_for_load(self, script: str) -> None:
        self._until_loaded(lambda: self.run(script))

    def dom(self) -> str:
        return self.run("document.documentElement.outerHTML")

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _until_loaded(self, start: Any) -> None:
        seen = len(self.events)
        start()
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events[seen:]):
            self._read()

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self._timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("chromium did not answer")
            data = os.read(self._from_browser, 65536)
            if not data:
                raise EOFError("chromium went away")
            self._buffer += data
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif message["method"] == "Network.responseReceived" and params["type"] == "Document":
                self.documents.append((params["response"]["url"], params["response"]["status"]))
        return message
