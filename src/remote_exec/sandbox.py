"""Run untrusted commands in a bubblewrap sandbox, with limits, a wall clock and a scrubbed env.

Inside: no network, read-only system and Python installation, fresh pid/ipc/uts namespaces, and
only two writable places, each a tmpfs of ``Limits.disk_mb``: /tmp and the job directory at
``JOB_MOUNT`` (also HOME and the working directory). A tmpfs is the disk quota: a bind of a host
directory would let the job fill the host's disk, a file at a time (RLIMIT_FSIZE bounds one file,
not how many). So the job's files are copied in at the start, and its directory is sent back as a
tar stream on a pipe when it ends, of which the host keeps regular files and directories.

Memory, CPU and processes are bounded by a cgroup v2 per run where this process owns a delegated
cgroup (``Sandbox(cgroups=True)``: the gateway), else by rlimits, which bound each process alone.

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
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

import attrs

from .bundle import BundleError, MiB, normalise

log = logging.getLogger(__name__)

JOB_MOUNT = "/job"
"""Where the job directory appears inside (not /work: projects and venvs often live there)."""
_BUNDLE_MOUNT = "/.gantry-bundle"
"""Where the job's starting files are bound read-only, to be copied into its tmpfs."""

DEFAULT_DISK_MB = 1024

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
    memory_mb: int = 2048
    """The job's memory (cgroup memory.max), or each process's address space (RLIMIT_AS)."""
    cpus: int = 1
    """CPU bandwidth (cgroup cpu.max), or CPU time of ``cpus`` x the timeout (RLIMIT_CPU)."""
    processes: int = 256
    disk_mb: int = DEFAULT_DISK_MB
    """Size of the job directory and of /tmp (each a tmpfs), and of the largest file it may
    write (RLIMIT_FSIZE: the only bound on disk when unsandboxed)."""
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


_CONTROLLERS = ("cpu", "memory", "pids")
_CPU_PERIOD_US = 100_000


def _own_cgroup() -> Path:
    """This process's directory in the cgroup v2 hierarchy; OSError when there is none."""
    for entry in Path("/proc/self/cgroup").read_text().splitlines():
        if entry.startswith("0::"):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                fields, _, fs = line.partition(" - ")
                if fs.split()[:1] == ["cgroup2"]:
                    root, mount = fields.split()[3:5]
                    inside = os.path.relpath(entry[3:], root)
                    if not inside.startswith(".."):
                        return Path(mount, inside)
    raise OSError("no cgroup v2 hierarchy holds this process")


class _Cgroups:
    """A cgroup v2 per run, made under this process's own cgroup, which must be delegated to it.

    A cgroup that hands controllers to its children may hold no process itself, so this process
    first moves into a leaf of its own beside the runs' cgroups.
    """

    def __init__(self) -> None:
        """Raises OSError saying why cgroups cannot be used here."""
        base = _own_cgroup()
        missing = set(_CONTROLLERS) - set((base / "cgroup.controllers").read_text().split())
        if missing:
            raise OSError(f"cgroup v2 {base} lacks the {', '.join(sorted(missing))} controller(s)")
        leaf = base / "gantry-supervisor"
        try:
            leaf.mkdir(exist_ok=True)
            (leaf / "cgroup.procs").write_text(str(os.getpid()))
            (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in _CONTROLLERS))
        except OSError as exc:
            with contextlib.suppress(OSError):
                (base / "cgroup.procs").write_text(str(os.getpid()))
                leaf.rmdir()
            raise OSError(
                f"cannot make cgroups under {base} ({exc.strerror}): the gateway needs a "
                "delegated cgroup that holds it alone (systemd: Delegate=yes)"
            ) from exc
        self.base = base

    @contextlib.contextmanager
    def run(self, limits: Limits) -> Iterator[Path]:
        """A fresh cgroup with ``limits``; killed and removed afterwards."""
        cg = self.base / f"run-{secrets.token_hex(6)}"
        cg.mkdir()
        try:
            (cg / "memory.max").write_text(str(limits.memory_mb * MiB))
            if (cg / "memory.swap.max").exists():  # absent without swap accounting
                (cg / "memory.swap.max").write_text("0")
            (cg / "cpu.max").write_text(f"{limits.cpus * _CPU_PERIOD_US} {_CPU_PERIOD_US}")
            # bwrap's two processes, the init script and its tar come on top of the job's.
            (cg / "pids.max").write_text(str(limits.processes + 4))
            yield cg
        finally:
            if (cg / "cgroup.kill").exists():  # Linux 5.14+
                (cg / "cgroup.kill").write_text("1")
            for _ in range(200):  # its processes are dead or dying: exiting takes a moment
                try:
                    cg.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)
            else:
                log.warning("sandbox: cgroup %s is still busy; left behind", cg)


def _oom_kills(cg: Path) -> int:
    for line in (cg / "memory.events").read_text().splitlines():
        name, _, count = line.partition(" ")
        if name == "oom_kill":
            return int(count)
    return 0


# Runs inside the sandbox as the job's user, with the job's command as arguments and, as its
# stdin, the pipe for the job's directory (dash knows no fd above 9; the job gets /dev/null).
# Whatever the job left running is killed first, so nothing writes meanwhile.
_INIT = f"""
cp -R {_BUNDLE_MOUNT}/. . || exit 125
"$@" </dev/null
rc=$?
kill -9 -1 2>/dev/null
tar -cf - . >&0
exit $rc
"""


class _Capped:
    """A stream that fails once more than ``limit`` bytes have been read from it."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream, self.left, self.limit = stream, limit, limit

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.left -= len(data)
        if self.left < 0:
            raise OSError(f"more than {self.limit} bytes")
        return data


def _unpack(tar: tarfile.TarFile, job_dir: Path) -> None:
    """Regular files and directories only, each by a checked name: nothing lands outside
    ``job_dir``, links anywhere or keeps an owner or mode (nor needs tarfile's own filters,
    which older 3.11s lack)."""
    for member in tar:
        try:
            target = job_dir / normalise(member.name)
        except BundleError:
            continue  # the top directory itself, or a name that would escape
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif member.isreg():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "xb") as dst:
                shutil.copyfileobj(src, dst)


def _receive(fd: int, job_dir: Path, limit: int, problems: list[str]) -> None:
    with open(fd, "rb") as stream:
        try:
            with tarfile.open(fileobj=_Capped(stream, limit), mode="r|") as tar:
                _unpack(tar, job_dir)
        except (tarfile.TarError, OSError) as exc:
            problems.append(str(exc))
        while stream.read(_READ_CHUNK):  # so the sender never blocks on a full pipe
            pass


@contextlib.contextmanager
def _receiving(job_dir: Path, limit: int) -> Iterator[tuple[int, list[str]]]:
    """The write end of a pipe for a tar stream, unpacked into ``job_dir`` (at most ``limit``
    bytes of it) as it comes, and the problems met, known once this exits."""
    files_out, files_in = os.pipe()
    problems: list[str] = []
    receiver = threading.Thread(
        target=_receive, args=(files_out, job_dir, limit, problems), daemon=True
    )
    receiver.start()
    try:
        yield files_in, problems
    finally:
        os.close(files_in)  # the stream ends once the sandbox's copies are closed too
        receiver.join()


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
        cgroups: bool = False,
    ) -> None:
        """``unsandboxed=True`` permits running without isolation *when bubblewrap cannot run*:
        the same limits, timeout and env scrubbing, no namespaces, announced on every run.
        ``cgroups=True`` bounds each run with a cgroup v2 when this process's cgroup is delegated
        to it, moving this process into a leaf cgroup (so only for a service such as the
        gateway, never an editor's server); rlimits otherwise."""
        self.unsandboxed = unsandboxed
        self.announce = announce
        self.bwrap = bwrap
        self._as_root = os.geteuid() == 0
        self._uids = _UidPool(SANDBOX_UIDS)
        self._probe_lock = threading.Lock()
        self._probed = False
        self._problem: str | None = None
        self._want_cgroups = cgroups
        self._cgroups: _Cgroups | None = None
        self._no_cgroups = "not asked for"

    # -- availability ---------------------------------------------------------------------

    def check(self) -> str | None:
        """Why the sandbox cannot run here (probed once, then cached), or None if it can."""
        with self._probe_lock:
            if not self._probed:
                if self._want_cgroups:
                    try:
                        self._cgroups = _Cgroups()
                    except OSError as exc:
                        self._no_cgroups = str(exc)
                        log.warning("sandbox: limits are rlimits, not cgroups: %s", exc)
                self._problem = self._probe()
                self._probed = True
            return self._problem

    def enforcement(self) -> dict[str, str]:
        """How runs are bounded here, for people to read: memory and CPU by "cgroup" or
        "rlimit" (with why not cgroups), disk by "tmpfs" or, unsandboxed, per file by "rlimit"."""
        disk = "tmpfs" if self.check() is None else "rlimit"
        if self._cgroups is not None and disk == "tmpfs":
            return {"memory": "cgroup", "cpus": "cgroup", "disk": disk}
        return {"memory": "rlimit", "cpus": "rlimit", "disk": disk, "why": self._no_cgroups}

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
        helpers = ["setpriv", "prlimit", "tar"] if self._as_root else ["prlimit", "tar"]
        missing = [t for t in helpers if shutil.which(t) is None]
        if missing:
            return f"{', '.join(missing)} not found; the sandbox needs them (util-linux, tar)"
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

        ``job_dir`` holds the job's starting files; they are moved out while it runs, and
        afterwards it holds the job's directory as the job left it (nothing if it was killed).
        Pass a scratch directory, never a project. ``ro_binds`` are host paths made
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
        if shutil.which("prlimit") is None or shutil.which("setpriv") is None:
            raise SandboxUnavailable(
                "prlimit and setpriv (util-linux) not found; even unsandboxed runs need them"
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
        if not sandboxed:
            # No bwrap --die-with-parent here: the kernel kills the job when we die instead.
            return _execute(
                ["setpriv", "--pdeathsig", "KILL", "--", *_prlimit_argv(limits, cgroup=False)]
                + ["--", *argv],
                cwd=job_dir,
                env=full_env,
                limits=limits,
                on_output=on_output,
                cancel=cancel,
            )
        notes = []
        cgroups = self._cgroups
        command = [*_prlimit_argv(limits, cgroup=cgroups is not None), "--", *argv]
        with contextlib.ExitStack() as stack:
            bundle = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=job_dir.parent)))
            bwrap = self._bwrap_argv(bundle, limits, ro_binds, full_env)
            for entry in os.scandir(job_dir):
                os.rename(entry.path, bundle / entry.name)
            command = ["sh", "-c", _INIT, "sh", *command]
            if self._as_root:
                uid = stack.enter_context(self._uids.take())
                _chown_tree(bundle, uid)
                command = [*_setpriv_argv(uid), "--", *command]
            command = [*bwrap, "--", *command]
            if cgroups is not None:
                cg = stack.enter_context(cgroups.run(limits))
                join = 'echo $$ > "$1" && shift && exec "$@"'
                command = ["sh", "-c", join, "sh", str(cg / "cgroup.procs"), *command]
            # Twice the quota: a tar header takes 512 bytes even for an empty file (free in tmpfs).
            files_in, problems = stack.enter_context(_receiving(job_dir, 2 * limits.disk_mb * MiB))
            out = _execute(
                command,
                cwd=None,
                # bwrap gets the same scrubbed env, though it passes on only its --setenv list.
                env=full_env,
                limits=limits,
                on_output=on_output,
                cancel=cancel,
                stdin=files_in,
            )
            if cgroups is not None and (kills := _oom_kills(cg)):
                notes.append(f"{kills} process(es) killed for going over {limits.memory_mb} MB")
        if problems and not (out.timed_out or out.cancelled):
            notes.append(f"the job's files did not come back: {problems[0]}")
        if not notes:
            return out
        return attrs.evolve(
            out, stderr_tail=out.stderr_tail + "".join(f"\n[gantry] {n}\n" for n in notes)
        )

    def _bwrap_argv(
        self, bundle: Path, limits: Limits, ro_binds: Sequence[Path], env: dict[str, str]
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
        size = str(limits.disk_mb * MiB)
        args += ["--size", size, "--perms", "1777", "--tmpfs", "/tmp"]
        # Open to all: as root the job runs as a pool uid, and no one else can see this mount.
        args += ["--size", size, "--perms", "0777", "--tmpfs", JOB_MOUNT]
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
        args += ["--ro-bind", str(bundle), _BUNDLE_MOUNT]
        args += ["--chdir", JOB_MOUNT, "--remount-ro", "/"]
        return args


def _prlimit_argv(limits: Limits, *, cgroup: bool) -> list[str]:
    fsize = limits.disk_mb * MiB
    args = ["prlimit", f"--fsize={fsize}:{fsize}", "--core=0:0"]
    if not cgroup:  # a cgroup bounds these for the whole job; an rlimit per process
        memory = limits.memory_mb * MiB
        cpu = limits.cpus * math.ceil(limits.timeout_s) + 5
        args += [
            f"--as={memory}:{memory}",
            f"--nproc={limits.processes}:{limits.processes}",
            # Soft then hard: SIGXCPU first, SIGKILL a second later.
            f"--cpu={cpu}:{cpu + 1}",
        ]
    return args


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
    stdin: int = subprocess.DEVNULL,
) -> RunOutcome:
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=stdin,
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
