"""The bubblewrap sandbox, for real: network, filesystem, processes, memory, time, environment."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remote_exec.jobs import ExecSpec
from remote_exec.local_runner import run_spec
from remote_exec.sandbox import Limits, Sandbox, SandboxUnavailable, scrub_env


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sb = Sandbox()
    problem = sb.check()
    if problem is not None:
        # Fail, not skip: these are the security tests; CI installs bubblewrap.
        pytest.fail(problem)
    return sb


@pytest.fixture
def job(tmp_path: Path) -> Path:
    d = tmp_path / "job"
    d.mkdir()
    return d


def py(code: str) -> list[str]:
    return ["python", "-c", code]


def pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def processes_running(argv: list[str]) -> list[int]:
    found = []
    for pid in pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if [a.decode(errors="replace") for a in cmdline] == argv:
            found.append(pid)
    return found


def wait_until(predicate, limit_s: float = 10.0) -> bool:
    end = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def canary() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def test_runs_and_writes_inside_the_job(sandbox: Sandbox, job: Path) -> None:
    (job / "in.txt").write_text("hello")
    chunks: list[tuple[str, bytes]] = []
    out = sandbox.run(
        py(
            "import os; print(open('in.txt').read(), os.getcwd()); open('out.txt', 'w').write('ok')"
        ),
        job,
        on_output=lambda stream, chunk: chunks.append((stream, chunk)),
    )
    assert out.exit_code == 0, out.stderr_tail
    assert out.stdout_tail == "hello /job\n"
    assert (job / "out.txt").read_text() == "ok"
    assert b"".join(c for s, c in chunks if s == "stdout") == b"hello /job\n"


def test_loopback_is_unreachable(sandbox: Sandbox, job: Path, canary: socket.socket) -> None:
    port = canary.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5):  # control: reachable here
        pass
    canary.accept()[0].close()
    out = sandbox.run(py(f"import socket; socket.create_connection(('127.0.0.1', {port}), 5)"), job)
    assert out.exit_code != 0
    assert "ConnectionRefusedError" in out.stderr_tail or "unreachable" in out.stderr_tail
    with pytest.raises(BlockingIOError):
        canary.accept()


def test_writes_outside_the_job_fail(sandbox: Sandbox, job: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    home = Path(os.path.expanduser("~")) / "gantry-sandbox-canary.txt"
    targets = ["/usr/pwned", "/etc/pwned", "/pwned", str(outside), str(home)]
    script = (
        "import sys\n"
        "for t in sys.argv[1:]:\n"
        "    try:\n"
        "        open(t, 'w').write('x'); print('WROTE', t)\n"
        "    except OSError as e:\n"
        "        print('refused', t, type(e).__name__)\n"
    )
    out = sandbox.run(["python", "-c", script, *targets], job)
    assert out.exit_code == 0, out.stderr_tail
    assert "WROTE" not in out.stdout_tail
    assert out.stdout_tail.count("refused") == len(targets)
    for t in targets:
        assert not os.path.exists(t)


def descendants() -> int:
    """Processes below this one: every sandboxed process, however orphaned, stays below."""
    children: dict[int, list[int]] = {}
    for pid in pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    todo, seen = [os.getpid()], 0
    while todo:
        kids = children.get(todo.pop(), [])
        seen += len(kids)
        todo += kids
    return seen


def test_fork_bomb_is_contained(sandbox: Sandbox, job: Path) -> None:
    # Other tests may leave processes of their own below us (Ray's daemons die slowly).
    before = descendants()
    # A bounded one first, to see the process limit bind...
    counter = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(2000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60); os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    print('limited at', n)\n"
    )
    out = sandbox.run(py(counter), job, limits=Limits(processes=32, timeout_s=20))
    assert out.stdout_tail.startswith("limited at"), (out.stdout_tail, out.stderr_tail)
    assert int(out.stdout_tail.split()[-1]) < 32
    assert wait_until(lambda: descendants() <= before)
    # ...then the real thing, kept raging until the timeout by a parent that stays.
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], descendants() - before)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        bomb = ["bash", "-c", ":(){ :|:& };:; sleep 100"]
        out = sandbox.run(bomb, job, limits=Limits(processes=32, timeout_s=2))
    finally:
        stop.set()
        sampler.join()
    assert out.timed_out
    assert "fork: retry: Resource temporarily unavailable" in out.stderr_tail
    assert peak[0] <= 32 + 4  # the limit, plus bwrap's two processes and slack
    assert wait_until(lambda: descendants() <= before)


def test_large_allocation_fails(sandbox: Sandbox, job: Path) -> None:
    out = sandbox.run(py("b = bytearray(2 * 1024**3)"), job, limits=Limits(memory_mb=1024))
    assert out.exit_code != 0
    assert "MemoryError" in out.stderr_tail


def test_timeout_kills_children(sandbox: Sandbox, job: Path) -> None:
    out = sandbox.run(["sh", "-c", "sleep 100 & sleep 100"], job, limits=Limits(timeout_s=1))
    assert out.timed_out and out.exit_code is None
    assert wait_until(lambda: not processes_running(["sleep", "100"]))


def test_cancel(sandbox: Sandbox, job: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    out = sandbox.run(["sleep", "100"], job, cancel=cancel)
    assert out.cancelled and not out.timed_out
    assert wait_until(lambda: not processes_running(["sleep", "100"]))


def test_env_is_scrubbed(sandbox: Sandbox, job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANTRY_API_TOKEN", "canary-parent-token")
    out = sandbox.run(
        py("import os; print(sorted(os.environ.items()))"),
        job,
        env={"ANTHROPIC_API_KEY": "canary-asked-key", "PYTHONHASHSEED": "7", "RANDOM": "x"},
    )
    assert "canary" not in out.stdout_tail
    assert "('PYTHONHASHSEED', '7')" in out.stdout_tail
    assert "RANDOM" not in out.stdout_tail
    assert "('HOME', '/job')" in out.stdout_tail


def test_scrub_env_drops_secret_looking_names() -> None:
    assert scrub_env({"PYTHONHASHSEED": "1", "DB_PASSWORD": "x", "FOO": "y"}) == {
        "PYTHONHASHSEED": "1"
    }


def test_unavailable_has_a_clear_message(job: Path) -> None:
    sb = Sandbox(bwrap="/nonexistent")
    assert "bubblewrap" in (sb.check() or "")
    with pytest.raises(SandboxUnavailable, match=r"(?s)install bubblewrap.*unsandboxed"):
        sb.run(["true"], job)


def test_unsandboxed_announces_every_run(job: Path) -> None:
    said: list[str] = []
    sb = Sandbox(unsandboxed=True, bwrap="/nonexistent", announce=said.append)
    for _ in range(2):
        out = sb.run(py("import os; print(os.environ['HOME'])"), job, env={"X_TOKEN": "t"})
        assert out.exit_code == 0 and out.stdout_tail.strip() == str(job.resolve())
    assert len(said) == 2 and all("UNSANDBOXED" in s for s in said)
    out = sb.run(["sh", "-c", "sleep 100 & sleep 100"], job, limits=Limits(timeout_s=1))
    assert out.timed_out
    assert wait_until(lambda: not processes_running(["sleep", "100"]))


def test_an_unsandboxed_job_dies_with_the_process_that_ran_it(job: Path) -> None:
    runner = (
        "import sys\nfrom remote_exec.sandbox import Sandbox\n"
        "sb = Sandbox(unsandboxed=True, bwrap='/nonexistent', announce=lambda _m: None)\n"
        "sb.run(['sleep', '4242'], sys.argv[1])\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", runner, str(job)])
    try:
        assert wait_until(lambda: processes_running(["sleep", "4242"]))
    finally:
        parent.kill()
        parent.wait()
    assert wait_until(lambda: not processes_running(["sleep", "4242"]))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_run_spec_pytest_with_junit_artifact(sandbox: Sandbox, tmp_path: Path) -> None:
    spec = ExecSpec(
        files={
            "calc.py": b64("def add(a, b):\n    return a + b\n"),
            "tests/test_calc.py": b64(
                "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"
            ),
        },
        argv=["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=out/j.xml"],
        env={"PYTHONPATH": "."},
        timeout_s=60,
        artifacts=["out/j.xml", "missing.json"],
    )
    work_root = tmp_path / "work"
    result = run_spec(spec, sandbox, work_root)
    assert result.state == "succeeded", (result.stdout_tail, result.stderr_tail)
    assert result.exit_code == 0 and result.where == "local"
    assert list(result.artifacts) == ["out/j.xml"]
    junit = base64.b64decode(result.artifacts["out/j.xml"]).decode()
    assert 'tests="1"' in junit and 'failures="0"' in junit
    assert list(work_root.iterdir()) == []  # the job directory is gone


def test_run_spec_states(sandbox: Sandbox, tmp_path: Path) -> None:
    failing = ExecSpec(files={}, argv=py("raise SystemExit(3)"))
    result = run_spec(failing, sandbox, tmp_path)
    assert (result.state, result.exit_code) == ("failed", 3)
    slow = ExecSpec(files={}, argv=["sleep", "100"], timeout_s=0.5)
    assert run_spec(slow, sandbox, tmp_path).state == "timed_out"
    cancel = threading.Event()
    cancel.set()
    assert run_spec(slow, sandbox, tmp_path, cancel=cancel).state == "cancelled"


def test_python_installation_is_read_only(sandbox: Sandbox, job: Path) -> None:
    out = sandbox.run(py(f"open({sys.prefix + '/pwned'!r}, 'w')"), job)
    assert out.exit_code != 0 and "Read-only file system" in out.stderr_tail


def test_ro_binds_are_visible_but_read_only(sandbox: Sandbox, job: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "mod.py").write_text("VALUE = 42\n")
    (project / "mod.py").chmod(0o666)  # so only the read-only mount can refuse the write
    code = (
        f"import sys; sys.path.insert(0, {str(project)!r}); import mod; print(mod.VALUE)\n"
        f"open({str(project / 'mod.py')!r}, 'a')"
    )
    out = sandbox.run(py(code), job, ro_binds=[project])
    assert out.stdout_tail == "42\n"
    assert "Read-only file system" in out.stderr_tail
    assert (project / "mod.py").read_text() == "VALUE = 42\n"


def test_only_files_and_directories_come_back(sandbox: Sandbox, job: Path) -> None:
    (job / "in.txt").write_text("hello")
    script = (
        "import os; os.symlink('/etc/passwd', 'passwd'); os.symlink('in.txt', 'alias');"
        " os.remove('in.txt'); os.mkfifo('fifo'); os.makedirs('d/e'); open('d/out.txt', 'w')"
    )
    out = sandbox.run(py(script), job)
    assert out.exit_code == 0, out.stderr_tail
    assert sorted(str(p.relative_to(job)) for p in job.rglob("*")) == ["d", "d/e", "d/out.txt"]


def test_a_forged_copy_back_cannot_escape_the_job_directory(
    sandbox: Sandbox, job: Path, tmp_path: Path
) -> None:
    """The job's directory comes back on a pipe that the job may reach through /proc/PPID/fd
    (unless, as root, it runs as a pool uid): what it sends there lands inside or nowhere."""
    forged = io.BytesIO()
    with tarfile.open(fileobj=forged, mode="w") as tar:
        for name, data in [("../escaped.txt", b"x"), ("/abs.txt", b"x"), ("ok.txt", b"ok")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
    script = (
        "import base64, os, sys\n"
        "fds = f'/proc/{os.getppid()}/fd/'\n"
        "mine = {os.readlink(f'/proc/self/fd/{n}') for n in (1, 2)}\n"
        "for fd in os.listdir(fds):\n"
        "    if os.readlink(fds + fd).startswith('pipe:') and os.readlink(fds + fd) not in mine:\n"
        "        try:\n"
        "            with open(fds + fd, 'wb') as pipe:\n"
        "                pipe.write(base64.b64decode(sys.argv[1]))\n"
        "            print('forged')\n"
        "        except PermissionError:\n"
        "            print('refused')\n"
    )
    out = sandbox.run(["python", "-c", script, base64.b64encode(forged.getvalue()).decode()], job)
    assert out.exit_code == 0, out.stderr_tail
    landed = {"forged\n": ["ok.txt"], "refused\n": []}[out.stdout_tail]
    assert sorted(p.name for p in job.iterdir()) == landed
    assert not (tmp_path / "escaped.txt").exists() and not Path("/abs.txt").exists()
