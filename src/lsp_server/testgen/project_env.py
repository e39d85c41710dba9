"""The project's own installed packages, for its tests to import: the site-packages of the
virtual environment it keeps in its root (``.venv`` or ``venv``), bound read-only into the
local sandbox and put on the jobs' path after Gantry's own tools.

The folder is the repository's, so it is untrusted: it is used only when it and its
site-packages lie inside the project once every link is followed (a ``.venv`` linked to a
home folder binds nothing), and only when it was made for the Python the jobs run on (compiled
packages of another version would not load)."""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

CANDIDATES = (".venv", "venv")


@attrs.frozen
class ProjectEnv:
    site: Path | None
    """The site-packages folder to bind; None when none can be used."""
    note: str | None = None
    """Why a virtual environment the project has is not used, for the user."""


NO_ENV = ProjectEnv(None)


def find_env(root: Path) -> ProjectEnv:
    real_root = root.resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for name in CANDIDATES:
        folder = root / name
        if not (folder / "pyvenv.cfg").is_file():
            continue
        site = (folder / "lib" / version / "site-packages").resolve()
        if not folder.resolve().is_relative_to(real_root) or not site.is_relative_to(real_root):
            return ProjectEnv(None, f"{name} leads outside the project: its packages are not used")
        if not site.is_dir():
            found = sorted(p.name for p in (folder / "lib").glob("python3*"))
            made_for = found[0] if found else "another Python"
            why = f"{name} is for {made_for}, the jobs run {version}: its packages are not used"
            return ProjectEnv(None, why)
        return ProjectEnv(site)
    return NO_ENV
