"""Run untrusted commands in a bubblewrap sandbox, with limits, a wall clock and a scrubbed env.

Inside: no network, read-only system and Python installation, a private /tmp, the job directory
read-write at ``JOB_MOUNT`` (also HOME and the working directory), fresh pid/ipc/uts namespaces.

Limits are applied *inside* the sandbox by util-linux ``prlimit`` rather than in a preexec_fn,
for two reasons measured on Linux 6.x: RLIMIT_NPROC never binds for uid 0 (the kernel exempts the
root user even inside a user namespace that maps to it), and for an ordinary user it counts the
user's processes in the namespace where it is set, so set outside it would also count the user's
editor and browser. So as root the command drops to a pool uid (``setpriv``) before ``prlimit``;
as an ordinary user bwrap makes a user namespace and the count starts from zero there. (It also
keeps Python code out of the forked child, which is unsafe in the threaded gateway.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

import attrs

log = logging.getLogger(__name__)

JOB_MOUNT = "/job"
"""Where the job directory appears inside (not /work: projects and venvs often live there)."""

ENV_ALLOW = frozenset(
    {
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONWARNINGS",
        "PYTHONUNBUFFERED",
        "PYTHONIOENCODING",
        "PYTHONFAULTHANDLER",
        "PYTEST_ADDOPTS",
        "COVERAGE_FILE",
        "COVERAGE_PROCESS_START",
        "HYPOTHESIS_PROFILE",
        "CUDA_VISIBLE_DEVICES",
        "TZ",
        "LANG",
        "LC_ALL",
        "TERM",
        "NO_COLOR",
        "FORCE_COLOR",
        "COLUMNS",
    }
)
"""The only caller-supplied names that reach the process; anything else is dropped."""

SECRET_PATTERNS = ("*TOKEN*", "*KEY*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*CREDENTIAL*")
"""Dropped even when allow-listed, so a widened allow-list cannot leak a credential."""

SANDBOX_UIDS = range(60100, 60164)
"""As root the command runs as one of these (uid = gid), one per concurrent run: RLIMIT_NPROC
counts per uid, so a fork bomb in one job cannot starve its neighbours."""

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "localtime",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
)
"""A minimal /etc: enough for the loader, user names and localhost, no credentials."""

_READ_CHUNK = 65536


@attrs.frozen
class Limits:
    timeout_s: float = 60
    address_space_mb: int = 2048
    processes: int = 256
    cpu_s: int | None = None
    """CPU seconds; None means the wall-clock timeout plus 5 s."""
    file_size_mb: int = 256
    """Largest file the job may write; also the size of its private /tmp."""
    output_tail_bytes: int = 64 * 1024


@attrs.frozen
class RunOutcome:
    exit_code: int | None
    """None when the process was killed. Through bwrap a death by signal N reads as 128+N."""
    signal: int | None
    timed_out: bool
    cancelled: bool
    stdout_tail: str
    stderr_tail: str
    duration_s: float


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot run here, and running unsandboxed was not allowed."""


def scrub_env(env: dict[str, str] | None) -> dict[str, str]:
    """The caller's variables that may enter the sandbox: allow-listed and not secret-looking."""
    out = {}
    for name, value in (env or {}).items():
        upper = name.upper()
        if upper not in ENV_ALLOW or any(fnmatchcase(upper, p) for p in SECRET_PATTERNS):
            log.debug("sandbox: dropping environment variable %s", name)
            continue
        if "=" in name or "\0" in name or "\0" in value:
            raise ValueError(f"invalid environment variable {name!r}")
        out[name] = value
    return out


class _Tail:
    """The last ``size`` bytes of a stream, in bounded memory."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf = bytearray()

    def add(self, chunk: bytes) -> None:
        self.buf += chunk
        if len(self.buf) > 2 * self.size:
            del self.buf[: -self.size]

    def text(self) -> str:
        return bytes(self.buf[-self.size :] if self.size else b"").decode("utf-8", "replace")


class _UidPool:
    def __init__(self, uids: range) -> None:
        self.free = list(uids)
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def take(self) -> Iterator[int]:
        with self.lock:
            if not self.free:
                raise RuntimeError("sandbox: every sandbox uid is in use; too many concurrent runs")
            uid = self.free.pop(0)
        try:
            yield uid
        finally:
            with self.lock:
                self.free.append(uid)


def _chown_tree(top: Path, uid: int) -> None:
    os.lchown(top, uid, uid)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, uid)


def _pump(
    stream: BinaryIO, name: str, tail: _Tail, on_output: Callable[[str, bytes], None] | None
) -> None:
    with stream:
        while chunk := stream.read1(_READ_CHUNK):
            tail.add(chunk)
            if on_output is not None:
                try:
                    on_output(name, chunk)
                except Exception:
                    # The pipe must keep draining, or the job blocks on a full pipe.
                    log.exception("sandbox: on_output callback failed")


class Sandbox:
    """Runs commands under bubblewrap; see the module docstring for what is isolated."""

    def __init__(
        self,
        *,
        unsandboxed: bool = False,
        announce: Callable[[str], None] = log.warning,
        bwrap: str = "bwrap",
    ) -> None:
        """``unsandboxed=True`` permits running without isolation *when bubblewrap cannot run*:
        the same limits, timeout and env scrubbing, no namespaces, announced on every run."""
        self.unsandboxed = unsandboxed
        self.announce = announce
        self.bwrap = bwrap
        self._as_root = os.geteuid() == 0
        self._uids = _UidPool(SANDBOX_UIDS)
        self._probe_lock = threading.Lock()
        self._probed = False
        self._problem: str | None = None

    # -- availability ---------------------------------------------------------------------

    def check(self) -> str | None:
        """Why the sandbox cannot run here (probed once, then cached), or None if it can."""
        with self._probe_lock:
            if not self._probed:
                self._problem = self._probe()
                self._probed = True
            return self._problem

    def _probe(self) -> str | None:
        fix = (
            "Install bubblewrap (e.g. `apt-get install bubblewrap`) and make sure unprivileged "
            "user namespaces are enabled (sysctl kernel.unprivileged_userns_clone=1 / "
            "user.max_user_namespaces > 0; in a container, allow them or run as root), or set "
            "the explicit `unsandboxed` setting to run untrusted code WITHOUT isolation."
        )
        exe = shutil.which(self.bwrap)
        if exe is None:
            return f"bubblewrap ({self.bwrap!r}) was not found. {fix}"
        self.bwrap = exe
        helpers = ["setpriv", "prlimit"] if self._as_root else ["prlimit"]
        missing = [t for t in helpers if shutil.which(t) is None]
        if missing:
            return f"{', '.join(missing)} (util-linux) not found; the sandbox needs them for limits"
        with tempfile.TemporaryDirectory(prefix="gantry-probe-") as tmp:
            try:
                out = self._run(["true"], Path(tmp), None, Limits(timeout_s=30), (), None, None)
            except OSError as e:
                return f"bubblewrap could not start: {e}. {fix}"
        if out.exit_code != 0:
            why = out.stderr_tail.strip() or f"exit status {out.exit_code}"
            return f"bubblewrap cannot create a sandbox here: {why}. {fix}"
        return None

    # -- running --------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        job_dir: Path,
        *,
        env: dict[str, str] | None = None,
        limits: Limits = Limits(),
        ro_binds: Sequence[Path] = (),
        on_output: Callable[[str, bytes], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RunOutcome:
        """Run ``argv`` with ``job_dir`` as its writable home; never raises for the job's faults.

        ``job_dir`` is handed over to the job: as root its whole tree is chowned to a sandbox
        uid, so pass a scratch directory, never a project. ``ro_binds`` are host paths made
        visible read-only at the same path. ``on_output(stream, chunk)`` ("stdout"/"stderr") is
        called from reader threads as output arrives.
        Raises SandboxUnavailable when bubblewrap cannot run and unsandboxed is not allowed.
        Unsandboxed as root, the process limit does not bind (the kernel exempts root).
        """
        if not argv:
            raise ValueError("empty argv")
        problem = self.check()
        if problem is None:
            return self._run(argv, job_dir, env, limits, ro_binds, on_output, cancel)
        if not self.unsandboxed:
            raise SandboxUnavailable(problem)
        if shutil.which("prlimit") is None:
            raise SandboxUnavailable(
                "prlimit (util-linux) not found; even unsandboxed runs need it"
            )
        self.announce(
            f"running {argv[0]!r} UNSANDBOXED (no namespaces: it can reach the network and "
            f"write wherever this user can) because {problem}"
        )
        return self._run(argv, job_dir, env, limits, ro_binds, on_output, cancel, sandboxed=False)

    def _run(
        self,
        argv: Sequence[str],
        job_dir: Path,
        env: dict[str, str] | None,
        limits: Limits,
        ro_binds: Sequence[Path],
        on_output: Callable[[str, bytes], None] | None,
        cancel: threading.Event | None,
        *,
        sandboxed: bool = True,
    ) -> RunOutcome:
        job_dir = Path(job_dir).resolve(strict=True)
        home = JOB_MOUNT if sandboxed else str(job_dir)
        full_env = {
            "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            **scrub_env(env),
        }
        command = [*_prlimit_argv(limits), "--", *argv]
        with contextlib.ExitStack() as stack:
            if sandboxed:
                uid = stack.enter_context(self._uids.take()) if self._as_root else None
                if uid is not None:
                    _chown_tree(job_dir, uid)
                    command = [*_setpriv_argv(uid), "--", *command]
                bwrap = self._bwrap_argv(job_dir, limits, ro_binds, full_env)
                command = [*bwrap, "--", *command]
            return _execute(
                command,
                cwd=job_dir if not sandboxed else None,
                # bwrap gets the same scrubbed env, though it passes on only its --setenv list.
                env=full_env,
                limits=limits,
                on_output=on_output,
                cancel=cancel,
            )

    def _bwrap_argv(
        self, job_dir: Path, limits: Limits, ro_binds: Sequence[Path], env: dict[str, str]
    ) -> list[str]:
        args = [self.bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent"]
        args += ["--new-session", "--clearenv"]
        for name, value in env.items():
            args += ["--setenv", name, value]
        if not self._as_root:
            args.append("--unshare-user")
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for name in _ETC_FILES:
            if os.path.lexists(f"/etc/{name}"):
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        args += ["--dev", "/dev", "--proc", "/proc"]
        args += ["--size", str(limits.file_size_mb * 1024 * 1024), "--perms", "1777"]
        args += ["--tmpfs", "/tmp"]
        bound: list[str] = ["/usr"]
        made: set[str] = set()
        for p in [sys.prefix, sys.base_prefix, sys.exec_prefix, *map(str, ro_binds)]:
            p = os.path.realpath(p)
            if not os.path.exists(p):
                raise ValueError(f"read-only bind {p} does not exist")
            if p == JOB_MOUNT or p.startswith(JOB_MOUNT + "/"):
                raise ValueError(f"read-only bind {p} would hide the job directory")
            if any(p == b or p.startswith(b + "/") for b in bound):
                continue
            bound.append(p)
            # Parents bwrap would create itself get mode 0700, closing them to the pool uid.
            for parent in reversed(Path(p).parents[:-1]):
                if str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", p, p]
        args += ["--bind", str(job_dir), JOB_MOUNT, "--chdir", JOB_MOUNT, "--remount-ro", "/"]
        return args


def _prlimit_argv(limits: Limits) -> list[str]:
    cpu = limits.cpu_s if limits.cpu_s is not None else int(limits.timeout_s) + 5
    address = limits.address_space_mb * 1024 * 1024
    fsize = limits.file_size_mb * 1024 * 1024
    return [
        "prlimit",
        f"--as={address}:{address}",
        f"--nproc={limits.processes}:{limits.processes}",
        # Soft then hard: SIGXCPU first, SIGKILL a second later.
        f"--cpu={cpu}:{cpu + 1}",
        f"--fsize={fsize}:{fsize}",
        "--core=0:0",
    ]


def _setpriv_argv(uid: int) -> list[str]:
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--no-new-privs",
        "--bounding-set=-all",
        "--inh-caps=-all",
    ]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _execute(
    command: list[str],
    *,
    cwd: Path | None,
    env: dict[str, str],
    limits: Limits,
    on_output: Callable[[str, bytes], None] | None,
    cancel: threading.Event | None,
) -> RunOutcome:
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so one killpg reaches its children
    )
    tails = {"stdout": _Tail(limits.output_tail_bytes), "stderr": _Tail(limits.output_tail_bytes)}
    readers = [
        threading.Thread(target=_pump, args=(stream, name, tails[name], on_output), daemon=True)
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for r in readers:
        r.start()
    exited = threading.Event()
    threading.Thread(target=lambda: (proc.wait(), exited.set()), daemon=True).start()
    deadline = start + limits.timeout_s
    timed_out = cancelled = False
    while not exited.wait(min(max(deadline - time.monotonic(), 0), 0.05)):
        if time.monotonic() >= deadline:
            timed_out = True
        elif cancel is not None and cancel.is_set():
            cancelled = True
        else:
            continue
        _kill_group(proc.pid)
        break
    proc.wait()
    duration = time.monotonic() - start
    # Stragglers that kept the group (unsandboxed mode; bwrap's pid namespace ends its own).
    _kill_group(proc.pid)
    for r in readers:
        r.join(timeout=5)
    rc = proc.returncode
    return RunOutcome(
        exit_code=rc if rc >= 0 and not (timed_out or cancelled) else None,
        signal=-rc if rc < 0 else None,
        timed_out=timed_out,
        cancelled=cancelled,
        stdout_tail=tails["stdout"].text(),
        stderr_tail=tails["stderr"].text(),
        duration_s=duration,
    )
