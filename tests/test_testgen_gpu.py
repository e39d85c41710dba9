"""Targets that need a GPU (they import torch, cupy or jax, or the project marks them): their
jobs ask for one, so they run only on a gateway; run locally, nothing runs and the user is told."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.testgen import jobs, targets
from lsp_server.testgen.run_control import stage_of

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("import torch\n", "it imports torch"),
        ("import numpy as np, torch.nn as nn\n", "it imports torch"),
        ("from jax import numpy as jnp\n", "it imports jax"),
        ("def f():\n    import cupy\n", "it imports cupy"),
        ("import torchvision\nimport jaxtyping\n", None),  # other packages, however named
        ("from .torch import f\n", None),  # the project's own module
        ("import numpy\n", None),
    ],
)
def test_gpu_need_follows_the_imports(source: str, why: str | None) -> None:
    assert targets.gpu_need(source, "pkg/m.py") == why


def test_the_project_may_mark_modules_that_need_a_gpu() -> None:
    assert targets.gpu_need("x = 1\n", "models/big.py", ["models/*.py"]) == (
        "testgen.gpu_paths marks it"
    )
    assert targets.gpu_need("x = 1\n", "util.py", ["models/*.py"]) is None


def test_its_jobs_ask_for_a_gpu_and_say_so(tmp_path: Path) -> None:
    module = tmp_path / "model.py"
    module.write_text("import torch\n\n\ndef f(x):\n    return x\n")
    target = targets.resolve(str(module))
    assert target.needs_gpu == "it imports torch"
    spec = jobs.spec(target, {}, ["python", "-I", "d.py", "cover", "ids.txt"], timeout_s=5)
    assert spec.resources.gpus == 1
    assert stage_of(spec)[1].endswith("(needs a GPU: waits for a gateway with one)")
    cpu = targets.resolve(str(FIXTURE / "textutils.py"))
    assert cpu.needs_gpu is None and jobs.spec(cpu, {}, ["x"], timeout_s=5).resources.gpus == 0


@pytest.mark.parametrize(("name", "marked"), [("gpu_model.py", False), ("heavy.py", True)])
def test_gantry_testgen_runs_nothing_locally_for_a_gpu_target(
    tmp_path: Path, name: str, marked: bool
) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project)
    source = "def scale(x):\n    return x * 2\n"
    (project / name).write_text(source if marked else "import torch\n\n\n" + source)
    if marked:
        with (project / "pyproject.toml").open("a") as pyproject:
            pyproject.write('\n[tool.gantry.testgen]\ngpu_paths = ["heavy.py"]\n')
    before = sorted(p.name for p in (project / "tests").iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "testgen", f"{name}::scale", "--write"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    why = "testgen.gpu_paths marks it" if marked else "it imports torch"
    assert f"nothing ran: {name} needs a GPU ({why})" in done.stderr
    assert sorted(p.name for p in (project / "tests").iterdir()) == before


def test_a_target_in_its_declared_encoding_is_read_as_python_reads_it(tmp_path: Path) -> None:
    module = tmp_path / "legacy.py"
    source = "# -*- coding: latin-1 -*-\nimport torch\n\n\ndef prix(x):\n    return 'é' * x\n"
    module.write_bytes(source.encode("latin-1"))  # not UTF-8
    target = targets.resolve(str(module))
    assert [s.name for s in target.symbols] == ["prix"] and target.needs_gpu == "it imports torch"
