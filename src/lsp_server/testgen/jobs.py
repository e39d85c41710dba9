"""Exec jobs for test generation: the project and the sandbox driver as a bundle, the command,
the environment, a hard wall clock. Who runs a job is passed in (`RunJob`): the local sandbox
here, the dispatcher (gateway when up, local sandbox otherwise) from the server."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from remote_exec.jobs import ExecResult, ExecSpec, Resources

from .targets import Target

RunJob = Callable[[ExecSpec], ExecResult]
"""Runs one job to its end (sandboxed, wherever) and returns what it produced."""

DRIVER_DIR = "_gantry"
DRIVER = f"{DRIVER_DIR}/_gantry_driver.py"
EXPLORER = f"{DRIVER_DIR}/_gantry_explore.py"
_SHIPPED = {
    DRIVER: "sandbox_driver.py",
    EXPLORER: "sandbox_explore.py",
    f"{DRIVER_DIR}/_gantry_inputs.py": "sandbox_inputs.py",
    f"{DRIVER_DIR}/_gantry_render.py": "sandbox_render.py",
    f"{DRIVER_DIR}/_gantry_mutants.py": "sandbox_mutants.py",
}
"""What runs inside every job, beside the project: the driver and the search engine."""

_SKIP_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", "env", "node_modules", "__pycache__", "build", "dist"}
)
_CONFIG_FILES = frozenset({"pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py"})
MAX_BUNDLE_FILES = 1500
MAX_FILE_BYTES = 1024 * 1024


class BundleTooLarge(RuntimeError):
    pass


@attrs.frozen
class Budget:
    """A wall-clock deadline (monotonic seconds) that every job's timeout is cut from."""

    deadline: float

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    def share(self, fraction: float) -> float:
        return self.left() * fraction


def project_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py") or name in _CONFIG_FILES:
                yield Path(folder, name)


def project_bundle(target: Target) -> dict[str, str]:
    """The project's Python sources and test configuration, relative path -> base64."""
    files: dict[str, str] = {}
    for path in project_files(target.root):
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        if len(files) >= MAX_BUNDLE_FILES:
            raise BundleTooLarge(f"{target.root} has over {MAX_BUNDLE_FILES} Python files")
        files[path.relative_to(target.root).as_posix()] = _b64(path.read_bytes())
    for shipped, source in _SHIPPED.items():
        files[shipped] = _b64(Path(__file__).with_name(source).read_bytes())
    return files


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def text_file(text: str) -> str:
    return _b64(text.encode("utf-8"))


def artifact_text(result: ExecResult, path: str) -> str | None:
    content = result.artifacts.get(path)
    return None if content is None else base64.b64decode(content).decode("utf-8", "replace")


def spec(
    target: Target,
    bundle: dict[str, str],
    argv: list[str],
    *,
    timeout_s: float,
    extra_files: dict[str, str] | None = None,
    artifacts: list[str] | None = None,
) -> ExecSpec:
    """A job over the project bundle; ``argv`` runs in the job directory (the project root)
    with the driver and the module's import root on the path, and "python" is the interpreter
    the runner provides (Gantry's own environment, read-only), and the project's installed
    packages after it where it keeps them (testgen.project_env; the local sandbox only)."""
    path = [f"/job/{DRIVER_DIR}", "/job"]
    if target.import_relpath != ".":
        path.insert(1, f"/job/{target.import_relpath}")
    site: dict[str, str] = {}
    packages = target.project_env.site
    if packages is not None:  # read by the driver: sandbox_driver.add_project_site
        site[f"{DRIVER_DIR}/project_site.txt"] = text_file(str(packages))
    return ExecSpec(
        files={**bundle, **(extra_files or {}), **site},
        argv=argv,
        # Only names on a gateway's default allow-list: it refuses a job that sets another.
        env={"PYTHONPATH": ":".join(path)},
        timeout_s=max(timeout_s, 1.0),
        resources=Resources(cpus=1, memory_mb=2048, gpus=1 if target.needs_gpu else 0),
        artifacts=artifacts or [],
        local_ro=[str(packages)] if packages is not None else [],
    )


def local_runner(
    *,
    unsandboxed: bool = False,
    work_root: Path | None = None,
    cancel: threading.Event | None = None,
) -> RunJob:
    """Jobs in this machine's bubblewrap sandbox (SandboxUnavailable when it cannot run and
    ``unsandboxed`` was not allowed by the user); setting ``cancel`` kills a running job's
    process group at once (its result is then "cancelled")."""
    import tempfile

    from remote_exec.local_runner import run_spec
    from remote_exec.sandbox import Sandbox

    sandbox = Sandbox(unsandboxed=unsandboxed)
    root = work_root or Path(tempfile.gettempdir()) / "gantry-testgen"

    def run(job: ExecSpec) -> ExecResult:
        return run_spec(job, sandbox, root, cancel=cancel, local_binds=True)

    return run
